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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from perceptual_studio.networks.layers import NORMS, UPSAMPLES
from perceptual_studio.networks.sr import RESIDUALS as SR_RESIDUALS
from perceptual_studio.networks.sr import SR_UPSAMPLES
from perceptual_studio.networks.vgg import LAYER_NAMES, STYLE_LAYERS
from perceptual_studio.registry.schema import SR_LOSSES

PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine")
SR_SCALES: tuple[int, ...] = (4, 8)
# Smallest training image side: relu4_3 sits after three 2x2 poolings, relu5_x after four.
MIN_IMAGE_SIZE = 16
# Smallest low-resolution SR patch side (the 9x9 head conv needs some context).
MIN_LR_PATCH = 8


class ConfigError(ValueError):
    """A configuration value a user can fix; the message says which option and why."""


def option(help: str, *, flag: str | None = None, choices: tuple | None = None, metavar: str | None = None,  # noqa: A002
           negatable: bool = False, shorthand: tuple[str, Any, str] | None = None) -> dict[str, Any]:
    """A field's command-line option: its help, and where it differs from ``--field-name``: another ``flag``,
    ``choices``, a ``--no-`` twin (``negatable``, for ``bool | None``), or a ``shorthand`` flag that stores a
    constant (flag, value, help)."""
    return {"help": help, "flag": flag, "choices": choices, "metavar": metavar, "negatable": negatable,
            "shorthand": shorthand}


@dataclass(frozen=True, kw_only=True)
class TrainConfigBase:
    """Fields shared by style and super-resolution training. Each field's ``metadata`` is its command-line
    option (``train/cli.py`` builds the parsers from these fields: one source for names, defaults and help)."""

    out: str = field(metadata=option(
        "model folder to write; a bare name means <models dir>/NAME (listed by the registry)"))
    init: str | None = field(default=None, metadata=option(
        "warm-start from this registry model or model folder (fine-tuning); its architecture replaces the "
        "architecture options", metavar="MODEL_ID"))
    batch_size: int = field(default=4, metadata=option(
        "images per optimiser step and process (paper: 4); under torchrun the global batch is this x processes"))
    iterations: int = field(default=40_000, metadata=option("optimiser steps (paper: 40k for style)"))
    learning_rate: float = field(default=1e-3, metadata=option("Adam learning rate (paper: 1e-3)", flag="--lr"))
    lr_schedule: str = field(default="constant", metadata=option(
        "constant: --lr throughout (the paper); cosine: from --lr down to 0 at --iterations (Loshchilov & Hutter "
        "2017), which settles the weights without separate fine-tuning stages", choices=LR_SCHEDULES))
    seed: int = field(default=0, metadata=option("seed of the network initialisation, the data order and the crops"))
    device: str | None = field(default=None, metadata=option(
        "cuda, cpu, cuda:1... (default: PERCEPTUAL_DEVICE, else cuda when available)"))
    precision: str = field(default="auto", metadata=option(
        "auto: bfloat16 autocast on GPU and on a CPU with AMX, float32 on other CPUs (where bfloat16 trains slower)",
        choices=PRECISIONS))
    channels_last: bool | None = field(default=None, metadata=option(
        "channels-last memory layout (default: on GPU only)", negatable=True))
    deterministic: bool = field(default=False, metadata=option(
        "ask CUDA for deterministic kernels (slower); CPU runs are reproducible without it"))
    renorm_radius: float | None = field(default=None, metadata=option(
        "Zeiler & Fergus (2014) filter renormalisation: clip each conv filter's RMS to this radius",
        shorthand=("--renorm", 0.1, "... at the paper's radius, 0.1")))
    vgg_weights: str | None = field(default=None, metadata=option(
        "local VGG-16 safetensors file for the loss network (default: the source chain of networks/vgg.py)"))
    explode_factor: float = field(default=1e3, metadata=option(
        "stop when the total loss exceeds this multiple of the first step's loss (or is not finite)"))
    checkpoint_every: int = field(default=1000, metadata=option(
        "write a checkpoint every this many steps (and at the end or on cancellation)"))
    preview_every: int = field(default=500, metadata=option(
        "render the fixed validation image every this many steps (0: only at the end)"))
    log_every: int = field(default=10, metadata=option("append a line to loss.jsonl every this many steps"))
    preview_image: str | None = field(default=None, metadata=option(
        "fixed validation content image for previews (default: the first training image)"))
    preview_size: int = field(default=256, metadata=option("longer side of the preview image in pixels"))
    num_workers: int | None = field(default=None, metadata=option(
        "data loader processes (default: 4 on GPU, 0 on CPU)"))
    run_dir: str | None = field(default=None, metadata=option(
        "run folder for checkpoints, previews and the loss log (default: <runs dir>/<model folder name>)"))

    def __post_init__(self) -> None:
        if not str(self.out).strip():
            raise ConfigError("--out: give a model folder path or a model name")
        _positive(self, "batch_size", "iterations", "checkpoint_every", "log_every", "preview_size")
        if self.preview_every < 0:
            raise ConfigError(f"--preview-every must be >= 0, got {self.preview_every}")
        if not self.learning_rate > 0:
            raise ConfigError(f"--lr must be positive, got {self.learning_rate}")
        _choice("--lr-schedule", self.lr_schedule, LR_SCHEDULES)
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


