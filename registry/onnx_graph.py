"""Read a pytorch/examples ``TransformerNet`` exported to ONNX (the ONNX model zoo's fast-neural-style models)
into the state dict of ``networks.legacy.PyTorchExamplesTransformerNet``.

The weights are found by the graph's *structure*, never by initializer names: the zoo's 2019 exports
(PyTorch 1.x, opset 9) may name them by number, and an exporter can merge equal tensors behind ``Identity``
nodes. The image's path through the graph is walked from the input and must be exactly what
``forward_255`` computes, in its order: reflection ``Pad`` -> ``Conv`` -> ``InstanceNormalization``
(epsilon 1e-5) -> ``Relu`` ..., five residual blocks ending in an ``Add`` of the block's input, and two
nearest-neighbour x2 ``Upsample``/``Resize`` stages. Each convolution's and instance norm's parameters are
taken from its node's inputs, with shape checks against the PyTorch module they map onto; any other
operation on the image, or an attribute that changes the computation, is refused with one sentence
naming the node. Parameters (pads, scales) that an exporter computes from constants, or from the image's
shape as opset-9 exports of ``F.interpolate`` do, are folded with ``onnx``'s reference evaluator at the
shapes the walk has worked out.

The file is read without its external data (a graph that points at other files is refused, so nothing
outside it is ever opened) and after the same size check as any weights file.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import torch
from torch import nn

from perceptual_studio.networks.legacy import PyTorchExamplesTransformerNet

from .checks import _check_size
from .errors import ModelFormatError, UnsafeModelError
from .schema import max_weights_bytes

NETWORK = "pytorch/examples fast_neural_style TransformerNet"
# Shape arithmetic exporters emit to compute pads, scales and sizes; nothing here touches pixel values.
_FOLDABLE = frozenset({
    "Cast", "Ceil", "Concat", "Constant", "ConstantOfShape", "Div", "Floor", "Gather", "Mul", "Add", "Sub",
    "Range", "Reshape", "Shape", "Slice", "Squeeze", "Transpose", "Unsqueeze",
})
_MAX_FOLD_NODES = 64
_PROBE_SIDE = 64  # the size the walk assumes for a dynamic height/width (any multiple of 4 would do)
# Resize attribute pairs that give exactly nearest x2, out[i] = in[i // 2]: PyTorch's export (asymmetric,
# floor) and half-pixel centres, whose source coordinates i / 2 - 0.25 round to i // 2 unless floored/ceiled.
_NEAREST_X2 = frozenset({
    ("asymmetric", "floor"), ("asymmetric", "round_prefer_floor"),
    ("half_pixel", "round_prefer_floor"), ("half_pixel", "round_prefer_ceil"),
    ("pytorch_half_pixel", "round_prefer_floor"), ("pytorch_half_pixel", "round_prefer_ceil"),
})


@dataclass(frozen=True)
class OnnxTransformer:
    """What was read from the file: the network's state dict and what the graph says about itself."""

    state: dict[str, torch.Tensor]
    opset: int
    producer: str  # e.g. "pytorch 1.0", "" when the file does not say
    input_name: str
    output_name: str


@dataclass(frozen=True, eq=False)  # nodes compare by identity
class _Node:
    op: str
    label: str  # how messages name it
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]
    proto: Any  # onnx.NodeProto, with its inputs renamed through Identity aliases


@dataclass(frozen=True)
class _Step:
    kind: str  # "pad", "conv", "norm", "relu", "upsample", "residual", "add"
    what: str  # for messages: "the reflection padding before conv2"
    module: str = ""  # the PyTorch module whose parameters the node carries
    amount: int = 0  # pad width, or upsampling factor


