"""baseline/lbfgs_device.py: the device-resident projected L-BFGS solves box-constrained problems like SciPy's
L-BFGS-B, and drives the Gatys baseline as well (``run_baseline(optimizer="lbfgs-device")``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import Bounds, minimize

from perceptual_studio.baseline import run_baseline
from perceptual_studio.baseline.lbfgs_device import projected_lbfgs
from perceptual_studio.losses import PerceptualLoss, PerceptualLossConfig


def test_box_constrained_quadratic_matches_scipy() -> None:
    g = torch.Generator().manual_seed(0)
    n = 200
    a = torch.randn(n, n, generator=g, dtype=torch.float64)
    hessian = a @ a.T / n + 0.1 * torch.eye(n, dtype=torch.float64)
    target = torch.randn(n, generator=g, dtype=torch.float64) * 0.8 + 0.5  # partly outside [0, 1]

    def objective(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = x - target
        return 0.5 * d @ hessian @ d, hessian @ d

    x, values = projected_lbfgs(objective, torch.full((n,), 0.5, dtype=torch.float64), iterations=300)
    reference = minimize(lambda v: tuple(t.numpy() if t.dim() else float(t) for t in objective(torch.from_numpy(v))),
                         np.full(n, 0.5), jac=True, method="L-BFGS-B", bounds=Bounds(0.0, 1.0),
                         options={"maxiter": 1000, "ftol": 0, "gtol": 1e-12})
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert all(b <= a + 1e-12 for a, b in zip(values, values[1:]))  # monotone: Armijo steps only
    assert values[-1] == pytest.approx(reference.fun, rel=1e-6, abs=1e-9)
    assert float((x - torch.from_numpy(reference.x)).abs().max()) < 1e-3


def test_stops_when_the_projected_gradient_vanishes() -> None:
    # The minimum of (x - 2)^2 over [0, 1] is the corner x = 1: the gradient there points out of the box.
    x, values = projected_lbfgs(lambda x: (((x - 2) ** 2).sum(), 2 * (x - 2)), torch.zeros(5), iterations=50)
    assert torch.equal(x, torch.ones(5)) and len(values) < 10


def _images(size: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    content = torch.stack([xx, yy, 1 - xx * yy])[None]
    g = torch.Generator().manual_seed(0)
    style = torch.stack([(torch.sin(xx * 37) > 0).float(), (torch.sin(yy * 23) > 0).float(),
                         torch.rand(size, size, generator=g)])[None]
    return content, style


def test_gatys_baseline_runs_on_the_device_optimizer(random_vgg_weights) -> None:
    """Style only, from noise (tests/test_baseline.py's setting): a large drop, close to SciPy's L-BFGS-B."""
    cfg = PerceptualLossConfig(content_layers={}, content_weight=0.0, style_layers={"relu1_2": 1.0, "relu2_2": 1.0,
                               "relu3_3": 1.0}, style_weight=1.0, tv_weight=0.0, normalize_layers=True)
    content, style = _images()
    loss = PerceptualLoss(cfg, weights=random_vgg_weights)
    calls = []
    result = run_baseline(content, style, loss, iterations=40, optimizer="lbfgs-device", init="noise",
                          progress=lambda i, n, v: calls.append((i, n, v)))
    scipy = run_baseline(content, style, loss, iterations=40, optimizer="lbfgs", init="noise")
    assert result.objective[-1] < result.objective[0] / 20, result.objective[::10]
    assert result.objective[-1] < 3 * scipy.objective[-1]
    assert calls[-1][:2] == (40, 40) and len(result.objective) == 41 and result.optimizer == "lbfgs-device"
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0 and result.image.shape == content.shape
