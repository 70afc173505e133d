"""The optimisation baseline (Gatys et al.): the objective falls fast; results stay in range."""
from __future__ import annotations

import pytest
import torch

from perceptual_studio.baseline import run_baseline
from perceptual_studio.losses import PerceptualLoss, PerceptualLossConfig


def _images(size: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    content = torch.stack([xx, yy, 1 - xx * yy])[None]
    g = torch.Generator().manual_seed(0)
    style = torch.stack([(torch.sin(xx * 37) > 0).float(), (torch.sin(yy * 23) > 0).float(), torch.rand(size, size, generator=g)])[None]
    return content, style


@pytest.mark.parametrize("optimizer, factor", [("lbfgs", 20), ("adam", 5)])
def test_texture_objective_falls_by_a_large_factor(random_vgg_weights, optimizer: str, factor: float) -> None:
    """Style only, from noise: the objective must drop by a large factor within 40 iterations."""
    cfg = PerceptualLossConfig(content_layers={}, content_weight=0.0, style_layers={"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0}, style_weight=1.0, tv_weight=0.0, normalize_layers=True)
    content, style = _images()
    calls = []
    result = run_baseline(content, style, PerceptualLoss(cfg, weights=random_vgg_weights), iterations=40, optimizer=optimizer, init="noise", progress=lambda i, n, v: calls.append((i, n, v)))
    assert result.objective[-1] < result.objective[0] / factor, result.objective[::10]
    assert calls[-1][:2] == (40, 40) and len(calls) == 40
    assert len(result.objective) == 41
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    assert result.image.shape == content.shape
    assert result.loss_network == "vgg16:random(seed=0)" and result.optimizer == optimizer


def test_full_objective_from_content_decreases(random_vgg_weights) -> None:
    content, style = _images(40)
    loss = PerceptualLoss(PerceptualLossConfig.for_weights(random_vgg_weights), weights=random_vgg_weights)
    result = run_baseline(content, style, loss, iterations=20)
    assert result.objective[-1] < result.objective[0] / 2
    assert not torch.equal(result.image, content)
    assert set(result.terms) == {"total", "content", "style", "tv", "pixel"}


def test_progress_callback_can_cancel(random_vgg_weights) -> None:
    class Cancelled(Exception):
        pass

    def cancel_at_3(i: int, n: int, v: float) -> None:
        if i == 3:
            raise Cancelled

    content, style = _images(24)
    loss = PerceptualLoss(PerceptualLossConfig.for_weights(random_vgg_weights), weights=random_vgg_weights)
    with pytest.raises(Cancelled):
        run_baseline(content, style, loss, iterations=50, progress=cancel_at_3)


@pytest.mark.parametrize("kwargs, match", [({"optimizer": "sgd"}, "optimizer"), ({"init": "zeros"}, "init"), ({"iterations": 0}, "iterations")])
def test_bad_arguments(random_vgg_weights, kwargs, match) -> None:
    content, style = _images(16)
    loss = PerceptualLoss(PerceptualLossConfig.for_weights(random_vgg_weights), weights=random_vgg_weights)
    with pytest.raises(ValueError, match=match):
        run_baseline(content, style, loss, **kwargs)
