"""``config.json``'s schema (``ModelConfig``, ``TrainingRecord``), a model folder's file names and the size limits.

See :mod:`registry.model_format` for the folder layout and why it is not ``PyTorchModelHubMixin``.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from perceptual_studio import settings
from perceptual_studio.networks.architectures import TASKS

from .errors import ModelFormatError

FORMAT_NAME = "perceptual-studio"
FORMAT_VERSION = 1  # written for float weights
# The newest format this registry reads: 2 marks int8-stored weights (registry/int8_weights.py).
MAX_FORMAT_VERSION = 2
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

DEFAULT_MAX_WEIGHTS_MB = settings.MAX_MODEL_MB.default
MAX_CONFIG_BYTES = 1 << 20
MAX_IMAGE_BYTES = 20 << 20
MAX_CARD_BYTES = 1 << 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
# The two super-resolution losses of the paper (Sec. 5).
SR_LOSSES: tuple[str, ...] = ("feature", "pixel")


def max_weights_bytes() -> int:
    """The largest ``model.safetensors`` accepted: ``PERCEPTUAL_MAX_MODEL_MB`` (MiB), default 512."""
    return int(settings.max_model_mb() * (1 << 20))


# The longest text of a style image's credit field (a Hub model's config is a visitor's text).
MAX_CREDIT_CHARS = 300


@dataclass(frozen=True)
class StyleImageCredit:
    """Where a style model's style image comes from (a painting of the licensed image corpus), shown beside the
    model in the gallery and the Models tab: ``training.style_image`` in ``config.json``."""

    title: str
    artist: str
    year: str | None
    licence: str  # SPDX id or expression
    source: str  # the package, its version and the file inside it

    @property
    def caption(self) -> str:
        """"The Great Wave off Kanagawa, Katsushika Hokusai, 1823-1829"."""
        return ", ".join(part for part in (self.title, self.artist, self.year) if part)

    @classmethod
    def from_dict(cls, data: Any) -> "StyleImageCredit":
        if not isinstance(data, dict):
            raise ModelFormatError("training.style_image must be an object (title, artist, year, licence, source)")
        values = {}
        for f in fields(cls):
            value = data.get(f.name)
            if f.name == "year" and value is None:
                values[f.name] = None
                continue
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_CREDIT_CHARS:
                raise ModelFormatError(f"training.style_image.{f.name} must be a text of 1-{MAX_CREDIT_CHARS} characters")
            values[f.name] = value.strip()
        return cls(**values)


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
    # Super-resolution: the weight of the penalty on a pattern locked to the output's grid (losses.grid_pattern_loss).
    grid_weight: float | None = None
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
    # Super-resolution only: the loss ("pixel" or "feature", paper Sec. 5) and the low-resolution input's
    # degradation (Gaussian blur sigma, then bicubic downsampling), which the app repeats for "I have the original".
    sr_loss: str | None = None
    blur_sigma: float | None = None
    degradation: str | None = None
    # A fast variant: the id of the paper-size style model this smaller network stands in for (distilled from it,
    # train/distill.py, then trained with its objective, train.style --variant-of); its objective (layers,
    # weights, style size) is that model's, recorded here too, and it is judged by it.
    variant_of: str | None = None
    # A stable variant (a variant_of trained with the temporal loss, train.temporal, for video and the webcam): the
    # weight of that loss.
    temporal_weight: float | None = None
    # A style model trained on a credited image (a corpus painting): what it is and its licence.
    style_image: StyleImageCredit | None = None
    # Anything else the trainer recorded (kept verbatim, written back at the top level of "training").
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def random_loss_network(self) -> bool:
        return self.loss_network.startswith("vgg16:random")

    def to_dict(self) -> dict[str, Any]:
        known = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        if known["temporal_weight"] is None:
            known.pop("temporal_weight")  # absent rather than null, as style_image below
        if self.style_image is None:
            known.pop("style_image")  # absent rather than null: the configs written before it stay byte-identical
        else:
            known["style_image"] = asdict(self.style_image)
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
        if known.get("sr_loss") not in (None, *SR_LOSSES):
            raise ModelFormatError(f"training.sr_loss must be one of {SR_LOSSES}, got {known['sr_loss']!r}")
        if known.get("blur_sigma") is not None and not isinstance(known["blur_sigma"], (int, float)):
            raise ModelFormatError(f"training.blur_sigma must be a number, got {known['blur_sigma']!r}")
        if known.get("variant_of") is not None and not isinstance(known["variant_of"], str):
            raise ModelFormatError(f"training.variant_of must be a model id, got {known['variant_of']!r}")
        if known.get("temporal_weight") is not None and not isinstance(known["temporal_weight"], (int, float)):
            raise ModelFormatError(f"training.temporal_weight must be a number, got {known['temporal_weight']!r}")
        if known.get("style_image") is not None:
            known["style_image"] = StyleImageCredit.from_dict(known["style_image"])
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

        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > MAX_FORMAT_VERSION:
            raise ModelFormatError(
                f"config.json has format_version {version!r}; this version of the registry reads up to "
                f"{MAX_FORMAT_VERSION}: update perceptual-studio"
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
        record = TrainingRecord.from_dict(training)
        if task == "super-resolution" and record.sr_loss is None:
            record.sr_loss = _legacy_sr_loss(record)
        return cls(architecture, task, dict(args), scale, style, record, str(data.get("format", FORMAT_NAME)), version)


def _legacy_sr_loss(record: TrainingRecord) -> str | None:
    """The SR loss of a record written before ``sr_loss`` was a field: from the trainer's ``loss`` key or its
    ``train_config``, else from the weights (a weighted feature layer is the paper's feature loss)."""
    for source in (record.extra, record.extra.get("train_config") or {}):
        loss = source.get("loss") if isinstance(source, dict) else None
        if loss in SR_LOSSES:
            return loss
    if record.content_layers and (record.content_weight is None or record.content_weight > 0):
        return "feature"
    if record.pixel_weight and record.pixel_weight > 0:
        return "pixel"
    return None


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
    return isinstance(data, dict) and isinstance(data.get("architecture"), str) and data.get("task") in TASKS and (
        data.get("format", FORMAT_NAME) == FORMAT_NAME
    )