def _plan(net: PyTorchExamplesTransformerNet) -> list[_Step]:
    """The image's path through ``forward_255``, in order (layer sizes come from the modules themselves)."""
    steps: list[_Step] = []

    def conv(name: str) -> None:
        layer = net.get_submodule(name)
        if getattr(layer, "upsample", None):
            steps.append(_Step("upsample", f"the nearest x{layer.upsample} upsampling before {name}", name,
                               layer.upsample))
        steps.append(_Step("pad", f"the reflection padding before {name}", name, layer.reflection_pad.padding[0]))
        steps.append(_Step("conv", f"convolution {name}", f"{name}.conv2d"))

    def norm(name: str, relu: bool = True) -> None:
        steps.append(_Step("norm", f"instance norm {name}", name))
        if relu:
            steps.append(_Step("relu", f"the ReLU after {name}"))

    for index in (1, 2, 3):
        conv(f"conv{index}")
        norm(f"in{index}")
    for block in (f"res{i}" for i in range(1, 6)):
        steps.append(_Step("residual", f"residual block {block}"))
        conv(f"{block}.conv1")
        norm(f"{block}.in1")
        conv(f"{block}.conv2")
        norm(f"{block}.in2", relu=False)
        steps.append(_Step("add", f"the skip connection of {block}", block))
    conv("deconv1")
    norm("in4")
    conv("deconv2")
    norm("in5")
    conv("deconv3")
    return steps


