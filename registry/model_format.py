"""The on-disk model format: a folder that is also a valid Hugging Face Hub model repo.

::

    config.json          ModelConfig below: architecture, task, constructor arguments, training record
    model.safetensors    the state dict, strict key match; never a pickle
    README.md            model card with YAML metadata (registry/card.py)
    style.jpg            optional: the style image (style transfer)
    preview.jpg          optional: an example output, used as the thumbnail

Why not ``PyTorchModelHubMixin``: its ``config.json`` is exactly the ``__init__`` arguments of one class
(extra keys are dropped on load) and every network would have to inherit it. Ours must also say *which*
architecture to build (a plugin name resolved through ``networks.architectures``) and carry the training
record, and plugins are plain ``nn.Module`` classes. So the folder layout is the mixin's (``config.json`` +
``model.safetensors`` + ``README.md``, loadable from a path or a Hub id), written with ``safetensors`` and
``huggingface_hub.ModelCard`` directly.

Loading checks everything it can before reading tensor data: the size limit, the safetensors header
(dtypes, offsets, truncation) and the shapes the config implies, computed by building the network on the
``meta`` device, so a malicious or broken folder costs no memory and gives a one-line reason.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import MissingPluginError, ModelFormatError, UnsafeModelError

FORMAT_NAME = "perceptual-studio"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
STYLE_IMAGE_FILE = "style.jpg"
PREVIEW_FILE = "preview.jpg"
# Written by train/: the loss plot and the preview strip over training, both shown by the card.
LOSS_CURVE_FILE = "loss_curve.png"
EVOLUTION_FILE = "evolution.jpg"
# The only files the registry ever downloads, uploads or reads from a model folder.
MODEL_FILES: tuple[str, ...] = (
    CONFIG_FILE, WEIGHTS_FILE, CARD_FILE, STYLE_IMAGE_FILE, PREVIEW_FILE, LOSS_CURVE_FILE, EVOLUTION_FILE,
)
# Weight files that need unpickling: refused everywhere except the explicit legacy importer.
PICKLE_SUFFIXES: tuple[str, ...] = (".bin", ".pth", ".pt", ".pkl", ".pickle", ".ckpt")

DEFAULT_MAX_WEIGHTS_MB = 512
MAX_CONFIG_BYTES = 1 << 20
MAX_IMAGE_BYTES = 20 << 20
MAX_CARD_BYTES = 1 << 20
_MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def max_weights_bytes() -> int:
    """The largest ``model.safetensors`` accepted: ``PERCEPTUAL_MAX_MODEL_MB`` (MiB), default 512."""
    raw = os.environ.get("PERCEPTUAL_MAX_MODEL_MB")
    try:
        return int(float(raw) * (1 << 20)) if raw else DEFAULT_MAX_WEIGHTS_MB << 20
    except ValueError:
        return DEFAULT_MAX_WEIGHTS_MB << 20


@dataclass
class TrainingRecord:
    """What a model was trained with; ``None`` / empty means not recorded."""

    # Identity of the loss network: "vgg16:imagenet", or "vgg16:random(seed=0)" for the random-weight fallback.
    loss_network: str = "unknown"
    # VGG-16 taps of the feature reconstruction loss (paper: relu2_2 for style transfer and SR).
    content_layers: list[str] = field(default_factory=list)
    # VGG-16 taps of the style (Gram) loss (paper: relu1_2, relu2_2, relu3_3, relu4_3); empty for SR.
    style_layers: list[str] = field(default_factory=list)
    # Loss weights lambda_c, lambda_s, lambda_TV (and a pixel loss weight, if one was used).
    content_weight: float | None = None
    style_weight: float | None = None
    tv_weight: float | None = None
    pixel_weight: float | None = None
    # Training images: a dataset name or folder (paper: COCO 2014 train, 80k images).
    dataset: str | None = None
    # Training crop side in pixels (paper: 256 style, 288 SR) and batch size (paper: 4).
    image_size: int | None = None
    batch_size: int | None = None
    # Optimiser steps (paper: 40k), Adam learning rate (paper: 1e-3).
    iterations: int | None = None
    learning_rate: float | None = None
    # Wall-clock training time in seconds, and the device it ran on ("cuda: NVIDIA H100", "cpu").
    seconds: float | None = None
    device: str | None = None
    # Evaluation figures, e.g. {"psnr_set5": 30.1, "ssim_set5": 0.87, "final_style_loss": 1.2e5}.
    evaluation: dict[str, float] = field(default_factory=dict)
    # Anything else the trainer recorded (kept verbatim, written back at the top level of "training").
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def random_loss_network(self) -> bool:
        return self.loss_network.startswith("vgg16:random")

    def to_dict(self) -> dict[str, Any]:
        known = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**self.extra, **known}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "TrainingRecord":
        data = dict(data or {})
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: data.pop(k) for k in list(data) if k in names}
        if "loss_network" in known and not isinstance(known["loss_network"], str):
            raise ModelFormatError(f"training.loss_network must be a string, got {known['loss_network']!r}")
        for key in ("content_layers", "style_layers"):
            if key in known and not (isinstance(known[key], list) and all(isinstance(x, str) for x in known[key])):
                raise ModelFormatError(f"training.{key} must be a list of layer names")
        if "evaluation" in known and not isinstance(known["evaluation"], dict):
            raise ModelFormatError("training.evaluation must be an object of named figures")
        known.setdefault("loss_network", "unknown")
        return cls(**known, extra=data)


@dataclass
class ModelConfig:
    """``config.json``: everything needed to rebuild the network and to describe it."""

    # Registered architecture name (networks.architectures / a plugin), e.g. "johnson-style".
    architecture: str
    # "style-transfer" or "super-resolution"; must match the architecture's task.
    task: str
    # Keyword arguments for the architecture's constructor (the network's ``.config``); JSON values only.
    architecture_args: dict[str, Any] = field(default_factory=dict)
    # Upscaling factor for super-resolution (2, 4, 8); None for style transfer.
    scale: int | None = None
    # Style name for style transfer ("mosaic"); None for super-resolution.
    style: str | None = None
    # How it was trained (loss network identity, loss weights and layers, data, time, evaluation).
    training: TrainingRecord = field(default_factory=TrainingRecord)
    # Marks a folder as this project's model, and the format revision it follows.
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION

    @property
    def label(self) -> str:
        """"mosaic" for a style model, "x4" for a super-resolution one."""
        if self.task == "super-resolution":
            return f"x{self.scale}" if self.scale else "super-resolution"
        return self.style or "unnamed style"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["training"] = self.training.to_dict()
        ordered = ("format", "format_version", "architecture", "task", "scale", "style", "architecture_args", "training")
        return {k: data[k] for k in ordered}

    @classmethod
    def from_dict(cls, data: Any) -> "ModelConfig":
        if not isinstance(data, dict):
            raise ModelFormatError("config.json must hold a JSON object")
        from networks.architectures import TASKS

        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelFormatError(
                f"config.json has format_version {version!r}; this version of the registry reads up to "
                f"{FORMAT_VERSION}: update perceptual-studio"
            )
        architecture, task = data.get("architecture"), data.get("task")
        if not isinstance(architecture, str) or not _NAME.match(architecture):
            raise ModelFormatError(f"config.json: 'architecture' must be an architecture name, got {architecture!r}")
        if task not in TASKS:
            raise ModelFormatError(f"config.json: 'task' must be one of {TASKS}, got {task!r}")
        args = data.get("architecture_args", {})
        if not isinstance(args, dict) or not all(isinstance(k, str) and _json_value(v) for k, v in args.items()):
            raise ModelFormatError("config.json: 'architecture_args' must be an object of plain JSON values")
        scale = data.get("scale")
        if scale is not None and (isinstance(scale, bool) or not isinstance(scale, int) or scale < 1):
            raise ModelFormatError(f"config.json: 'scale' must be a positive integer, got {scale!r}")
        if task == "super-resolution" and scale is None:
            raise ModelFormatError("config.json: a super-resolution model needs 'scale'")
        style = data.get("style")
        if style is not None and not isinstance(style, str):
            raise ModelFormatError(f"config.json: 'style' must be a string, got {style!r}")
        training = data.get("training") or {}
        if not isinstance(training, dict):
            raise ModelFormatError("config.json: 'training' must be an object")
        return cls(architecture, task, dict(args), scale, style, TrainingRecord.from_dict(training),
                   str(data.get("format", FORMAT_NAME)), version)


def _json_value(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if depth < 4 and isinstance(value, list):
        return all(_json_value(v, depth + 1) for v in value)
    if depth < 4 and isinstance(value, dict):
        return all(isinstance(k, str) and _json_value(v, depth + 1) for k, v in value.items())
    return False


def is_our_config(data: Any) -> bool:
    """Whether a parsed ``config.json`` looks like one of ours (used to pick our repos out of the HF cache)."""
    from networks.architectures import TASKS

    return isinstance(data, dict) and isinstance(data.get("architecture"), str) and data.get("task") in TASKS and (
        data.get("format", FORMAT_NAME) == FORMAT_NAME
    )


# ---------------------------------------------------------------------------------------------- reading


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
    from networks.architectures import UnknownArchitectureError, get_architecture

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


def _expected_shapes(config: ModelConfig, name: str) -> dict[str, tuple[int, ...]]:
    """Tensor shapes the config implies, from a network built on the meta device (no memory, no data)."""
    try:
        model = _build(config, name, device="meta")
    except MissingPluginError:
        raise
    except ModelFormatError:
        model = _build(config, name)  # a plugin that cannot be built on "meta": the real error, if any, shows here
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def load_model_folder(folder: str | os.PathLike, device: torch.device | str | None = None, *,
                      name: str | None = None) -> nn.Module:
    """Build the network a model folder describes and load its weights (safetensors only, strict keys).

    Returns the module in eval mode on ``device`` (default ``settings.device()``), with the parsed
    ``ModelConfig`` attached as ``model.model_config``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    import settings

    folder = Path(folder)
    name = name or folder.name
    config = validate_folder(folder, name=name)
    try:
        state = load_file(str(folder / WEIGHTS_FILE), device="cpu")
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ModelFormatError(f"{name}: {WEIGHTS_FILE} could not be read: {exc}") from None
    model = _build(config, name)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFormatError(f"{name}: {WEIGHTS_FILE} does not match config.json: {exc}") from None
    model.model_config = config  # type: ignore[assignment]
    return model.to(device if device is not None else settings.device()).eval()


