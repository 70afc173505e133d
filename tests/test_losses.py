"""Each loss against values worked out by hand on tiny tensors; gradients flow; bad arguments raise."""
from __future__ import annotations

import pytest
import torch

from perceptual_studio.losses import (
    PerceptualLoss,
    PerceptualLossConfig,
    feature_reconstruction_loss,
    gram_matrix,
    grid_pattern_loss,
    pixel_loss,
    style_reconstruction_loss,
    total_variation_loss,
)


def test_feature_reconstruction_normalised_by_chw() -> None:
    pred = torch.zeros(1, 2, 1, 2)
    target = torch.tensor([[[[1.0, 2.0]], [[0.0, 3.0]]]])  # squared error sum = 1 + 4 + 0 + 9 = 14
    assert feature_reconstruction_loss(pred, target).item() == pytest.approx(14 / (2 * 1 * 2))


def test_feature_reconstruction_averages_over_batch() -> None:
    pred = torch.zeros(2, 1, 1, 1)
    target = torch.tensor([1.0, 3.0]).view(2, 1, 1, 1)
    assert feature_reconstruction_loss(pred, target).item() == pytest.approx((1 + 9) / 2)


def test_pixel_loss_by_hand() -> None:
    pred = torch.full((1, 3, 2, 2), 0.5)
    target = torch.zeros(1, 3, 2, 2)
    assert pixel_loss(pred, target).item() == pytest.approx(0.25)


def test_gram_matrix_by_hand() -> None:
    # C=2, H=1, W=2: phi = [[1, 2], [3, 4]]; F F^T = [[5, 11], [11, 25]]; / (C H W = 4)
    phi = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    assert torch.allclose(gram_matrix(phi), expected)


def test_gram_matrix_is_size_invariant_for_repeated_texture() -> None:
    tile = torch.rand(1, 4, 3, 3)
    big = tile.repeat(1, 1, 2, 2)
    assert torch.allclose(gram_matrix(tile), gram_matrix(big), atol=1e-6)


def test_style_loss_is_squared_frobenius() -> None:
    a = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    b = torch.zeros(1, 2, 2)
    assert style_reconstruction_loss(a, b).item() == pytest.approx(1 + 4 + 9 + 16)


def test_total_variation_by_hand() -> None:
    # one channel, 2x2: [[0, 1], [3, 5]]: dx: (1-0)^2 + (5-3)^2 = 5; dy: (3-0)^2 + (5-1)^2 = 25; / (1*2*2)
    image = torch.tensor([[[[0.0, 1.0], [3.0, 5.0]]]])
    assert total_variation_loss(image).item() == pytest.approx(30 / 4)
    assert total_variation_loss(torch.ones(2, 3, 5, 5)).item() == 0.0


def test_grid_pattern_loss_sees_a_grid_locked_pattern_and_nothing_shared_by_every_phase() -> None:
    target = torch.rand(2, 3, 32, 32)
    dot = torch.zeros(1, 3, 4, 4)
    dot[..., 1, 2] = 0.4  # one bright phase of every 4x4 cell: var over 16 phases = 0.4^2 * (1/16) * (15/16)
    assert grid_pattern_loss(target + dot.repeat(1, 1, 8, 8), target, 4).item() == pytest.approx(0.16 * 15 / 256)
    assert grid_pattern_loss(target + 0.3, target, 4).item() == pytest.approx(0.0, abs=1e-12)  # a colour cast
    ramp = torch.linspace(0, 0.4, 32).view(1, 1, 1, 32).expand(2, 3, 32, 32)  # the same amplitude, no grid
    smooth = grid_pattern_loss(target + ramp, target, 4).item()
    assert 0 < smooth < 0.1 * grid_pattern_loss(target + dot.repeat(1, 1, 8, 8), target, 4).item()
    with pytest.raises(ValueError, match="period"):
        grid_pattern_loss(target, target, 1)
    with pytest.raises(ValueError, match="smaller than one"):
        grid_pattern_loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), 4)


def test_the_grid_term_is_weighted_into_the_objective_and_needs_a_period() -> None:
    cfg = PerceptualLossConfig.super_resolution("pixel", grid_weight=10.0, grid_period=4)
    loss = PerceptualLoss(cfg)
    target = torch.rand(1, 3, 32, 32)
    dot = torch.zeros(1, 3, 4, 4)
    dot[..., 0, 0] = 0.4
    terms = loss(target + dot.repeat(1, 1, 8, 8), target).as_floats()
    assert terms["grid"] == pytest.approx(10.0 * grid_pattern_loss(target + dot.repeat(1, 1, 8, 8), target, 4).item())
    assert terms["total"] == pytest.approx(terms["pixel"] + terms["grid"], rel=1e-6)
    assert "grid" not in PerceptualLoss(PerceptualLossConfig.super_resolution("pixel"))(target, target).as_floats()
    with pytest.raises(ValueError, match="grid_period"):
        PerceptualLossConfig.super_resolution("pixel", grid_weight=1.0)


@pytest.mark.parametrize(
    "fn, args",
    [
        (feature_reconstruction_loss, (torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3, 3))),
        (pixel_loss, (torch.zeros(3, 3, 3), torch.zeros(3, 3, 3))),
        (gram_matrix, (torch.zeros(3, 4, 4),)),
        (style_reconstruction_loss, (torch.zeros(1, 2, 3), torch.zeros(1, 2, 3))),
        (style_reconstruction_loss, (torch.zeros(1, 2, 2), torch.zeros(1, 3, 3))),
        (total_variation_loss, (torch.zeros(3, 4, 4),)),
    ],
)
def test_invalid_shapes_raise(fn, args) -> None:
    with pytest.raises(ValueError):
        fn(*args)


