"""The temporal loss of a stable style network (Wang et al., "Consistent Video Style Transfer via Relaxation and
Regularization", TIP 2020), learnt from still photos: a second frame is the first warped by a random smooth flow
plus a little noise (``imaging.motion.random_smooth_flow``), and the network must commute with that motion::

    l_temporal = mean over visible pixels of || f(warp(x) + noise) - warp(f(x)) ||^2

so that what it paints moves with the picture instead of re-deciding its strokes every frame (the flicker a
feed-forward network shows on video).

Photos rarely hold flat areas, and there a network may amplify a camera's sensor noise into lines and dots that
move with it (instance normalisation scales a near-flat response up to unit variance): on a still gradient with
1% noise the shipped woodcut network's output changed by a mean squared 0.06 between two noisy frames, against
0.0003 on a photo. With ``flat_share``, each batch gets that share of extra pairs (at least one): a photo
smoothed flat (its colours at 1/``FLAT_CELLS`` of its side, upsampled bilinearly) with fresh noise in *both*
frames, as a still camera sees a wall; their term is added with weight ``flat_share`` (as if each counted as
much as a photo's pair), and the photos' own term is unchanged::

    + share x mean over visible pixels of || f(warp(s) + noise') - warp(f(s + noise)) ||^2, s = smooth(x)

The price is paid in style over a photo's smooth areas: the network learns to draw less where it cannot tell
the picture's motion from noise.

(Made in place of a quarter of the photos' pairs instead, the flat pairs cut woodcut's warping error on a still,
noisy clip from 71% to 4% of its per-frame network's, but the photos' smaller share let it rise on a real clip from
46% to 55%.) Its weight is chosen by measurement (``benchmarks.video``): the warping
error falls with it, and the style objective on held-out photos must stay within 10% of the per-frame network's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from perceptual_studio.imaging.motion import random_smooth_flow, warp

from .perceptual import LossTerms

FLAT_CELLS = 32  # a flat pair's colours vary over a 1/32 of the image side: a gradient, no texture


def smoothed_flat(images: torch.Tensor) -> torch.Tensor:
    """``images`` with their texture removed: their mean colours over 1/``FLAT_CELLS`` of the side, upsampled
    bilinearly (a smooth gradient in the photo's own colours)."""
    height, width = images.shape[-2:]
    coarse = F.adaptive_avg_pool2d(images, (max(1, height // FLAT_CELLS), max(1, width // FLAT_CELLS)))
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class TemporalLoss:
    """``weight`` x the temporal loss, added to a step's :class:`LossTerms` (as ``temporal``)."""

    weight: float
    noise: float = 0.02  # standard deviation of the second frame's noise, in [0, 1] pixel units
    shift: float = 0.03  # the motion's global shift, as a fraction of the image side
    local: float = 0.015  # its local displacements' standard deviation, likewise
    flat_share: float = 0.0  # extra flat pairs (a share of the batch, at least one) and their term's weight

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise ValueError(f"the temporal loss weight must be > 0, got {self.weight}")
        if not 0.0 <= self.flat_share <= 1.0:
            raise ValueError(f"the temporal loss's flat share must be in [0, 1], got {self.flat_share}")

    def _noisy(self, images: torch.Tensor) -> torch.Tensor:
        return (images + self.noise * torch.randn_like(images)).clamp(0.0, 1.0)

    def add_to(self, terms: LossTerms, model: nn.Module, inputs: torch.Tensor, outputs: torch.Tensor) -> LossTerms:
        """``terms`` with the temporal loss of ``model`` on ``inputs`` (whose outputs are ``outputs``) added."""
        n, _, height, width = inputs.shape
        flat = math.ceil(self.flat_share * n - 1e-9) if self.flat_share else 0  # at least one when asked for
        flow = random_smooth_flow(n + flat, height, width, shift=self.shift, local=self.local, device=inputs.device)
        channels_last = inputs.is_contiguous(memory_format=torch.channels_last)
        first, first_outputs = inputs.float(), outputs
        if flat:  # extra pairs: the first photos smoothed, each frame with its own noise (so the first is run too)
            smooth = smoothed_flat(first[:flat])
            still = self._noisy(smooth).to(inputs.dtype)
            if channels_last:
                still = still.contiguous(memory_format=torch.channels_last)
            first = torch.cat([first, smooth])
            first_outputs = torch.cat([outputs, model(still).to(outputs.dtype)])
        moved, visible = warp(first, flow)
        moved = self._noisy(moved).to(inputs.dtype)
        if channels_last:
            moved = moved.contiguous(memory_format=torch.channels_last)
        expected, _ = warp(first_outputs.float(), flow)
        difference = (model(moved).float() - expected) ** 2 * visible
        temporal = self._mean(difference[:n], visible[:n])
        if flat:
            temporal = temporal + self.flat_share * self._mean(difference[n:], visible[n:])
        temporal = self.weight * temporal
        return replace(terms, total=terms.total + temporal, temporal=temporal)

    @staticmethod
    def _mean(difference: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """The mean squared difference over the visible pixels and the channels."""
        return difference.sum() / (visible.sum() * difference.shape[1]).clamp_min(1.0)
