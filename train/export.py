"""The last step of a run: the trained network becomes a registry model folder (``registry.save_model``).

Kept in one small function so the trainers do not depend on the registry's internals. Beside the registry's
files (config.json, model.safetensors, README.md, style.jpg, preview.jpg) the folder gets the run's loss curve
(``loss_curve.png``) and preview strip (``evolution.jpg``), which the card shows.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from perceptual_studio import settings

logger = logging.getLogger(__name__)

from perceptual_studio.registry import load_model_folder
from perceptual_studio.registry.model_format import (
    EVOLUTION_FILE,
    LOSS_CURVE_FILE,
    TrainingRecord,
    save_model,
)


def model_folder_for(out: str | os.PathLike) -> Path:
    """``--out``: a bare name (no path separator) means ``<models dir>/<name>``; anything else is a path."""
    text = os.fspath(out)
    if not any(sep in text for sep in ("/", "\\")) and text not in (".", ".."):
        return settings.models_dir() / text
    return Path(text).expanduser()


def write_model_folder(
    model: nn.Module,
    folder: Path,
    *,
    architecture: str,
    architecture_args: dict[str, Any],
    training: TrainingRecord,
    style: str | None = None,
    style_image: Any = None,
    preview: Any = None,
    title: str | None = None,
    card_extra: str | None = None,
    loss_curve: Path | None = None,
    evolution: Path | None = None,
) -> Path:
    """Write (replacing) the model folder and check that it loads back through the registry."""

    cpu_model = model.to("cpu").float().to(memory_format=torch.contiguous_format).eval()
    folder = save_model(
        cpu_model, folder, architecture=architecture, architecture_args=architecture_args, training=training,
        style=style, style_image=style_image, preview=preview, title=title, card_extra=card_extra, overwrite=True,
    )
    for source, name in ((loss_curve, LOSS_CURVE_FILE), (evolution, EVOLUTION_FILE)):
        if source is not None and Path(source).is_file():
            shutil.copyfile(source, folder / name)
    load_model_folder(folder, "cpu")  # fail here, not in the app, if anything about the folder is off
    logger.info("model written to %s", folder)
    return folder