def _attrs(proto: Any) -> dict[str, Any]:
    from onnx import helper

    values = {}
    for attribute in proto.attribute:
        value = helper.get_attribute_value(attribute)
        values[attribute.name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return values


class _Graph:
    """One ONNX graph, Identity nodes collapsed, with the walk's shapes and the constant folding."""

    def __init__(self, model: Any, label: str) -> None:
        from onnx import TensorProto

        self.model, self.label = model, label
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.initializers = {t.name: t for t in graph.initializer}
        for tensor in graph.initializer:
            self._refuse_external(tensor, f"initializer {tensor.name!r}")
        alias: dict[str, str] = {}
        self.nodes: list[_Node] = []
        for index, proto in enumerate(graph.node):
            if proto.domain not in ("", "ai.onnx"):
                self.refuse(f"it uses the custom operator {proto.domain}.{proto.op_type}")
            if proto.op_type in ("Loop", "If", "Scan"):
                self.refuse(f"it contains control flow ({proto.op_type}), which TransformerNet never uses")
            attrs = _attrs(proto)
            if proto.op_type == "Constant" and "value" in attrs:
                self._refuse_external(attrs["value"], f"the Constant {proto.name or index!r}")
            inputs = tuple(alias.get(name, name) for name in proto.input)
            if proto.op_type == "Identity":
                alias[proto.output[0]] = inputs[0]
                continue
            renamed = type(proto)()
            renamed.CopyFrom(proto)
            del renamed.input[:]
            renamed.input.extend(inputs)
            node_label = f"node {proto.name!r} ({proto.op_type})" if proto.name else f"a {proto.op_type} node"
            self.nodes.append(_Node(proto.op_type, node_label, inputs, tuple(proto.output), attrs, renamed))
        self.producer = {out: node for node in self.nodes for out in node.outputs}
        self.users: dict[str, list[_Node]] = {}
        for node in self.nodes:
            for name in dict.fromkeys(node.inputs):
                if name:
                    self.users.setdefault(name, []).append(node)
        inputs = [v for v in graph.input if v.name not in self.initializers]
        if len(inputs) != 1 or len(graph.output) != 1:
            self.refuse(f"it has {len(inputs)} inputs and {len(graph.output)} outputs, not one image in and one out")
        self.input = inputs[0]
        self.output_name = alias.get(graph.output[0].name, graph.output[0].name)
        tensor_type = self.input.type.tensor_type
        if tensor_type.elem_type not in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE):
            self.refuse(f"its input {self.input.name!r} is not a floating-point image tensor")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if tensor_type.HasField("shape") and (len(dims) != 4 or dims[1] not in (None, 3)):
            self.refuse(f"its input {self.input.name!r} has shape {dims}, not (batch, 3, height, width)")
        # Static sizes (the zoo's files say 1x3x224x224) are used as they are: constants may depend on them.
        self.probe = (1, 3, *(d or _PROBE_SIDE for d in (dims[2:] if len(dims) == 4 else [None, None])))
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._constants: dict[str, np.ndarray] = {}

    def refuse(self, reason: str) -> NoReturn:
        raise ModelFormatError(f"{self.label} is not a {NETWORK} exported to ONNX: {reason}")

    def _refuse_external(self, tensor: Any, what: str) -> None:
        from onnx import TensorProto

        if tensor.data_location == TensorProto.EXTERNAL:
            raise UnsafeModelError(f"{self.label}: {what} is stored outside the file (ONNX external data); "
                                   "only self-contained .onnx files are imported")

    def constant(self, name: str, what: str) -> np.ndarray:
        """The value of a parameter input; refused unless it is fixed (it may depend on shapes, not pixels)."""
        if not name:
            self.refuse(f"{what} is missing")
        if name not in self._constants:
            self._constants[name] = self._evaluate(name, what)
        return self._constants[name]

    def _evaluate(self, name: str, what: str) -> np.ndarray:
        from onnx import numpy_helper

        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producer.get(name)
        if node is not None and node.op == "Constant" and "value" in node.attrs:
            return numpy_helper.to_array(node.attrs["value"])
        return self._fold(name, what)

    def _fold(self, name: str, what: str) -> np.ndarray:
        """Evaluate the shape arithmetic behind ``name`` with onnx's reference evaluator."""
        from onnx import helper, numpy_helper
        from onnx.reference import ReferenceEvaluator

        needed: dict[int, _Node] = {}
        leaves: dict[str, np.ndarray] = {}
        pending = [name]
        while pending:
            tensor = pending.pop()
            if not tensor or tensor in leaves or any(tensor in n.outputs for n in needed.values()):
                continue
            if tensor in self.initializers or tensor in self._constants:
                leaves[tensor] = self.constant(tensor, what)
                continue
            node = self.producer.get(tensor)
            if node is None:
                self.refuse(f"{what} is computed from the image itself, not from constants")
            if node.op == "Shape" and node.inputs[0] in self.shapes:
                shape = np.array(self.shapes[node.inputs[0]], dtype=np.int64)
                leaves[tensor] = shape[node.attrs.get("start", 0):node.attrs.get("end", len(shape))]
                continue
            if node.op not in _FOLDABLE:
                self.refuse(f"{what} is computed by {node.label}, which is not fixed shape arithmetic")
            needed[id(node)] = node
            if len(needed) > _MAX_FOLD_NODES:
                self.refuse(f"{what} takes more than {_MAX_FOLD_NODES} operations to compute")
            pending.extend(node.inputs)
        order = [n for n in self.nodes if id(n) in needed]  # the file's order is topological
        graph = helper.make_graph([n.proto for n in order], "fold", [], [helper.make_empty_tensor_value_info(name)],
                                  initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in leaves.items()])
        folded = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        try:
            (value,) = ReferenceEvaluator(folded).run(None, {})
        except Exception as exc:  # noqa: BLE001 - any failure of the arithmetic means the graph is not ours
            self.refuse(f"{what} could not be computed ({type(exc).__name__}: {exc})")
        return np.asarray(value)

    def next_node(self, tensor: str, step: _Step, ops: tuple[str, ...], branch: bool) -> _Node:
        """The one operation the image goes through next (``branch``: a residual block's input, which also
        feeds the block's Add). Shape nodes only read sizes and are not on the image's path."""
        users = [u for u in self.users.get(tensor, []) if u.op != "Shape"]
        found = [u for u in users if u.op in ops]
        if not found:
            after = self.producer[tensor].label if tensor in self.producer else f"the input {tensor!r}"
            got = ", ".join(u.label for u in users) or "nothing"
            self.refuse(f"after {after} comes {got}, where TransformerNet has {step.what} ({'/'.join(ops)})")
        others = [u for u in users if u is not found[0]]
        if branch and (len(others) != 1 or others[0].op != "Add"):
            self.refuse(f"the input of {step.what} should feed it and the block's Add, but feeds "
                        f"{', '.join(u.label for u in users)}")
        if not branch and others:
            self.refuse(f"the input of {step.what} also feeds {', '.join(u.label for u in others)}, which "
                        "TransformerNet does not compute")
        return found[0]


