"""networks.tiling.run_network_tiled: tiles with whole-image instance-norm statistics match one pass.

Networks are fitted for a few Adam steps first (a random-init network's near-constant output would make the
PSNR checks meaningless). Image sizes are odd and force several tiles in both directions. No timing here
(``python -m benchmarks.tiling`` measures time and peak memory at 3840x2160).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks.speed import fit_network, photo, psnr, recolour
from perceptual_studio.networks import StyleTransformNet, SuperResolutionNet
from perceptual_studio.networks.inference import choose_plan, run_network
from perceptual_studio.networks.legacy import PyTorchExamplesTransformerNet
from perceptual_studio.networks.tiling import (
    WholeImageInstanceNorm,
    core_bounds,
    needs_whole_image_statistics,
    run_network_tiled,
    run_tiled,
    tile_stages,
)

MIN_PSNR_DB = 40.0


@pytest.fixture(scope="module")
def style_net() -> nn.Module:
    torch.manual_seed(0)
    x = photo("astronaut", 48)
    return fit_network(StyleTransformNet(width=0.5, num_residual=3), x, recolour(x), steps=15)


@pytest.fixture(scope="module")
def big() -> torch.Tensor:
    return photo("coffee", 211)[..., :203, :157]


def _eager(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(x)


def test_fitted_network_has_image_wide_statistics(style_net: nn.Module, big: torch.Tensor) -> None:
    # Otherwise the checks below would pass for the wrong reason: tiles normalised on their own drift apart.
    assert _eager(style_net, big).std() > 0.05
    assert needs_whole_image_statistics(style_net)
    naive = run_tiled(lambda t: run_network(style_net, t, choose_plan(style_net, "cpu", "float32")), big,
                      tile=80, overlap=32)
    assert psnr(naive, _eager(style_net, big)) < 30


@pytest.mark.parametrize("tile", [32, 64, 100])
def test_tiled_style_network_matches_one_pass(style_net: nn.Module, big: torch.Tensor, tile: int) -> None:
    plan = choose_plan(style_net, "cpu", "float32")
    out = run_network_tiled(style_net, big, plan, tile=tile)
    reference = _eager(style_net, big)
    assert out.shape == reference.shape and out.dtype == torch.float32 and out.device.type == "cpu"
    assert psnr(out, reference) >= 80  # exact up to float rounding: the halos cover the receptive fields
    assert psnr(out, reference) >= MIN_PSNR_DB


def test_tiled_fast_plan_matches_the_untiled_fast_plan(style_net: nn.Module, big: torch.Tensor) -> None:
    plan = choose_plan(style_net, "cpu")  # bfloat16 on a CPU with native bfloat16, else float32
    assert psnr(run_network_tiled(style_net, big, plan, tile=64), run_network(style_net, big, plan)) >= MIN_PSNR_DB
    assert psnr(run_network_tiled(style_net, big, plan, tile=64), _eager(style_net, big)) >= MIN_PSNR_DB


@pytest.mark.parametrize("make", [
    lambda: StyleTransformNet(width=0.25, num_residual=2, upsample="transpose"),
    lambda: StyleTransformNet(width=0.25, num_residual=1, norm="batch"),
    PyTorchExamplesTransformerNet,
    lambda: SuperResolutionNet(scale=4, channels=16, num_residual=2, norm="instance"),
], ids=["transpose-upsampling", "batch-norm", "pytorch-examples", "sr-instance-norm"])
def test_other_architectures(make, big: torch.Tensor) -> None:
    torch.manual_seed(0)
    net = make()
    x = photo("astronaut", 48)
    if isinstance(net, SuperResolutionNet):
        x, target, image = x[..., ::4, ::4], x, big[..., :61, :47]
    else:
        target, image = recolour(x), big
    net = fit_network(net, x, target, steps=5)
    out = run_network_tiled(net, image, choose_plan(net, "cpu", "float32"), tile=40)
    assert psnr(out, _eager(net, image)) >= 80


class _UnknownNet(nn.Module):
    """A network run as one stage (no known split): conv, instance norm, stride-2 conv, upsample, conv."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 5, padding=2, padding_mode="reflect"), nn.InstanceNorm2d(8, affine=True), nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.InstanceNorm2d(8), nn.ReLU(),
            nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(8, 3, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)[..., : x.shape[-2], : x.shape[-1]]


