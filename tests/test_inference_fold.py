"""networks.inference.fold_batch_norms: eval-mode batch norms folded into the convs before them compute the
same function (the super-resolution network's prepared copy)."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from perceptual_studio.networks import StyleTransformNet, SuperResolutionNet
from perceptual_studio.networks.inference import choose_plan, fold_batch_norms, run_network


def _with_statistics(net: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    with torch.no_grad():
        net.train()
        for _ in range(3):  # running statistics that are not the identity
            net(torch.rand(2, 3, 24, 24))
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.mark.parametrize("make", [
    lambda: SuperResolutionNet(scale=4, channels=16, num_residual=2),
    lambda: SuperResolutionNet(scale=8, channels=8, num_residual=1, upsample="transpose"),
    lambda: StyleTransformNet(width=0.25, num_residual=2, norm="batch", upsample="transpose"),
], ids=["sr-x4", "sr-x8-transpose", "style-batch-norm"])
def test_folded_copy_computes_the_same_function(make) -> None:
    net = _with_statistics(make())
    folded = fold_batch_norms(copy.deepcopy(net))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 3, 21, 18)
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), net(x), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(run_network(net, x, choose_plan(net, "cpu", "float32")), net(x), atol=1e-5, rtol=1e-4)


def test_training_mode_and_instance_norms_are_left_alone() -> None:
    net = SuperResolutionNet(scale=4, channels=8, num_residual=1).train()
    assert sum(isinstance(m, nn.BatchNorm2d) for m in fold_batch_norms(copy.deepcopy(net)).modules()) == 5
    style = StyleTransformNet(width=0.25, num_residual=1).eval()
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in fold_batch_norms(copy.deepcopy(style)).modules()) == 7
