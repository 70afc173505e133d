"""The temporal loss of a stable style network (Wang et al., "Consistent Video Style Transfer via Relaxation and
Regularization", TIP 2020), learnt from still photos: a second frame is the first warped by a random smooth flow
plus a little noise (``imaging.motion.random_smooth_flow``), and the network must commute with that motion::

    l_temporal = mean over visible pixels of || f(warp(x) + noise) - warp(f(x)) ||^2

so that what it paints moves with the picture instead of re-deciding its strokes every frame (the flicker a
feed-forward network shows on video). Its weight is chosen by measurement (``benchmarks.video``): the warping
error falls with it, and the style objective on held-out photos must stay within 10% of the per-frame network's.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from perceptual_studio.imaging.motion import random_smooth_flow, warp

from .perceptual import LossTerms


@dataclass(frozen=True)
class TemporalLoss:
    """``weight`` x the temporal loss, added to a step's :class:`LossTerms` (as ``temporal``)."""

    weight: float
    noise: float = 0.02  # standard deviation of the second frame's noise, in [0, 1] pixel units
    shift: float = 0.03  # the motion's global shift, as a fraction of the image side
    local: float = 0.015  # its local displacements' standard deviation, likewise

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise ValueError(f"the temporal loss weight must be > 0, got {self.weight}")

    def add_to(self, terms: LossTerms, model: nn.Module, inputs: torch.Tensor, outputs: torch.Tensor) -> LossTerms:
        """``terms`` with the temporal loss of ``model`` on ``inputs`` (whose outputs are ``outputs``) added."""
        n, _, height, width = inputs.shape
        flow = random_smooth_flow(n, height, width, shift=self.shift, local=self.local, device=inputs.device)
        moved, visible = warp(inputs.float(), flow)
        moved = (moved + self.noise * torch.randn_like(moved)).clamp(0.0, 1.0).to(inputs.dtype)
        if inputs.is_contiguous(memory_format=torch.channels_last):
            moved = moved.contiguous(memory_format=torch.channels_last)
        expected, _ = warp(outputs.float(), flow)
        difference = (model(moved).float() - expected) ** 2 * visible
        temporal = self.weight * difference.sum() / (visible.sum() * difference.shape[1]).clamp_min(1.0)
        return replace(terms, total=terms.total + temporal, temporal=temporal)
