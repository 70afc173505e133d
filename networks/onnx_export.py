"""Export an image transformation network to ONNX, with dynamic batch, height and width.

The networks of Johnson, Alahi & Fei-Fei (2016) are fully convolutional, so one exported graph serves every
image size. The graph takes ``image`` (B, 3, H, W) float32 in [0, 1] and returns ``output`` (B, 3, H*s, W*s)
in [0, 1] (s = 1 for style networks, the scale factor for super-resolution), computed in float32.

Exporter: the TorchScript-based ``torch.onnx.export(..., dynamo=False)``; it needs no extra package (the
dynamo exporter wants ``onnxscript``) and traces sizes symbolically, so reflection padding, nearest resizing
to a size taken from another tensor, and the legacy network's crop all stay shape-generic. One deviation
from the model it exports: a transposed-conv upsampling stage that lands on an exact size (odd sizes) is
traced as the stride-2 transposed conv with ``output_padding=1`` followed by a crop, which gives the same
values (output padding only appends rows and columns) without baking the sample's size into the graph.
Reflection padding needs each side of every layer to exceed its pad, so inputs must be at least 16 px a side.
``onnx`` (metadata) and ``onnxruntime`` (:func:`check_onnx`) are optional dependencies.
"""
from __future__ import annotations

import copy
import io
import json
import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .layers import UpsampleConvNormReLU

logger = logging.getLogger(__name__)

INPUT_NAME = "image"
OUTPUT_NAME = "output"
DEFAULT_OPSET = 17
MIN_SIDE = 16


class _TraceableTransposeUpsample(nn.Module):
    """``UpsampleConvNormReLU(upsample="transpose")`` with the target size applied as a crop (module docstring)."""

    def __init__(self, stage: UpsampleConvNormReLU):
        super().__init__()
        self.conv, self.norm, self.relu = stage.conv, stage.norm, stage.relu

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        conv = self.conv
        y = F.conv_transpose2d(x, conv.weight, conv.bias, conv.stride, conv.padding, output_padding=1)
        if size is not None:
            y = y[..., : size[0], : size[1]]
        return self.relu(self.norm(y))


def exportable_copy(model: nn.Module) -> nn.Module:
    """A float32, CPU, eval-mode copy of ``model`` that traces to a shape-generic graph."""
    net = copy.deepcopy(model).float().cpu().eval().requires_grad_(False)
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, UpsampleConvNormReLU) and child.upsample == "transpose":
                setattr(module, name, _TraceableTransposeUpsample(child))
    return net


def _metadata(model: nn.Module, extra: dict[str, str] | None) -> dict[str, str]:
    """What travels with the graph: input/output conventions, the network's arguments and scale, and what the
    caller knows about it (``extra``: the registry id, architecture, task, style, loss network)."""
    meta: dict[str, str] = {"input": "image: (B, 3, H, W) float32 RGB in [0, 1]; H, W >= 16",
                            "output": "output: (B, 3, H*scale, W*scale) float32 RGB in [0, 1]",
                            "producer_note": "Perceptual Studio (Johnson, Alahi & Fei-Fei 2016)"}
    args = getattr(model, "config", None)
    if isinstance(args, dict):
        meta["architecture_args"] = json.dumps(args, sort_keys=True)
    meta["scale"] = str(int(getattr(model, "scale", 1) or 1))
    meta.update({key: str(value) for key, value in (extra or {}).items() if value is not None})
    return meta


def export_onnx(model: nn.Module, path: str | Path, *, opset: int = DEFAULT_OPSET, sample_size: int = 64,
                metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` as an ONNX graph at ``path`` (dynamic batch, height, width); returns the path.

    Metadata (conventions, arguments, and ``metadata``: registry id, architecture, loss network...) is added
    when the ``onnx`` package is installed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _trace(model, str(path), opset, sample_size)
    try:
        import onnx
    except ImportError:
        logger.info("onnx is not installed: %s has no metadata", path)
        return path
    graph = onnx.load(str(path))
    for key, value in _metadata(model, metadata).items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))
    return path


def onnx_bytes(model: nn.Module, *, opset: int = DEFAULT_OPSET, sample_size: int = 64) -> bytes:
    """``model`` as an in-memory ONNX graph (dynamic batch, height, width; no metadata): what an ONNX Runtime
    session of :mod:`networks.plan` loads."""
    buffer = io.BytesIO()
    _trace(model, buffer, opset, sample_size)
    return buffer.getvalue()


def _trace(model: nn.Module, target, opset: int, sample_size: int) -> None:
    net = exportable_copy(model)
    sample = torch.rand(1, 3, sample_size, sample_size)
    with warnings.catch_warnings():
        # Shape checks in forward() trace as constants (harmless: they only raise on bad input), and the
        # TorchScript exporter announces its deprecation; neither is actionable here.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (sample,), target, dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                          OUTPUT_NAME: {0: "batch", 2: "out_height", 3: "out_width"}},
        )


def onnx_metadata(path: str | Path) -> dict[str, str]:
    """The metadata properties of an exported graph (needs ``onnx``)."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def check_onnx(model: nn.Module, path: str | Path, inputs: list[torch.Tensor] | None = None) -> float:
    """Run the graph in onnxruntime on ``inputs`` (default: two odd-sized batches) and return the largest
    absolute difference from ``model`` in float32 eager. Needs ``onnxruntime``."""
    import onnxruntime

    net = copy.deepcopy(model).float().cpu().eval()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if inputs is None:
        generator = torch.Generator().manual_seed(0)
        inputs = [torch.rand(1, 3, 67, 45, generator=generator), torch.rand(2, 3, 32, 50, generator=generator)]
    worst = 0.0
    for x in inputs:
        if min(x.shape[-2:]) < MIN_SIDE:
            raise ValueError(f"inputs must be at least {MIN_SIDE} px a side, got {tuple(x.shape[-2:])}")
        with torch.inference_mode():
            expected = net(x.float())
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.float().numpy()})
        if tuple(got.shape) != tuple(expected.shape):
            raise AssertionError(f"onnxruntime gave shape {got.shape} for {tuple(x.shape)}, PyTorch {tuple(expected.shape)}")
        worst = max(worst, float((torch.from_numpy(got) - expected).abs().max()))
    return worst
