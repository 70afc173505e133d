"""Writing a model folder: config, weights, card and images, staged beside the destination and moved into place."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from perceptual_studio.imaging.io import load_image, resize_to_max_side, tensor_to_image
from perceptual_studio.networks.architectures import get_architecture, list_architectures

from .card import build_card
from .checks import _compare, _expected_shapes
from .errors import ModelFormatError
from .schema import (
    CARD_FILE,
    CONFIG_FILE,
    PREVIEW_FILE,
    STYLE_IMAGE_FILE,
    WEIGHTS_FILE,
    ModelConfig,
    TrainingRecord,
)


def _write_jpeg(source: Any, path: Path, max_side: int = 1024) -> None:
    image = tensor_to_image(source) if isinstance(source, torch.Tensor) else load_image(source)
    resize_to_max_side(image, max_side).save(path, format="JPEG", quality=90)


def save_model(
    model: nn.Module,
    folder: str | os.PathLike,
    *,
    architecture: str | None = None,
    task: str | None = None,
    architecture_args: dict[str, Any] | None = None,
    training: TrainingRecord | dict[str, Any] | None = None,
    style: str | None = None,
    style_image: Any = None,
    preview: Any = None,
    title: str | None = None,
    license: str = "mit",
    card_extra: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as a model folder (config.json, model.safetensors, README.md, optional images).

    ``architecture`` defaults to the registered name whose constructor is ``type(model)``; ``task`` to the
    architecture's; ``architecture_args`` to ``model.config``. The args are checked to rebuild exactly the
    model's tensor shapes. ``style_image`` / ``preview`` take a path, PIL image or (1, 3, H, W) tensor.
    ``card_extra`` is Markdown appended to the card. The folder is written beside its destination and
    moved into place, so a crash never leaves a half-written model.
    """
    from safetensors.torch import save_file


    folder = Path(folder)
    config = _model_config(model, folder.name, architecture, task, architecture_args, training, style)
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    _compare(_expected_shapes(config, folder.name), {k: tuple(v.shape) for k, v in state.items()}, folder.name)
    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} already exists (pass overwrite=True to replace it)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a model folder is meant to be shared
    try:
        (staging / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2, allow_nan=False) + "\n")
        save_file(state, str(staging / WEIGHTS_FILE), metadata={"format": "pt", "architecture": config.architecture})
        for image, name in ((style_image, STYLE_IMAGE_FILE), (preview, PREVIEW_FILE)):
            if image is not None:
                _write_jpeg(image, staging / name)
        images = [f for f in (STYLE_IMAGE_FILE, PREVIEW_FILE) if (staging / f).is_file()]
        card = build_card(config, title=title or folder.name, license=license, images=images, extra=card_extra)
        card.save(staging / CARD_FILE)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _model_config(model: nn.Module, name: str, architecture: str | None, task: str | None,
                  architecture_args: dict[str, Any] | None, training: Any, style: str | None) -> ModelConfig:
    """The ``config.json`` a model folder gets, with the defaults :func:`save_model` documents, checked."""
    if architecture is None:
        matches = [a for a in list_architectures() if a.constructor is type(model)]
        if len(matches) != 1:
            raise ModelFormatError(
                f"cannot tell which registered architecture {type(model).__name__} is: pass architecture="
            )
        architecture = matches[0].name
    if architecture_args is None:
        architecture_args = getattr(model, "config", None)
        if not isinstance(architecture_args, dict):
            raise ModelFormatError(f"{type(model).__name__} has no .config dict: pass architecture_args=")
    arch = get_architecture(architecture)
    task = task or arch.task
    if task != arch.task:
        raise ValueError(f"task {task!r} does not match architecture {arch.name!r}, which serves {arch.task!r}")
    scale = getattr(model, "scale", None) or architecture_args.get("scale")
    record = training if isinstance(training, TrainingRecord) else TrainingRecord.from_dict(training)
    config = ModelConfig.from_dict(
        ModelConfig(architecture, task, dict(architecture_args), scale if task == "super-resolution" else None,
                    style if task == "style-transfer" else None, record).to_dict()
    )
    json.dumps(config.to_dict(), allow_nan=False)  # fails early on NaN/inf figures
    return config
