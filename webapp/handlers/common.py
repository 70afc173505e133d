"""What every handler shares: the loss network's identity, size limits, registry models, one network pass."""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

import torch
from PIL import Image
from torch import nn

import settings
from imaging import ImageInputError

logger = logging.getLogger(__name__)

MAX_OUTPUT_PIXELS_ENV = "PERCEPTUAL_MAX_OUTPUT_PIXELS"
DEFAULT_MAX_OUTPUT_PIXELS = 4096 * 4096
MAX_SIDE_ENV = "PERCEPTUAL_MAX_SIDE"
DEFAULT_MAX_SIDE = 2048
TASK_LABELS = {"style-transfer": "style transfer", "super-resolution": "super-resolution"}


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def max_output_pixels() -> int:
    """Largest result the app computes (``PERCEPTUAL_MAX_OUTPUT_PIXELS``, default 4096 x 4096)."""
    return _env_int(MAX_OUTPUT_PIXELS_ENV, DEFAULT_MAX_OUTPUT_PIXELS)


def max_side() -> int:
    """Largest output side the size sliders offer (``PERCEPTUAL_MAX_SIDE``, default 2048)."""
    return _env_int(MAX_SIDE_ENV, DEFAULT_MAX_SIDE)


STYLE_TILE_ENV = "PERCEPTUAL_STYLE_TILE"
DEFAULT_STYLE_TILE = 1024


def style_tile() -> int:
    """Style-network inputs longer than this (``PERCEPTUAL_STYLE_TILE``, px) run tile by tile."""
    return _env_int(STYLE_TILE_ENV, DEFAULT_STYLE_TILE)


def check_output_size(width: int, height: int, what: str = "The result") -> None:
    limit = max_output_pixels()
    if width * height > limit:
        raise ImageInputError(
            f"{what} would be {width} x {height} = {width * height / 1e6:.1f} megapixels, above this app's limit of "
            f"{limit / 1e6:.1f} megapixels. Choose a smaller size or a smaller image."
        )


# ------------------------------------------------------------------------------------------ loss network


def loss_network_status() -> tuple[str, str | None]:
    """(identity, warning or None) of the loss network this process uses; resolves it on first call."""
    from networks.vgg import default_vgg16_weights

    weights = default_vgg16_weights()
    return weights.identity, weights.warning


def loss_network_banner() -> str:
    """The banner under the title: which VGG-16 defines every loss here, with its attribution."""
    from networks.vgg import describe_loss_network

    identity, warning = loss_network_status()
    if warning:
        return f"⚠️ **Loss network: `{identity}`.** {warning}"
    return f"Loss network: `{identity}`: {describe_loss_network(identity)}"


def identity_note(identity: str | None) -> str:
    """How a model's training loss network reads in a result (legacy ``vgg16:imagenet`` explained)."""
    from networks.vgg import LEGACY_IMAGENET_IDENTITY

    if not identity or identity == "unknown":
        return "loss network not recorded"
    if identity.startswith("vgg16:random"):
        return f"⚠️ trained with the random-weight loss network `{identity}`"
    if identity == LEGACY_IMAGENET_IDENTITY:
        return f"trained with loss network `{identity}` (recorded before the Oxford and torchvision weights were told apart: torchvision's)"
    return f"trained with loss network `{identity}`"


# ------------------------------------------------------------------------------------------ devices and models


def device_label(device: torch.device | None = None) -> str:
    device = device if device is not None else settings.device()
    if device.type == "cuda" and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return str(device)


def load_registry_model(model_id: str | None, task: str) -> nn.Module:
    """The registry's cached network for ``model_id`` on the app's device, checked to serve ``task``."""
    from registry import RegistryError, load_model

    if not model_id or not str(model_id).strip():
        kind = TASK_LABELS[task]
        raise ValueError(f"Choose a {kind} model first (none is selected).")
    try:
        model = load_model(str(model_id).strip(), settings.device())
    except RegistryError as exc:
        raise ValueError(f"Model {model_id} cannot be used: {exc}") from None
    config = getattr(model, "model_config", None)
    if config is not None and config.task != task:
        raise ValueError(f"{model_id} is a {TASK_LABELS.get(config.task, config.task)} model, not a {TASK_LABELS[task]} one.")
    return model


def model_training(model: nn.Module):
    """The model's ``TrainingRecord`` (registry ``model_config.training``), or None."""
    config = getattr(model, "model_config", None)
    return getattr(config, "training", None)


def model_loss_identity(model: nn.Module) -> str | None:
    training = model_training(model)
    return getattr(training, "loss_network", None)


@dataclass
class NetworkRun:
    output: torch.Tensor  # (1, 3, H, W) float32 in [0, 1]
    seconds: float
    plan: str  # InferencePlan.describe()


def run_model(model: nn.Module, x: torch.Tensor, *, tile: int | None = None, overlap: int = 32,
              scale: int = 1, whole_image_tile: int | None = None) -> NetworkRun:
    """One forward pass through :func:`networks.inference.run_network`, timed.

    ``tile``: overlapping tiles blended linearly (``networks.tiling.run_tiled``; networks without image-wide
    statistics, i.e. super-resolution). ``whole_image_tile``: tiles of that many pixels a side with
    whole-image instance-norm statistics (``run_network_tiled``; the style networks), used only when the
    input is larger.
    """
    from networks.inference import choose_plan, run_network
    from networks.tiling import run_network_tiled, run_tiled

    plan = choose_plan(model)
    started = time.perf_counter()
    how = plan.describe()
    if whole_image_tile is not None and max(x.shape[-2:]) > whole_image_tile:
        out = run_network_tiled(model, x, plan, tile=whole_image_tile)
        how += f", in {whole_image_tile}-px tiles with whole-image statistics"
    elif tile is None:
        out = run_network(model, x, plan)
    else:
        out = run_tiled(lambda piece: run_network(model, piece, plan), x, tile=tile, overlap=overlap, scale=scale)
        if max(x.shape[-2:]) > tile:
            how += f", in {tile}-px input tiles overlapping by {overlap} px"
    if plan.device.type == "cuda":
        torch.cuda.synchronize(plan.device)
    return NetworkRun(out.clamp(0.0, 1.0), time.perf_counter() - started, how)


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


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def named_lock(name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())