# Fields that may differ between an interrupted run and its resumption without changing what it computes; the
# device and the numerics (precision, memory layout) change only how, so a run may resume on other hardware.
BOOKKEEPING_FIELDS: frozenset[str] = frozenset(
    {"device", "precision", "channels_last", "num_workers", "checkpoint_every", "preview_every", "log_every",
     "preview_size", "run_dir", "explode_factor"}
)


@dataclass(frozen=True, kw_only=True)
class StyleTrainConfig(TrainConfigBase):
    """``python -m train.style``: a feed-forward style network for one style image (paper Sec. 4)."""

    style: str = field(metadata=option("the style image y_s (any format imaging.io.load_image reads)"))
    content: str = field(metadata=option(
        "content images: a folder (searched recursively) or a Hugging Face dataset id owner/name (paper: COCO)"))
    style_name: str | None = field(default=None, metadata=option(
        "style name in the registry and the card (default: the style image's file name)"))
    image_size: int = field(default=256, metadata=option(
        "content images are resized (shorter side) and centre-cropped to this square size (paper: 256)"))
    style_size: int | None = field(default=None, metadata=option(
        "longer side of the style image for its Gram matrices (default: --image-size)"))
    content_layers: tuple[str, ...] = field(default=("relu2_2",), metadata=option(
        "VGG-16 taps of the feature reconstruction loss (paper: relu2_2)"))
    style_layers: tuple[str, ...] = field(default=STYLE_LAYERS, metadata=option(
        "VGG-16 taps of the style reconstruction loss (paper: relu1_2 relu2_2 relu3_3 relu4_3)"))
    content_weight: float | None = field(default=None, metadata=option(
        "lambda_c (default: the loss network's preset, losses/perceptual.py)"))
    style_weight: float | None = field(default=None, metadata=option("lambda_s (default: the preset)"))
    tv_weight: float | None = field(default=None, metadata=option("lambda_TV (default: the preset)"))
    normalize_layers: bool | None = field(default=None, metadata=option(
        "divide each layer's loss by its target's scale (default: on for a random-weight loss network)",
        negatable=True))
    norm: str = field(default="instance", metadata=option("normalisation layers (networks/style.py)", choices=NORMS))
    upsample: str = field(default="resize", metadata=option("upsampling layers", choices=UPSAMPLES))
    width: float = field(default=1.0, metadata=option("channel multiplier (authors' later code: 0.5)"))
    num_residual: int = field(default=5, metadata=option("residual blocks (paper: 5)"))
    variant_of: str | None = field(default=None, metadata=option(
        "record the result as the fast variant of this style model (registry id): the app runs it in that "
        "model's place on a CPU. Train it with that model's objective (its style image and weights)",
        metavar="MODEL_ID"))
    temporal_weight: float | None = field(default=None, metadata=option(
        "train a stable network: the weight of the temporal loss (losses/temporal.py) on random smooth motion of "
        "the content photos; the result is recorded as a stable variant (with --variant-of) for video and the "
        "webcam"))
    temporal_flat_share: float = field(default=0.0, metadata=option(
        "with --temporal-weight: extra temporal pairs, as a share of the batch, of photos smoothed flat with noise "
        "in both frames, so that the network also holds still on flat areas (losses/temporal.py)"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.temporal_weight is not None and not self.temporal_weight > 0:
            raise ConfigError(f"--temporal-weight must be > 0, got {self.temporal_weight}")
        if not 0.0 <= self.temporal_flat_share <= 1.0:
            raise ConfigError(f"--temporal-flat-share must be in [0, 1], got {self.temporal_flat_share}")
        if self.temporal_flat_share and self.temporal_weight is None:
            raise ConfigError("--temporal-flat-share needs --temporal-weight")
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
        _style_architecture(self)

    @property
    def name(self) -> str:
        return self.style_name or Path(self.style).stem


@dataclass(frozen=True, kw_only=True)
class DistillTrainConfig(TrainConfigBase):
    """``python -m train.distill``: a smaller style network that reproduces a trained one (a fast variant)."""

    teacher: str = field(metadata=option("the trained style model to reproduce (registry id or folder)",
                                         metavar="MODEL_ID"))
    content: str = field(metadata=option(
        "content images: a folder (searched recursively) or a Hugging Face dataset id owner/name"))
    iterations: int = field(default=2000, metadata=option("optimiser steps"))
    image_size: int = field(default=192, metadata=option(
        "content images are resized (shorter side) and centre-cropped to this square size"))
    width: float = field(default=0.5, metadata=option(
        "the student's channel multiplier (0.5: 16-32-64 channels, the authors' released fast models)"))
    num_residual: int = field(default=5, metadata=option("the student's residual blocks"))
    norm: str = field(default="instance", metadata=option("normalisation layers (networks/style.py)", choices=NORMS))
    upsample: str = field(default="resize", metadata=option("upsampling layers", choices=UPSAMPLES))

    def __post_init__(self) -> None:
        super().__post_init__()
        if not str(self.teacher).strip():
            raise ConfigError("--teacher: give the registry id of a trained style model")
        if not str(self.content).strip():
            raise ConfigError("--content: give a folder of images or a Hugging Face dataset id")
        _min_size("--image-size", self.image_size, MIN_IMAGE_SIZE)
        _style_architecture(self)


@dataclass(frozen=True, kw_only=True)
class SRTrainConfig(TrainConfigBase):
    """``python -m train.sr``: a x4 / x8 super-resolution network (paper Sec. 5)."""

    data: str = field(metadata=option(
        "training images: a folder (searched recursively) or a Hugging Face dataset id (paper: 10k COCO images)"))
    iterations: int = field(default=200_000, metadata=option("optimiser steps (paper: 200k for SR)"))
    scale: int = field(default=4, metadata=option("upscaling factor (paper: 4 and 8)", choices=SR_SCALES))
    loss: str = field(default="feature", metadata=option(
        "feature: relu2_2 feature reconstruction (the paper's model); pixel: its per-pixel baseline",
        choices=SR_LOSSES))
    patch_size: int = field(default=288, metadata=option(
        "high-resolution training patch side (paper: 288); the low-resolution input is patch_size / scale"))
    blur_sigma: float = field(default=1.0, metadata=option(
        "Gaussian blur sigma before bicubic downsampling (paper: 1.0)"))
    augment: bool = field(default=False, metadata=option(
        "flip and rotate each patch by a random one of the square's 8 symmetries (8x the distinct patches of a "
        "small photo set; the paper's 10k COCO images need none)", negatable=True))
    content_layers: tuple[str, ...] = field(default=("relu2_2",), metadata=option(
        "feature loss taps (paper: relu2_2)"))
    content_weight: float = field(default=1.0, metadata=option("feature loss weight"))
    pixel_weight: float = field(default=1.0, metadata=option("pixel loss weight (--loss pixel)"))
    tv_weight: float = field(default=0.0, metadata=option(
        "total variation weight (the paper cross-validates it; 0 disables)"))
    grid_weight: float = field(default=0.0, metadata=option(
        "weight of a penalty on a pattern locked to the output's scale-pixel grid (losses.grid_pattern_loss; "
        "--loss feature; 0 disables)"))
    channels: int = field(default=64, metadata=option("network width (paper: 64)"))
    num_residual: int = field(default=4, metadata=option("residual blocks (paper: 4)"))
    norm: str = field(default="batch", metadata=option("normalisation layers (networks/sr.py)", choices=NORMS))
    upsample: str = field(default="resize", metadata=option(
        "upsampling layers (shuffle: sub-pixel convolution at the input's resolution)", choices=SR_UPSAMPLES))
    residual: str = field(default="none", metadata=option(
        "bicubic: learn only the difference to a bicubic upscale (networks/sr.py); none: the paper's network",
        choices=SR_RESIDUALS))
    degrid: int = field(default=0, metadata=option(
        "remove the part of the output locked to the upsampling lattice, averaged over this many input pixels "
        "(networks/sr.py lattice_pattern; 0: off, or as the --init model has it)"))
    eval_data: str | None = field(default=None, metadata=option(
        "held-out evaluation images, e.g. Set5 (default: the last --holdout images of --data)"))
    holdout: int = field(default=5, metadata=option("images of --data held out for evaluation"))
    eval_max_side: int | None = field(default=512, metadata=option(
        "centre-crop larger evaluation images to this side (keeps CPU evaluation quick)"))
    eval_border: int | None = field(default=None, metadata=option(
        "pixels shaved from each border before PSNR/SSIM (default: the scale)"))

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
        for name in ("content_weight", "pixel_weight", "tv_weight", "grid_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        _positive(self, "channels")
        if self.degrid < 0:
            raise ConfigError(f"--degrid must be >= 0 (0: off), got {self.degrid}")
        if self.num_residual < 0 or self.holdout < 0:
            raise ConfigError("--num-residual and --holdout must be >= 0")
        _choice("--norm", self.norm, NORMS)
        _choice("--upsample", self.upsample, SR_UPSAMPLES)
        _choice("--residual", self.residual, SR_RESIDUALS)
        if self.eval_max_side is not None and self.eval_max_side < MIN_LR_PATCH * self.scale:
            raise ConfigError(f"--eval-max-side must be at least {MIN_LR_PATCH * self.scale} for x{self.scale}")
        if self.eval_border is not None and self.eval_border < 0:
            raise ConfigError(f"--eval-border must be >= 0, got {self.eval_border}")

    @property
    def name(self) -> str:
        return f"sr-x{self.scale}-{self.loss}"


def _style_architecture(config: Any) -> None:
    """The johnson-style network options a style or distillation config shares."""
    _choice("--norm", config.norm, NORMS)
    _choice("--upsample", config.upsample, UPSAMPLES)
    if not config.width > 0:
        raise ConfigError(f"--width must be positive, got {config.width}")
    if config.num_residual < 0:
        raise ConfigError(f"--num-residual must be >= 0, got {config.num_residual}")


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
