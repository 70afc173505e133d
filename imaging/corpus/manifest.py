"""The corpus manifest: one record per image (where it came from, under what licence, which side of the split),
written by ``python -m imaging.corpus build`` and read by everything that trains or evaluates on the corpus.

The split lives here and nowhere else: :func:`split_of` decides from an image's *source group* (one original
photograph, whatever crops or views of it the packages ship), so two views of one scene never straddle it, and
the decision depends on that group alone (adding images never moves another image across).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from perceptual_studio import settings

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
TRAIN, HELD_OUT = "train", "held-out"
PHOTO, PAINTING = "photo", "painting"
# The share of photo groups held out. With ~130 photos this holds out ~25 (the corpus must hold out >= 15).
HELD_OUT_SHARE = 0.2
MIN_HELD_OUT_PHOTOS = 15


class CorpusError(RuntimeError):
    """The corpus is missing, damaged or inconsistent (says what to run in one line)."""


@dataclass(frozen=True)
class CorpusImage:
    id: str  # "gcompris-qt-data/erase/gorilla": package / set / name
    kind: str  # PHOTO or PAINTING
    title: str
    author: str  # photographer or artist, as the package names them
    year: str | None
    licence: str  # SPDX id or expression (imaging.corpus.licences)
    attribution: str  # the text to show beside the image
    source_url: str | None  # where the package says it took the image from
    package: str
    package_version: str
    package_path: str  # the file inside the package (and inside a .rcc: "<rcc>:<path>")
    group: str  # the source image; the split is decided per group
    split: str  # TRAIN or HELD_OUT (paintings: TRAIN; they are style images, not evaluation photos)
    file: str  # relative to the corpus folder
    width: int
    height: int
    sha256: str  # of the written file

    @classmethod
    def from_dict(cls, data: dict) -> "CorpusImage":
        names = {f.name for f in fields(cls)}
        missing = names - set(data)
        if missing:
            raise CorpusError(f"corpus manifest entry {data.get('id', '?')} lacks {', '.join(sorted(missing))}")
        return cls(**{k: data[k] for k in names})


def split_of(group: str, kind: str = PHOTO) -> str:
    """TRAIN or HELD_OUT for a source group: a fixed share of photo groups by a hash of the group's name."""
    if kind != PHOTO:
        return TRAIN
    digest = hashlib.sha256(f"perceptual-studio-split-v1:{group}".encode()).digest()
    return HELD_OUT if int.from_bytes(digest[:8], "big") / 2**64 < HELD_OUT_SHARE else TRAIN


def default_corpus_dir() -> Path:
    return settings.data_dir() / "corpus"


@dataclass(frozen=True)
class Corpus:
    folder: Path
    images: tuple[CorpusImage, ...]
    left_out: tuple[dict, ...]  # {"package", "path", "reason"}
    packages: dict  # name -> {"version", "sha256"}
    digest: str  # sha256 of the manifest file: names this exact corpus in cards

    def select(self, *, kind: str | None = None, split: str | None = None, min_side: int = 0) -> list[CorpusImage]:
        return [i for i in self.images if (kind is None or i.kind == kind) and (split is None or i.split == split)
                and min(i.width, i.height) >= min_side]

    def path(self, image: CorpusImage) -> Path:
        return self.folder / image.file

    def by_id(self, image_id: str) -> CorpusImage:
        for image in self.images:
            if image.id == image_id:
                return image
        raise CorpusError(f"no image {image_id!r} in the corpus at {self.folder.name}/")


def write_manifest(folder: Path, images: list[CorpusImage], left_out: list[dict], packages: dict) -> Path:
    body = {"format": FORMAT_VERSION, "packages": packages,
            "counts": {f"{kind} {split}": sum(1 for i in images if i.kind == kind and i.split == split)
                       for kind in (PHOTO, PAINTING) for split in (TRAIN, HELD_OUT)},
            "images": [asdict(i) for i in sorted(images, key=lambda i: i.id)],
            "left_out": left_out}
    path = folder / MANIFEST_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_corpus(folder: Path | str | None = None) -> Corpus:
    """The corpus at ``folder`` (default ``<data dir>/corpus``); :class:`CorpusError` with the command to build
    it when there is none."""
    folder = Path(folder) if folder is not None else default_corpus_dir()
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise CorpusError(f"no image corpus in {folder.name}/ (build it with: python -m imaging.corpus build)")
    raw = path.read_bytes()
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise CorpusError(f"the corpus manifest is damaged ({exc}); rebuild it with: python -m imaging.corpus build") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT_VERSION:
        raise CorpusError("the corpus manifest has an unknown format; rebuild it with: python -m imaging.corpus build")
    images = tuple(CorpusImage.from_dict(entry) for entry in body.get("images", []))
    return Corpus(folder, images, tuple(body.get("left_out", [])), body.get("packages", {}),
                  hashlib.sha256(raw).hexdigest())
