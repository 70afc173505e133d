"""Every registered architecture: shapes (odd sizes too), no NaN, gradients reach every parameter, modes."""
from __future__ import annotations

import copy

import pytest
import torch

from perceptual_studio import networks
from perceptual_studio.networks import (
    StyleTransformNet,
    SuperResolutionNet,
    create_model,
    list_architectures,
)
from perceptual_studio.networks.architectures import (
    DuplicateArchitectureError,
    UnknownArchitectureError,
    register_architecture,
)

SMALL_KWARGS = {
    "johnson-style": {"width": 0.25, "num_residual": 1},
    "johnson-sr": {"scale": 2, "channels": 8, "num_residual": 1},
}


def _small(name: str) -> torch.nn.Module:
    return create_model(name, **SMALL_KWARGS.get(name, {}))


def _expected_shape(model: torch.nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    f = getattr(model, "scale", 1)
    return (x.shape[0], 3, x.shape[2] * f, x.shape[3] * f)


@pytest.mark.parametrize("name", [a.name for a in list_architectures()])
@pytest.mark.parametrize("size", [(32, 32), (33, 47), (17, 9)])
def test_output_shape_and_range(name: str, size: tuple[int, int]) -> None:
    model = _small(name).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == _expected_shape(model, x)
    assert torch.isfinite(y).all()
    assert 0.0 <= y.min() and y.max() <= 1.0


@pytest.mark.parametrize("name", [a.name for a in list_architectures()])
def test_gradients_reach_every_parameter(name: str) -> None:
    model = _small(name).train()
    x = torch.rand(2, 3, 24, 20)
    model(x).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_style_net_full_size_odd_input_and_options() -> None:
    for upsample in ("resize", "transpose"):
        for norm in ("instance", "batch"):
            model = StyleTransformNet(norm=norm, upsample=upsample).eval()
            with torch.no_grad():
                y = model(torch.rand(1, 3, 257, 313))
            assert y.shape == (1, 3, 257, 313)


def test_style_net_matches_paper_layout() -> None:
    model = StyleTransformNet(norm="batch", upsample="transpose")
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    shapes = [(type(m).__name__, m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0]) for m in convs]
    assert shapes[:3] == [("Conv2d", 3, 32, 9, 1), ("Conv2d", 32, 64, 3, 2), ("Conv2d", 64, 128, 3, 2)]
    assert shapes[3:13] == [("Conv2d", 128, 128, 3, 1)] * 10  # five residual blocks of two convs
    assert shapes[13:] == [("ConvTranspose2d", 128, 64, 3, 2), ("ConvTranspose2d", 64, 32, 3, 2), ("Conv2d", 32, 3, 9, 1)]
    half = StyleTransformNet(width=0.5)
    assert half.head[0].conv.out_channels == 16 and half.down2[0].conv.out_channels == 64


def test_no_zero_padding_border_artifacts() -> None:
    """A constant image must map to a constant image: zero padding would darken or tint the border."""
    torch.manual_seed(0)
    model = StyleTransformNet(norm="batch").eval()  # batch norm in eval keeps the constant constant
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        y = model(torch.full((1, 3, 41, 37), 0.3))
    spread = y.amax(dim=(2, 3)) - y.amin(dim=(2, 3))
    assert spread.max() < 1e-5


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_sr_scales(scale: int) -> None:
    model = SuperResolutionNet(scale=scale, channels=8, num_residual=1).eval()
    convs = [m for m in model.ups]
    assert len(convs) == {2: 1, 4: 2, 8: 3}[scale]
    with torch.no_grad():
        assert model(torch.rand(1, 3, 9, 13)).shape == (1, 3, 9 * scale, 13 * scale)


@pytest.mark.parametrize("upsample", ["resize", "shuffle"])
@pytest.mark.parametrize("scale", [4, 8])
def test_an_untrained_bicubic_residual_network_is_bicubic(upsample: str, scale: int) -> None:
    """residual="bicubic" starts at zero on top of a bicubic upscale: training begins at bicubic's quality."""
    import torch.nn.functional as F

    net = SuperResolutionNet(scale=scale, channels=8, num_residual=1, norm="none", upsample=upsample,
                             residual="bicubic").eval()
    x = torch.rand(2, 3, 12, 10)
    expected = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
    with torch.no_grad():
        assert torch.allclose(net(x), expected, atol=1e-6)
    net.train()
    out = net(x)
    out.square().mean().backward()
    assert net.tail[0].conv.weight.grad.abs().sum() > 0 if upsample == "shuffle" else net.tail.conv.weight.grad.abs().sum() > 0


def test_the_sr_options_keep_an_older_models_config() -> None:
    """A model saved before residual/shuffle existed has no "residual" key; the defaults rebuild it exactly."""
    assert "residual" not in SuperResolutionNet(scale=4).config
    net = SuperResolutionNet(scale=4, upsample="shuffle", residual="bicubic")
    assert net.config["residual"] == "bicubic" and len(net.ups) == 0
    with pytest.raises(ValueError, match="residual"):
        SuperResolutionNet(scale=4, residual="lanczos")