def test_gradients_flow_through_every_loss() -> None:
    x = torch.rand(2, 3, 6, 6, requires_grad=True)
    y = torch.rand(2, 3, 6, 6)
    total = (
        feature_reconstruction_loss(x, y)
        + pixel_loss(x, y)
        + style_reconstruction_loss(gram_matrix(x), gram_matrix(y))
        + total_variation_loss(x)
    )
    total.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content_layers": {"relu9_9": 1.0}},
        {"style_layers": {"pool7": 1.0}},
        {"tv_weight": -1.0},
        {"style_layers": {"relu1_2": -1.0}},
        {"content_weight": 0.0, "style_weight": 0.0, "tv_weight": 0.0},
    ],
)
def test_config_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        PerceptualLossConfig(**kwargs)


def test_super_resolution_config_rejects_unknown_loss() -> None:
    with pytest.raises(ValueError, match="feature' or 'pixel"):
        PerceptualLossConfig.super_resolution("perceptual")


def test_objective_terms_add_up(random_vgg_weights) -> None:
    cfg = PerceptualLossConfig.for_weights(random_vgg_weights, tv_weight=0.5)
    assert cfg.normalize_layers  # random features need per-layer normalisation
    loss = PerceptualLoss(cfg, weights=random_vgg_weights)
    assert loss.identity == "vgg16:random(seed=0)"
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 40, 36)
    loss.set_style(style)
    out = torch.rand(2, 3, 32, 32, requires_grad=True)
    terms = loss(out, content.expand(2, -1, -1, -1))
    parts = terms.as_floats()
    assert parts["total"] == pytest.approx(parts["content"] + parts["style"] + parts["tv"] + parts["pixel"], rel=1e-5)
    terms.total.backward()
    assert out.grad.abs().sum() > 0
    assert loss(content, content).content.item() == pytest.approx(0.0, abs=1e-7)


def test_normalised_style_layer_is_relative_error(random_vgg_weights) -> None:
    """With normalize_layers, each style layer is ||G - G_s||^2 / ||G_s||^2: an image scores 0 against itself."""
    cfg = PerceptualLossConfig(content_layers={}, content_weight=0.0, style_layers={"relu1_2": 1.0}, style_weight=1.0, tv_weight=0.0, normalize_layers=True)
    loss = PerceptualLoss(cfg, weights=random_vgg_weights)
    style = torch.rand(1, 3, 24, 24)
    loss.set_style(style)
    assert loss(style).total.item() == pytest.approx(0.0, abs=1e-6)
    other = torch.rand(1, 3, 24, 24)
    g_style = gram_matrix(loss.loss_network(style)["relu1_2"])
    g_other = gram_matrix(loss.loss_network(other)["relu1_2"])
    expected = (g_other - g_style).pow(2).sum() / g_style.pow(2).sum()
    assert loss(other).total.item() == pytest.approx(expected.item(), rel=1e-4)


def test_style_loss_needs_style(random_vgg_weights) -> None:
    loss = PerceptualLoss(PerceptualLossConfig.for_weights(random_vgg_weights), weights=random_vgg_weights)
    with pytest.raises(ValueError, match="set_style"):
        loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))


def test_pixel_only_objective_needs_no_loss_network() -> None:
    loss = PerceptualLoss(PerceptualLossConfig.super_resolution("pixel"))
    assert loss.loss_network is None
    assert loss(torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 0.5)).total.item() == pytest.approx(0.25)


def test_sr_feature_objective_uses_relu2_2_only(random_vgg_weights) -> None:
    loss = PerceptualLoss(PerceptualLossConfig.super_resolution("feature"), weights=random_vgg_weights)
    assert loss.loss_network.layers == ("relu2_2",)


def test_style_defaults_follow_the_loss_network() -> None:
    """One preset per loss network, shared by the baseline (for_weights) and training (loss_config_for)."""
    from perceptual_studio.losses.perceptual import STYLE_PRESETS
    from perceptual_studio.networks.vgg import CAFFE_CONVENTION, LossNetworkWeights, random_vgg16_state
    from perceptual_studio.train.config import StyleTrainConfig
    from perceptual_studio.train.style import loss_config_for

    state = random_vgg16_state(0)
    oxford = LossNetworkWeights(state, "vgg16:imagenet-caffe", "test", convention=CAFFE_CONVENTION)
    torchvision = LossNetworkWeights(state, "vgg16:imagenet-torchvision", "test")
    random = LossNetworkWeights(state, "vgg16:random(seed=0)", "random")
    for weights, name in ((oxford, "caffe"), (torchvision, "torchvision"), (random, "normalized")):
        preset = STYLE_PRESETS[name]
        baseline = PerceptualLossConfig.for_weights(weights)
        training = loss_config_for(StyleTrainConfig(style="s.png", content="c", out="o"), weights)
        for cfg in (baseline, training):
            assert (cfg.style_weight, cfg.tv_weight, cfg.normalize_layers) == (
                preset.style_weight, preset.tv_weight, preset.normalize_layers), name
        assert baseline.style_layers == training.style_layers
    assert STYLE_PRESETS["caffe"].style_weight == 0.3 and STYLE_PRESETS["caffe"].tv_weight == 1e4
    assert PerceptualLossConfig.for_weights(oxford, style_weight=2.0).style_weight == 2.0
