"""The Compare journey: the fast network against the optimisation baseline it replaces (Johnson et al. 2016,
Sec. 4.1, Table 1; baseline: Gatys, Ecker & Bethge 2016).

Both results are scored with one objective: the app's style-transfer loss (``PerceptualLossConfig.for_weights``
on this process's loss network) with the chosen style image as target. The baseline minimises exactly that
objective; the network was trained on it (or a close variant: its own record says which loss network and
weights), and evaluating it here shows how close one forward pass gets to hundreds of optimiser steps.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from PIL import Image

from perceptual_studio import settings
from perceptual_studio.baseline import run_baseline as optimise
from perceptual_studio.imaging import image_to_tensor, load_image, resize_to_max_side, tensor_to_image
from perceptual_studio.losses import PerceptualLoss, PerceptualLossConfig
from perceptual_studio.networks.inference import infer
from perceptual_studio.networks.vgg import default_vgg16_weights
from perceptual_studio.registry import RegistryError, describe
from perceptual_studio.registry.schema import STYLE_IMAGE_FILE

from .common import device_label, identity_note, load_registry_model

logger = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
_loss_cache: dict[str, object] = {}
# The cached objective holds the current style target: one comparison uses it at a time.
_objective_lock = threading.Lock()


def style_loss(device: torch.device):
    """The style-transfer objective on ``device`` with the loss network the settings choose, built once each."""

    weights = default_vgg16_weights()
    key = f"{device}|{weights.identity}"  # one per device and loss network: a few at most
    if key not in _loss_cache:
        _loss_cache[key] = PerceptualLoss(PerceptualLossConfig.for_weights(weights), weights=weights).to(device)
    return _loss_cache[key]


def model_style_image(model_id: str) -> Path | None:
    """The style image saved with a registry model (``style.jpg``), if it has one on disk."""
    try:
        entry, _ = describe(model_id)
    except RegistryError:
        return None
    if entry.path is None:
        return None
    path = Path(entry.path) / STYLE_IMAGE_FILE
    return path if path.is_file() else None


def _check_public_bounds(iterations: int, max_side: int) -> None:
    """In public mode the server bounds the baseline itself: each iteration is a forward and backward pass of the
    loss network over the whole image."""
    if not settings.public_mode():
        return
    if iterations > settings.public_max_baseline_iterations():
        raise ValueError(f"{iterations} L-BFGS iterations is more than this shared app runs for one request (at "
                         f"most {settings.public_max_baseline_iterations()}).")
    if max_side > settings.public_max_baseline_side():
        raise ValueError(f"The baseline here works on images up to {settings.public_max_baseline_side()} px a side, "
                         f"not {max_side}.")


@dataclass
class CompareOutput:
    content_size: tuple[int, int]
    baseline_image: Image.Image
    baseline_seconds: float
    iterations: int
    objective_start: float
    baseline_objective: float
    loss_network: str
    device: str
    fast_image: Image.Image | None = None
    fast_seconds: float | None = None
    fast_objective: float | None = None
    model_id: str | None = None
    model_loss_network: str | None = None
    style_source: str = "uploaded"

    @property
    def speedup(self) -> float | None:
        if self.fast_seconds is None or self.fast_seconds <= 0:
            return None
        return self.baseline_seconds / self.fast_seconds

    def markdown(self) -> str:
        width, height = self.content_size
        per_iter = self.baseline_seconds / max(self.iterations, 1)
        lines = [f"{width} x {height} px on `{self.device}`; style image: {self.style_source}.", "",
                 "| | fast network | optimisation baseline |", "|---|---:|---:|"]
        fast_time = f"{self.fast_seconds:.3f} s" if self.fast_seconds is not None else "—"
        lines.append(f"| time | {fast_time} | {self.baseline_seconds:.2f} s ({self.iterations} L-BFGS iterations, "
                     f"{per_iter * 1000:.0f} ms each) |")
        fast_objective = f"{self.fast_objective:.4g}" if self.fast_objective is not None else "—"
        lines.append(f"| objective | {fast_objective} | {self.baseline_objective:.4g} (from {self.objective_start:.4g}) |")
        lines.append("")
        if self.speedup is not None:
            lines.append(f"**Speed-up: {self.speedup:,.0f}x** (one network pass after a warm-up, against the whole "
                         f"optimisation).")
        else:
            lines.append("No style model chosen: only the baseline ran. Train a style model (Train a style tab) "
                         "to compare it with the fast network.")
        lines.append(f"Both objectives use the loss network `{self.loss_network}` (lower is better).")
        if self.model_id:
            lines.append(f"The model `{self.model_id}` was {identity_note(self.model_loss_network)}.")
            if self.model_loss_network and self.model_loss_network != self.loss_network:
                lines.append("⚠️ It was trained against another loss network than the one scoring it here, so its "
                             "objective is not the one it was trained to lower: compare the pictures, not the numbers.")
        return "  \n".join(lines)


def _style_image(style: object | None, model, model_id: str | None) -> tuple[Image.Image, str]:
    """The style image to score against, and where it came from: ``style`` when given, else the model's own."""
    if style is not None:
        return load_image(style), "uploaded"
    if model is not None:
        path = model_style_image(model.label)
        if path is None:
            raise ValueError(f"{model_id} has no style image saved with it: upload the style image to compare.")
        return load_image(path), f"the one saved with `{model.label}`"
    raise ValueError("Upload a style image, or choose a style model (its style image is used).")


