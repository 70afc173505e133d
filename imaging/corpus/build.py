"""Build the licensed image corpus: ``python -m imaging.corpus build`` (console script ``perceptual-corpus``).

Fetches the pinned packages (or takes ``--deb`` files), checks their sha256, reads their images and licences,
reassembles the jigsaw paintings, converts every image to 8-bit RGB, drops duplicates and images too small to
use, splits by source image and writes ``<corpus>/images/*.png`` and ``<corpus>/manifest.json``. The new corpus
replaces the old one only once it is complete.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from perceptual_studio.imaging.io import ImageInputError, load_image
from perceptual_studio.imaging.sample_photos import SAMPLE_PHOTOS, SamplePhotoUnavailable, load_sample_photo

from .collect import SPEC_KEYS, Candidate, LeftOut, collect
from .deb import DebError
from .licences import spdx_id
from .manifest import PHOTO, CorpusError, CorpusImage, HELD_OUT, MIN_HELD_OUT_PHOTOS, split_of, write_manifest
from .packages import PackageError, PackagePin, fetch, package_of_deb

logger = logging.getLogger(__name__)

SOURCES = Path(__file__).with_name("sources.toml")
# Smaller images teach an x8 network nothing (a 64 px photo is an 8 px input).
MIN_SIDE = 128
# Two images whose 9x8 difference hashes differ in at most this many of 64 bits are one picture.
NEAR_DUPLICATE_BITS = 4


@dataclass(frozen=True)
class Sources:
    pins: dict[str, PackagePin]
    specs: dict[str, dict]
    python_photos: tuple[str, ...]


def read_sources(path: Path = SOURCES) -> Sources:
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    pins = {name: PackagePin(name, entry["version"], entry["sha256"]) for name, entry in raw["packages"].items()}
    unknown = set(pins) - set(SPEC_KEYS)
    if unknown:
        raise CorpusError(f"{path.name}: no reader for package(s) {', '.join(sorted(unknown))}")
    return Sources(pins, {name: raw[SPEC_KEYS[name]] for name in pins},
                   tuple(raw.get("python_packages", {}).get("photos", [])))


def difference_hash(image: Image.Image) -> int:
    small = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def _python_candidates(names: tuple[str, ...]) -> list[Candidate | LeftOut]:
    found: list[Candidate | LeftOut] = []
    for name in names:
        photo = SAMPLE_PHOTOS.get(name)
        if photo is None:
            found.append(LeftOut("python packages", name, "not a recorded sample photo"))
            continue
        licence = spdx_id(photo.licence.split(" (")[0])
        if licence is None:
            found.append(LeftOut(photo.package, name, f"unknown licence {photo.licence!r}"))
            continue
        try:
            image = load_sample_photo(name)
        except SamplePhotoUnavailable as exc:
            found.append(LeftOut(photo.package, name, str(exc)))
            continue
        found.append(Candidate(
            id=f"{photo.package}/{name}", kind=PHOTO, title=name.replace("_", " ").capitalize(), author=photo.source,
            year=None, licence=licence, attribution=f"{photo.source}; {photo.licence} (shipped in {photo.package})",
            source_url=None, package=photo.package, package_version="installed", package_path=name,
            group=f"{photo.package}/{name}", load=lambda image=image: image))
    return found


def _file_name(image_id: str) -> str:
    return "images/" + image_id.replace("/", "__") + ".png"


def build(out: Path, *, debs: list[Path] | None = None, deb_cache: Path | None = None,
          sources: Sources | None = None, skip_missing: bool = False,
          min_held_out: int = MIN_HELD_OUT_PHOTOS) -> tuple[list[CorpusImage], list[dict]]:
    """Build the corpus into ``out``; returns the images and what was left out (each with a reason)."""
    sources = sources or read_sources()
    found, packages = _read_packages(sources, debs or [], deb_cache or out.parent / "corpus-debs", skip_missing)
    found.extend(_python_candidates(sources.python_photos))
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "images").mkdir(parents=True)
    images, left_out = _convert(found, partial)
    held_out = sum(1 for i in images if i.kind == PHOTO and i.split == HELD_OUT)
    if not skip_missing and held_out < min_held_out:
        shutil.rmtree(partial, ignore_errors=True)
        raise CorpusError(f"only {held_out} held-out photos (at least {min_held_out} are needed); nothing was written")
    write_manifest(partial, images, left_out, packages)
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    partial.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return images, left_out


def _read_packages(sources: Sources, debs: list[Path], deb_cache: Path,
                   skip_missing: bool) -> tuple[list[Candidate | LeftOut], dict[str, dict]]:
    """Every pinned package's candidate images (fetched, or from ``debs``), and the packages read."""
    given = {package_of_deb(deb): deb for deb in debs}
    unknown = set(given) - set(sources.pins)
    if unknown:
        raise CorpusError(f"--deb {', '.join(sorted(unknown))}: not a package the corpus is built from "
                          f"({', '.join(sources.pins)})")
    found: list[Candidate | LeftOut] = []
    packages: dict[str, dict] = {}
    for name, pin in sources.pins.items():
        try:
            path = fetch(pin, deb_cache, given)
            logger.info("reading %s %s", pin.name, pin.version)
            found.extend(collect(pin, path, sources.specs[name]))
            packages[name] = {"version": pin.version, "sha256": pin.sha256}
        except (PackageError, DebError) as exc:
            if not skip_missing:
                raise CorpusError(f"{exc} (nothing was written; --skip-missing builds from the other packages)") from None
            found.append(LeftOut(name, pin.deb_name, f"package unavailable: {exc}"))
    return found, packages


