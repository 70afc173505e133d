"""A smaller copy of the corpus to take to a machine that cannot build one (a GPU host with no package client):
``python -m imaging.corpus pack --out data/corpus-small``. Photos are downscaled to ``--max-side`` and stored
as high-quality JPEG; paintings are left out unless asked for. The copy keeps every record (its own file, size
and hash) and the split, so training there sees the same train and held-out photos."""
from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

from perceptual_studio.imaging.io import load_image, resize_to_max_side

from .manifest import PHOTO, Corpus, write_manifest

JPEG_QUALITY = 95


def pack(corpus: Corpus, out: Path, *, max_side: int = 1024, paintings: bool = False) -> Path:
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "images").mkdir(parents=True)
    images = []
    for image in corpus.images:
        if image.kind != PHOTO and not paintings:
            continue
        picture = resize_to_max_side(load_image(corpus.path(image)), max_side)
        file = image.file.removesuffix(".png") + ".jpg"
        picture.save(partial / file, quality=JPEG_QUALITY, subsampling=0)
        images.append(replace(image, file=file, width=picture.width, height=picture.height,
                              sha256=hashlib.sha256((partial / file).read_bytes()).hexdigest()))
    write_manifest(partial, images, list(corpus.left_out), dict(corpus.packages))
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return out
