"""The style network of pytorch/examples ``fast_neural_style`` (``transformer_net.py``), for its checkpoints.

Same layout and parameter names as ``TransformerNet`` there, so its published ``candy.pth``, ``mosaic.pth``,
``rain_princess.pth`` and ``udnie.pth`` state dicts load with strict key matching (``conv1.conv2d.weight``,
``in1.weight``, ``res1.conv1.conv2d.weight``, ``deconv1.conv2d.weight``, ...): a Johnson et al. (2016)
network with instance norm (Ulyanov et al. 2016) and nearest-upsample-then-conv instead of strided
transposed convs. Old checkpoints also carry ``in*.running_mean``/``running_var`` from PyTorch < 0.4, when
InstanceNorm kept running stats; they are unused and ``drop_stale_norm_stats`` removes them.

Deviations, both so it behaves like the project's other networks:
- the original maps images in [0, 255] to [0, 255] (unclamped); here input and output are in [0, 1]
  (``x * 255`` in, ``clamp(0, 255) / 255`` out, exactly what ``neural_style.py stylize`` does around it);
- the original returns up to 3 extra rows/columns when a side is not a multiple of 4 (stride-2 convs
  round up, upsampling doubles); the output is cropped to the input size (top-left, where it aligns).
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from .architectures import register_architecture

ARCHITECTURE_NAME = "pytorch-examples-transformer"
# The stale running statistics of the pre-0.4 InstanceNorm layers (pytorch/examples drops them the same way).
_STALE_NORM_STAT = re.compile(r"(^|\.)in\d+\.running_(mean|var)$")


def drop_stale_norm_stats(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Return ``state`` without the InstanceNorm running-stat keys old checkpoints carry."""
    return {k: v for k, v in state.items() if not _STALE_NORM_STAT.search(k)}


class ConvLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.in1(self.conv1(x)))
        return self.in2(self.conv2(out)) + x


class UpsampleConvLayer(nn.Module):
    """Nearest-neighbour upsampling, then a reflection-padded conv (avoids checkerboard artifacts)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, upsample: int | None = None):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


@register_architecture(ARCHITECTURE_NAME, task="style-transfer")
class PyTorchExamplesTransformerNet(nn.Module):
    """pytorch/examples ``TransformerNet`` with a [0, 1] image interface; no constructor arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.config: dict = {}
        self.conv1 = ConvLayer(3, 32, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = ConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = ConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        self.res1 = ResidualBlock(128)
        self.res2 = ResidualBlock(128)
        self.res3 = ResidualBlock(128)
        self.res4 = ResidualBlock(128)
        self.res5 = ResidualBlock(128)
        self.deconv1 = UpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = UpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward_255(self, x: torch.Tensor) -> torch.Tensor:
        """The original forward: [0, 255] in, unclamped [0, 255]-ish out, sides rounded up to a multiple of 4."""
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1] -> (B, 3, H, W) in [0, 1]."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
        y = self.forward_255(x * 255)
        return y[..., : x.shape[-2], : x.shape[-1]].clamp(0, 255) / 255

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # Accept checkpoints straight from pytorch/examples: their stale InstanceNorm stats are not parameters.
        for key in [k for k in state_dict if k.startswith(prefix) and _STALE_NORM_STAT.search(k[len(prefix):])]:
            del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
