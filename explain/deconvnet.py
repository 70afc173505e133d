"""Deconvnet projection of one activation back to pixels (Zeiler & Fergus, ECCV 2014, Sec. 2.1).

The forward pass records the max-pool "switches" (argmax locations) through forward hooks. To project an
activation we keep it, zero the rest of its layer and go back down: unpool through the switches, rectify,
and filter with the transposed filters of each conv layer, down to the (normalised) input. As in the
paper, conv biases are not used on the way down. The hook object follows captum's
``guided_backprop_deconvnet.py``: hooks go on in ``__enter__`` and always come off, also on error.

Receptive fields are worked out analytically from each layer's kernel, stride, padding and dilation
(Araujo et al., "Computing Receptive Fields of Convolutional Neural Networks", Distill 2019).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from perceptual_studio.networks.vgg import LAYER_NAMES, LossNetwork

Layer = Union[str, int]

# Modules that act as the identity at inference, so they are skipped on the way down.
_PASS_THROUGH = (nn.Identity, nn.Dropout)


@dataclass(frozen=True)
class ReceptiveField:
    """Where a unit of a layer looks in the input, in input pixels (square kernels)."""

    size: int  # side of the field
    stride: int  # input pixels between neighbouring units
    offset: int  # top/left input coordinate of unit (0, 0)'s field; negative: it starts in the padding

    def box(self, y: int, x: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right), bottom/right exclusive, of unit (y, x); may extend past the image."""
        top, left = self.offset + y * self.stride, self.offset + x * self.stride
        return top, left, top + self.size, left + self.size


def _pair(value: int | tuple[int, ...], what: str, layer: str) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str) or len(set(value)) != 1:
        raise ValueError(f"layer {layer}: only square, numeric {what} is supported, got {value!r}")
    return int(value[0])


def receptive_fields(features: nn.Sequential, names: Sequence[str]) -> dict[str, ReceptiveField]:
    """The receptive field of every layer of a Conv2d/ReLU/MaxPool2d sequence, by name."""
    size, jump, centre = 1, 1, 0.0  # centre: input coordinate of unit 0's field centre
    fields: dict[str, ReceptiveField] = {}
    for name, module in zip(names, features):
        if isinstance(module, (nn.Conv2d, nn.MaxPool2d)):
            kernel = _pair(module.kernel_size, "kernel", name)
            stride = _pair(module.stride, "stride", name)
            padding = _pair(module.padding, "padding", name)
            dilation = _pair(module.dilation, "dilation", name)
            span = dilation * (kernel - 1)
            centre += (span / 2 - padding) * jump
            size += span * jump
            jump *= stride
        fields[name] = ReceptiveField(size, jump, int(round(centre - (size - 1) / 2)))
    return fields


def strongest_position(feature_map: torch.Tensor) -> tuple[int, int]:
    """(y, x) of the largest value of a (H, W) map (the first one on ties)."""
    if feature_map.ndim != 2:
        raise ValueError(f"expected a (H, W) feature map, got shape {tuple(feature_map.shape)}")
    flat = int(torch.argmax(feature_map).item())
    return divmod(flat, feature_map.shape[1])


def to_display(projection: torch.Tensor) -> torch.Tensor:
    """Map a projection to [0, 1] per image with zero at mid-grey, as the paper's figures show them."""
    scale = projection.detach().abs().flatten(1).amax(dim=1).clamp_min(1e-12)
    return (0.5 + projection / (2 * scale.view(-1, *[1] * (projection.ndim - 1)))).clamp(0, 1)


def conv_transpose(signal: torch.Tensor, conv: nn.Conv2d, input_size: Sequence[int]) -> torch.Tensor:
    """Filter with the transposed filters of ``conv`` (its adjoint, without bias) to ``input_size``."""
    output_padding = []
    for axis in (0, 1):
        natural = (
            (signal.shape[-2 + axis] - 1) * conv.stride[axis]
            - 2 * conv.padding[axis]
            + conv.dilation[axis] * (conv.kernel_size[axis] - 1)
            + 1
        )
        output_padding.append(int(input_size[-2 + axis]) - natural)
    return F.conv_transpose2d(
        signal, conv.weight, None, conv.stride, conv.padding, tuple(output_padding), conv.groups, conv.dilation
    )