def test_train_and_eval_modes() -> None:
    """Batch norm uses batch statistics in train mode and running statistics in eval mode."""
    torch.manual_seed(0)
    model = StyleTransformNet(norm="batch", width=0.25, num_residual=1)
    x = torch.rand(2, 3, 16, 16)
    model.train()
    before = model.head[1].running_mean.clone()
    y_train = model(x)
    assert not torch.equal(model.head[1].running_mean, before)
    model.eval()
    with torch.no_grad():
        y_eval1, y_eval2 = model(x), model(x)
    assert torch.equal(y_eval1, y_eval2)
    assert not torch.allclose(y_train, y_eval1)


@pytest.mark.parametrize(
    "kwargs", [{"norm": "layer"}, {"upsample": "pixelshuffle"}, {"width": 0}, {"num_residual": -1}]
)
def test_style_net_rejects_bad_options(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        StyleTransformNet(**kwargs)


@pytest.mark.parametrize("scale", [4, 8])
def test_the_lattice_filter_removes_a_grid_and_keeps_detail(scale: int) -> None:
    """degrid: a pattern repeating every ``scale`` pixels is removed whole, noise (no preferred phase) and a
    smooth ramp are kept, and a filtered network is a filtered copy of the unfiltered one."""
    from perceptual_studio.networks.sr import lattice_pattern

    grid = torch.zeros(1, 3, 8 * scale, 8 * scale)
    grid[..., ::scale, 1::scale] = 1.0
    grid -= grid.mean()
    assert torch.allclose(lattice_pattern(grid, scale, 5), grid, atol=1e-6)
    noise = torch.randn(1, 3, 32 * scale, 32 * scale, generator=torch.Generator().manual_seed(0))
    assert lattice_pattern(noise, scale, 9).pow(2).mean() < 0.03 * noise.pow(2).mean()
    ramp = torch.linspace(0, 1, 16 * scale).expand(1, 3, 16 * scale, 16 * scale).contiguous()
    assert lattice_pattern(ramp, scale, 3).abs().max() < 0.05  # a ramp differs across phases only by its slope
    torch.manual_seed(0)
    plain = SuperResolutionNet(scale=scale, channels=8, num_residual=1, norm="none", upsample="shuffle",
                               residual="bicubic")
    torch.nn.init.normal_(plain.tail[0].conv.weight, std=0.05)  # a trained tail, not the zero start
    filtered = copy.deepcopy(plain)
    filtered.set_degrid(9)
    assert filtered.config["degrid"] == 9 and "degrid" not in plain.config
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        base = torch.nn.functional.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
        difference = plain.train()(x) - base
        expected = (base + difference - lattice_pattern(difference, scale, 9)).clamp(0, 1)
        assert torch.allclose(filtered.eval()(x), expected, atol=1e-5)
    with pytest.raises(ValueError, match="degrid"):
        SuperResolutionNet(scale=scale, degrid=-1)


def test_sr_rejects_bad_scale() -> None:
    with pytest.raises(ValueError, match="scale"):
        SuperResolutionNet(scale=3)


def test_rejects_wrong_input_shape() -> None:
    with pytest.raises(ValueError, match="B, 3, H, W"):
        StyleTransformNet(width=0.25)(torch.rand(3, 16, 16))


def test_architecture_table() -> None:
    names = {a.name: a.task for a in list_architectures()}
    assert names["johnson-style"] == "style-transfer"
    assert names["johnson-sr"] == "super-resolution"
    with pytest.raises(DuplicateArchitectureError, match="already registered"):
        register_architecture("johnson-style", "style-transfer", provider="test")(StyleTransformNet)
    with pytest.raises(UnknownArchitectureError, match="installed architectures: .*johnson-style"):
        networks.get_architecture("no-such-net")
    with pytest.raises(ValueError, match="unknown task"):
        register_architecture("x", "colorization")


def test_interpolation_cache_never_serves_a_blend_of_freed_networks() -> None:
    """The cache is keyed by ``id``s, which Python reuses after a network is freed: an entry whose sources are
    gone must be rebuilt, not returned for the new networks that happen to get the same ids."""
    from perceptual_studio.networks import interpolate

    torch.manual_seed(0)
    a, b, c, d = (StyleTransformNet(width=0.25, num_residual=1) for _ in range(4))
    stale = interpolate.interpolate_networks([a, b], [0.5, 0.5])
    key = next(k for k, (_, model) in interpolate._CACHE.items() if model is stale)
    interpolate._CACHE[((id(c), id(d)), key[1])] = interpolate._CACHE[key]  # as if c, d reused a's and b's ids
    fresh = interpolate.interpolate_networks([c, d], [0.5, 0.5])
    assert fresh is not stale
    for name, value in fresh.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, (c.state_dict()[name] + d.state_dict()[name]) / 2), name
    assert interpolate.interpolate_networks([a, b], [0.5, 0.5]) is stale  # live sources still hit
