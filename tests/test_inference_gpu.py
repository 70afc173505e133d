"""GPU-only checks of the inference levers that cannot be exercised on a CPU (skipped without CUDA):
CUDA graphs replay the eager answer, and tiling with whole-image statistics matches one pass on the GPU."""
from __future__ import annotations

import pytest
import torch

from benchmarks.speed import fitted_style_network, photo, psnr
from perceptual_studio.networks.inference import choose_plan, run_network
from perceptual_studio.networks.tiling import run_network_tiled

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(scope="module")
def style_net():
    return fitted_style_network(size=64, steps=10)


def test_cuda_graphs_replay_the_eager_answer(style_net) -> None:
    plan = choose_plan(style_net, "cuda")
    graphs = choose_plan(style_net, "cuda", cuda_graphs=True)
    assert graphs.cuda_graphs and "CUDA graphs" in graphs.describe()
    for size in (64, 96, 64):  # a new shape is captured, a known one replayed
        x = photo("astronaut", size).cuda()
        torch.testing.assert_close(run_network(style_net, x, graphs), run_network(style_net, x, plan), atol=1e-3, rtol=1e-3)
    assert psnr(run_network(style_net, x, graphs), style_net.cuda().eval()(x).float()) >= 40


def test_tiled_on_the_gpu_matches_one_pass(style_net) -> None:
    plan = choose_plan(style_net, "cuda", "float32")
    x = photo("coffee", 211)[..., :203, :157]
    whole = run_network(style_net, x.cuda(), plan).cpu()
    assert psnr(run_network_tiled(style_net, x, plan, tile=64), whole) >= 60