class Deconvnet:
    """Deconvnet over an ``nn.Sequential`` of Conv2d / ReLU / MaxPool2d layers, used as a context manager.

    ``model`` is that sequence, or a module holding it as ``.features`` (e.g. :class:`LossNetwork`), whose
    input convention (``normalize_input``, or ``mean``/``std`` buffers), when present, is applied first;
    projections are then in that normalised input space, with the channels put back in RGB order (the
    Oxford weights see BGR). Layers are named by ``layer_names`` (default: VGG-16's ``conv1_1`` ... for a
    LossNetwork, else ``"0"``, ``"1"``, ...) or addressed by index.

    In-place ReLUs are fine: the input is copied before the first layer, the hooks take sizes and switches
    at call time, the forward pass stops at the projected layer, and the way down uses out-of-place ops.
    The hooks record only this object's own forward pass, but they sit on the shared modules, so two
    threads must not use Deconvnets on the same network at once.

        with Deconvnet(loss_network) as deconv:
            pixels = deconv.project(image, "relu3_3", channel=17)
    """

    def __init__(self, model: nn.Module, layer_names: Sequence[str] | None = None):
        features = getattr(model, "features", model)
        if not isinstance(features, nn.Sequential):
            raise TypeError(f"expected an nn.Sequential or a module with one as .features, got {type(model).__name__}")
        if layer_names is None:
            layer_names = LAYER_NAMES[: len(features)] if isinstance(model, LossNetwork) else [str(i) for i in range(len(features))]
        if len(layer_names) != len(features):
            raise ValueError(f"{len(layer_names)} layer names for {len(features)} layers")
        for name, module in zip(layer_names, features):
            if isinstance(module, nn.Conv2d) and (module.padding_mode != "zeros" or isinstance(module.padding, str)):
                raise ValueError(f"layer {name}: only numeric zero padding can be transposed")
            if not isinstance(module, (nn.Conv2d, nn.ReLU, nn.MaxPool2d, *_PASS_THROUGH)):
                raise ValueError(f"layer {name}: a deconvnet cannot go back through {type(module).__name__}")
        self.features = features
        self.layer_names: tuple[str, ...] = tuple(layer_names)
        mean, std = getattr(model, "mean", None), getattr(model, "std", None)
        self._mean = mean if isinstance(mean, torch.Tensor) else None
        self._std = std if isinstance(std, torch.Tensor) else None
        # A LossNetwork knows its weights' whole convention (channel order and scale too, e.g. Caffe's BGR 0-255).
        self._normalize_input = getattr(model, "normalize_input", None)
        order = getattr(getattr(model, "convention", None), "channel_order", (0, 1, 2))
        self._to_rgb = [order.index(c) for c in range(3)] if tuple(order) != (0, 1, 2) else None
        self.receptive_fields = receptive_fields(features, self.layer_names)
        self._handles: list[RemovableHandle] = []
        self._entered = False
        self._reset()

    def _reset(self) -> None:
        self._recording = False
        self._switches: dict[int, torch.Tensor] = {}
        self._input_sizes: dict[int, torch.Size] = {}
        self._activation: torch.Tensor | None = None
        self._depth: int | None = None

    # Context management -------------------------------------------------------------------------------

    def __enter__(self) -> "Deconvnet":
        if self._entered:
            raise RuntimeError("this Deconvnet is already in use; leave its `with` block first")
        try:
            for index, module in enumerate(self.features):
                self._handles.append(module.register_forward_hook(self._make_hook(index)))
        except BaseException:
            self._remove_hooks()
            raise
        self._entered = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._remove_hooks()

    def _remove_hooks(self) -> None:
        try:
            while self._handles:
                self._handles.pop().remove()
        finally:
            self._handles.clear()
            self._entered = False
            self._reset()

    def _make_hook(self, index: int):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor | tuple) -> None:
            # Only our own forward pass is recorded, not other code running the same modules meanwhile.
            if not self._recording:
                return
            # Sizes and switches are taken now: a later in-place ReLU may overwrite these tensors.
            self._input_sizes[index] = inputs[0].shape
            if isinstance(module, nn.MaxPool2d):
                if module.return_indices:
                    self._switches[index] = output[1]
                else:
                    _, self._switches[index] = F.max_pool2d(
                        inputs[0], module.kernel_size, module.stride, module.padding, module.dilation,
                        module.ceil_mode, return_indices=True,
                    )

        return hook

    # Layers ---------------------------------------------------------------------------------------------

    def index(self, layer: Layer) -> int:
        if isinstance(layer, int) and not isinstance(layer, bool):
            if not 0 <= layer < len(self.features):
                raise ValueError(f"layer index {layer} is outside 0..{len(self.features) - 1}")
            return layer
        if layer not in self.layer_names:
            raise ValueError(f"unknown layer {layer!r}; this network has {', '.join(self.layer_names)}")
        return self.layer_names.index(layer)

    def receptive_field(self, layer: Layer) -> ReceptiveField:
        return self.receptive_fields[self.layer_names[self.index(layer)]]

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """The network's input for ``image`` in [0, 1]: always a new tensor, so in-place layers cannot touch the caller's."""
        if self._normalize_input is not None:
            return self._normalize_input(image.clone())
        if self._mean is None or self._std is None:
            return image.clone()
        return (image - self._mean.to(image)) / self._std.to(image)

    # Projection -----------------------------------------------------------------------------------------

    def _require_entered(self) -> None:
        if not self._entered:
            raise RuntimeError("use the Deconvnet inside a `with` block, so its hooks are removed afterwards")

    @torch.no_grad()
    def forward(self, image: torch.Tensor, layer: Layer) -> torch.Tensor:
        """Run (N, 3, H, W) images in [0, 1] up to ``layer``, record the switches, return its activations."""
        self._require_entered()
        if image.ndim != 4:
            raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(image.shape)}")
        index = self.index(layer)
        self._reset()
        parameter = next(self.features.parameters(), None)
        if parameter is not None:
            image = image.to(parameter.device)
        h = self.normalise(image.float())
        self._recording = True
        try:
            # Stopping at the target means no in-place ReLU after it can overwrite what we return.
            for module in self.features[: index + 1]:
                h = module(h)
                if isinstance(h, tuple):  # MaxPool2d(return_indices=True)
                    h = h[0]
        finally:
            self._recording = False
        self._depth, self._activation = index, h
        return h

    @torch.no_grad()
    def down(self, signal: torch.Tensor, items: torch.Tensor | Sequence[int] | None = None) -> torch.Tensor:
        """Project a signal at the last :meth:`forward`'s layer back to input space.

        ``signal`` has that layer's shape; with ``items``, row i uses the switches of forward image
        ``items[i]``, so several activations of one image project in one batch.
        """
        self._require_entered()
        if self._depth is None or self._activation is None:
            raise RuntimeError("call forward() before down()")
        shape = self._activation.shape
        if signal.shape[1:] != shape[1:]:
            raise ValueError(f"signal shape {tuple(signal.shape)} does not match the layer's {tuple(shape)}")
        if items is not None:
            items = torch.as_tensor(items, dtype=torch.long, device=self._activation.device)
            if items.shape != (signal.shape[0],):
                raise ValueError(f"items needs one image index per signal row, got shape {tuple(items.shape)}")
        elif signal.shape[0] != shape[0]:
            raise ValueError("give items= when the signal's batch differs from the forward batch")
        r = signal.to(self._activation)
        for index in range(self._depth, -1, -1):
            module = self.features[index]
            size = self._input_sizes[index]
            if isinstance(module, nn.ReLU):
                r = F.relu(r)
            elif isinstance(module, nn.MaxPool2d):
                switches = self._switches[index] if items is None else self._switches[index][items]
                r = F.max_unpool2d(r, switches, module.kernel_size, module.stride, module.padding, output_size=size[-2:])
            elif isinstance(module, nn.Conv2d):
                r = conv_transpose(r, module, size)
        return r[:, self._to_rgb] if self._to_rgb is not None and r.shape[1] == 3 else r

    def project(
        self, image: torch.Tensor, layer: Layer, channel: int, position: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Project one activation of ``layer`` for one (1, 3, H, W) image to a (1, 3, H, W) input-space tensor.

        ``position`` is the (y, x) of the activation in its feature map; by default the map's strongest.
        """
        if image.ndim != 4 or image.shape[0] != 1:
            raise ValueError(f"expected one image of shape (1, C, H, W), got {tuple(image.shape)}")
        activation = self.forward(image, layer)
        if not 0 <= channel < activation.shape[1]:
            raise ValueError(f"channel {channel} is outside 0..{activation.shape[1] - 1} for layer {layer}")
        y, x = strongest_position(activation[0, channel]) if position is None else position
        if not (0 <= y < activation.shape[2] and 0 <= x < activation.shape[3]):
            raise ValueError(f"position {(y, x)} is outside the {tuple(activation.shape[2:])} feature map")
        signal = torch.zeros_like(activation)
        signal[0, channel, y, x] = activation[0, channel, y, x]
        return self.down(signal)

