"""networks.inference: the fast path gives the float32 answer (PSNR >= 40 dB on fitted networks), any size.

Networks are fitted for a few Adam steps to a fixed recolouring of a photo first: a random-init network's
near-constant output would make the PSNR checks meaningless. No timing here (``benchmarks/speed.py``).
"""
from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.speed import fit_network, photo, psnr, recolour
from perceptual_studio.networks import StyleTransformNet, SuperResolutionNet
from perceptual_studio.networks.inference import (
    BatchInstanceNorm2d,
    InferencePlan,
    choose_plan,
    cpu_has_fast_bfloat16,
    run_network,
    swap_instance_norms,
)

MIN_PSNR_DB = 40.0


@pytest.fixture(scope="module")
def style_net() -> nn.Module:
    torch.manual_seed(0)
    x = photo("astronaut", 40)
    return fit_network(StyleTransformNet(), x, recolour(x), steps=12)


@pytest.fixture(scope="module")
def sr_net() -> nn.Module:
    torch.manual_seed(0)
    high = photo("astronaut", 48)
    low = F.interpolate(high, scale_factor=0.25, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    return fit_network(SuperResolutionNet(scale=4), low, high, steps=8)


def _eager(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(x)


def test_fitted_networks_are_non_trivial(style_net: nn.Module, sr_net: nn.Module) -> None:
    # Otherwise the PSNR checks below would pass for the wrong reason.
    assert _eager(style_net, photo("coffee", 64)).std() > 0.05
    assert _eager(sr_net, photo("coffee", 16)).std() > 0.05


@pytest.mark.parametrize("precision", ["auto", "bfloat16", "float16", "float32"])
@pytest.mark.parametrize("shape", [(1, 64, 64), (1, 37, 53), (2, 29, 18)])
def test_style_matches_float32(style_net: nn.Module, precision: str, shape: tuple[int, int, int]) -> None:
    batch, h, w = shape
    x = photo("coffee", max(h, w))[..., :h, :w].repeat(batch, 1, 1, 1)
    plan = choose_plan(style_net, "cpu", precision)
    y = run_network(style_net, x, plan)
    assert y.shape == x.shape and y.dtype == torch.float32 and y.device.type == "cpu" and y.is_contiguous()
    assert psnr(y, _eager(style_net, x)) >= MIN_PSNR_DB


@pytest.mark.parametrize("precision", ["auto", "float32"])
@pytest.mark.parametrize("shape", [(1, 16, 16), (1, 13, 17), (2, 9, 12)])
def test_super_resolution_matches_float32(sr_net: nn.Module, precision: str, shape: tuple[int, int, int]) -> None:
    batch, h, w = shape
    x = photo("astronaut", max(h, w))[..., :h, :w].repeat(batch, 1, 1, 1)
    y = run_network(sr_net, x, choose_plan(sr_net, "cpu", precision))
    assert y.shape == (batch, 3, 4 * h, 4 * w) and y.dtype == torch.float32
    assert psnr(y, _eager(sr_net, x)) >= MIN_PSNR_DB


def test_float32_plan_is_float32_and_exact(style_net: nn.Module) -> None:
    plan = choose_plan(style_net, "cpu", "float32")
    assert plan.dtype is None and "float32" in plan.describe()
    x = photo("astronaut", 45)
    torch.testing.assert_close(run_network(style_net, x, plan), _eager(style_net, x), atol=1e-4, rtol=1e-4)


def test_auto_plan_follows_the_cpu() -> None:
    plan = choose_plan(StyleTransformNet(width=0.25), "cpu")
    assert plan.device == torch.device("cpu") and plan.channels_last
    assert plan.dtype == (torch.bfloat16 if cpu_has_fast_bfloat16() else None)
    assert plan.describe().split(", ")[1:3] == ["channels-last", "cpu"]


def test_default_device_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERCEPTUAL_DEVICE", "cpu")
    assert choose_plan(StyleTransformNet(width=0.25)).device == torch.device("cpu")


@pytest.mark.parametrize("precision", ["fp16", "half", "", "AUTO"])
def test_invalid_precision_raises(precision: str) -> None:
    with pytest.raises(ValueError, match="precision"):
        choose_plan(StyleTransformNet(width=0.25), "cpu", precision)


@pytest.mark.parametrize("bad", [torch.rand(3, 8, 8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8)])
def test_invalid_input_raises(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError):
        run_network(StyleTransformNet(width=0.25), bad, choose_plan(StyleTransformNet(width=0.25), "cpu"))


def test_caller_model_is_untouched_and_weight_changes_are_seen() -> None:
    torch.manual_seed(0)
    model = StyleTransformNet(width=0.25, num_residual=1).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = photo("astronaut", 24)
    plan = choose_plan(model, "cpu", "float32")
    first = run_network(model, x, plan)
    assert model.training
    assert all(v.dtype == torch.float32 and v.is_contiguous() for v in model.state_dict().values())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():  # an in-place update, as an optimiser step makes
        model.tail.conv.bias.add_(0.5)
    second = run_network(model, x, plan)
    assert not torch.allclose(first, second)
    torch.testing.assert_close(second, _eager(model, x), atol=1e-4, rtol=1e-4)
    model.train()


@pytest.mark.parametrize("batch", [1, 3])
def test_batch_instance_norm_equals_instance_norm(batch: int) -> None:
    torch.manual_seed(0)
    norm = nn.InstanceNorm2d(8, affine=True)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = (torch.randn(batch, 8, 11, 7) * 3 + 2).contiguous(memory_format=torch.channels_last)
    fused = BatchInstanceNorm2d(norm, relu=True)
    with torch.no_grad():
        y = fused(x)
        torch.testing.assert_close(y, torch.relu(norm(x)), atol=1e-5, rtol=1e-5)
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_swap_keeps_running_stat_norms_and_fuses_relu() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4, affine=True), nn.ReLU(), nn.InstanceNorm2d(4, track_running_stats=True))
    swapped = swap_instance_norms(model)
    kinds = [type(m) for m in swapped]
    assert kinds == [nn.Conv2d, BatchInstanceNorm2d, nn.InstanceNorm2d]
    assert swapped[1].relu


