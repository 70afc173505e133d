"""Style networks on images of any size, tile by tile, with whole-image instance-norm statistics.

Johnson et al. (2016) apply their fully-convolutional networks to whole images; for inputs too large for the
device the image is cut into tiles. Networks without image-wide statistics (super-resolution) only need
overlapping tiles blended linearly (:mod:`networks.tiles`). Instance-norm style networks normalise per image,
so tiles normalised on their own drift apart in colour and contrast; :func:`run_network_tiled` tiles them
correctly.

Whole-image instance-norm statistics (:func:`run_network_tiled`). The network runs in *stages* whose
boundaries sit where activations are small (the style network's quarter-resolution, 128-channel
bottleneck: 8 values per image pixel): the down path, each residual block, the up path. A stage's input
lives whole in host memory; the stage runs over a grid of non-overlapping *cores* that partition it, each
padded by a *halo* wider than the stage's receptive field, so every core is computed exactly as in one pass
(cores and tile starts are multiples of the stage's downsampling factor, so strided convs and nearest
upsampling line up with the whole image's). Inside a stage, instance norms are resolved one at a time: a
pass over all tiles runs the stage until the first norm without statistics, which accumulates the
per-image, per-channel count, mean and sum of squared deviations of its input over the tile cores (Chan et
al.'s parallel update, float64) and stops the pass; the norm then freezes to the whole image's mean and
biased variance, exactly what ``InstanceNorm2d`` computes on the whole image. When a pass reaches the end of
the stage, its outputs are the stage's output. Cost: about 2.5x one untiled pass for the style network
(earlier layers are recomputed once per later norm of the same stage); memory: one tile on the device, and
the stage inputs/outputs (the image, two bottleneck copies, the output) in host memory. Unknown networks
run as one stage with a generous halo (exact when the halo covers their receptive field). The final
stage's cores are feathered into each other over ``blend`` pixels (a no-op where cores are exact; it hides
float rounding and any receptive field beyond the halo).
"""
from __future__ import annotations

import copy
import math
import threading
import weakref
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .layers import scaled_tanh
from .legacy import PyTorchExamplesTransformerNet
from .plan import (
    BatchInstanceNorm2d,
    InferencePlan,
    _weights_signature,
    choose_plan,
    fold_batch_norms,
    run_network,
    swap_instance_norms,
)
from .style import StyleTransformNet
from .tiles import run_tiled, tile_starts  # noqa: F401 - re-exported: the overlapping-tile helpers live there


class _Collected(Exception):
    """Raised by the first norm without statistics once it has accumulated a tile's core: ends the pass early."""


class _TileContext:
    """Where the current tile's core lies, in the stage's input pixels relative to the tile (shared by the norms)."""

    def __init__(self) -> None:
        self.size = (0, 0)  # the tile's input height, width
        self.core = (0, 0, 0, 0)  # top, bottom, left, right


def _layer_span(start: int, stop: int, tile_length: int, layer_length: int) -> tuple[int, int]:
    """A core [start, stop) of a stage-input tile, in the pixels of a layer of ``layer_length`` for that tile.

    The layer's resolution relative to the stage input is a power of two (strided convs, x2 upsampling);
    cores are aligned to it, and a core ending at the image's edge keeps the layer's rounded-up last pixel.
    """
    factor = Fraction(2) ** round(math.log2(layer_length / tile_length))
    return min(math.ceil(start * factor), layer_length), min(math.ceil(stop * factor), layer_length)


