"""8-bit storage of shipped style weights (registry/int8_weights.py): a quarter of the size, the same outputs to
the eye, refused with a clear message when damaged, and marked so an older registry refuses rather than misreads."""
from __future__ import annotations

import json

import pytest
import torch

from perceptual_studio import networks
from perceptual_studio.imaging.metrics import psnr_y
from perceptual_studio.registry import api
from perceptual_studio.registry.errors import ModelFormatError


@pytest.fixture
def saved(tmp_path, env):
    torch.manual_seed(0)
    net = networks.StyleTransformNet(width=0.5, num_residual=2).eval()
    with torch.no_grad():  # instance-norm affine parameters that are not the identity
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    folder = tmp_path / "m"
    api.save_model(net, folder, style="s", training={"loss_network": "vgg16:imagenet-caffe"})
    return net, folder


def test_int8_storage_is_a_quarter_of_the_size_and_draws_the_same_picture(saved) -> None:
    from perceptual_studio.train.shipped.shipping import INT8_SENTENCE, store_int8

    net, folder = saved
    size = (folder / "model.safetensors").stat().st_size
    assert store_int8(folder) and not store_int8(folder)  # idempotent
    assert (folder / "model.safetensors").stat().st_size < 0.3 * size
    assert json.loads((folder / "config.json").read_text())["format_version"] == 2
    assert INT8_SENTENCE in (folder / "README.md").read_text()
    loaded = api.load_model(str(folder), "cpu").network
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        # A random network on noise is the hard case (trained ones: 54-57 dB, benchmarks/int8_fidelity.py).
        assert psnr_y(loaded(x).clamp(0, 1), net(x).clamp(0, 1)) > 35


def test_int8_weights_without_their_scales_are_refused_by_name(saved) -> None:
    from safetensors.torch import load_file, save_file

    from perceptual_studio.train.shipped.shipping import store_int8

    _, folder = saved
    store_int8(folder)
    weights = folder / "model.safetensors"
    save_file(load_file(str(weights)), str(weights), metadata={"stored_dtype": "int8", "int8_scales": "{}"})
    with pytest.raises(ModelFormatError, match="m: the int8 tensor .* has no matching scales"):
        api.load_model(str(folder), "cpu")
    save_file(load_file(str(weights)), str(weights))  # no metadata at all: raw integers are never used as weights
    with pytest.raises(ModelFormatError, match="int8 tensors without their scales"):
        api.load_model(str(folder), "cpu")


def test_a_newer_format_than_this_registry_reads_says_update(saved) -> None:
    _, folder = saved
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "format_version": 3}))
    with pytest.raises(ModelFormatError, match="reads up to 2: update perceptual-studio"):
        api.load_model(str(folder), "cpu")
