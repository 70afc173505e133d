"""Super-resolution network of Johnson, Alahi & Fei-Fei (ECCV 2016), Sec. 3.1 and supplementary.

``c9s1-64, R64 x4``, then log2(f) x2 upsampling stages of 64 channels, then ``c9s1-3`` with a scaled-tanh
output. The input is the low-resolution image itself (not bicubic-upsampled first); the output is exactly
f times its size. Defaults follow the paper (batch norm, 4 residual blocks); upsampling defaults to
resize-then-conv, like the style network, to avoid checkerboard artifacts.
"""
from __future__ import annotations

import math

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

SCALES: tuple[int, ...] = (2, 4, 8)


@register_architecture("johnson-sr", task="super-resolution")
class SuperResolutionNet(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        channels: int = 64,
        num_residual: int = 4,
        norm: str = "batch",
        upsample: str = "resize",
    ):
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        if channels < 1 or num_residual < 0:
            raise ValueError("channels must be >= 1 and num_residual >= 0")
        check_choice("norm", norm, NORMS)
        check_choice("upsample", upsample, UPSAMPLES)
        self.scale = scale
        self.config = {"scale": scale, "channels": channels, "num_residual": num_residual, "norm": norm, "upsample": upsample}
        self.head = ConvNormReLU(3, channels, 9, norm=norm)
        self.residuals = nn.Sequential(*(ResidualBlock(channels, norm) for _ in range(num_residual)))
        self.ups = nn.ModuleList(
            UpsampleConvNormReLU(channels, channels, upsample, norm) for _ in range(int(math.log2(scale)))
        )
        self.tail = ReflectConv(channels, 3, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, h, w) in [0, 1] -> (B, 3, f*h, f*w) in [0, 1]."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        h = self.residuals(self.head(x))
        for up in self.ups:
            h = up(h)
        return scaled_tanh(self.tail(h))