def test_an_unknown_network_runs_as_one_stage(big: torch.Tensor) -> None:
    torch.manual_seed(0)
    net = _UnknownNet()
    assert len(tile_stages(net)) == 1
    x = photo("astronaut", 48)
    net = fit_network(net, x, recolour(x), steps=5)
    out = run_network_tiled(net, big, choose_plan(net, "cpu", "float32"), tile=48)
    assert psnr(out, _eager(net, big)) >= 80


def test_a_batch_keeps_per_image_statistics(style_net: nn.Module, big: torch.Tensor) -> None:
    batch = torch.cat([big, big.flip(-1) * 0.5])
    out = run_network_tiled(style_net, batch, choose_plan(style_net, "cpu", "float32"), tile=64)
    assert psnr(out, _eager(style_net, batch)) >= 80


def test_the_device_only_sees_tiles(style_net: nn.Module) -> None:
    tile = 64
    x = photo("coffee", 300)[..., :299, :261]
    largest = 0

    def record(module: nn.Module, inputs: tuple) -> None:
        nonlocal largest
        largest = max(largest, inputs[0].shape[-2] * inputs[0].shape[-1])

    plan = choose_plan(style_net, "cpu", "float32")
    run_network_tiled(style_net, x, plan, tile=tile)  # builds the prepared copy
    from perceptual_studio.networks.tiling import _tiled_net

    prepared = _tiled_net(style_net, plan, 32, 8).net
    hooks = [m.register_forward_pre_hook(record) for m in prepared.modules() if isinstance(m, nn.Conv2d)]
    try:
        out = run_network_tiled(style_net, x, plan, tile=tile)
    finally:
        for hook in hooks:
            hook.remove()
    halo = 16 + 4 * 8  # the largest halo in image pixels (down path: 16; up path: 8 bottleneck pixels)
    assert 0 < largest <= (tile + 2 * halo + 8) ** 2  # conv inputs include their own padding
    assert psnr(out, _eager(style_net, x)) >= 80


def test_small_images_run_in_one_piece(style_net: nn.Module) -> None:
    x = photo("coffee", 40)
    plan = choose_plan(style_net, "cpu", "float32")
    torch.testing.assert_close(run_network_tiled(style_net, x, plan, tile=64), run_network(style_net, x, plan))


def test_norms_refuse_a_batch_they_have_no_statistics_for() -> None:
    source = nn.InstanceNorm2d(4, affine=True)
    from perceptual_studio.networks.tiling import _TileContext

    context = _TileContext()
    context.size, context.core = (8, 8), (0, 8, 0, 8)
    norm = WholeImageInstanceNorm(source, context)
    x = torch.randn(1, 4, 8, 8)
    with pytest.raises(Exception):
        norm(x)  # collects, then stops the pass
    norm.freeze(x)
    torch.testing.assert_close(norm(x), source(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="statistics are for 1 images"):
        norm(torch.randn(2, 4, 8, 8))


@pytest.mark.parametrize("length, core, align", [(10, 16, 4), (203, 64, 4), (157, 32, 1), (2160, 512, 4), (51, 8, 8)])
def test_core_bounds_partition_the_length(length: int, core: int, align: int) -> None:
    bounds = core_bounds(length, core, align)
    assert bounds[0] == 0 and bounds[-1] == length
    assert all(a < b for a, b in zip(bounds, bounds[1:]))
    assert all(b % align == 0 for b in bounds[:-1])


def test_bad_arguments_are_refused(style_net: nn.Module) -> None:
    with pytest.raises(ValueError, match="tile"):
        run_network_tiled(style_net, torch.rand(1, 3, 64, 64), tile=8)
    with pytest.raises(ValueError, match="batch"):
        run_network_tiled(style_net, torch.rand(3, 64, 64))
