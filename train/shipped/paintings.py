"""The painting styles of the shipped gallery (``train/shipped/paintings.toml``): each style image is a
public-domain painting of the licensed image corpus (``python -m imaging.corpus build``), credited in the
model's record (``training.style_image``: title, artist, year, licence, source) and on its card.

The corpus names some of the paintings only by a file stem (its ``details`` set: "Gogh4"); a manifest entry
may give the painting's title and year instead, and the card says so.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from perceptual_studio.imaging.corpus import PAINTING, Corpus, CorpusError, CorpusImage
from perceptual_studio.imaging.io import load_image
from perceptual_studio.registry.schema import CONFIG_FILE, StyleImageCredit


def painting_of(corpus: Corpus, image_id: str) -> CorpusImage:
    image = corpus.by_id(image_id)
    if image.kind != PAINTING:
        raise CorpusError(f"{image_id} is a {image.kind} of the corpus, not a painting")
    return image


def write_style_image(painting: CorpusImage, corpus: Corpus, path: Path, *, crop_border: int = 0) -> Path:
    """The painting as the style image, less ``crop_border`` pixels on every side (a scan's black frame would
    otherwise enter the Gram matrices as a colour of the style)."""
    image = load_image(corpus.path(painting))
    if crop_border:
        image = image.crop((crop_border, crop_border, image.width - crop_border, image.height - crop_border))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def credit(painting: CorpusImage, *, title: str | None = None, year: str | None = None) -> StyleImageCredit:
    """The painting's credit; ``title`` and ``year`` replace the corpus's where it names only a file."""
    return StyleImageCredit(title=title or painting.title, artist=painting.author, year=year or painting.year,
                            licence=painting.licence,
                            source=f"{painting.package} {painting.package_version}: {painting.package_path}")


def record_credit(folder: Path, style_credit: StyleImageCredit) -> bool:
    """Write the credit into the model's ``config.json`` (``training.style_image``). True if it changed."""
    path = folder / CONFIG_FILE
    config = json.loads(path.read_text(encoding="utf-8"))
    wanted = asdict(style_credit)
    if config.get("training", {}).get("style_image") == wanted:
        return False
    config.setdefault("training", {})["style_image"] = wanted
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return True


def credit_lines(painting: CorpusImage, style_credit: StyleImageCredit, corpus: Corpus) -> list[str]:
    """The card's account of the style image: the painting, its artist, year, licence and where it came from."""
    renamed = style_credit.title != painting.title
    lines = [f"Style image: *{style_credit.title}* by {style_credit.artist}"
             + (f" ({style_credit.year})" if style_credit.year else "")
             + f", {style_credit.licence}. This style model is trained on that one image.", "",
             f"Source: the Debian package `{painting.package}` {painting.package_version}, file "
             f"`{painting.package_path}` (corpus id `{painting.id}`, corpus manifest sha256 `{corpus.digest[:16]}...`). "
             f"Attribution: {painting.attribution}"]
    if renamed:
        lines.append(f"The package names this painting only \"{painting.title}\"; its title here is the painting's own.")
    return lines

