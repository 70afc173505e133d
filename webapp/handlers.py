"""Pure handler functions behind the app's events; the UI layer only wires them to components.

Each returns plain values (PIL images, Markdown) and raises :class:`imaging.ImageInputError` /
``ValueError`` with a user-facing message; the UI turns those into ``gr.Error``.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch
from PIL import Image

import settings
from imaging import image_to_tensor, load_image, resize_to_max_side, tensor_to_image

logger = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
_loss_cache: dict[tuple, object] = {}
_loss_lock = threading.Lock()


def loss_network_status() -> tuple[str, str | None]:
    """(identity, warning or None) of the loss network this process uses; resolves it on first call."""
    from networks.vgg import default_vgg16_weights

    weights = default_vgg16_weights()
    return weights.identity, weights.warning


def loss_network_banner() -> str:
    identity, warning = loss_network_status()
    if warning:
        return f"⚠️ **Loss network: `{identity}`.** {warning}"
    return f"Loss network: `{identity}` (pretrained VGG-16)."


def _style_loss(device: torch.device):
    """The style-transfer objective on ``device``, built once per process and device."""
    from losses import PerceptualLoss, PerceptualLossConfig
    from networks.vgg import default_vgg16_weights

    with _loss_lock:
        key = ("style", str(device))
        if key not in _loss_cache:
            weights = default_vgg16_weights()
            _loss_cache[key] = PerceptualLoss(PerceptualLossConfig.for_weights(weights), weights=weights).to(device)
        return _loss_cache[key]


@dataclass
class BaselineOutput:
    image: Image.Image
    seconds: float
    iterations: int
    objective_start: float
    objective_end: float
    loss_network: str
    device: str

    def markdown(self) -> str:
        per_iter = self.seconds / max(self.iterations, 1)
        return (
            f"**{self.iterations} L-BFGS iterations in {self.seconds:.1f} s** ({per_iter * 1000:.0f} ms per iteration) "
            f"on `{self.device}`.  \nObjective: {self.objective_start:.4g} → {self.objective_end:.4g}.  \n"
            f"Loss network: `{self.loss_network}`."
        )


def run_baseline(
    content: object,
    style: object,
    iterations: int = 100,
    max_side: int = 256,
    progress: ProgressFn | None = None,
) -> BaselineOutput:
    """Optimisation-based style transfer (Gatys et al.) of ``content`` towards ``style``."""
    from baseline import run_baseline as optimise

    content_img = resize_to_max_side(load_image(content), int(max_side))
    style_img = resize_to_max_side(load_image(style), int(max_side))
    device = settings.device()
    loss = _style_loss(device)

    def report(i: int, n: int, value: float) -> None:
        if progress is not None:
            progress(i / n, f"L-BFGS iteration {i}/{n}, objective {value:.4g}")

    started = time.perf_counter()
    result = optimise(
        image_to_tensor(content_img), image_to_tensor(style_img), loss,
        iterations=int(iterations), device=device, progress=report,
    )
    logger.info("baseline: %d iterations in %.1fs", result.iterations, time.perf_counter() - started)
    return BaselineOutput(
        image=tensor_to_image(result.image),
        seconds=result.seconds,
        iterations=result.iterations,
        objective_start=result.objective[0],
        objective_end=result.objective[-1],
        loss_network=result.loss_network,
        device=result.device,
    )
