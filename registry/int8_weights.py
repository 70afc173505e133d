"""8-bit storage of a model's weights: each conv and linear weight as int8 with one float scale per output channel
(symmetric, the largest magnitude maps to 127), every other tensor as float16. A quarter of float32's size; a
trained style network's outputs stay within about 55 dB PSNR-Y of its float weights' (``python -m
benchmarks.int8_fidelity FOLDER``). They load into float32.

The scales live in the safetensors header metadata (``int8_scales``, JSON), so the file's tensors keep the network's
names and shapes (the registry's shape checks stay as they are). A model stored so says ``format_version``
:data:`INT8_FORMAT_VERSION` in ``config.json``: a registry too old to dequantize refuses it with "update" rather
than loading raw integers as weights.
"""
from __future__ import annotations

import json

import torch

from .errors import ModelFormatError

INT8_FORMAT_VERSION = 2
STORED_DTYPE_KEY, SCALES_KEY, INT8 = "stored_dtype", "int8_scales", "int8"


def quantize(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors to store and the metadata that goes with them."""
    stored, scales = {}, {}
    for name, tensor in state.items():
        if tensor.dtype.is_floating_point and tensor.dim() >= 2:
            per_channel = tensor.float().abs().flatten(1).amax(1).clamp_min(1e-12) / 127
            shaped = per_channel.view(-1, *[1] * (tensor.dim() - 1))
            stored[name] = torch.round(tensor.float() / shaped).clamp(-127, 127).to(torch.int8).contiguous()
            scales[name] = per_channel.tolist()
        else:
            stored[name] = tensor.half().contiguous() if tensor.dtype.is_floating_point else tensor.contiguous()
    return stored, {STORED_DTYPE_KEY: INT8, SCALES_KEY: json.dumps(scales, separators=(",", ":"))}


def is_int8(metadata: dict[str, str] | None) -> bool:
    return (metadata or {}).get(STORED_DTYPE_KEY) == INT8


def dequantize(state: dict[str, torch.Tensor], metadata: dict[str, str], name: str) -> dict[str, torch.Tensor]:
    """float32 tensors from a file :func:`quantize` wrote; :class:`ModelFormatError` naming the model if its scales
    are missing or do not fit its tensors."""
    try:
        scales = json.loads(metadata.get(SCALES_KEY, ""))
    except ValueError:
        raise ModelFormatError(f"{name}: its int8 weights have no readable scales") from None
    out = {}
    for key, tensor in state.items():
        if tensor.dtype != torch.int8:
            out[key] = tensor.float() if tensor.dtype.is_floating_point else tensor
            continue
        scale = scales.get(key) if isinstance(scales, dict) else None
        if not isinstance(scale, list) or len(scale) != tensor.shape[0] or not all(isinstance(s, (int, float)) for s in scale):
            raise ModelFormatError(f"{name}: the int8 tensor {key!r} has no matching scales")
        out[key] = tensor.float() * torch.tensor(scale, dtype=torch.float32).view(-1, *[1] * (tensor.dim() - 1))
    return out
