"""What the pipelines share: devices, models by id or folder checked for their task, output-size limits."""
from __future__ import annotations

from typing import Sequence

import torch
from PIL import Image

from perceptual_studio import settings
from perceptual_studio.imaging import ImageInputError
from perceptual_studio.registry import LoadedModel, RegistryError, load_model
from perceptual_studio.registry.api import ModelRef

TASK_LABELS = {"style-transfer": "style transfer", "super-resolution": "super-resolution"}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None): the project's device (``PERCEPTUAL_DEVICE``, else CUDA when there is one, else CPU)."""
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return settings.device()
    return torch.device(device)


def load_task_model(model: ModelRef | None, task: str, device: torch.device, *, token: str | None = None) -> LoadedModel:
    """The registry's cached model for ``model`` (an id or a folder) on ``device``, checked to serve ``task``.

    Raises ``ValueError`` with one sentence for no model, a model the registry cannot use, or the wrong task."""
    if model is None or not str(model).strip():
        raise ValueError(f"Choose a {TASK_LABELS[task]} model first (none is selected).")
    try:
        loaded = load_model(model if not isinstance(model, str) else model.strip(), device, token=token)
    except RegistryError as exc:
        raise unusable(model, exc) from None
    check_task(loaded.config.task, task, str(model))
    return loaded


def unusable(model: ModelRef, exc: Exception) -> ValueError:
    """"Model X cannot be used: why", naming a long id (or path) by its start alone."""
    shown = str(model) if len(str(model)) <= 80 else str(model)[:60] + "…"
    return ValueError(f"Model {shown} cannot be used: {exc}")


def check_task(actual: str | None, task: str, model: str) -> None:
    if actual != task:
        raise ValueError(f"{model} is a {TASK_LABELS.get(actual, actual)} model, not a {TASK_LABELS[task]} one.")


# Architecture options that carry no weights (the SR network's lattice filter): models that differ only in these
# still blend, and the blend takes the larger value (``weight_free_options``).
WEIGHT_FREE_ARGS: frozenset[str] = frozenset({"degrid"})


def _weighted_args(model: LoadedModel) -> dict:
    return {k: v for k, v in model.config.architecture_args.items() if k not in WEIGHT_FREE_ARGS}


def weight_free_options(models: Sequence[LoadedModel]) -> dict[str, int]:
    """The weight-free options a blend of ``models`` runs with: the largest each of them asks for (a grid one part
    removes stays removed in the blend)."""
    return {name: max(int(m.config.architecture_args.get(name, 0) or 0) for m in models) for name in WEIGHT_FREE_ARGS}


def check_same_architecture(models: Sequence[LoadedModel]) -> None:
    """Raise ``ValueError`` naming the first two models whose architecture or arguments differ.

    Network interpolation (the SR perception-distortion blend, style blends) mixes weights name by name, so the
    models must be one network with different weights; saying which argument differs tells the user what to pick.
    """
    first = models[0]
    for other in models[1:]:
        a, b = first.config, other.config
        if a.architecture != b.architecture:
            differs = f"`{first.label}` is a {a.architecture} network, `{other.label}` a {b.architecture} one"
        elif _weighted_args(first) != _weighted_args(other):
            args_a, args_b = _weighted_args(first), _weighted_args(other)
            names = sorted(name for name in set(args_a) | set(args_b) if args_a.get(name) != args_b.get(name))
            args = ", ".join(f"{name} {args_a.get(name, '(default)')} vs {args_b.get(name, '(default)')}"
                             for name in names)
            differs = f"`{first.label}` and `{other.label}` differ in {args}"
        else:
            continue
        raise ValueError(f"Network interpolation needs models with identical architectures: {differs}.")


def check_output_size(width: int, height: int, what: str = "The result") -> None:
    """Refuse a result above ``PERCEPTUAL_MAX_OUTPUT_PIXELS`` before any of it is computed."""
    limit = settings.max_output_pixels()
    if width * height > limit:
        raise ImageInputError(
            f"{what} would be {width} x {height} = {width * height / 1e6:.1f} megapixels, above this app's limit of "
            f"{limit / 1e6:.1f} megapixels. Choose a smaller size or a smaller image."
        )


def resize_longest(image: Image.Image, side: int) -> Image.Image:
    """Resize (up or down) so the longer side is ``side``, keeping the aspect ratio."""
    side = int(side)
    if side < 1:
        raise ValueError(f"size must be positive, got {side}")
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size == image.size:
        return image
    method = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
    return image.resize(size, method, reducing_gap=3.0 if scale < 1 else None)