class WholeImageInstanceNorm(nn.Module):
    """An instance norm whose statistics are accumulated over tile cores, then frozen for the whole image.

    Unfrozen, ``forward`` adds the core of its input to running per-(image, channel) statistics and raises
    :class:`_Collected`; :meth:`freeze` fixes the whole image's mean and biased variance, and frozen,
    ``forward`` normalises with them (an eval-mode batch norm per image: one fused kernel that keeps the
    layout), then applies the fused ReLU if any. Per-tile statistics come from the batch-norm kernel too
    (float32 accumulation, much faster than ``var_mean`` on channels-last tensors); tiles are combined in
    float64. Inference only.
    """

    def __init__(self, source: nn.Module, context: _TileContext, relu: bool = False):
        super().__init__()
        self.weight = source.weight
        self.bias = source.bias
        self.eps = float(source.eps)
        self.relu = relu
        self.context = context
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.mean: torch.Tensor | None = None  # (B, C) float64
        self.m2: torch.Tensor | None = None  # (B, C) float64: sum of squared deviations
        self.frozen: list[tuple[torch.Tensor, torch.Tensor]] | None = None  # per image: mean, var (float32)

    def _tile_statistics(self, core: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-(image, channel) mean and biased variance of ``core`` (B, C, h, w), float64 on the CPU."""
        layout = torch.channels_last if core.stride(1) == 1 else torch.contiguous_format  # keep the input's
        # A float32 weight makes the kernel return float32 statistics for bfloat16/float16 inputs.
        ones = None if core.dtype == torch.float32 else torch.ones(core.shape[1], device=core.device)
        means, variances = [], []
        for image in core.split(1):
            _, mean, invstd = torch.native_batch_norm(image.contiguous(memory_format=layout), ones, None, None, None,
                                                      True, 0.0, self.eps)
            means.append(mean.double())
            variances.append(invstd.double().pow(-2) - self.eps)
        return torch.stack(means).cpu(), torch.stack(variances).clamp_min(0).cpu()

    def _accumulate(self, x: torch.Tensor) -> None:
        top, bottom, left, right = self.context.core
        tile_h, tile_w = self.context.size
        y0, y1 = _layer_span(top, bottom, tile_h, x.shape[-2])
        x0, x1 = _layer_span(left, right, tile_w, x.shape[-1])
        n = (y1 - y0) * (x1 - x0)
        if n == 0:
            return
        mean, var = self._tile_statistics(x[..., y0:y1, x0:x1])
        m2 = var * n
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n  # Chan et al.'s pairwise update
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta.square() * (self.count * n / total)
        self.count = total

    def freeze(self, like: torch.Tensor) -> None:
        """Fix the accumulated statistics, on the device of ``like`` (the stage's activations)."""
        if self.mean is None or self.m2 is None:
            raise RuntimeError("no statistics were accumulated")
        var = self.m2 / self.count
        self.frozen = [(m.float().to(like.device), v.float().to(like.device)) for m, v in zip(self.mean, var)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen is None:
            self._accumulate(x)
            raise _Collected(self)
        if x.shape[0] != len(self.frozen):
            raise ValueError(f"statistics are for {len(self.frozen)} images, got a batch of {x.shape[0]}")
        weight = self.weight.float() if self.weight is not None else None
        bias = self.bias.float() if self.bias is not None else None
        y = torch.cat([F.batch_norm(image, mean, var, weight, bias, False, 0.0, self.eps)
                       for image, (mean, var) in zip(x.split(1), self.frozen)]) if x.shape[0] > 1 else \
            F.batch_norm(x, *self.frozen[0], weight, bias, False, 0.0, self.eps)
        return torch.relu_(y) if self.relu else y


@dataclass(frozen=True)
class TileStage:
    """A part of a network run tile by tile over a whole-image input held in host memory.

    ``run(net, tile, out_size)`` maps an input tile to its output, ``out_size`` (height, width) being the
    output size wanted for that tile; ``factor`` is output pixels per input pixel; ``halo`` the context in
    input pixels each core needs (at least the stage's receptive-field radius); ``align`` the multiple of
    input pixels tile starts and core boundaries keep (the stage's downsampling factor).
    """

    run: Callable[[nn.Module, torch.Tensor, tuple[int, int]], torch.Tensor]
    factor: Fraction
    halo: int
    align: int = 1


def _crop(y: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if y.shape[-2] < size[0] or y.shape[-1] < size[1]:
        raise ValueError(f"a tile gave {tuple(y.shape[-2:])}, smaller than the expected {size}")
    return y[..., : size[0], : size[1]]


def _johnson_style_stages(model: nn.Module) -> list[TileStage]:
    def up(net: nn.Module, t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        half = (-(-size[0] // 2), -(-size[1] // 2))  # the down path's half-resolution size for this tile
        return scaled_tanh(net.tail(net.up2(net.up1(t, half), size)))

    # Receptive-field radii: down path 4 + 1 + 2 = 7 image px; a residual block 2 bottleneck px; up path
    # 1 + 1/2 + 1/4 + 1 bottleneck px (rounded up, with room for a blend band of 8 image px).
    stages = [TileStage(lambda net, t, size: net.down2(net.down1(net.head(t))), Fraction(1, 4), 16, 4)]
    stages += [TileStage(lambda net, t, size, i=i: net.residuals[i](t), Fraction(1), 4)
               for i in range(len(model.residuals))]
    stages.append(TileStage(up, Fraction(4), 8))
    return stages


def _pytorch_examples_stages(model: nn.Module) -> list[TileStage]:
    def down(net: nn.Module, t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = net.relu(net.in1(net.conv1(t * 255)))
        y = net.relu(net.in2(net.conv2(y)))
        return net.relu(net.in3(net.conv3(y)))

    def up(net: nn.Module, t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = net.relu(net.in4(net.deconv1(t)))
        y = net.relu(net.in5(net.deconv2(y)))
        return _crop(net.deconv3(y), size).clamp(0, 255) / 255

    residuals = [TileStage(lambda net, t, size, name=name: getattr(net, name)(t), Fraction(1), 4)
                 for name in ("res1", "res2", "res3", "res4", "res5")]
    return [TileStage(down, Fraction(1, 4), 16, 4), *residuals, TileStage(up, Fraction(4), 8)]


def tile_stages(model: nn.Module, halo: int = 32, align: int = 8) -> list[TileStage]:
    """The stages :func:`run_network_tiled` runs ``model`` in: known architectures split at their bottleneck;
    any other network is one stage (``halo`` and ``align`` in input pixels, scale from ``model.scale``)."""

    if type(model) is StyleTransformNet:
        return _johnson_style_stages(model)
    if type(model) is PyTorchExamplesTransformerNet:
        return _pytorch_examples_stages(model)
    scale = int(getattr(model, "scale", 1) or 1)
    return [TileStage(lambda net, t, size: _crop(net(t), size), Fraction(scale), halo, align)]


def needs_whole_image_statistics(model: nn.Module) -> bool:
    """Whether ``model`` normalises with per-image statistics (stats-free instance norms), so that tiles
    run on their own would drift apart."""
    return any(type(m) is nn.InstanceNorm2d and not m.track_running_stats for m in model.modules())


def core_bounds(length: int, core: int, align: int = 1) -> list[int]:
    """Boundaries 0 = b0 < b1 < ... = ``length`` of cores of about ``core`` pixels, evenly spread, each
    inner boundary a multiple of ``align``."""
    core = max(align, core // align * align)
    count = max(1, -(-length // core))
    bounds = [0]
    for i in range(1, count):
        b = round(i * length / count / align) * align
        if bounds[-1] < b < length:
            bounds.append(b)
    return bounds + [length]


def _feather(start: int, stop: int, lead: bool, trail: bool, band: int) -> torch.Tensor:
    """Weights over [start, stop) of a core [start + band, stop - band) widened by ``band`` on the sides it
    shares: ramps that sum to one with the neighbour's across the 2 * ``band`` pixels around each boundary."""
    position = torch.arange(start, stop, dtype=torch.float32)
    weights = torch.ones(stop - start)
    if band > 0 and lead:
        weights = torch.minimum(weights, ((position - start + 0.5) / (2 * band)).clamp(0, 1))
    if band > 0 and trail:
        weights = torch.minimum(weights, ((stop - position - 0.5) / (2 * band)).clamp(0, 1))
    return weights


class _TiledNet:
    """The prepared copy of one model for one plan, with its norms, stages and a lock (norms hold state)."""

    def __init__(self, model: nn.Module, plan: InferencePlan, halo: int, align: int):

        self.context = _TileContext()
        net = fold_batch_norms(swap_instance_norms(copy.deepcopy(model)).eval().requires_grad_(False))
        self.norms: list[WholeImageInstanceNorm] = []
        self._replace(net, BatchInstanceNorm2d)
        net = net.to(plan.device, plan.dtype) if plan.dtype is not None else net.to(plan.device)
        self.net = net.to(memory_format=torch.channels_last) if plan.channels_last else net
        self.stages = tile_stages(model, halo, align)
        self.lock = threading.Lock()

    def _replace(self, module: nn.Module, batch_instance_norm: type) -> None:
        for name, child in list(module.named_children()):
            if isinstance(child, batch_instance_norm):
                norm = WholeImageInstanceNorm(child, self.context, relu=child.relu)
                self.norms.append(norm)
                setattr(module, name, norm)
            else:
                self._replace(child, batch_instance_norm)


_TILED_CACHE: "weakref.WeakKeyDictionary[nn.Module, dict[tuple, tuple[tuple, _TiledNet]]]" = weakref.WeakKeyDictionary()
_TILED_LOCK = threading.Lock()


def _tiled_net(model: nn.Module, plan: InferencePlan, halo: int, align: int) -> _TiledNet:

    signature = _weights_signature(model)
    key = (plan, halo, align)
    with _TILED_LOCK:
        per_model = _TILED_CACHE.setdefault(model, {})
        cached = per_model.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        tiled = _TiledNet(model, plan, halo, align)
        per_model[key] = (signature, tiled)
        return tiled


def _paste(out: torch.Tensor, y: torch.Tensor, index: tuple[int, int], bounds: tuple[list[int], list[int]],
           origin: tuple[int, int], factor: float, band: int) -> None:
    """Tile ``index``'s output ``y`` (its input starting at ``origin``) into ``out``: its core, widened by the blend
    band on the sides it shares with a neighbour, feathered there so the overlapping tiles sum to one."""
    (i, j), (ys, xs), (top, left) = index, bounds, origin
    out_size = out.shape[-2:]
    # The core (widened by the blend band on shared sides) in output pixels.
    oy0, oy1 = math.ceil(ys[i] * factor), min(math.ceil(ys[i + 1] * factor), out_size[0])
    ox0, ox1 = math.ceil(xs[j] * factor), min(math.ceil(xs[j + 1] * factor), out_size[1])
    lead_y, trail_y, lead_x, trail_x = i > 0, i + 2 < len(ys), j > 0, j + 2 < len(xs)
    oy0, oy1 = oy0 - band * lead_y, oy1 + band * trail_y
    ox0, ox1 = ox0 - band * lead_x, ox1 + band * trail_x
    base_y, base_x = math.ceil(top * factor), math.ceil(left * factor)
    piece_out = y[..., oy0 - base_y : oy1 - base_y, ox0 - base_x : ox1 - base_x].to("cpu", out.dtype)
    if band:
        weight = (_feather(oy0, oy1, lead_y, trail_y, band)[:, None]
                  * _feather(ox0, ox1, lead_x, trail_x, band)[None, :])
        out[..., oy0:oy1, ox0:ox1] += piece_out * weight.to(out.dtype)
    else:
        out[..., oy0:oy1, ox0:ox1] = piece_out


def _run_stage(tiled: _TiledNet, stage: TileStage, h: torch.Tensor, plan: InferencePlan, tile: int,
               out_size: tuple[int, int], out_dtype: torch.dtype, band: int) -> torch.Tensor:
    """One stage over the whole host-memory input ``h``: statistics passes, then the output pass."""
    height, width = h.shape[-2:]
    ys = core_bounds(height, tile, stage.align)
    xs = core_bounds(width, tile, stage.align)
    halo = -(-stage.halo // stage.align) * stage.align
    layout = torch.channels_last if plan.channels_last else torch.contiguous_format
    dtype = plan.dtype or torch.float32
    context = tiled.context
    factor = stage.factor
    # The feather stays inside the halo's exact margin and within half the smallest core.
    smallest = min(min(b - a for a, b in zip(ys, ys[1:])), min(b - a for a, b in zip(xs, xs[1:])))
    band = max(0, min(band, math.floor(stage.halo * factor) // 2, math.floor(smallest * factor) // 2))

    def tile_input(i: int, j: int) -> tuple[torch.Tensor, int, int]:
        top, left = max(ys[i] - halo, 0), max(xs[j] - halo, 0)
        bottom, right = min(ys[i + 1] + halo, height), min(xs[j + 1] + halo, width)
        context.size = (bottom - top, right - left)
        context.core = (ys[i] - top, ys[i + 1] - top, xs[j] - left, xs[j + 1] - left)
        piece = h[..., top:bottom, left:right].to(plan.device, dtype).contiguous(memory_format=layout)
        return piece, top, left

    def wanted(start: int, stop: int, total: int) -> int:  # output pixels of the input span [start, stop)
        return min(math.ceil(stop * factor), total) - math.ceil(start * factor)

    while True:
        collector: WholeImageInstanceNorm | None = None
        out: torch.Tensor | None = None
        like: torch.Tensor | None = None  # a tile, for the device and dtype of frozen statistics
        for i in range(len(ys) - 1):
            for j in range(len(xs) - 1):
                piece, top, left = tile_input(i, j)
                bottom, right = top + piece.shape[-2], left + piece.shape[-1]
                size = (wanted(top, bottom, out_size[0]), wanted(left, right, out_size[1]))
                try:
                    y = stage.run(tiled.net, piece, size)
                except _Collected as collected:
                    norm = collected.args[0]
                    if collector is not None and norm is not collector:
                        raise RuntimeError("tiles of one image reached different instance norms first") from None
                    collector = norm
                    like = piece
                    continue
                if collector is not None:
                    raise RuntimeError("some tiles reached an instance norm without statistics, others did not")
                if tuple(y.shape[-2:]) != size:
                    raise ValueError(f"a {tuple(piece.shape[-2:])} tile gave {tuple(y.shape[-2:])}, expected {size}")
                if out is None:
                    out = torch.zeros((*y.shape[:2], *out_size), dtype=out_dtype)
                _paste(out, y, (i, j), (ys, xs), (top, left), factor, band)
        if collector is None:
            assert out is not None
            return out
        assert like is not None
        collector.freeze(like)


def default_tile(device: torch.device) -> int:
    """Tile side in image pixels: 512 on a CPU (measured fastest at 3840x2160, benchmarks/tiling.py: larger
    tiles' activations exceed the allocator's reuse threshold and every tile pays fresh page faults), 2048 on
    an accelerator (a 2048 px tile of the style network is a few hundred MB of activations)."""
    return 512 if torch.device(device).type == "cpu" else 2048


@torch.inference_mode()
def run_network_tiled(model: nn.Module, x: torch.Tensor, plan: InferencePlan | None = None, *, tile: int | None = None,
                      blend: int = 8, halo: int = 32, align: int = 8) -> torch.Tensor:
    """``model(x)`` for images of any size, tile by tile, with whole-image instance-norm statistics.

    Same plan and result as :func:`networks.inference.run_network` (up to float rounding) for a (B, 3, H, W)
    batch, but the device only ever holds one tile of about ``tile`` x ``tile`` image pixels (plus halos);
    stage inputs and the output are in host memory. ``blend``: image pixels over which neighbouring cores of
    the output are feathered. ``halo`` / ``align`` apply to networks without a known stage split
    (:func:`tile_stages`). Images within one tile run in one :func:`run_network` call. Returns a
    contiguous float32 tensor on the CPU. ``tile`` defaults to :func:`default_tile` for the plan's device.
    """
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"expected a (B, C, H, W) floating-point batch, got {x.dtype} of shape {tuple(x.shape)}")
    plan = plan if plan is not None else choose_plan(model)
    tile = default_tile(plan.device) if tile is None else tile
    if tile < 16 or blend < 0:
        raise ValueError(f"need tile >= 16 and blend >= 0, got tile={tile}, blend={blend}")
    if plan.compile:  # tiles come in several shapes; compiled graphs are for whole images
        from dataclasses import replace

        plan = replace(plan, compile=False)
    height, width = x.shape[-2:]
    if height <= tile and width <= tile:
        return run_network(model, x, plan).cpu()
    tiled = _tiled_net(model, plan, halo, align)
    scale = int(getattr(model, "scale", 1) or 1)
    with tiled.lock:
        for norm in tiled.norms:
            norm.reset()
        h = x.detach().to("cpu", torch.float32)
        resolution = Fraction(1)  # the current stage input's pixels per image pixel
        for k, stage in enumerate(tiled.stages):
            last = k == len(tiled.stages) - 1
            resolution_out = resolution * stage.factor
            if last:
                out_size = (height * scale, width * scale)
            else:
                out_size = (math.ceil(h.shape[-2] * stage.factor), math.ceil(h.shape[-1] * stage.factor))
            core = max(1, math.floor(tile * resolution))
            band = blend * int(resolution_out) if last and resolution_out >= 1 else 0
            h = _run_stage(tiled, stage, h, plan, core, out_size, torch.float32 if last else (plan.dtype or torch.float32),
                           band)
            resolution = resolution_out
        for norm in tiled.norms:
            norm.reset()
    return h.contiguous()
