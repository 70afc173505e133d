"""The photos a style gallery manifest trains on and holds out, from either of its two sources: the sample photos
of ``imaging/sample_photos.py`` (named in the manifest) or the licensed image corpus (its own train / held-out
split, ``imaging/corpus/manifest.py``; the split is decided there and nowhere else)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from PIL import Image

from perceptual_studio.imaging.corpus import HELD_OUT, PHOTO, TRAIN, CorpusError, read_corpus
from perceptual_studio.imaging.io import load_image
from perceptual_studio.imaging.sample_photos import attribution, load_sample_photo

from .corpus_photos import corpus_attribution, photo_file_name, trained_on_lines

SAMPLE_PHOTOS, CORPUS = "sample-photos", "corpus"


@dataclass(frozen=True)
class ContentSpec:
    """A manifest's ``[content]`` table: where the photos come from and how they are cropped."""

    photos: tuple[str, ...]  # sample photos (imaging/sample_photos.py); with source "corpus", the corpus's own split
    # Never trained on. With source "corpus", photos held out beyond the corpus's own split, by their last name
    # ("chelsea"): another manifest's held-out sample photos, which the corpus may count as training photos.
    held_out: tuple[str, ...]
    crops_per_photo: int
    crop_size: int
    seed: int
    source: str = SAMPLE_PHOTOS
    corpus: Path | None = None  # the corpus folder (default: <data dir>/corpus)


@dataclass(frozen=True)
class ContentPhotos:
    """Photos by name (loaded when asked), and the card's lines crediting them."""

    train: dict[str, Callable[[], Image.Image]]
    held_out: dict[str, Callable[[], Image.Image]]
    train_credits: list[str]  # markdown lines
    held_out_credits: str

    def load_held_out(self) -> dict[str, Image.Image]:
        return {name: load() for name, load in self.held_out.items()}


def content_photos(spec: ContentSpec, *, preview: str) -> ContentPhotos:
    """The photos of ``spec``. From the corpus: every train photo at least ``crop_size`` on its shorter side but
    those ``spec.held_out`` names, and every held-out photo (those too); the ``preview`` sample photo must be among
    the corpus's held-out ones (:class:`CorpusError`)."""
    if spec.source == SAMPLE_PHOTOS:
        return ContentPhotos({n: partial(load_sample_photo, n) for n in spec.photos},
                             {n: partial(load_sample_photo, n) for n in spec.held_out},
                             [attribution(spec.photos)], attribution(spec.held_out))
    corpus = read_corpus(spec.corpus)

    def kept_out(image) -> bool:  # held out by name beyond the corpus's own split
        return image.id.rsplit("/", 1)[-1] in spec.held_out

    candidates = corpus.select(kind=PHOTO, split=TRAIN, min_side=spec.crop_size)
    train = [image for image in candidates if not kept_out(image)]
    held_out = corpus.select(kind=PHOTO, split=HELD_OUT)
    if not any(image.id.endswith(f"/{preview}") for image in held_out):
        raise CorpusError(f"the preview photo {preview!r} is not a held-out photo of the corpus")
    held_out += [image for image in candidates if kept_out(image)]

    def named(images):
        return {photo_file_name(i.id).removesuffix(".png"): partial(load_image, corpus.path(i)) for i in images}

    return ContentPhotos(named(train), named(held_out),
                         trained_on_lines(corpus, train, "random crops of"),
                         corpus_attribution(held_out))