# ---------------------------------------------------------------------------------------------- writing


def _write_jpeg(source: Any, path: Path, max_side: int = 1024) -> None:
    from imaging.io import load_image, resize_to_max_side, tensor_to_image

    image = tensor_to_image(source) if isinstance(source, torch.Tensor) else load_image(source)
    resize_to_max_side(image, max_side).save(path, format="JPEG", quality=90)


def save_model(
    model: nn.Module,
    folder: str | os.PathLike,
    *,
    architecture: str | None = None,
    task: str | None = None,
    architecture_args: dict[str, Any] | None = None,
    training: TrainingRecord | dict[str, Any] | None = None,
    style: str | None = None,
    style_image: Any = None,
    preview: Any = None,
    title: str | None = None,
    license: str = "mit",
    card_extra: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as a model folder (config.json, model.safetensors, README.md, optional images).

    ``architecture`` defaults to the registered name whose constructor is ``type(model)``; ``task`` to the
    architecture's; ``architecture_args`` to ``model.config``. The args are checked to rebuild exactly the
    model's tensor shapes. ``style_image`` / ``preview`` take a path, PIL image or (1, 3, H, W) tensor.
    ``card_extra`` is Markdown appended to the card. The folder is written beside its destination and
    moved into place, so a crash never leaves a half-written model.
    """
    from safetensors.torch import save_file

    from networks.architectures import list_architectures

    from .card import build_card

    folder = Path(folder)
    if architecture is None:
        matches = [a for a in list_architectures() if a.constructor is type(model)]
        if len(matches) != 1:
            raise ModelFormatError(
                f"cannot tell which registered architecture {type(model).__name__} is: pass architecture="
            )
        architecture = matches[0].name
    if architecture_args is None:
        architecture_args = getattr(model, "config", None)
        if not isinstance(architecture_args, dict):
            raise ModelFormatError(f"{type(model).__name__} has no .config dict: pass architecture_args=")
    from networks.architectures import get_architecture

    arch = get_architecture(architecture)
    task = task or arch.task
    if task != arch.task:
        raise ValueError(f"task {task!r} does not match architecture {arch.name!r}, which serves {arch.task!r}")
    scale = getattr(model, "scale", None) or architecture_args.get("scale")
    record = training if isinstance(training, TrainingRecord) else TrainingRecord.from_dict(training)
    config = ModelConfig.from_dict(
        ModelConfig(architecture, task, dict(architecture_args), scale if task == "super-resolution" else None,
                    style if task == "style-transfer" else None, record).to_dict()
    )
    json.dumps(config.to_dict(), allow_nan=False)  # fails early on NaN/inf figures
    state = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    _compare(_expected_shapes(config, folder.name), {k: tuple(v.shape) for k, v in state.items()}, folder.name)

    if folder.exists() and not overwrite:
        raise FileExistsError(f"{folder} already exists (pass overwrite=True to replace it)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a model folder is meant to be shared
    try:
        (staging / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2, allow_nan=False) + "\n")
        save_file(state, str(staging / WEIGHTS_FILE), metadata={"format": "pt", "architecture": architecture})
        if style_image is not None:
            _write_jpeg(style_image, staging / STYLE_IMAGE_FILE)
        if preview is not None:
            _write_jpeg(preview, staging / PREVIEW_FILE)
        images = [f for f in (STYLE_IMAGE_FILE, PREVIEW_FILE) if (staging / f).is_file()]
        card = build_card(config, title=title or folder.name, license=license, images=images, extra=card_extra)
        card.save(staging / CARD_FILE)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
