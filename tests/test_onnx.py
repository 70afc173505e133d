"""ONNX export (networks/onnx_export.py, ``python -m registry export-onnx``): onnxruntime matches PyTorch.

onnx and onnxruntime are optional dependencies, listed in requirements-dev.txt (so CI installs them); without
them the export-and-run tests skip with the reason.
"""
from __future__ import annotations

import importlib.util

import pytest
import torch
from torch import nn

from benchmarks.speed import fit_network, photo, recolour
from perceptual_studio.networks import StyleTransformNet, SuperResolutionNet
from perceptual_studio.networks.legacy import PyTorchExamplesTransformerNet
from perceptual_studio.networks.onnx_export import exportable_copy

MAX_ABS_DIFF = 1e-4
needs_onnxruntime = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnx/onnxruntime not installed (optional; `pip install -r requirements-dev.txt` installs them)",
)


def _fitted(make) -> nn.Module:
    torch.manual_seed(0)
    net = make()
    x = photo("astronaut", 32)
    if isinstance(net, SuperResolutionNet):
        return fit_network(net, x[..., ::net.scale, ::net.scale], x, steps=3)
    return fit_network(net, x, recolour(x), steps=3)


ARCHITECTURES = {
    "style-resize": lambda: StyleTransformNet(width=0.25, num_residual=1),
    "style-transpose": lambda: StyleTransformNet(width=0.25, num_residual=1, upsample="transpose"),
    "sr-x4-batchnorm": lambda: SuperResolutionNet(scale=4, channels=8, num_residual=1),
    "sr-x8-transpose": lambda: SuperResolutionNet(scale=8, channels=8, num_residual=1, upsample="transpose"),
    # The shipped SR models' layout: sub-pixel convolution over a bicubic upscale.
    "sr-x4-shuffle-bicubic": lambda: SuperResolutionNet(scale=4, channels=8, num_residual=1, norm="none",
                                                        upsample="shuffle", residual="bicubic"),
    "pytorch-examples": PyTorchExamplesTransformerNet,
}


@pytest.mark.parametrize("name", ["style-transpose", "sr-x8-transpose", "sr-x4-shuffle-bicubic"])
def test_the_traceable_copy_computes_the_same_function(name: str) -> None:
    net = _fitted(ARCHITECTURES[name]).eval()
    copy = exportable_copy(net)
    for shape in [(1, 3, 37, 51), (2, 3, 20, 33)]:
        x = torch.rand(shape)
        with torch.inference_mode():
            torch.testing.assert_close(copy(x), net(x), atol=1e-6, rtol=1e-6)


@needs_onnxruntime
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_registry_model_exports_and_runs_in_onnxruntime(name: str, tmp_path, capsys) -> None:
    from perceptual_studio.networks.onnx_export import check_onnx, onnx_metadata
    from perceptual_studio.registry import api
    from perceptual_studio.registry.__main__ import main

    net = _fitted(ARCHITECTURES[name]).eval()
    architecture = "pytorch-examples-transformer" if name == "pytorch-examples" else None
    api.save_model(net, "tiny", architecture=architecture, training={"loss_network": "vgg16:random(seed=0)"},
                   **({"style": "tiny"} if not isinstance(net, SuperResolutionNet) else {}))
    out = tmp_path / "tiny.onnx"
    assert main(["export-onnx", "tiny", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "exported local:tiny" in printed and "max abs difference" in printed

    loaded = api.load_model("local:tiny", "cpu")
    generator = torch.Generator().manual_seed(1)
    inputs = [torch.rand(1, 3, 67, 45, generator=generator), torch.rand(2, 3, 32, 50, generator=generator),
              torch.rand(1, 3, 128, 96, generator=generator)]
    assert check_onnx(loaded.network, out, inputs) < MAX_ABS_DIFF
    meta = onnx_metadata(out)
    assert meta["model_id"] == "local:tiny"
    assert meta["loss_network"] == "vgg16:random(seed=0)"
    assert meta["scale"] == str(getattr(net, "scale", 1))


@needs_onnxruntime
def test_unknown_model_is_a_one_line_error(tmp_path, capsys) -> None:
    from perceptual_studio.registry.__main__ import main

    assert main(["export-onnx", "no-such-model", str(tmp_path / "x.onnx")]) == 1
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()
