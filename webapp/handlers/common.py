"""What every handler shares: the loss network's identity, size limits, registry models, one network pass."""
from __future__ import annotations

import logging

from perceptual_studio import settings
from perceptual_studio.networks.devices import device_label  # noqa: F401 - the handlers label results with it
from perceptual_studio.networks.vgg import (
    LEGACY_IMAGENET_IDENTITY,
    default_vgg16_weights,
    describe_loss_network,
)
from perceptual_studio.pipelines.common import (  # noqa: F401 - re-exported for the handlers
    TASK_LABELS,
    check_output_size,
    check_same_architecture,
    load_task_model,
    resize_longest,
)
from perceptual_studio.registry import LoadedModel

logger = logging.getLogger(__name__)


def max_output_pixels() -> int:
    """Largest result the app computes (``PERCEPTUAL_MAX_OUTPUT_PIXELS``, default 4096 x 4096)."""
    return settings.max_output_pixels()


def max_side() -> int:
    """Largest output side the size sliders offer (``PERCEPTUAL_MAX_SIDE``, default 2048)."""
    return settings.max_side()


def style_tile() -> int:
    """Style-network inputs longer than this (``PERCEPTUAL_STYLE_TILE``, px) run tile by tile."""
    return settings.style_tile()


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
    return load_task_model(str(model_id) if model_id is not None else None, task, settings.device())