def test_network_that_cannot_be_cast_falls_back_to_autocast(caplog: pytest.LogCaptureFixture) -> None:
    class PlainTensorKernel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.kernel = torch.randn(3, 3, 3, 3) * 0.1  # neither parameter nor buffer: .to(dtype) skips it

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) + F.conv2d(x, self.kernel, padding=1)

    model = PlainTensorKernel()
    x = photo("astronaut", 20)
    with caplog.at_level(logging.WARNING, logger="perceptual_studio.networks.inference"):
        y = run_network(model, x, InferencePlan(torch.device("cpu"), torch.bfloat16, channels_last=True))
    assert "autocast" in caplog.text
    torch.testing.assert_close(y, _eager(model, x), atol=5e-2, rtol=5e-2)
    # The result records what ran, after the fallback: not the cast the plan asked for.
    from perceptual_studio.networks.inference import infer

    run = infer(model, x, InferencePlan(torch.device("cpu"), torch.bfloat16, channels_last=True))
    assert run.plan.startswith("bfloat16 autocast") and "weights+activations" not in run.plan


def test_compile_failure_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch, style_net: nn.Module) -> None:
    def broken_compile(module: nn.Module, **kwargs):
        def fail(*args, **kw):
            raise RuntimeError("no compiler here")

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    x = photo("astronaut", 33)
    plan = choose_plan(style_net, "cpu", "float32", compile=True)
    assert "torch.compile" in plan.describe()
    torch.testing.assert_close(run_network(style_net, x, plan), _eager(style_net, x), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_compiled_matches_eager_on_new_shapes() -> None:
    torch.manual_seed(0)
    model = StyleTransformNet(width=0.25, num_residual=1).eval()
    plan = choose_plan(model, "cpu", "float32", compile=True)
    for shape in [(1, 3, 32, 32), (1, 3, 41, 27), (2, 3, 20, 24)]:  # dynamic shapes and a batch
        x = torch.rand(shape)
        torch.testing.assert_close(run_network(model, x, plan), _eager(model, x), atol=1e-4, rtol=1e-4)
