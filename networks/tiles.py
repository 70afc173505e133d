"""Run an image network over overlapping tiles and blend them linearly, so large images fit in memory.

For networks without image-wide statistics (super-resolution in eval mode; a 4000 px photo through the x4
network is a 16000 px output): each tile runs on its own and the outputs are blended with weights that ramp
linearly across each overlap (1 inside a tile, falling to 0 towards an edge it shares with a neighbour; image
borders keep weight 1). The weights of overlapping tiles sum to one, so there are no seams; a ``margin`` at
each shared edge gets weight 0, so pixels a tile sees through reflection padding instead of real context
never count. With an overlap wider than twice the network's receptive-field radius, the blend equals the
untiled output up to float rounding. Style networks need :mod:`networks.tiling` instead.
"""
from __future__ import annotations

from typing import Callable

import torch

TileFn = Callable[[torch.Tensor], torch.Tensor]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length``, evenly spaced, sharing at least ``overlap``."""
    if length <= tile:
        return [0]
    count = -(-(length - overlap) // (tile - overlap))  # ceil: the fewest tiles with that much overlap
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _ramp(length: int, lead: int, trail: int, margin: int, device: torch.device) -> torch.Tensor:
    """1-D blend weights for one tile: ``lead``/``trail`` are the overlaps shared with the previous/next tile."""
    weights = torch.ones(length, device=device)
    position = torch.arange(length, device=device, dtype=torch.float32)
    if lead > 0:
        width = max(lead - 2 * margin, 1)
        weights = torch.minimum(weights, ((position - margin + 0.5) / width).clamp(0.0, 1.0))
    if trail > 0:
        width = max(trail - 2 * margin, 1)
        from_end = length - 1 - position
        weights = torch.minimum(weights, ((from_end - margin + 0.5) / width).clamp(0.0, 1.0))
    return weights


def run_tiled(fn: TileFn, x: torch.Tensor, *, tile: int = 128, overlap: int = 32, scale: int = 1,
              margin: int | None = None) -> torch.Tensor:
    """``fn(x)`` computed tile by tile: ``x`` (B, C, H, W) -> (B, C', H * scale, W * scale).

    ``tile`` and ``overlap`` are in input pixels; ``margin`` (default ``overlap // 4``) input pixels at each
    shared tile edge are ignored. Inputs no larger than ``tile`` run in one piece. The output is float32 on
    the device ``fn`` returns.
    """
    if x.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) batch, got shape {tuple(x.shape)}")
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"need tile >= 1 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    margin = overlap // 4 if margin is None else margin
    if not 0 <= 2 * margin < max(overlap, 1):
        raise ValueError(f"margin {margin} must be less than half the overlap {overlap}")
    height, width = x.shape[-2:]
    if height <= tile and width <= tile:
        return fn(x).float()
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    out: torch.Tensor | None = None
    total: torch.Tensor | None = None
    for i, top in enumerate(ys):
        th = min(tile, height)
        lead_y = ys[i - 1] + th - top if i > 0 else 0
        trail_y = top + th - ys[i + 1] if i + 1 < len(ys) else 0
        for j, left in enumerate(xs):
            tw = min(tile, width)
            lead_x = xs[j - 1] + tw - left if j > 0 else 0
            trail_x = left + tw - xs[j + 1] if j + 1 < len(xs) else 0
            piece = fn(x[..., top : top + th, left : left + tw]).float()
            if piece.shape[-2:] != (th * scale, tw * scale):
                raise ValueError(
                    f"the network returned {tuple(piece.shape[-2:])} for a {th}x{tw} tile; expected scale {scale}"
                )
            if out is None:
                out = piece.new_zeros((piece.shape[0], piece.shape[1], height * scale, width * scale))
                total = piece.new_zeros((1, 1, height * scale, width * scale))
            wy = _ramp(th * scale, lead_y * scale, trail_y * scale, margin * scale, piece.device)
            wx = _ramp(tw * scale, lead_x * scale, trail_x * scale, margin * scale, piece.device)
            weight = (wy[:, None] * wx[None, :])[None, None]
            rows = slice(top * scale, (top + th) * scale)
            cols = slice(left * scale, (left + tw) * scale)
            out[..., rows, cols] += piece * weight
            total[..., rows, cols] += weight
    assert out is not None and total is not None
    return out / total.clamp_min(1e-8)


# ------------------------------------------------------------------------------------------------------------
# Tiling with whole-image instance-norm statistics (module docstring, second paragraph)
