"""Optimisation-based style transfer (Gatys, Ecker & Bethge 2016), as the baseline of Johnson et al. 2016, Sec. 4.1.

The image itself is optimised against the same perceptual objective the fast network is trained with.
L-BFGS is the default, as in the paper, constrained to the valid pixel range [0, 1]: we use SciPy's
L-BFGS-B, whose projected-gradient steps handle the bounds properly (clamping after a plain L-BFGS step
corrupts its curvature pairs and made the objective oscillate in our tests). The objective and its
gradient are computed by torch on the chosen device; about one evaluation per iteration is typical.
``optimizer="lbfgs-device"`` is a projected L-BFGS that keeps its state on the device (baseline/lbfgs_device.py):
on a GPU SciPy's host-side float64 bookkeeping, not the objective, dominates each iteration.
Adam, clamped after each step, is offered for comparison.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from perceptual_studio.losses import PerceptualLoss

from .lbfgs_device import projected_lbfgs

OPTIMIZERS: tuple[str, ...] = ("lbfgs", "lbfgs-device", "adam")
ProgressCallback = Callable[[int, int, float], None]  # (iteration, total, objective) -> None; may raise to cancel


@dataclass
class BaselineResult:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1], on the CPU
    objective: list[float]  # objective value after each iteration (index 0 = the initial image)
    seconds: float
    iterations: int
    optimizer: str
    device: str
    loss_network: str  # identity, e.g. "vgg16:imagenet" or "vgg16:random(seed=0)"
    terms: dict[str, float] = field(default_factory=dict)  # the final objective's terms


def _check_arguments(content: torch.Tensor, style: torch.Tensor, iterations: int, optimizer: str, init: str) -> None:
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', got {init!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    for name, image in (("content", content), ("style", style)):
        if image.dim() != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"{name} image must be (1, 3, H, W), got {tuple(image.shape)}")


def _starting_image(content: torch.Tensor, init: str, seed: int, device: torch.device) -> torch.Tensor:
    """The content itself, or seeded uniform noise (drawn on the CPU, so every device starts alike)."""
    if init == "content":
        return content.clone()
    generator = torch.Generator(device="cpu").manual_seed(seed)
    return torch.rand(content.shape, generator=generator).to(device)


def run_baseline(
    content: torch.Tensor,
    style: torch.Tensor,
    loss: PerceptualLoss,
    *,
    iterations: int = 500,
    optimizer: str = "lbfgs",
    init: str = "content",
    lr: float | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: ProgressCallback | None = None,
) -> BaselineResult:
    """Optimise an image for ``iterations`` steps; returns the image and the objective per iteration.

    ``lr`` applies to Adam only (L-BFGS-B chooses its own step by line search). ``progress`` is called
    after every iteration; an exception raised there cancels the run and propagates.
    L-BFGS-B may stop early when its line search cannot improve further; ``iterations`` reports the
    number actually run.
    """
    _check_arguments(content, style, iterations, optimizer, init)
    device = torch.device(device) if device is not None else content.device
    loss = loss.to(device)
    content = content.to(device, torch.float32)
    loss.set_style(style.to(device, torch.float32))
    targets = loss.content_features(content)
    start = _starting_image(content, init, seed, device)
    started = time.perf_counter()
    with torch.no_grad():
        history = [float(loss(start, content, targets).total)]
    if optimizer == "lbfgs":
        image = _lbfgs_b(loss, start, content, targets, iterations, history, progress)
    elif optimizer == "lbfgs-device":
        image = _lbfgs_device(loss, start, content, targets, iterations, history, progress)
    else:
        image = _adam(loss, start, content, targets, iterations, lr or 0.02, history, progress)
    with torch.no_grad():
        final = loss(image, content, targets)
    if optimizer == "adam":
        history.append(float(final.total))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    return BaselineResult(
        image=image.detach().cpu(),
        objective=history,
        seconds=seconds,
        iterations=len(history) - 1,
        optimizer=optimizer,
        device=str(device),
        loss_network=loss.identity,
        terms=final.as_floats(),
    )


def _lbfgs_b(loss, start, content, targets, iterations, history, progress) -> torch.Tensor:
    import numpy as np
    from scipy.optimize import Bounds, minimize

    shape, device = start.shape, start.device

    def value_and_grad(flat: np.ndarray) -> tuple[float, np.ndarray]:
        image = torch.from_numpy(flat).view(shape).to(device, torch.float32).requires_grad_(True)
        value = loss(image, content, targets).total
        (grad,) = torch.autograd.grad(value, image)
        return float(value.detach()), grad.double().cpu().numpy().ravel()

    def after_iteration(intermediate_result) -> None:
        history.append(float(intermediate_result.fun))
        if progress is not None:
            progress(len(history) - 1, iterations, history[-1])

    result = minimize(
        value_and_grad,
        start.double().cpu().numpy().ravel(),
        jac=True,
        method="L-BFGS-B",
        bounds=Bounds(0.0, 1.0),
        callback=after_iteration,
        # ftol/gtol at zero: run the requested number of iterations, as the paper's timings do.
        options={"maxiter": iterations, "maxcor": 100, "ftol": 0.0, "gtol": 0.0, "maxfun": iterations * 20},
    )
    return torch.from_numpy(result.x).view(shape).to(device, torch.float32)


def _lbfgs_device(loss, start, content, targets, iterations, history, progress) -> torch.Tensor:
    def objective(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image = x.detach().requires_grad_(True)
        value = loss(image, content, targets).total
        (grad,) = torch.autograd.grad(value, image)
        return value.detach(), grad

    def after_iteration(iteration: int, value: float) -> None:
        history.append(value)
        if progress is not None:
            progress(iteration, iterations, value)

    image, _ = projected_lbfgs(objective, start, iterations=iterations, history=100, callback=after_iteration)
    return image.detach()


def _adam(loss, start, content, targets, iterations, lr, history, progress) -> torch.Tensor:
    image = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([image], lr=lr)
    for step in range(iterations):
        opt.zero_grad(set_to_none=True)
        value = loss(image, content, targets).total
        value.backward()
        if step > 0:  # the objective of the iterate reached by the previous step
            history.append(float(value.detach()))
        opt.step()
        with torch.no_grad():
            image.clamp_(0.0, 1.0)  # projection onto the valid pixel range
        if progress is not None:
            progress(step + 1, iterations, history[-1])
    return image.detach()
