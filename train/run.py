"""What both trainers do around the loop: pick the device, set up or resume the run folder, resolve the loss
network, warm-start from a registry model, and describe the finished run for the model card."""
from __future__ import annotations

import copy
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from perceptual_studio import settings
from perceptual_studio.networks.devices import device_label  # noqa: F401 - re-exported for the trainers
from perceptual_studio.networks.vgg import (
    LossNetworkWeights,
    default_vgg16_weights,
    resolve_vgg16_weights,
)
from perceptual_studio.registry import LoadedModel, RegistryError, load_model, load_model_folder

from . import checkpoint as ckpt
from .config import ConfigError, TrainConfigBase
from .distributed import DistContext, barrier
from .export import model_folder_for
from .loop import RunPaths

logger = logging.getLogger(__name__)


def requested_device(config: TrainConfigBase) -> torch.device:
    device = torch.device(config.device) if config.device else settings.device()
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} was asked for, but no CUDA device is available")
    return device


@dataclass(frozen=True)
class RunPlan:
    paths: RunPaths
    out: Path
    resume_from: ckpt.Checkpoint | None
    replace_existing: bool  # an old run folder is in the way and --overwrite was given

    def start(self, config: TrainConfigBase, ctx: DistContext) -> None:
        """Create the run folder (rank 0), once every input has been checked: a bad input leaves nothing behind."""
        barrier(ctx)  # every rank has checked the folders before rank 0 changes them
        if ctx.is_main:
            if self.replace_existing:
                shutil.rmtree(self.paths.root)
            self.paths.root.mkdir(parents=True, exist_ok=True)
            config.save(self.paths.config)
        barrier(ctx)


def plan_run(config: TrainConfigBase, *, resume: bool, overwrite: bool) -> RunPlan:
    """Check the output and run folders before any work, so a mistake costs seconds, not a training run.

    Without ``resume``, an existing run folder or model folder is an error unless ``overwrite``. With
    ``resume``, the saved config must match (bookkeeping fields aside) and training continues from the latest
    checkpoint; with no checkpoint yet, the run starts from the beginning. Nothing is written here.
    """
    out = model_folder_for(config.out)
    root = Path(config.run_dir).expanduser() if config.run_dir else settings.runs_dir() / out.name
    paths = RunPaths(root)
    resume_from = None
    if resume and paths.config.is_file():
        saved = type(config).load(paths.config)
        # iterations may grow: a finished run continues to the new count (the step-indexed data order makes that
        # the run a longer count would have been).
        changed = [name for name in saved.differences(config)
                   if not (name == "iterations" and config.iterations > saved.iterations)]
        if changed:
            details = "; ".join(f"{n}: run has {getattr(saved, n)!r}, now {getattr(config, n)!r}" for n in changed)
            raise ConfigError(f"cannot resume {root}: options differ from the interrupted run ({details})")
        resume_from = ckpt.latest_checkpoint(root)
    elif resume:
        logger.info("nothing to resume in %s: starting a new run", root)
    has_run = paths.config.is_file() or (root / ckpt.CHECKPOINTS_DIR).is_dir()
    if not resume and has_run and not overwrite:
        raise ConfigError(f"a training run already exists in {root}: pass --resume to continue it or --overwrite "
                          f"to start again")
    if not (resume or overwrite) and out.exists():
        raise ConfigError(f"the model folder {out} already exists: choose another --out or pass --overwrite")
    return RunPlan(paths, out, resume_from, replace_existing=not resume and has_run)


def loss_network_weights(vgg_weights: str | None) -> LossNetworkWeights:
    """The configured VGG-16 weights (a file), else the process-wide default; random weights are announced."""
    weights = resolve_vgg16_weights(vgg_weights) if vgg_weights else default_vgg16_weights()
    if not weights.is_pretrained:
        logger.warning("%s", "!" * 12 + " TRAINING WITH A RANDOM-WEIGHT LOSS NETWORK " + "!" * 12)
        logger.warning("%s", weights.warning)
    return weights


def load_source_model(model_id: str, task: str, option: str = "--init") -> LoadedModel:
    """Registry model ``model_id`` (or a model folder path) on the CPU, checked to be a ``task`` model; errors
    name the command-line ``option`` that gave it."""
    try:
        folder = Path(model_id).expanduser()
        # A model folder anywhere on disk also works (a registry id names one in the models folder or the Hub).
        source = load_model_folder(folder, "cpu") if folder.is_dir() else load_model(model_id, device="cpu")
    except RegistryError as exc:
        raise ConfigError(f"{option} {model_id}: {exc}") from None
    if source.config.task != task:
        raise ConfigError(f"{option} {model_id} is a {source.config.task} model; this trainer needs a {task} model")
    return source


def warm_start(model_id: str, task: str) -> tuple[nn.Module, str, dict[str, Any]]:
    """A private copy of registry model ``model_id`` (or a model folder path) to fine-tune, with its architecture
    name and arguments."""
    source = load_source_model(model_id, task)
    model = copy.deepcopy(source.network)  # the registry shares loaded models: never train its copy
    return model.float().train(), source.config.architecture, dict(source.config.architecture_args)


def summarise_losses(history: list[dict[str, Any]], last: dict[str, float], window: int = 10) -> dict[str, float]:
    """Mean of each loss term over the last ``window`` logged steps (one step is noisy)."""
    rows = history[-window:] or [last]
    out = {}
    for term in ("total", "content", "style", "tv", "pixel"):
        values = [r[term] for r in rows if isinstance(r.get(term), (int, float))]
        if values and any(values):
            out[f"final_{term}_loss"] = float(sum(values) / len(values))
    return out


def loss_table(history: list[dict[str, Any]], points: int = 6) -> str:
    """A Markdown table of the logged losses at a few evenly spaced steps."""
    if not history:
        return ""
    picks = sorted({round(i * (len(history) - 1) / max(1, points - 1)) for i in range(points)})
    terms = [t for t in ("total", "content", "style", "tv", "pixel") if any(r.get(t) for r in history)]
    lines = ["| step | " + " | ".join(terms) + " |", "|---:|" + "---:|" * len(terms)]
    for i in picks:
        row = history[i]
        lines.append(f"| {row['step']} | " + " | ".join(f"{row.get(t, 0.0):.4g}" for t in terms) + " |")
    return "\n".join(lines)


# Config fields that hold local paths: the model card keeps only their last component.
_PATH_FIELDS = ("style", "content", "data", "out", "run_dir", "preview_image", "vgg_weights", "eval_data")


def public_config(config: TrainConfigBase) -> dict[str, Any]:
    """The config as recorded in a model folder: local paths reduced to their last component, so a published
    card does not reveal the trainer's folders (a Hub dataset id is kept whole)."""
    values = config.to_dict()
    for name in _PATH_FIELDS:
        value = values.get(name)
        # Fields that can only be local paths are reduced even before they exist (``out`` is written later).
        local_only = name not in ("content", "data", "eval_data")
        if isinstance(value, str) and value and (local_only or Path(value).expanduser().exists()):
            values[name] = Path(value).name
    return values


def write_details(paths: RunPaths, details: dict[str, Any]) -> None:
    paths.details.write_text(json.dumps(details, indent=2, default=str) + "\n", encoding="utf-8")
