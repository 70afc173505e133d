"""A projected L-BFGS that stays on the objective's device, for the optimisation baseline on a GPU.

SciPy's L-BFGS-B (baseline/gatys.py, the default) runs its bookkeeping on the CPU in float64: at 512x512 each
iteration copies 786k variables to the host and back and spends O(n * history) host work on the limited-memory
matrices, which dominates once a GPU computes the objective in milliseconds. This optimiser keeps everything on
the device (float32), after Nocedal & Wright (2006), Alg. 7.4/7.5 (two-loop recursion, s_k.y_k > 0 curvature
check, gamma_k = s.y / y.y initial scaling), with the box [lower, upper] handled the simple way of projected
quasi-Newton methods (Bertsekas 1982; Kim, Sra & Dhillon 2010): variables at a bound whose gradient pushes
outward are held fixed for the step (the direction is computed on the free ones), the step is projected back
onto the box, and a backtracking line search on the projected path enforces the Armijo condition.
It is not L-BFGS-B's generalised Cauchy point and subspace minimisation, so iterates differ from SciPy's;
both decrease the same objective and keep the image in range. One objective evaluation per iteration is
typical (the unit step is usually accepted).
"""
from __future__ import annotations

from typing import Callable

import torch

Objective = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # x -> (value, gradient), on x's device


def _two_loop(grad: torch.Tensor, pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """-H grad with the L-BFGS inverse-Hessian approximation of ``pairs`` (s, y, 1 / y.s), newest last."""
    q = grad.clone()
    alphas = []
    for s, y, rho in reversed(pairs):
        alpha = rho * torch.dot(s, q)
        q.sub_(alpha * y)
        alphas.append(alpha)
    if pairs:
        s, y, _ = pairs[-1]
        q.mul_(torch.dot(s, y) / torch.dot(y, y))
    for (s, y, rho), alpha in zip(pairs, reversed(alphas)):
        beta = rho * torch.dot(y, q)
        q.add_((alpha - beta) * s)
    return q.neg_()


def projected_lbfgs(objective: Objective, start: torch.Tensor, *, iterations: int, history: int = 100,
                    lower: float = 0.0, upper: float = 1.0, max_backtracks: int = 20,
                    callback: Callable[[int, float], None] | None = None) -> tuple[torch.Tensor, list[float]]:
    """Minimise ``objective`` over the box [lower, upper] from ``start`` for ``iterations`` iterations.

    Returns the final point (``start``'s shape) and the objective after each iteration (index 0 = start).
    ``callback(iteration, value)`` runs after each iteration and may raise to cancel. Stops early only when
    the projected gradient vanishes or no step along the projected path decreases the objective.
    """
    shape = start.shape
    x = start.detach().reshape(-1).clamp(lower, upper).clone()
    value, grad = objective(x.view(shape))
    grad = grad.reshape(-1)
    values = [float(value)]
    pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for iteration in range(1, iterations + 1):
        # Variables pinned at a bound by a gradient that points out of the box stay put this step.
        free = ~(((x <= lower) & (grad > 0)) | ((x >= upper) & (grad < 0)))
        projected = grad * free
        if not bool(projected.abs().max() > 0):
            break
        direction = _two_loop(projected, pairs) * free
        slope = torch.dot(projected, direction)
        if not bool(slope < 0):  # not a descent direction: restart from steepest descent
            pairs.clear()
            direction = -projected
        # First step: scaled so the largest change is a tenth of the box (SciPy uses 1 / ||g||).
        step = 1.0 if pairs else min(1.0, 0.1 * (upper - lower) / float(direction.abs().max()))
        for _ in range(max_backtracks):
            candidate = (x + step * direction).clamp_(lower, upper)
            new_value, new_grad = objective(candidate.view(shape))
            if bool(new_value <= value + 1e-4 * torch.dot(grad, candidate - x)):
                break
            step *= 0.5
        else:
            break  # no decrease along the projected path
        new_grad = new_grad.reshape(-1)
        s, y = candidate - x, new_grad - grad
        sy = torch.dot(s, y)
        if bool(sy > 1e-10 * torch.dot(y, y)):
            pairs.append((s, y, 1.0 / sy))
            if len(pairs) > history:
                pairs.pop(0)
        x, value, grad = candidate, new_value, new_grad
        values.append(float(value))
        if callback is not None:
            callback(iteration, values[-1])
    return x.view(shape), values