def _integers(value: Any) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _check_pad(graph: _Graph, node: _Node, step: _Step, shape: tuple[int, ...]) -> tuple[int, ...]:
    mode = node.attrs.get("mode", "constant")
    if mode != "reflect":
        graph.refuse(f"{node.label} pads with mode {mode!r}; {step.what} reflects")
    pads = node.attrs["pads"] if "pads" in node.attrs else graph.constant(
        node.inputs[1] if len(node.inputs) > 1 else "", f"the pads of {node.label}")
    pads = _integers(pads)
    if len(node.inputs) > 3 and node.inputs[3]:  # opset 18: pads for the listed axes only
        axes = [a % 4 for a in _integers(graph.constant(node.inputs[3], f"the axes of {node.label}"))]
        full = [0] * 8
        for i, axis in enumerate(axes):
            full[axis], full[axis + 4] = pads[i], pads[i + len(axes)]
        pads = full
    p = step.amount
    if pads != [0, 0, p, p, 0, 0, p, p]:
        graph.refuse(f"{node.label} pads by {pads}; {step.what} pads {p} px on each side of height and width")
    return shape[0], shape[1], shape[2] + 2 * p, shape[3] + 2 * p


def _tensor(graph: _Graph, name: str, what: str, expected: torch.Tensor) -> torch.Tensor:
    array = graph.constant(name, what)
    if tuple(array.shape) != tuple(expected.shape):
        graph.refuse(f"{what} has shape {list(array.shape)}, TransformerNet's has {list(expected.shape)}")
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        graph.refuse(f"{what} is not a finite floating-point tensor")
    return torch.from_numpy(np.array(array, dtype=np.float32))


def _check_conv(graph: _Graph, node: _Node, step: _Step, net: nn.Module, shape: tuple[int, ...],
                state: dict[str, torch.Tensor]) -> tuple[int, ...]:
    conv = net.get_submodule(step.module)
    k, s = conv.kernel_size[0], conv.stride[0]
    a = node.attrs
    expected = {"strides": [s, s], "dilations": [1, 1], "pads": [0, 0, 0, 0], "group": 1, "kernel_shape": [k, k]}
    for key, value in expected.items():
        if key in a and (list(a[key]) if isinstance(value, list) else a[key]) != value:
            graph.refuse(f"{node.label} ({step.what}) has {key}={a[key]}, TransformerNet's has {value}")
    if a.get("auto_pad", "NOTSET") != "NOTSET":
        graph.refuse(f"{node.label} ({step.what}) pads automatically ({a['auto_pad']}); TransformerNet pads by reflection")
    if len(node.inputs) < 3 or not node.inputs[2]:
        graph.refuse(f"{node.label} ({step.what}) has no bias")
    state[f"{step.module}.weight"] = _tensor(graph, node.inputs[1], f"the weight of {step.what}", conv.weight)
    state[f"{step.module}.bias"] = _tensor(graph, node.inputs[2], f"the bias of {step.what}", conv.bias)
    return shape[0], conv.out_channels, (shape[2] - k) // s + 1, (shape[3] - k) // s + 1


