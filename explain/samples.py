"""The bundled sample images for the Explain views, made at runtime from scikit-image's sample data.

No image files are committed: the photos ship inside scikit-image (``skimage/data``) and are read from
there on first use. Sources and licences, as scikit-image's ``skimage.data`` documentation gives them:

| name | picture | source | licence |
|---|---|---|---|
| astronaut | Eileen Collins | NASA Great Images database | public domain |
| coffee | coffee cup | Rachel Michetti, courtesy of Pikolo Espresso Bar | CC0 |
| chelsea | Chelsea the cat | Stefan van der Walt | CC0 |
| rocket | Falcon 9 / DSCOVR launch | SpaceX | public domain |
| camera | man with a camera (greyscale) | Lav Varshney | CC0 |
| coins | Greek coins from Pompeii (greyscale) | Brooklyn Museum Collection | no known copyright restrictions |
"""
from __future__ import annotations

import functools

import torch
from PIL import Image

from perceptual_studio.imaging.io import image_to_tensor, load_image
from perceptual_studio.imaging.sample_photos import load_sample_photo

SAMPLE_NAMES: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins")
DEFAULT_SIZE = 128


def load_sample(name: str) -> Image.Image:
    """One sample photo, full size, as 8-bit RGB."""
    if name not in SAMPLE_NAMES:
        raise ValueError(f"unknown sample {name!r}; choose one of {', '.join(SAMPLE_NAMES)}")
    return load_image(load_sample_photo(name))


@functools.lru_cache(maxsize=4)
def sample_images(size: int = DEFAULT_SIZE) -> tuple[tuple[str, Image.Image], ...]:
    """(name, RGB image) pairs, each centre-cropped to a square of ``size`` pixels."""
    return tuple((name, square(load_sample(name), size)) for name in SAMPLE_NAMES)


def square(image: Image.Image, size: int) -> Image.Image:
    """Centre-crop to a square and resize to ``size`` pixels (so images batch together)."""
    image = load_image(image)  # any mode -> 8-bit RGB
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    cropped = image.crop((left, top, left + side, top + side))
    return cropped if side == size else cropped.resize((size, size), Image.Resampling.LANCZOS)


def stack(images: list[Image.Image]) -> torch.Tensor:
    """(N, 3, H, W) tensor in [0, 1] from same-size RGB images."""
    return torch.cat([image_to_tensor(image) for image in images])
