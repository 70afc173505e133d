"""Super-resolution network of Johnson, Alahi & Fei-Fei (ECCV 2016), Sec. 3.1 and supplementary.

``c9s1-64, R64 x4``, then log2(f) x2 upsampling stages of 64 channels, then ``c9s1-3`` with a scaled-tanh
output. The input is the low-resolution image itself (not bicubic-upsampled first); the output is exactly
f times its size. Defaults follow the paper (batch norm, 4 residual blocks); upsampling defaults to
resize-then-conv, like the style network, to avoid checkerboard artifacts.

``residual="bicubic"`` (not in the paper; VDSR, Kim et al. 2016, and most later SR networks) makes the network
predict only the difference to a bicubic upscale of its input: the last convolution starts at zero, so an
untrained network is exactly bicubic and training only has to add what bicubic misses. Its output is then
linear (the scaled tanh would squash the residual) and clamped to [0, 1] outside training.

``degrid=w`` (not in the paper; this project's) removes from the network's difference to bicubic the part locked
to the upsampling lattice (:func:`lattice_pattern`, averaged over ``w`` x ``w`` input pixels): a network that makes
each of the f x f output phases with its own weights (sub-pixel convolution, and the paper's own upsampling to a
lesser degree) can draw a faint grid that a per-pixel loss barely sees and a feature loss even rewards (the
paper's "cross-hatch"). Real detail has no preferred phase, so the filter leaves it: on the held-out photos at x4
(w = 9) the pixel-loss model kept its PSNR (29.27 dB) while its cross-hatch fell from +5.0 to +1.8 dB. It has no
weights, so it can be switched on for a trained network; a feature-loss network trained with it in place has
to make its detail some other way.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
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
RESIDUALS: tuple[str, ...] = ("none", "bicubic")
# "shuffle" (not in the paper; ESPCN, Shi et al. 2016): every layer stays at the input's resolution and one last
# convolution predicts the f x f sub-pixels of each input pixel, which PixelShuffle lays out. On a CPU a
# training step is about 4x cheaper than with the full-resolution convolutions of "resize" (x4, 144 px patches).
SR_UPSAMPLES: tuple[str, ...] = (*UPSAMPLES, "shuffle")


@register_architecture("johnson-sr", task="super-resolution")
class SuperResolutionNet(nn.Module):
    def __init__(
        self,
        scale: int = 4,
        channels: int = 64,
        num_residual: int = 4,
        norm: str = "batch",
        upsample: str = "resize",
        residual: str = "none",
        degrid: int = 0,
    ):
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        if channels < 1 or num_residual < 0:
            raise ValueError("channels must be >= 1 and num_residual >= 0")
        check_choice("norm", norm, NORMS)
        check_choice("upsample", upsample, SR_UPSAMPLES)
        check_choice("residual", residual, RESIDUALS)
        if degrid < 0:
            raise ValueError(f"degrid must be >= 0 (0: off), got {degrid!r}")
        self.scale = scale
        self.residual = residual
        self.degrid = degrid
        self.config = {"scale": scale, "channels": channels, "num_residual": num_residual, "norm": norm, "upsample": upsample}
        # Each only when used, so the config of a model saved before the option existed is unchanged.
        if residual != "none":
            self.config["residual"] = residual
        if degrid:
            self.config["degrid"] = degrid
        self.head = ConvNormReLU(3, channels, 9, norm=norm)
        self.residuals = nn.Sequential(*(ResidualBlock(channels, norm) for _ in range(num_residual)))
        if upsample == "shuffle":
            self.ups = nn.ModuleList()
            self.tail = nn.Sequential(ReflectConv(channels, 3 * scale * scale, 3), nn.PixelShuffle(scale))
        else:
            self.ups = nn.ModuleList(
                UpsampleConvNormReLU(channels, channels, upsample, norm) for _ in range(int(math.log2(scale)))
            )
            self.tail = ReflectConv(channels, 3, 9)
        if residual == "bicubic":
            last = self.tail[0] if upsample == "shuffle" else self.tail
            nn.init.zeros_(last.conv.weight)
            nn.init.zeros_(last.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, h, w) in [0, 1] -> (B, 3, f*h, f*w) in [0, 1]."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        h = self.residuals(self.head(x))
        for up in self.ups:
            h = up(h)
        if self.residual == "none":
            out = scaled_tanh(self.tail(h))
            if self.degrid:
                base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
                out = out - lattice_pattern(out - base, self.scale, self.degrid)
            return out
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        difference = self.tail(h)
        if self.degrid:
            difference = difference - lattice_pattern(difference, self.scale, self.degrid)
        out = base + difference
        return out if self.training else out.clamp(0.0, 1.0)

    def set_degrid(self, window: int) -> None:
        """Switch the lattice filter on (``window`` > 0) or off for this network (it has no weights)."""
        if window < 0:
            raise ValueError(f"degrid must be >= 0 (0: off), got {window!r}")
        self.degrid = window
        self.config.pop("degrid", None)
        if window:
            self.config["degrid"] = window


def lattice_pattern(image: torch.Tensor, scale: int, window: int) -> torch.Tensor:
    """The part of ``image`` (B, C, H, W; H and W multiples of ``scale``) locked to a ``scale``-pixel lattice: for
    each of the scale x scale phases, its mean over ``window`` x ``window`` lattice cells around each cell, less the
    mean of all phases there, laid back out on the lattice. A pattern that repeats every ``scale`` pixels is all
    lattice pattern; natural detail, which has no preferred phase, averages out of it."""
    b, c, height, width = image.shape
    h, w = height // scale, width // scale
    phases = F.pixel_unshuffle(image, scale)  # (B, C * scale^2, h, w): phase p of channel c at c * scale^2 + p
    local = F.avg_pool2d(phases, window, stride=1, padding=window // 2, count_include_pad=False)[..., :h, :w]
    local = local.view(b, c, scale * scale, h, w)
    pattern = local - local.mean(dim=2, keepdim=True)
    return F.pixel_shuffle(pattern.view(b, c * scale * scale, h, w), scale)