def _check_norm(graph: _Graph, node: _Node, step: _Step, net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    norm = net.get_submodule(step.module)
    epsilon = float(node.attrs.get("epsilon", 1e-5))
    if not math.isclose(epsilon, norm.eps, rel_tol=1e-3):  # stored as float32: 1e-5 reads 9.99999975e-06
        graph.refuse(f"{node.label} ({step.what}) has epsilon {epsilon:g}, TransformerNet's has {norm.eps:g}")
    state[f"{step.module}.weight"] = _tensor(graph, node.inputs[1], f"the scale of {step.what}", norm.weight)
    state[f"{step.module}.bias"] = _tensor(graph, node.inputs[2], f"the shift of {step.what}", norm.bias)


def _check_upsample(graph: _Graph, node: _Node, step: _Step, shape: tuple[int, ...]) -> tuple[int, ...]:
    a, f = node.attrs, step.amount
    if a.get("mode", "nearest") != "nearest":
        graph.refuse(f"{node.label} resizes with mode {a.get('mode')!r}; {step.what} is nearest-neighbour")
    target = (shape[0], shape[1], shape[2] * f, shape[3] * f)
    if node.op == "Upsample":
        scales = a["scales"] if "scales" in a else graph.constant(
            node.inputs[1] if len(node.inputs) > 1 else "", f"the scales of {node.label}")
        sizes = None
    else:
        if graph.opset >= 11:
            pair = (a.get("coordinate_transformation_mode", "half_pixel"), a.get("nearest_mode", "round_prefer_floor"))
            if pair not in _NEAREST_X2:
                graph.refuse(f"{node.label} maps coordinates with {pair[0]}/{pair[1]}, which is not nearest x{f}")
        index = 2 if graph.opset >= 11 else 1
        scale_name = node.inputs[index] if len(node.inputs) > index else ""
        size_name = node.inputs[3] if graph.opset >= 11 and len(node.inputs) > 3 else ""
        scales = graph.constant(scale_name, f"the scales of {node.label}") if scale_name else None
        if scales is not None and np.asarray(scales).size == 0:
            scales = None
        sizes = graph.constant(size_name, f"the sizes of {node.label}") if scales is None and size_name else None
    axes = list(a.get("axes", [0, 1, 2, 3]))
    if scales is not None:
        wanted = [float(f) if axis % 4 >= 2 else 1.0 for axis in axes]
        if [float(v) for v in np.asarray(scales).reshape(-1)] != wanted:
            graph.refuse(f"{node.label} scales by {np.asarray(scales).tolist()}; {step.what} scales by {wanted}")
    elif sizes is not None:
        wanted_sizes = [target[axis % 4] for axis in axes]
        if _integers(sizes) != wanted_sizes:
            graph.refuse(f"{node.label} resizes to {_integers(sizes)} where {step.what} gives {wanted_sizes}")
    else:
        graph.refuse(f"{node.label} has neither scales nor sizes")
    return target


def map_graph(model: Any, label: str) -> OnnxTransformer:
    """Walk ``model`` (an ``onnx.ModelProto``) along ``forward_255``; ``label`` names it in messages."""
    graph = _Graph(model, label)
    net = PyTorchExamplesTransformerNet()
    tensor, shape = graph.input.name, graph.probe
    graph.shapes[tensor] = shape
    skips: list[str] = []
    state: dict[str, torch.Tensor] = {}
    ops = {"pad": ("Pad",), "conv": ("Conv",), "norm": ("InstanceNormalization",), "relu": ("Relu",),
           "upsample": ("Upsample", "Resize"), "add": ("Add",)}
    for step in _plan(net):
        if step.kind == "residual":
            skips.append(tensor)
            continue
        node = graph.next_node(tensor, step, ops[step.kind], branch=bool(skips) and skips[-1] == tensor)
        if step.kind == "add":
            skip = skips.pop()
            if sorted(node.inputs) != sorted([tensor, skip]):
                graph.refuse(f"{node.label} does not add {step.module}'s input to its output ({step.what})")
        elif step.kind == "pad":
            shape = _check_pad(graph, node, step, shape)
        elif step.kind == "conv":
            shape = _check_conv(graph, node, step, net, shape, state)
        elif step.kind == "norm":
            _check_norm(graph, node, step, net, state)
        elif step.kind == "upsample":
            shape = _check_upsample(graph, node, step, shape)
        tensor = node.outputs[0]
        graph.shapes[tensor] = shape
    if tensor != graph.output_name:
        after = ", ".join(u.label for u in graph.users.get(tensor, [])) or "another tensor"
        graph.refuse(f"the last convolution's output is not the graph's output (it goes on to {after})")
    producer = f"{model.producer_name} {model.producer_version}".strip()
    return OnnxTransformer(state, graph.opset, producer, graph.input.name, model.graph.output[0].name)


def read_onnx_transformer(path: str | os.PathLike) -> OnnxTransformer:
    """Read an ONNX file of the pytorch/examples network; raise ``ModelFormatError`` with the reason if it is not."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such file")
    _check_size(path, max_weights_bytes(), "weights")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends: the file is not ONNX
        raise ModelFormatError(f"{path.name} is not a readable ONNX file ({type(exc).__name__}: "
                               f"{str(exc).strip() or 'cannot parse it'})") from None
    if not model.graph.node:
        raise ModelFormatError(f"{path.name} is not a readable ONNX file: it holds no graph (corrupt or not ONNX)")
    return map_graph(model, path.name)
