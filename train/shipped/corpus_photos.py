"""How the shipped manifests name and credit the licensed corpus's photos (``python -m imaging.corpus build``):
the file a photo becomes in a training folder, and the lines a model card gives them."""
from __future__ import annotations

from collections import Counter

from perceptual_studio.imaging.corpus import Corpus, CorpusImage


def photo_file_name(image_id: str) -> str:
    """The file a corpus photo becomes in the training folders (what cards and the evaluation name it by):
    ``gcompris-qt-data/erase/goat`` -> ``erase-goat.png``."""
    return image_id.split("/", 1)[-1].replace("/", "-") + ".png"


def corpus_attribution(images: list[CorpusImage]) -> str:
    return "\n".join(f"- `{photo_file_name(i.id)}`: {i.attribution}" for i in images)


def trained_on_lines(corpus: Corpus, train: list[CorpusImage], what: str) -> list[str]:
    """A card's account of the training photos: how many, their licences and the corpus that holds them (the
    corpus manifest lists each one; a card stays readable)."""
    licences = Counter(i.licence for i in train)
    packages = ", ".join(f"`{name}` {entry['version']}" for name, entry in corpus.packages.items())
    return [
        f"Trained on {what} {len(train)} photos of the licensed image corpus (Debian packages {packages}, plus "
        f"scikit-image's and matplotlib's photos; corpus manifest sha256 `{corpus.digest}`; rebuild it with "
        "`python -m imaging.corpus build`, which lists every photo's author, source and licence). Their licences: "
        + ", ".join(f"{k} ({v})" for k, v in licences.most_common()) + "."]
