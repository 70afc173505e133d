"""Configuration read from environment variables at call time (never at import), with offline-safe defaults.

| variable | meaning | default |
|---|---|---|
| PERCEPTUAL_DATA_DIR | the project's data directory (models, runs, caches) | ``<project>/data`` |
| PERCEPTUAL_MODELS_DIR | the local models folder the registry lists | ``<data>/models`` |
| PERCEPTUAL_HUB_TAG | the tag that marks this project's models on the Hub | ``perceptual-studio`` |
| PERCEPTUAL_HUB_AUTHORS | comma-separated Hub authors whose tagged models are listed | (any author) |
| PERCEPTUAL_HUB_MODELS | comma-separated extra Hub repo ids to list | (none) |
| PERCEPTUAL_DEVICE | ``cuda``, ``cpu``, ``cuda:1``... | ``cuda`` when available, else ``cpu`` |
| PERCEPTUAL_MAX_PIXELS | the largest input image accepted, in pixels | 40 000 000 |
| PERCEPTUAL_VGG16_WEIGHTS | a local safetensors file with VGG-16 weights | (none) |
| PERCEPTUAL_LOSS_NETWORK | which VGG-16 weights to prefer: ``auto``/``caffe`` (the paper's Oxford weights first), ``torchvision``, or ``random`` (force the fallback) | ``auto`` |
| SPACE_ID | set by Hugging Face Spaces: publishing then needs the visitor's own sign-in or typed token, and Hub reads are anonymous unless the visitor signed in (the owner's ``HF_TOKEN`` is never used for a visitor) | (unset) |
| PERCEPTUAL_CACHE_DIR | converted files (the Oxford VGG-16 as safetensors) | ``<data>/cache`` |
| PERCEPTUAL_MAX_OUTPUT_PIXELS | the largest result the app computes (stylize, super-resolution) | 4096 x 4096 |
| PERCEPTUAL_MAX_SIDE | top of the app's output-size slider | 2048 |
| PERCEPTUAL_STYLE_TILE | style-network inputs longer than this run tile by tile | 1024 |
| PERCEPTUAL_TRAIN_CONTENT | training content for the app: a folder or a Hub dataset id | bundled samples |
| PERCEPTUAL_CONCURRENCY | stylize / super-resolution requests run at once | 2 |
| PERCEPTUAL_QUEUE_SIZE | requests waiting before new ones are refused | 64 |
| PERCEPTUAL_MAX_UPLOAD | the app's upload size cap | 50mb |
| PERCEPTUAL_MAX_MODEL_MB | the largest ``model.safetensors`` the registry reads, in MiB | 512 |
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

PROJECT_ROOT = Path(__file__).resolve().parent
HUB_TAG_DEFAULT = "perceptual-studio"


def _csv(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def data_dir() -> Path:
    return Path(os.environ.get("PERCEPTUAL_DATA_DIR") or PROJECT_ROOT / "data").expanduser()


def models_dir() -> Path:
    return Path(os.environ.get("PERCEPTUAL_MODELS_DIR") or data_dir() / "models").expanduser()


def runs_dir() -> Path:
    return data_dir() / "runs"


def hub_tag() -> str:
    return os.environ.get("PERCEPTUAL_HUB_TAG") or HUB_TAG_DEFAULT


def hub_authors() -> list[str]:
    return _csv("PERCEPTUAL_HUB_AUTHORS")


def hub_extra_models() -> list[str]:
    return _csv("PERCEPTUAL_HUB_MODELS")


LOSS_NETWORK_CHOICES = ("auto", "caffe", "torchvision", "random")


def loss_network_choice() -> str:
    """``PERCEPTUAL_LOSS_NETWORK``; ``oxford`` is accepted for ``caffe``. An unknown value raises with the choices."""
    raw = os.environ.get("PERCEPTUAL_LOSS_NETWORK", "").strip().lower() or "auto"
    raw = {"oxford": "caffe"}.get(raw, raw)
    if raw not in LOSS_NETWORK_CHOICES:
        raise ValueError(f"PERCEPTUAL_LOSS_NETWORK={raw!r} is not one of {', '.join(LOSS_NETWORK_CHOICES)}")
    return raw


def vgg16_weights_file() -> Path | None:
    raw = os.environ.get("PERCEPTUAL_VGG16_WEIGHTS", "").strip()
    return Path(raw).expanduser() if raw else None


def cache_dir() -> Path:
    return Path(os.environ.get("PERCEPTUAL_CACHE_DIR") or data_dir() / "cache").expanduser()


def running_on_space() -> bool:
    """True on a Hugging Face Space (``SPACE_ID`` is set there), where visitors must never act as the owner."""
    return bool(os.environ.get("SPACE_ID", "").strip())


def device() -> torch.device:
    wanted = os.environ.get("PERCEPTUAL_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
