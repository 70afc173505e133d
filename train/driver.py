"""One training driver for every task (style transfer, super-resolution), used by the CLIs, the app and the
benchmarks alike.

A task says only what differs (:class:`TrainingTask`): how to build the network, its loss and its data from
the config (:class:`TaskSetup`), and what its training record and card add once the loop has run
(:class:`TaskReport`). The driver does the rest, the same way for both: devices and processes, the run
folder and resumption, numerics, the step loop (:func:`train.loop.run_loop`), previews, the loss plot, the
typed training record and the model folder.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from perceptual_studio.imaging.figures import plot_losses, save_evolution_strip
from perceptual_studio.losses import PerceptualLoss, TemporalLoss
from perceptual_studio.networks.architectures import list_architectures
from perceptual_studio.registry import TrainingRecord

from . import data as data_mod
from .config import TrainConfigBase
from .distributed import DistContext, barrier, init_distributed, shutdown
from .export import write_model_folder
from .loop import (
    LoopResult,
    LoopSpec,
    Numerics,
    ProgressCallback,
    StopRequest,
    TrainEvent,
    configure_determinism,
    emit,
    render_preview,
    resolve_numerics,
    run_loop,
)
from .run import (
    device_label,
    loss_table,
    plan_run,
    public_config,
    requested_device,
    summarise_losses,
    warm_start,
    write_details,
)

logger = logging.getLogger(__name__)


@dataclass
class TaskSetup:
    """What a task builds before the first step."""

    model: nn.Module  # on the device
    architecture: str
    architecture_args: dict[str, Any]
    loss: PerceptualLoss  # on the device, style targets set
    dataset: Dataset
    dataset_label: str
    prepare: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # device batch -> (input, target)
    preview_input: torch.Tensor  # (1, 3, h, w) on the CPU
    details: dict[str, Any] = field(default_factory=dict)  # task facts for the run's run.json
    summary: str = ""  # one log line saying what is trained on what
    temporal: TemporalLoss | None = None  # a stable network's temporal loss, added to every step's objective


@dataclass
class TaskReport:
    """What a task adds after the loop: training-record fields, figures, card paragraphs, model-folder options."""

    record: dict[str, Any] = field(default_factory=dict)  # TrainingRecord fields and extra keys
    figures: dict[str, float] = field(default_factory=dict)  # merged into the record's evaluation
    card_lines: list[str] = field(default_factory=list)
    folder_options: dict[str, Any] = field(default_factory=dict)  # style, style_image... for the model folder


class TrainingTask(Protocol):
    task: str  # "style-transfer" | "super-resolution"

    def setup(self, config: Any, device: torch.device) -> TaskSetup: ...

    def report(self, config: Any, setup: TaskSetup, model: nn.Module, device: torch.device) -> TaskReport: ...

    def plot_title(self, config: Any) -> str: ...


def start_model(config: TrainConfigBase, task: str, build: Callable[[], nn.Module]) -> tuple[nn.Module, str, dict]:
    """The network to train: a private copy of ``config.init`` (fine-tuning), else a fresh one from ``build``."""
    if config.init:
        model, architecture, architecture_args = warm_start(config.init, task)
        logger.info("fine-tuning from %s (%s %s); the architecture options are taken from it", config.init,
                    architecture, architecture_args)
        return model, architecture, architecture_args
    # Seeded here, not only at the start of the run: resolving the loss network the first time in a process draws
    # from the global generator, which made a process's first run start from other weights than its later ones.
    torch.manual_seed(config.seed)
    model = build()
    name = next(a.name for a in list_architectures() if a.constructor is type(model))
    return model, name, dict(model.config)


def train(config: TrainConfigBase, task: TrainingTask, progress: ProgressCallback | None = None,
          should_stop: StopRequest = None, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Train ``task`` as ``config`` says and write the model folder; returns it.

    ``progress`` receives a :class:`~train.loop.TrainEvent` after every step (with a preview image at preview
    steps, ``done`` / ``cancelled`` on the last one). ``should_stop`` (a ``threading.Event`` or a callable)
    stops the run cleanly: a checkpoint and a usable model are still written. A diverging loss raises
    :class:`~train.loop.TrainingDivergedError` and keeps the last good checkpoint.
    """
    ctx = init_distributed(requested_device(config))
    try:
        return _train(config, task, ctx, progress, should_stop, resume=resume, overwrite=overwrite)
    finally:
        shutdown(ctx)