def _fast_pass(model, content_t: torch.Tensor):
    """The network's timed pass over ``content_t`` (``None`` without a model)."""
    if model is None:
        return None
    infer(model.network, content_t)  # warm-up: the first pass prepares the inference copy
    return infer(model.network, content_t)


def _baseline_and_fast_objective(content_t: torch.Tensor, style_t: torch.Tensor, device: torch.device,
                                 iterations: int, fast_output: torch.Tensor | None, progress: ProgressFn | None):
    """Run the baseline, then score ``fast_output`` (if any) with the same objective: (result, fast objective)."""
    fast_objective = None

    def report(i: int, n: int, value: float) -> None:
        if progress is not None:
            progress(i / n, f"L-BFGS iteration {i}/{n}, objective {value:.4g}")

    with _objective_lock:
        loss = style_loss(device)
        started = time.perf_counter()
        result = optimise(content_t, style_t, loss, iterations=iterations, device=device, progress=report)
        logger.info("baseline: %d iterations in %.1fs", result.iterations, time.perf_counter() - started)
        if fast_output is not None:
            with torch.no_grad():
                # run_baseline left the loss with this style target; score the network's output against it.
                fast_objective = float(loss(fast_output.to(device), content_t.to(device)).total)
    return result, fast_objective


def compare_baseline(
    content: object,
    model_id: str | None = None,
    style: object | None = None,
    iterations: int = 50,
    max_side: int = 256,
    progress: ProgressFn | None = None,
) -> CompareOutput:
    """Stylise ``content`` with model ``model_id`` and with the baseline; score both with the same objective.

    The style image is ``style`` when given, else the one saved with the model. With no model only the
    baseline runs (``style`` is then required).
    """
    iterations, max_side = int(iterations), int(max_side)
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    _check_public_bounds(iterations, max_side)
    content_img = resize_to_max_side(load_image(content), max_side)
    model = load_registry_model(model_id, "style-transfer") if model_id else None
    style_img, style_source = _style_image(style, model, model_id)
    style_img = resize_to_max_side(style_img, max_side)
    device = settings.device()
    content_t, style_t = image_to_tensor(content_img), image_to_tensor(style_img)

    run = _fast_pass(model, content_t)
    fast_image, fast_seconds = (tensor_to_image(run.output), run.seconds) if run is not None else (None, None)
    result, fast_objective = _baseline_and_fast_objective(content_t, style_t, device, iterations,
                                                          run.output if run is not None else None, progress)
    return CompareOutput(
        content_size=content_img.size,
        baseline_image=tensor_to_image(result.image),
        baseline_seconds=result.seconds,
        iterations=result.iterations,
        objective_start=result.objective[0],
        baseline_objective=result.objective[-1],
        loss_network=result.loss_network,
        device=device_label(device),
        fast_image=fast_image,
        fast_seconds=fast_seconds,
        fast_objective=fast_objective,
        model_id=model.label if model is not None else None,
        model_loss_network=model.config.training.loss_network if model is not None else None,
        style_source=style_source,
    )
