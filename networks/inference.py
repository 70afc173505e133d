"""One inference path for the image transformation networks (Johnson, Alahi & Fei-Fei 2016, Sec. 3.1, Table 1).

The paper's point is a single feed-forward pass instead of an optimisation. The app, the CLIs and the
benchmarks all go through :func:`infer` (or :func:`run_network` for one pass), with an :class:`InferencePlan`
from :func:`choose_plan` (:mod:`networks.plan`: precision, layout, compiler) that is recorded with results.
:func:`infer` also decides how the pass is cut up: whole, in overlapping tiles (networks without image-wide
statistics: super-resolution; :mod:`networks.tiles`), or in tiles with whole-image instance-norm statistics
(style networks larger than a tile; :mod:`networks.tiling`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch
from torch import nn

from .plan import (  # noqa: F401
    MAX_GRAPH_SHAPES,
    PRECISIONS,
    BatchInstanceNorm2d,
    InferencePlan,
    choose_plan,
    cpu_has_fast_bfloat16,
    fold_batch_norms,
    ran_as,
    run_network,
    swap_instance_norms,
)
from .runtimes import fastest_plan
from .tiles import run_tiled
from .tiling import run_network_tiled


@dataclass(frozen=True)
class InferenceRun:
    output: torch.Tensor  # (B, 3, H, W) float32 in [0, 1]
    seconds: float  # the pass alone (synchronised on CUDA)
    plan: str  # how it ran: InferencePlan.describe(), plus the tiling if any


def infer(model: nn.Module, x: torch.Tensor, plan: InferencePlan | None = None, *, tile: int | None = None,
          overlap: int = 32, whole_image_tile: int | None = None) -> InferenceRun:
    """``model(x)`` clamped to [0, 1], timed, in one pass or in tiles.

    ``tile``: overlapping tiles of that many input pixels blended linearly (for networks without image-wide
    statistics). ``whole_image_tile``: tiles of that many pixels a side with whole-image instance-norm
    statistics (the style networks), used only when the input is larger. Neither: one pass.

    Without a ``plan``: :func:`choose_plan`'s, under the runtime measured fastest for this model on this
    machine (:func:`networks.runtimes.fastest_plan`, measured on first use).
    """
    whole_image_tiles = whole_image_tile is not None and max(x.shape[-2:]) > whole_image_tile
    if plan is None:
        plan = choose_plan(model)
        if tile is None and not whole_image_tiles:  # one pass: the runtime measured fastest for it
            plan = fastest_plan(model, plan, max(x.shape[-2:]))
    if whole_image_tiles:
        plan = replace(plan, runtime="torch")  # the tiles share statistics through the torch modules
    started = time.perf_counter()
    if whole_image_tiles:
        out = run_network_tiled(model, x, plan, tile=whole_image_tile)
        how = f", in {whole_image_tile}-px tiles with whole-image statistics"
    elif tile is None:
        out, how = run_network(model, x, plan), ""
    else:
        scale = int(getattr(model, "scale", 1) or 1)
        out = run_tiled(lambda piece: run_network(model, piece, plan), x, tile=tile, overlap=overlap, scale=scale)
        how = f", in {tile}-px input tiles overlapping by {overlap} px" if max(x.shape[-2:]) > tile else ""
    if plan.device.type == "cuda":
        torch.cuda.synchronize(plan.device)
    seconds = time.perf_counter() - started
    # Recorded after the run: a fallback during it (compile to eager, cast to autocast) is what it says.
    return InferenceRun(out.clamp(0.0, 1.0), seconds, ran_as(model, plan) + how)