def _train(config: TrainConfigBase, task: TrainingTask, ctx: DistContext, progress: ProgressCallback | None,
           should_stop: StopRequest, *, resume: bool, overwrite: bool) -> Path:
    device = ctx.device
    plan = plan_run(config, resume=resume, overwrite=overwrite)
    numerics = resolve_numerics(config, device)
    configure_determinism(config, device)
    torch.manual_seed(config.seed)
    setup = task.setup(config, device)  # reads every input first: bad ones fail before the heavy work
    if numerics.channels_last and setup.loss.loss_network is not None:
        setup.loss.loss_network.to(memory_format=torch.channels_last)
    workers = config.num_workers if config.num_workers is not None else (4 if device.type == "cuda" else 0)

    def make_batches(start_step: int):
        sampler = data_mod.StepBatchSampler(len(setup.dataset), config.batch_size, start_step, config.iterations,
                                            config.seed, ctx.rank, ctx.world_size)
        return data_mod.make_loader(setup.dataset, sampler, num_workers=workers, pin_memory=device.type == "cuda")

    spec = LoopSpec(model=setup.model, loss=setup.loss, make_batches=make_batches, prepare=setup.prepare,
                    preview_input=setup.preview_input.to(device), temporal=setup.temporal)
    plan.start(config, ctx)
    if ctx.is_main:
        write_details(plan.paths, {
            "task": task.task, "loss_network": setup.loss.identity, "loss": setup.loss.config.to_dict(),
            "architecture": setup.architecture, "architecture_args": setup.architecture_args,
            "dataset": setup.dataset_label, "images": len(setup.dataset), "world_size": ctx.world_size,
            "device": device_label(device), "numerics": numerics.label, "model_folder": str(plan.out),
            **setup.details,
        })
        logger.info("%s: %d iterations, batch %d x %d process(es), %s, %s, loss network %s", setup.summary,
                    config.iterations, config.batch_size, ctx.world_size, device_label(device), numerics.label,
                    setup.loss.identity)
    result = run_loop(spec, config, plan.paths, ctx, numerics=numerics, resume_from=plan.resume_from,
                      progress=progress, should_stop=should_stop)
    if not ctx.is_main:
        barrier(ctx)
        return plan.out

    plot_losses(result.history, plan.paths.loss_plot, title=task.plot_title(config))
    preview = render_preview(setup.model, spec.preview_input, device, numerics)
    evolution = save_evolution_strip(sorted(plan.paths.previews.glob("step_*.jpg")), plan.paths.evolution)
    report = task.report(config, setup, setup.model, device)
    completed = result.step >= config.iterations
    record = _record(config, setup, result, report, numerics, ctx, completed)
    folder = write_model_folder(
        setup.model, plan.out, architecture=setup.architecture, architecture_args=setup.architecture_args,
        training=record, preview=preview, title=plan.out.name, card_extra=_card(result, config, report),
        loss_curve=plan.paths.loss_plot, evolution=evolution, **report.folder_options,
    )
    emit(progress, TrainEvent(result.step, config.iterations, result.last_losses, 0.0, result.elapsed_s,
                              preview=preview, done=completed, cancelled=result.cancelled, model_folder=folder,
                              message=None if completed else f"stopped at step {result.step} of {config.iterations}; "
                                                             f"the model so far is in {folder}"))
    barrier(ctx)
    return folder


def _record(config: TrainConfigBase, setup: TaskSetup, result: LoopResult, report: TaskReport, numerics: Numerics,
            ctx: DistContext, completed: bool) -> TrainingRecord:
    """The typed training record: what every task records, then the task's own fields."""
    loss = setup.loss.config
    figures = {**summarise_losses(result.history, result.last_losses), **report.figures}
    fields = {
        "loss_network": setup.loss.identity, "content_layers": list(loss.content_layers),
        "dataset": setup.dataset_label, "batch_size": config.batch_size * ctx.world_size,
        "iterations": result.step, "learning_rate": config.learning_rate, "seconds": round(result.elapsed_s, 2),
        "device": device_label(ctx.device), "evaluation": figures,
        # Not fields of TrainingRecord: kept in its ``extra``, written at the top level of "training".
        "completed": completed, "target_iterations": config.iterations, "seed": config.seed,
        "numerics": numerics.label, "world_size": ctx.world_size, "training_images": len(setup.dataset),
        "train_config": public_config(config),
        **report.record,
    }
    if config.init:
        fields["init"] = config.init
    if config.renorm_radius is not None:
        fields["renorm_radius"] = config.renorm_radius
    return TrainingRecord.from_dict(fields)


def _card(result: LoopResult, config: TrainConfigBase, report: TaskReport) -> str:
    lines = ["## Training run", ""]
    if result.step < config.iterations:
        lines += [f"> Training was stopped early, at step {result.step} of {config.iterations}.", ""]
    lines += report.card_lines
    lines += ["Loss curve (log scale) and the output on a fixed validation image during training:", "",
              "![loss curve](loss_curve.png)", "", "![evolution](evolution.jpg)", ""]
    table = loss_table(result.history)
    if table:
        lines += [table, ""]
    return "\n".join(lines)
