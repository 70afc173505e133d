"""Images the app ships without committing any: example photos, example styles and a small training set.

Everything is made on first use under ``settings.data_dir()`` and reused afterwards.

* Photos come from ``imaging.sample_photos`` (shipped inside scikit-image; no download), which records each
  one's source and licence.
* Example style images are drawn by ``imaging.generated_styles`` from a seed: generated, so free of any licence.

The default training content (``PERCEPTUAL_TRAIN_CONTENT`` unset) is those photos plus a few crops of each,
about 35 images: enough for a quick fine-tune or starter style on a fresh, offline machine, not for the
paper's recipe (COCO 2014, 80k images: point ``PERCEPTUAL_TRAIN_CONTENT`` at a folder or a Hub dataset id).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import settings
from imaging.generated_styles import GENERATED_STYLES
from imaging.sample_photos import load_sample_photo

logger = logging.getLogger(__name__)

TRAIN_CONTENT_ENV = settings.TRAIN_CONTENT_ENV
EXAMPLE_PHOTOS: tuple[str, ...] = ("chelsea", "astronaut", "coffee", "rocket")
_COLOUR_PHOTOS: tuple[str, ...] = (
    "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
)
_GREY_PHOTOS: tuple[str, ...] = ("camera", "coins", "brick", "grass", "gravel", "clock", "text")
EXAMPLE_STYLES: tuple[str, ...] = ("stained-glass", "ink-waves", "stripes")
_SOURCES_NOTE = """# Default training content for Perceptual Studio

Made from scikit-image's bundled sample photos (`skimage.data`; public domain or CC0 as scikit-image's
data README lists them), each saved whole and as a few crops. Replace it by setting
PERCEPTUAL_TRAIN_CONTENT to a folder of images or a Hugging Face dataset id.
"""
_lock = threading.Lock()


def _fit(image: Image.Image, side: int) -> Image.Image:
    image = image.copy()
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image


def examples_dir() -> Path:
    return settings.data_dir() / "examples"


def example_photos() -> list[Path]:
    """A few photos for the content-image examples (written once, at most 512 px)."""
    folder = examples_dir()
    paths = [folder / f"{name}.jpg" for name in EXAMPLE_PHOTOS]
    with _lock:
        if not all(p.is_file() for p in paths):
            folder.mkdir(parents=True, exist_ok=True)
            for name, path in zip(EXAMPLE_PHOTOS, paths):
                if not path.is_file():
                    _fit(load_sample_photo(name), 512).save(path, quality=92)
    return paths


def example_styles() -> list[Path]:
    """Generated style images for the Train tab's examples."""
    folder = examples_dir()
    paths = [folder / f"style-{name}.png" for name in EXAMPLE_STYLES]
    with _lock:
        folder.mkdir(parents=True, exist_ok=True)
        for name, path in zip(EXAMPLE_STYLES, paths):
            if not path.is_file():
                GENERATED_STYLES[name]().save(path)
    return paths


def default_content_dir() -> Path:
    return settings.data_dir() / "content" / "skimage-samples"


def ensure_default_content() -> Path:
    """The bundled training set (module docstring), written on first use; returns its folder."""
    folder = default_content_dir()
    marker = folder / "SOURCES.md"
    with _lock:
        if marker.is_file():
            return folder
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for name in _COLOUR_PHOTOS + _GREY_PHOTOS:
            try:
                photo = load_sample_photo(name)
            except Exception as exc:  # noqa: BLE001 - an older scikit-image may lack one of them
                logger.warning("sample photo %s unavailable: %s", name, exc)
                continue
            _fit(photo, 512).save(folder / f"{name}.jpg", quality=92)
            side = min(photo.size)
            for k in range(2 if name in _COLOUR_PHOTOS else 1):
                crop = int(side * rng.uniform(0.45, 0.7))
                left = int(rng.integers(0, photo.width - crop + 1))
                top = int(rng.integers(0, photo.height - crop + 1))
                piece = photo.crop((left, top, left + crop, top + crop))
                if k % 2:
                    piece = piece.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                _fit(piece, 384).save(folder / f"{name}-crop{k}.jpg", quality=92)
        marker.write_text(_SOURCES_NOTE, encoding="utf-8")
    return folder


def training_content_source() -> str:
    """``PERCEPTUAL_TRAIN_CONTENT`` (a folder or a Hub dataset id) if set, else the bundled set's folder."""
    configured = settings.train_content()
    if configured:
        return configured
    return str(ensure_default_content())


def placeholder_thumbnail(label: str, size: int = 192) -> Image.Image:
    """A plain tile with a label, for models without a style image or preview."""
    image = Image.new("RGB", (size, size), (228, 228, 236))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, size - 1, size - 1], outline=(160, 160, 180), width=2)
    draw.text((12, size // 2 - 6), label[:24], fill=(60, 60, 80))
    return image
