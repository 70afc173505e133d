"""What every handler shares: the loss network's identity, size limits, registry models, one network pass."""
from __future__ import annotations

import logging
from typing import Sequence

from PIL import Image

import settings
from imaging import ImageInputError
from networks.devices import device_label  # noqa: F401 - the handlers label results with it
from networks.vgg import (
    LEGACY_IMAGENET_IDENTITY,
    default_vgg16_weights,
    describe_loss_network,
)
from registry import LoadedModel, RegistryError, load_model
from settings import (  # noqa: F401  re-exported
    DEFAULT_MAX_OUTPUT_PIXELS,
    DEFAULT_MAX_SIDE,
    DEFAULT_STYLE_TILE,
    MAX_OUTPUT_PIXELS_ENV,
    MAX_SIDE_ENV,
    STYLE_TILE_ENV,
)

logger = logging.getLogger(__name__)

TASK_LABELS = {"style-transfer": "style transfer", "super-resolution": "super-resolution"}


def max_output_pixels() -> int:
    """Largest result the app computes (``PERCEPTUAL_MAX_OUTPUT_PIXELS``, default 4096 x 4096)."""
    return settings.max_output_pixels()


def max_side() -> int:
    """Largest output side the size sliders offer (``PERCEPTUAL_MAX_SIDE``, default 2048)."""
    return settings.max_side()


def style_tile() -> int:
    """Style-network inputs longer than this (``PERCEPTUAL_STYLE_TILE``, px) run tile by tile."""
    return settings.style_tile()


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
    weights = default_vgg16_weights()
    return weights.identity, weights.warning


def loss_network_banner() -> str:
    """The banner under the title: which VGG-16 defines every loss here, with its attribution."""
    identity, warning = loss_network_status()
    if warning:
        return f"⚠️ **Loss network: `{identity}`.** {warning}"
    return f"Loss network: `{identity}`: {describe_loss_network(identity)}"


def identity_note(identity: str | None) -> str:
    """How a model's training loss network reads in a result (legacy ``vgg16:imagenet`` explained)."""
    if not identity or identity == "unknown":
        return "loss network not recorded"
    if identity.startswith("vgg16:random"):
        return f"⚠️ trained with the random-weight loss network `{identity}`"
    if identity == LEGACY_IMAGENET_IDENTITY:
        return f"trained with loss network `{identity}` (recorded before the Oxford and torchvision weights were told apart: torchvision's)"
    return f"trained with loss network `{identity}`"


# ------------------------------------------------------------------------------------------ devices and models


def load_registry_model(model_id: str | None, task: str) -> LoadedModel:
    """The registry's cached model for ``model_id`` on the app's device, checked to serve ``task``."""
    if not model_id or not str(model_id).strip():
        kind = TASK_LABELS[task]
        raise ValueError(f"Choose a {kind} model first (none is selected).")
    try:
        model = load_model(str(model_id).strip(), settings.device())
    except RegistryError as exc:
        raise ValueError(f"Model {model_id} cannot be used: {exc}") from None
    if model.config.task != task:
        raise ValueError(f"{model_id} is a {TASK_LABELS.get(model.config.task, model.config.task)} model, "
                         f"not a {TASK_LABELS[task]} one.")
    return model


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
        elif a.architecture_args != b.architecture_args:
            args_a, args_b = a.architecture_args, b.architecture_args
            names = sorted(name for name in set(args_a) | set(args_b) if args_a.get(name) != args_b.get(name))
            args = ", ".join(f"{name} {args_a.get(name, '(default)')} vs {args_b.get(name, '(default)')}"
                             for name in names)
            differs = f"`{first.label}` and `{other.label}` differ in {args}"
        else:
            continue
        raise ValueError(f"Network interpolation needs models with identical architectures: {differs}.")


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