def _convert(found: list[Candidate | LeftOut], partial: Path) -> tuple[list[CorpusImage], list[dict]]:
    """Each candidate decoded, checked (readable, large enough, not a near-duplicate) and written as a PNG."""
    images: list[CorpusImage] = []
    left_out: list[dict] = []
    hashes: list[tuple[int, str]] = []
    for item in found:
        if isinstance(item, LeftOut):
            left_out.append({"package": item.package, "path": item.path, "reason": item.reason})
            continue
        try:
            image = load_image(item.load())
        except (ImageInputError, OSError, ValueError) as exc:
            left_out.append({"package": item.package, "path": item.package_path, "reason": f"unreadable image ({exc})"})
            continue
        if min(image.size) < MIN_SIDE:
            left_out.append({"package": item.package, "path": item.package_path,
                             "reason": f"too small ({image.width}x{image.height}, under {MIN_SIDE} px)"})
            continue
        fingerprint = difference_hash(image)
        twin = next((other for h, other in hashes if bin(h ^ fingerprint).count("1") <= NEAR_DUPLICATE_BITS), None)
        if twin is not None:
            left_out.append({"package": item.package, "path": item.package_path, "reason": f"duplicate of {twin}"})
            continue
        hashes.append((fingerprint, item.id))
        images.append(_write_image(item, image, partial))
    return images, left_out


def _write_image(item: Candidate, image, partial: Path) -> CorpusImage:
    file = _file_name(item.id)
    image.save(partial / file, optimize=False, compress_level=6)
    return CorpusImage(
        id=item.id, kind=item.kind, title=item.title, author=item.author, year=item.year, licence=item.licence,
        attribution=item.attribution, source_url=item.source_url, package=item.package,
        package_version=item.package_version, package_path=item.package_path, group=item.group,
        split=split_of(item.group, item.kind), file=file, width=image.width, height=image.height,
        sha256=hashlib.sha256((partial / file).read_bytes()).hexdigest())


def summary(images: list[CorpusImage], left_out: list[dict]) -> str:
    """Markdown: what the corpus holds and what it left out, by reason."""
    counts = Counter((i.kind, i.split) for i in images)
    lines = ["| kind | train | held-out |", "|---|---:|---:|"]
    lines += [f"| {kind} | {counts[(kind, 'train')]} | {counts[(kind, 'held-out')]} |" for kind in ("photo", "painting")]
    licences = Counter(i.licence for i in images)
    lines += ["", "Licences: " + ", ".join(f"{k} {v}" for k, v in licences.most_common())]
    reasons = Counter(_reason_kind(e["reason"]) for e in left_out)
    lines += ["", f"Left out: {len(left_out)} file(s)" + (":" if left_out else ".")]
    lines += [f"- {n} x {reason}" for reason, n in reasons.most_common()]
    return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    for prefix in ("duplicate of", "too small", "unknown licence", "unreadable image", "package unavailable"):
        if reason.startswith(prefix):
            return prefix
    return reason
