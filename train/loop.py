"""The training loop shared by style transfer and super-resolution (pytorch/examples ``neural_style.py`` ``train``,
minus its prints): build targets, one step, the loop. Progress goes through a callback, so the CLI shows a
progress bar and the web app a ``gr.Progress`` from the same code.

Johnson et al. 2016 train with Adam (lr 1e-3, no weight decay); each step maps a batch through the network
and back-propagates the perceptual loss of the frozen loss network. Around that, the loop adds:

* mixed precision (bfloat16 autocast) and channels-last on GPU; on a CPU bfloat16 only with AMX, else float32,
  unless asked;
* a stop on a non-finite or exploding loss *before* the optimiser applies it, keeping the last good checkpoint;
* cancellation via ``should_stop`` (a ``threading.Event`` or a callable), checked every step;
* checkpoints, previews of a fixed validation image (the evolution of the output over training, in the spirit
  of Zeiler & Fergus 2014, Fig. 4) and the loss history as JSON lines, all in the run folder;
* optional Zeiler & Fergus (2014, Sec. 3) filter renormalisation after each step.
"""
from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import torch
from PIL import Image
from torch import nn

from perceptual_studio.imaging.io import tensor_to_image
from perceptual_studio.losses import PerceptualLoss, TemporalLoss
from perceptual_studio.losses.perceptual import LossTerms
from perceptual_studio.networks.plan import cpu_trains_faster_in_bfloat16

from . import checkpoint as ckpt
from .config import TrainConfigBase
from .distributed import DistContext, agree

logger = logging.getLogger(__name__)

LOSS_LOG = "loss.jsonl"
PREVIEWS_DIR = "previews"


@dataclass
class TrainEvent:
    """One progress report. ``preview`` is set at preview steps; ``done`` / ``cancelled`` on the last event."""

    step: int
    total: int
    losses: dict[str, float] = field(default_factory=dict)
    images_per_s: float = 0.0
    elapsed_s: float = 0.0
    preview: Image.Image | None = None
    done: bool = False
    cancelled: bool = False
    message: str | None = None
    model_folder: Path | None = None


ProgressCallback = Callable[[TrainEvent], None]


class StopSignal(Protocol):
    def is_set(self) -> bool: ...


StopRequest = StopSignal | Callable[[], bool] | None


class TrainingDivergedError(RuntimeError):
    """The loss became non-finite or exploded; the message names the step and the last good checkpoint."""


def stop_requested(should_stop: StopRequest) -> bool:
    if should_stop is None:
        return False
    if hasattr(should_stop, "is_set"):
        return bool(should_stop.is_set())
    return bool(should_stop())


def emit(progress: ProgressCallback | None, event: TrainEvent) -> None:
    if progress is not None:
        progress(event)


# ------------------------------------------------------------------------------------------ precision / layout


@dataclass(frozen=True)
class Numerics:
    autocast_dtype: torch.dtype | None  # None = plain float32
    channels_last: bool

    @property
    def label(self) -> str:
        return "bfloat16 autocast" if self.autocast_dtype is torch.bfloat16 else "float32"


def resolve_numerics(config: TrainConfigBase, device: torch.device) -> Numerics:
    on_gpu = device.type == "cuda"
    if config.precision == "bfloat16" or (config.precision == "auto" and (on_gpu or (
            device.type == "cpu" and cpu_trains_faster_in_bfloat16()))):
        dtype = torch.bfloat16
    else:
        dtype = None
    channels_last = on_gpu if config.channels_last is None else config.channels_last
    return Numerics(dtype, channels_last)


def autocast(device: torch.device, numerics: Numerics):
    if numerics.autocast_dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=numerics.autocast_dtype)


