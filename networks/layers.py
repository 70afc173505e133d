"""Building blocks shared by the image transformation networks (Johnson et al. 2016, Sec. 3.1 + supp.)."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["instance", "batch", "none"]
Upsample = Literal["resize", "transpose"]
NORMS: tuple[str, ...] = ("instance", "batch", "none")
UPSAMPLES: tuple[str, ...] = ("resize", "transpose")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def make_norm(kind: str, channels: int) -> nn.Module:
    check_choice("norm", kind, NORMS)
    if kind == "instance":
        # affine=True, no running stats: the authors' later code (Ulyanov et al. 2016).
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


class ReflectConv(nn.Module):
    """Conv with reflection padding, so borders see image content instead of zeros (no dark frames)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1):
        super().__init__()
        self.pad = kernel // 2
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Reflection needs pad < size; tiny inputs (e.g. 1-2 px after downsampling) fall back to replicate.
        mode = "reflect" if min(x.shape[-2:]) > self.pad else "replicate"
        return self.conv(F.pad(x, (self.pad,) * 4, mode=mode))


class ConvNormReLU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, norm: str = "instance"):
        super().__init__(ReflectConv(in_ch, out_ch, kernel, stride), make_norm(norm, out_ch), nn.ReLU())


class ResidualBlock(nn.Module):
    """conv3x3-norm-ReLU-conv3x3-norm + identity, no ReLU after the sum (paper, supp. Fig. 1).

    Deviation: padded convs instead of the paper's unpadded convs with a centre-cropped shortcut, so the
    block keeps the spatial size and any input size works.
    """

    def __init__(self, channels: int, norm: str = "instance"):
        super().__init__()
        self.body = nn.Sequential(
            ReflectConv(channels, channels, 3),
            make_norm(norm, channels),
            nn.ReLU(),
            ReflectConv(channels, channels, 3),
            make_norm(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConvNormReLU(nn.Module):
    """A x2 "fractionally strided" stage that lands on an exact target size.

    ``transpose`` is the paper's stride-1/2 conv; ``resize`` (nearest x2 then a 3x3 conv) avoids the
    checkerboard artifacts of transposed convs (Odena et al. 2016). Both take the wanted output size so
    odd input sizes round-trip exactly through the stride-2 downsampling.
    """

    def __init__(self, in_ch: int, out_ch: int, upsample: str = "resize", norm: str = "instance"):
        super().__init__()
        check_choice("upsample", upsample, UPSAMPLES)
        self.upsample = upsample
        if upsample == "transpose":
            self.conv = nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1)
        else:
            self.conv = ReflectConv(in_ch, out_ch, 3)
        self.norm = make_norm(norm, out_ch)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        if size is None:
            size = (x.shape[-2] * 2, x.shape[-1] * 2)
        if self.upsample == "transpose":
            x = self.conv(x, output_size=list(size))
        else:
            x = self.conv(F.interpolate(x, size=size, mode="nearest"))
        return self.relu(self.norm(x))


def scaled_tanh(x: torch.Tensor) -> torch.Tensor:
    """Map to the pixel range [0, 1] (the paper's scaled tanh, for [0, 1] images instead of [0, 255])."""
    return 0.5 * (torch.tanh(x) + 1.0)
