"""Images the app ships without committing any: example photos and example styles.

Everything is made on first use under ``settings.data_dir()`` and reused afterwards.

* Photos come from ``imaging.sample_photos`` (shipped inside scikit-image; no download), which records each
  one's source and licence.
* Example style images are drawn by ``imaging.generated_styles`` from a seed: generated, so free of any licence.

The default training content is the library's (``pipelines.training.default_training_content``).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

from PIL import Image, ImageDraw

from perceptual_studio import settings
from perceptual_studio.imaging.generated_styles import GENERATED_STYLES
from perceptual_studio.imaging.io import load_image
from perceptual_studio.imaging.sample_photos import load_sample_photo

logger = logging.getLogger(__name__)

TRAIN_CONTENT_ENV = settings.TRAIN_CONTENT.name
EXAMPLE_PHOTOS: tuple[str, ...] = ("chelsea", "astronaut", "coffee", "rocket")
# "neon" first: a style none of the shipped models has, for a first fine-tune.
EXAMPLE_STYLES: tuple[str, ...] = ("neon", "stained-glass", "ink-waves")
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


# Super-resolution examples: photos no shipped SR model was trained on. scikit-image's astronaut is held out by the
# image corpus's split; when the corpus is built, a few more of its held-out photos join it.
SR_EXAMPLE_PHOTO = "astronaut"
SR_CORPUS_EXAMPLES = 3


def sr_example_photos() -> list[Path]:
    """Held-out photos for the Super-resolution tab's examples (written once, at most 512 px)."""
    from perceptual_studio.imaging.corpus import HELD_OUT, PHOTO, CorpusError, read_corpus

    folder = examples_dir() / "super-resolution"
    paths = [folder / f"{SR_EXAMPLE_PHOTO}.jpg"]
    with _lock:
        folder.mkdir(parents=True, exist_ok=True)
        if not paths[0].is_file():
            _fit(load_sample_photo(SR_EXAMPLE_PHOTO), 512).save(paths[0], quality=95)
        try:
            corpus = read_corpus()
        except CorpusError:
            return paths  # the app needs no corpus
        held_out = [i for i in corpus.select(kind=PHOTO, split=HELD_OUT) if not i.id.endswith("/" + SR_EXAMPLE_PHOTO)]
        for image in held_out[:SR_CORPUS_EXAMPLES]:
            path = folder / (image.id.rsplit("/", 1)[-1] + ".png")
            if not path.is_file():
                _fit(load_image(corpus.path(image)), 512).save(path)
            paths.append(path)
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


def placeholder_thumbnail(label: str, size: int = 192) -> Image.Image:
    """A plain tile with a label, for models without a style image or preview."""
    image = Image.new("RGB", (size, size), (228, 228, 236))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, size - 1, size - 1], outline=(160, 160, 180), width=2)
    draw.text((12, size // 2 - 6), label[:24], fill=(60, 60, 80))
    return image