def configure_determinism(config: TrainConfigBase, device: torch.device) -> None:
    """Seeded CPU runs are reproducible as they are; on CUDA ``deterministic`` asks for deterministic kernels."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = not config.deterministic
    torch.backends.cudnn.deterministic = config.deterministic
    if config.deterministic:
        # Reflection-pad and nearest-upsample backward use atomics on CUDA: warn rather than fail on them.
        torch.use_deterministic_algorithms(True, warn_only=True)


@torch.no_grad()
def renormalize_filters(model: nn.Module, radius: float) -> None:
    """Zeiler & Fergus (2014): scale each conv filter whose RMS exceeds ``radius`` back to ``radius``."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            dims = (1, 2, 3)  # weight (out, in, kh, kw): one filter per output channel
        elif isinstance(module, nn.ConvTranspose2d):
            dims = (0, 2, 3)  # weight (in, out, kh, kw)
        else:
            continue
        weight = module.weight
        rms = weight.pow(2).mean(dim=dims, keepdim=True).sqrt()
        weight.mul_((radius / rms.clamp_min(1e-12)).clamp(max=1.0))


# ------------------------------------------------------------------------------------------ the run folder


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def details(self) -> Path:
        return self.root / "run.json"

    @property
    def loss_log(self) -> Path:
        return self.root / LOSS_LOG

    @property
    def loss_plot(self) -> Path:
        return self.root / "loss.png"

    @property
    def previews(self) -> Path:
        return self.root / PREVIEWS_DIR

    @property
    def evolution(self) -> Path:
        return self.root / "evolution.jpg"

    def preview(self, step: int) -> Path:
        return self.previews / f"step_{step:08d}.jpg"


def read_history(path: Path, up_to_step: int | None = None) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash
        if up_to_step is None or row.get("step", 0) <= up_to_step:
            rows.append(row)
    return rows


