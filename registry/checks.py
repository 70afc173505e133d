"""Checking a model folder before any tensor data is read: size limits, the safetensors header, pickles, and
the tensor shapes its ``config.json`` implies (built on the ``meta`` device, so a hostile folder costs nothing)."""
from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import torch
from torch import nn

from perceptual_studio.networks.architectures import UnknownArchitectureError, get_architecture

from .errors import MissingPluginError, ModelFormatError, UnsafeModelError
from .schema import (
    CONFIG_FILE,
    MAX_CONFIG_BYTES,
    PICKLE_SUFFIXES,
    WEIGHTS_FILE,
    ModelConfig,
    max_weights_bytes,
)

_MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def _check_size(path: Path, limit: int, what: str) -> int:
    size = path.stat().st_size
    if size > limit:
        hint = " (PERCEPTUAL_MAX_MODEL_MB raises it)" if what == "weights" else ""
        raise UnsafeModelError(
            f"{path.parent.name}/{path.name} is {size / (1 << 20):.1f} MiB, over the "
            f"{limit / (1 << 20):.0f} MiB limit for {what}{hint}"
        )
    return size


def read_config(folder: Path) -> ModelConfig:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise ModelFormatError(f"{folder.name}: missing {CONFIG_FILE}")
    _check_size(path, MAX_CONFIG_BYTES, CONFIG_FILE)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{folder.name}: {CONFIG_FILE} is not valid JSON ({exc})") from None
    try:
        return ModelConfig.from_dict(data)
    except ModelFormatError as exc:
        raise ModelFormatError(f"{folder.name}: {exc}") from None


def read_safetensors_header(path: Path, max_bytes: int | None = None) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Validate a safetensors file without reading its tensors; return ``{name: (dtype, shape)}``.

    Checks the size limit, the header, every tensor's byte range against its dtype and shape, and that the
    data section is exactly as long as the header says (a truncated download fails here).
    """
    limit = max_weights_bytes() if max_bytes is None else max_bytes
    size = _check_size(path, limit, "weights")
    bad = f"{path.parent.name}/{path.name} is corrupt or truncated"
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise ModelFormatError(f"{bad}: {size} bytes, too short for a safetensors header")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > min(_MAX_HEADER_BYTES, size - 8):
            raise ModelFormatError(f"{bad}: its header claims {header_len} bytes, the file has {size}")
        try:
            header = json.loads(handle.read(header_len).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ModelFormatError(f"{bad}: the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ModelFormatError(f"{bad}: the header is not a JSON object")
    data_len = size - 8 - header_len
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    end_max = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], tuple(int(d) for d in info["shape"]), info["data_offsets"]
            nbytes = _DTYPE_BYTES[dtype] * math.prod(shape)
        except (KeyError, TypeError, ValueError):
            raise ModelFormatError(f"{bad}: tensor {name!r} has an invalid header entry") from None
        if not (0 <= begin <= end) or end - begin != nbytes or any(d < 0 for d in shape):
            raise ModelFormatError(f"{bad}: tensor {name!r} has inconsistent offsets for {dtype}{list(shape)}")
        if end > data_len:
            raise ModelFormatError(f"{bad}: tensor {name!r} ends at byte {end} but only {data_len} data bytes remain")
        end_max = max(end_max, end)
        tensors[name] = (dtype, shape)
    if end_max != data_len:
        raise ModelFormatError(f"{bad}: {data_len - end_max} unexpected bytes after the last tensor")
    return tensors


def _pickles(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def refuse_pickles_message(name: str, files: list[str]) -> str:
    return (
        f"{name}: only safetensors weights are loaded, and it has {', '.join(files)} (pickle files can run "
        f"code when loaded). If this is a pytorch/examples fast_neural_style checkpoint you trust, convert it "
        f"with `python -m registry import-legacy FILE.pth`."
    )


def _build(config: ModelConfig, name: str, device: torch.device | str | None = None) -> nn.Module:
    try:
        arch = get_architecture(config.architecture)
    except UnknownArchitectureError as exc:
        raise MissingPluginError(f"{name}: {exc}") from None
    if arch.task != config.task:
        raise ModelFormatError(
            f"{name}: config.json says task {config.task!r} but architecture {arch.name!r} serves {arch.task!r}"
        )
    try:
        if device is None:
            return arch.constructor(**config.architecture_args)
        with torch.device(device):
            return arch.constructor(**config.architecture_args)
    except Exception as exc:  # noqa: BLE001 - any constructor complaint means the config does not fit
        raise ModelFormatError(
            f"{name}: architecture_args in config.json do not fit {arch.name!r}: {type(exc).__name__}: {exc}"
        ) from None


def _compare(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], name: str) -> None:
    missing = sorted(expected.keys() - found.keys())
    unexpected = sorted(found.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & found.keys() if tuple(expected[k]) != tuple(found[k]))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensors (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
    if wrong:
        k = wrong[0]
        problems.append(
            f"{len(wrong)} tensors with the wrong shape (e.g. {k}: config implies {list(expected[k])}, "
            f"file has {list(found[k])})"
        )
    if problems:
        raise ModelFormatError(f"{name}: {WEIGHTS_FILE} does not match config.json: {'; '.join(problems)}")


def validate_folder(folder: str | os.PathLike, *, name: str | None = None) -> ModelConfig:
    """Check a model folder without loading tensor data; return its config or raise a one-line error."""
    folder = Path(folder)
    name = name or folder.name
    if not folder.is_dir():
        raise ModelFormatError(f"{name}: {folder} is not a folder")
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        pickles = _pickles(folder)
        if pickles:
            raise UnsafeModelError(refuse_pickles_message(name, pickles))
        raise ModelFormatError(f"{name}: missing {WEIGHTS_FILE}")
    config = read_config(folder)
    tensors = read_safetensors_header(weights)
    _compare(_expected_shapes(config, name), {k: shape for k, (_, shape) in tensors.items()}, name)
    return config


# Shapes per (architecture, its constructor, its arguments): building a network, even on "meta", takes ~10 ms, and
# every listing checks every model folder (30 shipped ones: 0.3 s a listing, seconds on a busy server).
_SHAPES_CACHE: dict[tuple, dict[str, tuple[int, ...]]] = {}
_SHAPES_CACHE_SIZE = 256


def _expected_shapes(config: ModelConfig, name: str) -> dict[str, tuple[int, ...]]:
    """Tensor shapes the config implies, from a network built on the meta device (no memory, no data)."""
    key = _shapes_key(config)
    cached = _SHAPES_CACHE.get(key) if key is not None else None
    if cached is not None:
        return cached
    try:
        model = _build(config, name, device="meta")
    except MissingPluginError:
        raise
    except ModelFormatError:
        model = _build(config, name)  # a plugin that cannot be built on "meta": the real error, if any, shows here
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if key is not None:
        if len(_SHAPES_CACHE) >= _SHAPES_CACHE_SIZE:
            _SHAPES_CACHE.clear()
        _SHAPES_CACHE[key] = shapes
    return shapes


def _shapes_key(config: ModelConfig) -> tuple | None:
    """What the shapes depend on; None (no caching) for an unknown architecture or arguments JSON cannot hold."""
    try:
        constructor = get_architecture(config.architecture).constructor
        arguments = json.dumps(config.architecture_args, sort_keys=True)
    except (UnknownArchitectureError, TypeError, ValueError):
        return None
    return config.architecture, config.task, constructor, arguments
