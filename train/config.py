"""Training configurations: typed, frozen dataclasses with the paper's defaults (nanoGPT ``GPTConfig`` style).

Defaults follow Johnson, Alahi & Fei-Fei (ECCV 2016), Sec. 4 (style) and Sec. 5 (super-resolution): 256x256
content images, batch 4, 40k iterations, Adam 1e-3, content at relu2_2, style at relu1_2..relu4_3; SR on
288x288 patches, low-res input by Gaussian blur (sigma 1.0) then bicubic downsampling, feature loss at relu2_2.
Loss weights the paper does not give are left as ``None`` and resolved from the loss network at hand
(``losses.perceptual.STYLE_PRESETS``: calibrated for the Oxford weights, per-layer normalised for random ones).

A config is built once (from argparse or by the web app), saved as JSON beside the checkpoints of its run
and in the model's ``config.json``, and never mutated during a run.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from networks.layers import NORMS, UPSAMPLES
from networks.vgg import LAYER_NAMES, STYLE_LAYERS

PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")
SR_LOSSES: tuple[str, ...] = ("feature", "pixel")
SR_SCALES: tuple[int, ...] = (4, 8)
# Smallest training image side: relu4_3 sits after three 2x2 poolings, relu5_x after four.
MIN_IMAGE_SIZE = 16
# Smallest low-resolution SR patch side (the 9x9 head conv needs some context).
MIN_LR_PATCH = 8


class ConfigError(ValueError):
    """A configuration value a user can fix; the message says which option and why."""


@dataclass(frozen=True, kw_only=True)
class TrainConfigBase:
    """Fields shared by style and super-resolution training."""

    # Where the trained model folder goes: a path, or a bare name meaning <models dir>/<name>.
    out: str
    # Registry model id to warm-start from (fine-tuning); its architecture replaces the architecture options.
    init: str | None = None
    # Images per optimiser step and process (paper: 4). Under torchrun the global batch is this x processes.
    batch_size: int = 4
    # Optimiser steps (paper: 40k for style, 200k for SR).
    iterations: int = 40_000
    # Adam learning rate (paper: 1e-3), no weight decay.
    learning_rate: float = 1e-3
    # Seed for the network initialisation, the data order and the random crops.
    seed: int = 0
    # "cuda", "cpu", "cuda:1"...; None = settings.device() (PERCEPTUAL_DEVICE, else cuda when available).
    device: str | None = None
    # "auto" = bfloat16 autocast on GPU, float32 on CPU; or force "float32" / "bfloat16".
    precision: str = "auto"
    # Channels-last memory layout; None = on GPU only.
    channels_last: bool | None = None
    # Ask CUDA for deterministic kernels (slower). CPU runs are reproducible without it.
    deterministic: bool = False
    # Zeiler & Fergus (2014) filter renormalisation: clip each conv filter's RMS to this radius (paper: 0.1).
    renorm_radius: float | None = None
    # Local VGG-16 safetensors file for the loss network; None = the default source chain (networks/vgg.py).
    vgg_weights: str | None = None
    # Stop when the total loss exceeds this multiple of the first step's loss (or is not finite).
    explode_factor: float = 1e3
    # Write a checkpoint every this many steps (and at the end / on cancellation).
    checkpoint_every: int = 1000
    # Render the fixed validation image every this many steps (0 = only at the end).
    preview_every: int = 500
    # Append a line to loss.jsonl every this many steps.
    log_every: int = 10
    # Fixed validation content image for previews; None = the first training image (sorted by path).
    preview_image: str | None = None
    # Longer side of the preview image in pixels.
    preview_size: int = 256
    # DataLoader worker processes; None = 4 on GPU, 0 on CPU.
    num_workers: int | None = None
    # Run folder for checkpoints, previews and the loss log; None = <runs dir>/<model folder name>.
    run_dir: str | None = None

    def __post_init__(self) -> None:
        if not str(self.out).strip():
            raise ConfigError("--out: give a model folder path or a model name")
        _positive(self, "batch_size", "iterations", "checkpoint_every", "log_every", "preview_size")
        if self.preview_every < 0:
            raise ConfigError(f"--preview-every must be >= 0, got {self.preview_every}")
        if not self.learning_rate > 0:
            raise ConfigError(f"--lr must be positive, got {self.learning_rate}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.renorm_radius is not None and not self.renorm_radius > 0:
            raise ConfigError(f"--renorm-radius must be positive, got {self.renorm_radius}")
        if not self.explode_factor > 1:
            raise ConfigError(f"--explode-factor must be > 1, got {self.explode_factor}")
        if self.num_workers is not None and self.num_workers < 0:
            raise ConfigError(f"--num-workers must be >= 0, got {self.num_workers}")

    # ------------------------------------------------------------------ JSON round trip

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, text: str):
        return cls.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike):
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def differences(self, other: "TrainConfigBase") -> list[str]:
        """Fields that change what a run computes (bookkeeping fields like ``num_workers`` excluded)."""
        return [f.name for f in fields(self) if f.name not in BOOKKEEPING_FIELDS
                and getattr(self, f.name) != getattr(other, f.name)]


# Fields that may differ between an interrupted run and its resumption without changing the result.
BOOKKEEPING_FIELDS: frozenset[str] = frozenset(
    {"device", "num_workers", "checkpoint_every", "preview_every", "log_every", "preview_size", "run_dir",
     "explode_factor"}
)


@dataclass(frozen=True, kw_only=True)
class StyleTrainConfig(TrainConfigBase):
    """``python -m train.style``: a feed-forward style network for one style image (paper Sec. 4)."""

    # The style image y_s (any format imaging.io.load_image reads).
    style: str
    # Content images: a folder (searched recursively) or a Hugging Face dataset id "owner/name" (paper: COCO).
    content: str
    # Style name shown in the registry and the card; None = the style image's file name stem.
    style_name: str | None = None
    # Content images are resized (shorter side) and centre-cropped to this square size (paper: 256).
    image_size: int = 256
    # Longer side the style image is resized to before computing its Gram matrices; None = image_size.
    style_size: int | None = None
    # VGG-16 taps of the feature reconstruction loss (paper: relu2_2; the authors' later code: relu3_3).
    content_layers: tuple[str, ...] = ("relu2_2",)
    # VGG-16 taps of the style reconstruction loss (paper: relu1_2, relu2_2, relu3_3, relu4_3).
    style_layers: tuple[str, ...] = STYLE_LAYERS
    # Loss weights lambda_c, lambda_s, lambda_TV; None = defaults for the loss network (losses/perceptual.py).
    content_weight: float | None = None
    style_weight: float | None = None
    tv_weight: float | None = None
    # Divide each layer's loss by its target's scale; None = on for a random-weight loss network.
    normalize_layers: bool | None = None
    # Transformation network options (networks/style.py); ignored with ``init`` (the init model's are used).
    norm: str = "instance"
    upsample: str = "resize"
    width: float = 1.0
    num_residual: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        if not str(self.style).strip():
            raise ConfigError("--style: give a style image")
        if not str(self.content).strip():
            raise ConfigError("--content: give a folder of images or a Hugging Face dataset id")
        _min_size("--image-size", self.image_size, MIN_IMAGE_SIZE)
        if self.style_size is not None:
            _min_size("--style-size", self.style_size, MIN_IMAGE_SIZE)
        _layers("--content-layers", self.content_layers)
        _layers("--style-layers", self.style_layers)
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
        _choice("--norm", self.norm, NORMS)
        _choice("--upsample", self.upsample, UPSAMPLES)
        if not self.width > 0:
            raise ConfigError(f"--width must be positive, got {self.width}")
        if self.num_residual < 0:
            raise ConfigError(f"--num-residual must be >= 0, got {self.num_residual}")

    @property
    def name(self) -> str:
        return self.style_name or Path(self.style).stem


@dataclass(frozen=True, kw_only=True)
class SRTrainConfig(TrainConfigBase):
    """``python -m train.sr``: a x4 / x8 super-resolution network (paper Sec. 5)."""

    # Training images: a folder (searched recursively) or a Hugging Face dataset id (paper: 10k COCO images).
    data: str
    # Upscaling factor (paper: 4 and 8).
    scale: int = 4
    # "feature" (relu2_2 feature reconstruction, the paper's model) or "pixel" (its per-pixel baseline).
    loss: str = "feature"
    # High-resolution training patch side (paper: 288); the low-res input is patch_size / scale.
    patch_size: int = 288
    # Gaussian blur sigma applied before bicubic downsampling (paper: 1.0).
    blur_sigma: float = 1.0
    # Feature loss taps (paper: relu2_2 only) and the loss weights; pixel_weight is used by loss="pixel".
    content_layers: tuple[str, ...] = ("relu2_2",)
    content_weight: float = 1.0
    pixel_weight: float = 1.0
    # Total variation weight (the paper cross-validates it; 0 disables).
    tv_weight: float = 0.0
    # Transformation network options (networks/sr.py; paper: 64 channels, 4 residual blocks, batch norm).
    channels: int = 64
    num_residual: int = 4
    norm: str = "batch"
    upsample: str = "resize"
    # Held-out evaluation images (a folder, e.g. Set5); None = hold out the last ``holdout`` images of ``data``.
    eval_data: str | None = None
    holdout: int = 5
    # Evaluation images larger than this are centre-cropped to it (keeps CPU evaluation quick); None = full size.
    eval_max_side: int | None = 512
    # Pixels shaved from each border before PSNR/SSIM (the usual SR convention); None = the scale factor.
    eval_border: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not str(self.data).strip():
            raise ConfigError("--data: give a folder of images or a Hugging Face dataset id")
        if self.scale not in SR_SCALES:
            raise ConfigError(f"--scale must be one of {SR_SCALES}, got {self.scale}")
        _choice("--loss", self.loss, SR_LOSSES)
        if self.patch_size % self.scale:
            raise ConfigError(f"--patch-size {self.patch_size} must be a multiple of --scale {self.scale}")
        if self.patch_size // self.scale < MIN_LR_PATCH:
            raise ConfigError(
                f"--patch-size {self.patch_size} is too small for x{self.scale}: the low-resolution input would be "
                f"{self.patch_size // self.scale} px; use at least {MIN_LR_PATCH * self.scale}"
            )
        if self.loss == "feature" and self.patch_size < MIN_IMAGE_SIZE:
            raise ConfigError(f"--patch-size must be at least {MIN_IMAGE_SIZE} for the feature loss")
        if not self.blur_sigma >= 0:
            raise ConfigError(f"--blur-sigma must be >= 0, got {self.blur_sigma}")
        _layers("--content-layers", self.content_layers)
        for name in ("content_weight", "pixel_weight", "tv_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        _positive(self, "channels")
        if self.num_residual < 0 or self.holdout < 0:
            raise ConfigError("--num-residual and --holdout must be >= 0")
        _choice("--norm", self.norm, NORMS)
        _choice("--upsample", self.upsample, UPSAMPLES)
        if self.eval_max_side is not None and self.eval_max_side < MIN_LR_PATCH * self.scale:
            raise ConfigError(f"--eval-max-side must be at least {MIN_LR_PATCH * self.scale} for x{self.scale}")
        if self.eval_border is not None and self.eval_border < 0:
            raise ConfigError(f"--eval-border must be >= 0, got {self.eval_border}")

    @property
    def name(self) -> str:
        return f"sr-x{self.scale}-{self.loss}"


def _positive(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")


def _min_size(option: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"{option} {value!r} is too small for the network: the loss network pools three times before relu4_3, "
            f"so images need at least {minimum} px"
        )


def _layers(option: str, layers: tuple[str, ...]) -> None:
    if isinstance(layers, str):
        raise ConfigError(f"{option} must be a list of layer names, got the string {layers!r}")
    taps = [n for n in LAYER_NAMES if n.startswith("relu")]
    unknown = [name for name in layers if name not in taps]
    if unknown:
        raise ConfigError(f"{option}: unknown VGG-16 layer(s) {', '.join(unknown)}; choose from {', '.join(taps)}")


def _choice(option: str, value: str, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{option} must be one of {', '.join(map(str, choices))}, got {value!r}")
