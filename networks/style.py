"""Style transformation network of Johnson, Alahi & Fei-Fei (ECCV 2016), Sec. 3.1 and supplementary.

``c9s1-32, d64, d128, R128 x5, u64, u32, c9s1-3`` with a scaled-tanh output. Options recorded in a model's
config: normalisation (instance, the authors' later choice, by default; batch as in the paper),
upsampling (resize-then-conv by default; the paper's transposed conv) and a width multiplier (the
authors' later code often uses 0.5). Every conv pads by reflection, so any input size works and the
output has exactly the input's size without zero-padding border artifacts.
"""
from __future__ import annotations

import torch
from torch import nn

from .architectures import register_architecture
from .layers import (
    NORMS,
    UPSAMPLES,
    ConvNormReLU,
    ReflectConv,
    ResidualBlock,
    UpsampleConvNormReLU,
    check_choice,
    scaled_tanh,
)


@register_architecture("johnson-style", task="style-transfer")
class StyleTransformNet(nn.Module):
    def __init__(
        self,
        norm: str = "instance",
        upsample: str = "resize",
        width: float = 1.0,
        num_residual: int = 5,
    ):
        super().__init__()
        check_choice("norm", norm, NORMS)
        check_choice("upsample", upsample, UPSAMPLES)
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")
        if num_residual < 0:
            raise ValueError(f"num_residual must be >= 0, got {num_residual}")
        self.config = {"norm": norm, "upsample": upsample, "width": width, "num_residual": num_residual}
        c32, c64, c128 = (max(1, round(c * width)) for c in (32, 64, 128))
        self.head = ConvNormReLU(3, c32, 9, norm=norm)
        self.down1 = ConvNormReLU(c32, c64, 3, stride=2, norm=norm)
        self.down2 = ConvNormReLU(c64, c128, 3, stride=2, norm=norm)
        self.residuals = nn.Sequential(*(ResidualBlock(c128, norm) for _ in range(num_residual)))
        self.up1 = UpsampleConvNormReLU(c128, c64, upsample, norm)
        self.up2 = UpsampleConvNormReLU(c64, c32, upsample, norm)
        self.tail = ReflectConv(c32, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1] -> (B, 3, H, W) in [0, 1]."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        full = x.shape[-2:]
        h1 = self.head(x)
        h2 = self.down1(h1)
        half = h2.shape[-2:]
        h = self.residuals(self.down2(h2))
        h = self.up1(h, tuple(half))
        h = self.up2(h, tuple(full))
        return scaled_tanh(self.tail(h))