def _rewrite_history(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# ------------------------------------------------------------------------------------------ the loop


@dataclass
class LoopSpec:
    """What differs between the tasks: the network, its loss, how a data batch becomes (input, target)."""

    model: nn.Module  # on the device, not wrapped
    loss: PerceptualLoss  # on the device, style targets already set
    make_batches: Callable[[int], Iterable[torch.Tensor]]  # first step -> CPU batches for the steps from there
    prepare: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # device batch -> (input, target)
    preview_input: torch.Tensor | None = None  # (1, 3, h, w) on the device: the fixed validation input
    temporal: TemporalLoss | None = None  # a stable network's temporal loss


@dataclass
class LoopResult:
    step: int
    cancelled: bool
    elapsed_s: float
    last_losses: dict[str, float]
    history: list[dict[str, Any]]
    last_preview: Image.Image | None
    last_checkpoint: Path | None


def compute_loss(model: nn.Module, loss: PerceptualLoss, inputs: torch.Tensor, target: torch.Tensor,
                 temporal: TemporalLoss | None = None) -> LossTerms:
    """One evaluation of the objective: the network's output scored against the target by the loss network,
    plus, for a stable network, the temporal loss of that output under random motion."""
    outputs = model(inputs)
    terms = loss(outputs, target)
    return terms if temporal is None else temporal.add_to(terms, model, inputs, outputs)


def train_step(model: nn.Module, spec: LoopSpec, optimizer: torch.optim.Optimizer, batch: torch.Tensor,
               device: torch.device, numerics: Numerics) -> LossTerms:
    """Forward and backward of one batch (no optimiser step: the caller checks the loss first)."""
    inputs, target = spec.prepare(batch)
    if numerics.channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    with autocast(device, numerics):
        terms = compute_loss(model, spec.loss, inputs, target, spec.temporal)
    optimizer.zero_grad(set_to_none=True)
    return terms


def learning_rate_at(config: TrainConfigBase, step: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based) under ``config.lr_schedule``: a pure function of
    the step, so a resumed run continues the same schedule."""
    if config.lr_schedule == "cosine":
        return 0.5 * config.learning_rate * (1.0 + math.cos(math.pi * step / config.iterations))
    return config.learning_rate


@torch.no_grad()
def render_preview(model: nn.Module, preview_input: torch.Tensor, device: torch.device, numerics: Numerics) -> Image.Image:
    was_training = model.training
    model.eval()
    try:
        with autocast(device, numerics):
            out = model(preview_input)
    finally:
        model.train(was_training)
    return tensor_to_image(out.float())


@dataclass
class _Progress:
    """What the loop carries from step to step (and across a resume): the step, the time trained, the first
    loss (the divergence check's reference), the loss log's rows and the last checkpoint."""

    step: int = 0
    elapsed: float = 0.0
    first_loss: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    last_checkpoint: Path | None = None
    saved_step: int = 0
    last_losses: dict[str, float] = field(default_factory=dict)
    last_preview: Image.Image | None = None
    segment_start: float = field(default_factory=time.perf_counter)

    def elapsed_now(self, now: float) -> float:
        return self.elapsed + (now - self.segment_start)


class _Throughput:
    """Images per second over the last 20 steps."""

    def __init__(self) -> None:
        self.seen = 0
        self.recent: deque[tuple[float, int]] = deque([(time.perf_counter(), 0)], maxlen=21)

    def add(self, images: int, now: float) -> float:
        self.seen += images
        self.recent.append((now, self.seen))
        return (self.recent[-1][1] - self.recent[0][1]) / max(self.recent[-1][0] - self.recent[0][0], 1e-9)


def _resume(run: _Progress, resume_from: ckpt.Checkpoint | None, model: nn.Module, optimizer: torch.optim.Optimizer,
            paths: RunPaths, ctx: DistContext, iterations: int) -> None:
    if resume_from is not None:
        ckpt.load_checkpoint(resume_from, model, optimizer)
        run.step = run.saved_step = resume_from.step
        run.elapsed = float(resume_from.state.get("elapsed_s", 0.0))
        run.first_loss = resume_from.state.get("first_loss")
        run.last_checkpoint = resume_from.folder
        logger.info("resuming %s at step %d of %d", paths.root, run.step, iterations)
    if ctx.is_main:
        paths.previews.mkdir(parents=True, exist_ok=True)
        run.history = read_history(paths.loss_log, up_to_step=run.step)
        _rewrite_history(paths.loss_log, run.history)  # drop what came after the checkpoint we resume from


def _training_model(model: nn.Module, ctx: DistContext, numerics: Numerics) -> nn.Module:
    """The module the steps run: the model in its memory format, wrapped for several processes when there are."""
    if numerics.channels_last:
        model.to(memory_format=torch.channels_last)
    train_model: nn.Module = model
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        device = ctx.device
        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    model.train()
    return train_model


def _divergence_message(value: float, run: _Progress, config: TrainConfigBase) -> str:
    what = "became non-finite" if not math.isfinite(value) else (
        f"exploded to {value:.4g}, over {config.explode_factor:g}x the first step's {run.first_loss:.4g}")
    kept = (f"the last good checkpoint (step {run.saved_step}) is kept in {run.last_checkpoint}"
            if run.last_checkpoint else "no checkpoint had been written yet")
    return (f"training stopped at step {run.step + 1}: the loss {what}. {kept}. Lower the learning rate "
            f"(--lr, now {config.learning_rate:g}) and train again, or --resume to retry from the checkpoint.")


def _optimiser_step(model: nn.Module, optimizer: torch.optim.Optimizer, terms: LossTerms, config: TrainConfigBase,
                    step: int) -> None:
    terms.total.backward()
    for group in optimizer.param_groups:
        group["lr"] = learning_rate_at(config, step)
    optimizer.step()
    if config.renorm_radius is not None:
        renormalize_filters(model, config.renorm_radius)


def run_loop(spec: LoopSpec, config: TrainConfigBase, paths: RunPaths, ctx: DistContext, *,
             numerics: Numerics, resume_from: ckpt.Checkpoint | None = None,
             progress: ProgressCallback | None = None, should_stop: StopRequest = None) -> LoopResult:
    """Train from the start or ``resume_from`` to ``config.iterations``; rank 0 writes the run folder."""
    model = spec.model
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    run = _Progress()
    _resume(run, resume_from, model, optimizer, paths, ctx, config.iterations)
    train_model = _training_model(model, ctx, numerics)
    if ctx.is_main and spec.preview_input is not None and run.step == 0 and config.preview_every:
        _first_preview(run, spec, config, paths, ctx, numerics, progress)

    def save(at_step: int) -> Path | None:
        if not ctx.is_main:
            return None
        state = {"elapsed_s": run.elapsed, "first_loss": run.first_loss, "world_size": ctx.world_size}
        return ckpt.save_checkpoint(paths.root, at_step, model, optimizer, state)

    cancelled = False
    run.segment_start = time.perf_counter()
    throughput = _Throughput()
    log = paths.loss_log.open("a", encoding="utf-8") if ctx.is_main else None
    try:
        for batch in spec.make_batches(run.step):
            batch = batch.to(ctx.device, non_blocking=True)
            terms = train_step(train_model, spec, optimizer, batch, ctx.device, numerics)
            value = float(terms.total.detach())
            exploded = run.first_loss is not None and value > config.explode_factor * run.first_loss
            stop, diverged = agree(ctx, stop_requested(should_stop), not math.isfinite(value) or exploded)
            if diverged:
                message = _divergence_message(value, run, config)
                if ctx.is_main:
                    emit(progress, TrainEvent(run.step, config.iterations, terms.as_floats(), message=message))
                raise TrainingDivergedError(message)
            if stop:
                cancelled = True
                break
            _optimiser_step(model, optimizer, terms, config, run.step)
            run.step += 1
            run.first_loss = value if run.first_loss is None else run.first_loss
            now = time.perf_counter()
            images_per_s = throughput.add(batch.shape[0] * ctx.world_size, now)
            run.last_losses = terms.as_floats()
            if not ctx.is_main:
                if run.step % config.checkpoint_every == 0:
                    run.saved_step = run.step
                continue
            preview = _record_step(run, spec, config, paths, log, ctx, numerics, images_per_s, now, save)
            emit(progress, TrainEvent(run.step, config.iterations, run.last_losses, images_per_s,
                                      run.elapsed_now(now), preview))
    finally:
        if log is not None:
            log.close()
    run.elapsed += time.perf_counter() - run.segment_start
    if run.step != run.saved_step or run.last_checkpoint is None:
        run.last_checkpoint, run.saved_step = save(run.step), run.step
    model.eval()
    return LoopResult(run.step, cancelled, run.elapsed, run.last_losses, run.history, run.last_preview,
                      run.last_checkpoint)


def _first_preview(run: _Progress, spec: LoopSpec, config: TrainConfigBase, paths: RunPaths, ctx: DistContext,
                   numerics: Numerics, progress: ProgressCallback | None) -> None:
    """The untrained network's preview (step 0), so the strip starts where training did."""
    run.last_preview = render_preview(spec.model, spec.preview_input, ctx.device, numerics)
    run.last_preview.save(paths.preview(0), quality=90)
    emit(progress, TrainEvent(0, config.iterations, preview=run.last_preview))


def _record_step(run: _Progress, spec: LoopSpec, config: TrainConfigBase, paths: RunPaths, log: Any,
                 ctx: DistContext, numerics: Numerics, images_per_s: float, now: float,
                 save: Callable[[int], Path | None]) -> Image.Image | None:
    """Rank 0 after a step: the loss log's row, the preview and the checkpoint when they are due; the preview."""
    step, elapsed_now = run.step, run.elapsed_now(now)
    if step % config.log_every == 0 or step == config.iterations:
        row = {"step": step, **run.last_losses, "lr": learning_rate_at(config, step - 1),
               "images_per_s": round(images_per_s, 3), "elapsed_s": round(elapsed_now, 3)}
        run.history.append(row)
        log.write(json.dumps(row) + "\n")
        log.flush()
    preview = None
    if spec.preview_input is not None and config.preview_every and step % config.preview_every == 0:
        preview = run.last_preview = render_preview(spec.model, spec.preview_input, ctx.device, numerics)
        preview.save(paths.preview(step), quality=90)
    if step % config.checkpoint_every == 0 and step != config.iterations:
        run.elapsed, run.segment_start = elapsed_now, now
        run.last_checkpoint, run.saved_step = save(step), step
    return preview
