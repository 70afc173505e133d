"""Overlapping tiles with linear blending (networks/tiling.py): same result as one pass, no seams."""
from __future__ import annotations

import math

import pytest
import torch

from perceptual_studio.networks import SuperResolutionNet
from perceptual_studio.networks.tiling import run_tiled, tile_starts


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a - b).pow(2).mean().item()
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


@pytest.mark.parametrize("length, tile, overlap", [(10, 16, 4), (16, 16, 4), (17, 16, 4), (100, 32, 8), (1000, 128, 32)])
def test_tiles_cover_the_length_with_at_least_the_overlap(length, tile, overlap) -> None:
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and min(length, starts[-1] + tile) == length
    for a, b in zip(starts, starts[1:]):
        assert b > a and a + tile - b >= overlap


def test_pointwise_function_is_reproduced_exactly() -> None:
    x = torch.rand(2, 3, 70, 45)
    out = run_tiled(lambda t: t * 2 + 1, x, tile=16, overlap=8)
    assert torch.allclose(out, x * 2 + 1, atol=1e-6)


@pytest.mark.parametrize("scale", [4, 8])
def test_tiled_batch_norm_sr_network_matches_one_pass(scale) -> None:
    torch.manual_seed(0)
    net = SuperResolutionNet(scale=scale, channels=16, num_residual=2, norm="batch")
    with torch.no_grad():
        net.train()
        for _ in range(3):  # running statistics that are not the identity
            net(torch.rand(2, 3, 24, 24))
    net.eval()
    x = torch.rand(1, 3, 75, 61)
    with torch.no_grad():
        whole = net(x)
        tiled = run_tiled(net, x, tile=32, overlap=24, scale=scale)
    assert tiled.shape == whole.shape
    assert psnr(tiled, whole) >= 40


def test_small_inputs_run_in_one_piece_and_bad_arguments_are_refused() -> None:
    calls = []

    def fn(t: torch.Tensor) -> torch.Tensor:
        calls.append(t.shape)
        return t

    run_tiled(fn, torch.rand(1, 3, 20, 20), tile=32, overlap=8)
    assert calls == [(1, 3, 20, 20)]
    with pytest.raises(ValueError, match="overlap"):
        run_tiled(fn, torch.rand(1, 3, 40, 40), tile=16, overlap=16)
    with pytest.raises(ValueError, match="scale"):
        run_tiled(fn, torch.rand(1, 3, 40, 40), tile=16, overlap=4, scale=2)
