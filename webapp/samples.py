"""Images the app ships without committing any: example photos, example styles and a small training set.

Everything is made on first use under ``settings.data_dir()`` and reused afterwards.

* Photos come from scikit-image's bundled sample data (``skimage.data``; no download), with the licences its
  docstrings give: astronaut (NASA, public domain), coffee (Rachel Michetti, CC0), chelsea (Stefan van der
  Walt, CC0), rocket (SpaceX, public domain), immunohistochemistry (no known copyright restrictions),
  hubble_deep_field (NASA, public domain), retina (CC0), and the greyscale camera (Lav Varshney, CC0), coins
  (no known copyright restrictions), brick, grass and gravel (CC0Textures, CC0), clock (Stefan van der
  Walt, public domain) and text (public domain).
* Example style images are drawn here from a seed (a stained-glass Voronoi mosaic, ink waves, stripes):
  generated, so free of any licence.

The default training content (``PERCEPTUAL_TRAIN_CONTENT`` unset) is those photos plus a few crops of each,
about 35 images: enough for a quick fine-tune or starter style on a fresh, offline machine, not for the
paper's recipe (COCO 2014, 80k images: point ``PERCEPTUAL_TRAIN_CONTENT`` at a folder or a Hub dataset id).
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

import settings

logger = logging.getLogger(__name__)

TRAIN_CONTENT_ENV = "PERCEPTUAL_TRAIN_CONTENT"
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


def _skimage_photo(name: str) -> Image.Image:
    import skimage.data  # lazily: only needed the first time the files are written

    array = np.asarray(getattr(skimage.data, name)())
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    image = Image.fromarray(array)
    return image.convert("RGB")


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
                    _fit(_skimage_photo(name), 512).save(path, quality=92)
    return paths


def stained_glass(size: int = 384, cells: int = 90, seed: int = 0) -> Image.Image:
    """A Voronoi mosaic of saturated colours with dark leading between the cells."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, size, (cells, 2))
    palette = np.array([[196, 32, 48], [240, 180, 20], [30, 90, 200], [20, 140, 80], [120, 40, 160], [240, 110, 30],
                        [30, 170, 200], [230, 220, 190]], dtype=np.float64)
    colours = palette[rng.integers(0, len(palette), cells)] * rng.uniform(0.75, 1.05, (cells, 1))
    yy, xx = np.mgrid[0:size, 0:size]
    grid = np.stack([xx, yy], -1).reshape(-1, 1, 2).astype(np.float64)
    distances = np.linalg.norm(grid - points[None], axis=-1)
    order = np.argsort(distances, axis=1)
    nearest, second = order[:, 0], order[:, 1]
    rows = np.arange(len(grid))
    edge = (distances[rows, second] - distances[rows, nearest]) < 2.2
    pixels = colours[nearest]
    pixels[edge] = (25, 20, 20)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8).reshape(size, size, 3))
    return image.filter(ImageFilter.SMOOTH)


def ink_waves(size: int = 384, seed: int = 1) -> Image.Image:
    """Dark blue brush-like waves on paper."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), (236, 228, 206))
    draw = ImageDraw.Draw(image)
    for row in range(-2, size // 14 + 3):
        phase, amp = rng.uniform(0, 2 * np.pi), rng.uniform(6, 14)
        xs = np.arange(0, size + 8, 4)
        ys = row * 14 + amp * np.sin(xs / rng.uniform(18, 34) + phase)
        colour = tuple(int(c) for c in (np.array([20, 40, 90]) + rng.integers(0, 50, 3)))
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=colour, width=int(rng.integers(3, 7)))
    return image.filter(ImageFilter.GaussianBlur(0.8))


def stripes(size: int = 384, seed: int = 2) -> Image.Image:
    """Bold diagonal colour bands."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    band = ((xx + yy) // 24) % 5
    palette = rng.integers(0, 256, (5, 3))
    return Image.fromarray(palette[band].astype(np.uint8))


def example_styles() -> list[Path]:
    """Generated style images for the Train tab's examples."""
    folder = examples_dir()
    makers = {"stained-glass": stained_glass, "ink-waves": ink_waves, "stripes": stripes}
    paths = [folder / f"style-{name}.png" for name in EXAMPLE_STYLES]
    with _lock:
        folder.mkdir(parents=True, exist_ok=True)
        for name, path in zip(EXAMPLE_STYLES, paths):
            if not path.is_file():
                makers[name]().save(path)
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
                photo = _skimage_photo(name)
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
    configured = os.environ.get(TRAIN_CONTENT_ENV, "").strip()
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
