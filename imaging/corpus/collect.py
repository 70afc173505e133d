"""What each package contributes: candidate images with the licence its files state, or a reason to leave one
out. One reader per package layout; ``sources.toml`` says which files each takes."""
from __future__ import annotations

import fnmatch
import io
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Callable, Iterator

from PIL import Image

from . import jigsaw
from .deb import read_deb
from .licences import LicenceParagraph, holder, licence_for, parse_paragraphs, spdx_id
from .manifest import PAINTING, PHOTO
from .packages import PackagePin
from .rcc import RccError, read_rcc


@dataclass(frozen=True)
class Candidate:
    id: str
    kind: str
    title: str
    author: str
    year: str | None
    licence: str
    attribution: str
    source_url: str | None
    package: str
    package_version: str
    package_path: str
    group: str
    load: Callable[[], Image.Image]


@dataclass(frozen=True)
class LeftOut:
    package: str
    path: str
    reason: str


Found = Candidate | LeftOut


def _open(blob: bytes) -> Callable[[], Image.Image]:
    def load() -> Image.Image:
        with Image.open(io.BytesIO(blob)) as image:
            image.load()
            return image.copy()
    return load


def _title_from_name(stem: str) -> str:
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", stem.replace("_", " ").replace("-", " "))
    return words.strip().capitalize()


def _licensed(pin: PackagePin, path: str, paragraph: LicenceParagraph | None) -> tuple[str, str] | LeftOut:
    """(SPDX id, holder) or why the image cannot be used."""
    if paragraph is None:
        return LeftOut(pin.name, path, "no licence statement covers this file")
    licence = spdx_id(paragraph.licence)
    if licence is None:
        return LeftOut(pin.name, path, f"unknown licence {paragraph.licence!r}")
    return licence, holder(paragraph.copyright)


# ----------------------------------------------------------------------------------- GCompris (.rcc files)

def _rcc_files(pin: PackagePin, deb_files: dict[str, bytes], rcc_dir: str, activity: str) -> dict[str, bytes] | LeftOut:
    path = f"{rcc_dir}/{activity}.rcc"
    if path not in deb_files:
        return LeftOut(pin.name, path, "not in the package")
    try:
        return read_rcc(deb_files[path])
    except RccError as exc:
        return LeftOut(pin.name, path, str(exc))


def _readmes(files: dict[str, bytes]) -> dict[str, list[LicenceParagraph]]:
    """Each README's folder -> its paragraphs."""
    return {str(PurePosixPath(p).parent): parse_paragraphs(b.decode("utf-8", errors="replace"))
            for p, b in files.items() if PurePosixPath(p).name == "README"}


def _covering(path: str, readmes: dict[str, list[LicenceParagraph]]) -> LicenceParagraph | None:
    """The paragraph of the nearest README above ``path`` that names it (relative to that README's folder)."""
    folder = PurePosixPath(path).parent
    for candidate in (folder, *folder.parents):
        key = str(candidate)
        if key in readmes:
            found = licence_for(str(PurePosixPath(path).relative_to(candidate)), readmes[key])
            if found is not None:
                return found
    return None


def _licensed_rcc_images(pin: PackagePin, deb_files: dict[str, bytes], rcc_dir: str, activity: str,
                         suffix: str) -> Iterator[LeftOut | tuple[str, str, LicenceParagraph, str, str, bytes]]:
    """Each image of an activity whose name ends with ``suffix``: ``(path, where, paragraph, SPDX id, holder,
    bytes)`` when a README licenses it, else why it is left out."""
    files = _rcc_files(pin, deb_files, rcc_dir, activity)
    if isinstance(files, LeftOut):
        yield files
        return
    readmes = _readmes(files)
    for path in sorted(p for p in files if p.endswith(suffix)):
        where = f"{rcc_dir}/{activity}.rcc:{path}"
        paragraph = _covering(path, readmes)
        licensed = _licensed(pin, where, paragraph)
        if isinstance(licensed, LeftOut):
            yield licensed
        else:
            yield path, where, paragraph, licensed[0], licensed[1], files[path]


def gcompris(pin: PackagePin, deb_files: dict[str, bytes], spec: dict) -> Iterator[Found]:
    rcc_dir = spec["rcc_dir"]
    for activity in spec.get("photo_activities", []):
        for found in _licensed_rcc_images(pin, deb_files, rcc_dir, activity, ".webp"):
            if isinstance(found, LeftOut):
                yield found
                continue
            path, where, paragraph, licence, author, blob = found
            stem = PurePosixPath(path).stem
            url = paragraph.source or None
            yield Candidate(
                id=f"{pin.name}/{activity}/{stem}", kind=PHOTO, title=_title_from_name(stem), author=author, year=None,
                licence=licence, attribution=f"{author}{', ' + url if url else ''} ({licence}; via GCompris)",
                source_url=url, package=pin.name, package_version=pin.version, package_path=where,
                group=url or f"{pin.name}/{activity}/{stem}", load=_open(blob))
    yield from _details(pin, deb_files, rcc_dir, spec["details_activity"])
    yield from _paintings(pin, deb_files, rcc_dir, spec["paintings_activity"],
                          {int(k): v for k, v in spec.get("excluded_boards", {}).items()})


def _details(pin: PackagePin, deb_files: dict[str, bytes], rcc_dir: str, activity: str) -> Iterator[Found]:
    """The complete pictures behind the "details" game: ``<name>_background.webp``; the README's comment says
    whether each is a painting ("based on an original painting by ...") or a photo ("based on a photo by X,
    license ..., source at URL")."""
    for found in _licensed_rcc_images(pin, deb_files, rcc_dir, activity, "_background.webp"):
        if isinstance(found, LeftOut):
            yield found
            continue
        path, where, paragraph, licence, maker, blob = found
        comment = " ".join(paragraph.comment.split())
        url_match = re.search(r"source at (\S+)", comment)
        url = url_match.group(1).rstrip(".,") if url_match else None
        painting = re.search(r"painting by ([^,.]+)", comment)
        photo = re.search(r"photo by ([^,]+)", comment)
        author = painting.group(1).strip() if painting else photo.group(1).strip() if photo else maker
        if author == "Van Gogh":
            author = "Vincent van Gogh"
        stem = PurePosixPath(path).stem.removesuffix("_background")
        yield Candidate(
            id=f"{pin.name}/{activity}/{stem}", kind=PAINTING if painting else PHOTO, title=_title_from_name(stem),
            author=author, year=None, licence=licence,
            attribution=f"{maker} (GCompris), {comment[0].lower() + comment[1:] if comment else ''} ({licence})",
            source_url=url, package=pin.name, package_version=pin.version, package_path=where,
            group=url or f"{pin.name}/{activity}/{stem}", load=_open(blob))


def _paintings(pin: PackagePin, deb_files: dict[str, bytes], rcc_dir: str, activity: str,
               excluded: dict[int, str]) -> Iterator[Found]:
    files = _rcc_files(pin, deb_files, rcc_dir, activity)
    if isinstance(files, LeftOut):
        yield files
        return
    resource = next((str(PurePosixPath(p).parent.parent) for p in files if re.search(r"/board/board\d+_0\.qml$", p)), None)
    if resource is None:
        yield LeftOut(pin.name, f"{rcc_dir}/{activity}.rcc", "no jigsaw boards in it")
        return
    readmes = _readmes(files)
    pieces = {p[len(resource) + 1:]: b for p, b in files.items() if p.startswith(resource + "/")}
    boards = sorted((int(m.group(1)), p) for p in files if (m := re.search(r"/board/board(\d+)_0\.qml$", p)))
    for number, path in boards:
        where = f"{rcc_dir}/{activity}.rcc:{path}"
        if number in excluded:
            yield LeftOut(pin.name, where, excluded[number])
            continue
        try:
            board = jigsaw.parse_board(files[path].decode("utf-8", errors="replace"))
        except jigsaw.JigsawError as exc:
            yield LeftOut(pin.name, where, str(exc))
            continue
        first_piece = f"{resource}/{board.pieces[0][0]}"
        licensed = _licensed(pin, where, _covering(first_piece, readmes))
        if isinstance(licensed, LeftOut):
            yield licensed
            continue
        licence, maker = licensed

        def load(board: jigsaw.Board = board) -> Image.Image:
            return jigsaw.assemble(board, pieces)

        slug = re.sub(r"[^a-z0-9]+", "-", f"{board.artist} {board.title}".lower()).strip("-")
        yield Candidate(
            id=f"{pin.name}/{activity}/{slug}", kind=PAINTING, title=board.title, author=board.artist, year=board.year,
            licence=licence, attribution=f"{board.artist}, {board.title}{' (' + board.year + ')' if board.year else ''}; "
                                         f"scan from the WebMuseum (Nicolas Pioch), {licence}, via GCompris",
            source_url=None, package=pin.name, package_version=pin.version, package_path=where,
            group=f"{pin.name}/{activity}/{slug}", load=load)


# ------------------------------------------------------------------------- plain files with a copyright file

def _plain(pin: PackagePin, deb_files: dict[str, bytes], spec: dict, names: list[str], copyright_prefix: str,
           excluded: dict[str, str], groups: dict[str, str], paintings: dict[str, dict]) -> Iterator[Found]:
    copyright_text = deb_files.get(spec["copyright"], b"").decode("utf-8", errors="replace")
    paragraphs = parse_paragraphs(copyright_text)
    for name in names:
        path = f"{spec['root']}/{name}"
        if name in excluded:
            if path in deb_files:
                yield LeftOut(pin.name, path, excluded[name])
            continue
        if path not in deb_files:
            yield LeftOut(pin.name, path, "not in the package")
            continue
        licensed = _licensed(pin, path, licence_for(f"{copyright_prefix}{name}", paragraphs))
        if isinstance(licensed, LeftOut):
            yield licensed
            continue
        licence, author = licensed
        author = spec.get("author", author)  # a catch-all copyright lists the project's holders, not a photographer
        painting = paintings.get(name)
        stem = PurePosixPath(name).stem
        title = painting["title"] if painting else _title_from_name(PurePosixPath(name).stem)
        author = painting["artist"] if painting else author
        yield Candidate(
            id=f"{pin.name}/{PurePosixPath(name).with_suffix('')}", kind=PAINTING if painting else PHOTO, title=title,
            author=author, year=painting.get("year") if painting else None, licence=licence,
            attribution=f"{author}; {licence} (the {pin.name} package's copyright file)", source_url=None,
            package=pin.name, package_version=pin.version, package_path=path,
            group=groups.get(name, f"{pin.name}/{stem}"), load=_open(deb_files[path]))


def mate(pin: PackagePin, deb_files: dict[str, bytes], spec: dict) -> Iterator[Found]:
    root = spec["root"] + "/"
    present = sorted(p[len(root):] for p in deb_files if p.startswith(root))
    names = [n for n in present if any(fnmatch.fnmatchcase(n, g) for g in spec["photos"])]
    yield from _plain(pin, deb_files, spec, names, "", {}, {}, {})


def opencv(pin: PackagePin, deb_files: dict[str, bytes], spec: dict) -> Iterator[Found]:
    groups = {name: f"{pin.name}/{'+'.join(group)}" for group in spec.get("groups", []) for name in group}
    # The package's copyright file names the upstream tree: the examples are upstream's samples/data.
    yield from _plain(pin, deb_files, spec, list(spec["photos"]), "samples/data/", spec.get("excluded", {}), groups,
                      spec.get("paintings", {}))


READERS = {"gcompris-qt-data": gcompris, "mate-backgrounds": mate, "opencv-doc": opencv}
SPEC_KEYS = {"gcompris-qt-data": "gcompris", "mate-backgrounds": "mate", "opencv-doc": "opencv"}


def wanted_paths(package: str, spec: dict) -> Callable[[str], bool]:
    """Which files of the package's data tree its reader needs (the rest is never decompressed into memory)."""
    if package == "gcompris-qt-data":
        activities = set(spec.get("photo_activities", [])) | {spec["details_activity"], spec["paintings_activity"]}
        names = {f"{spec['rcc_dir']}/{a}.rcc" for a in activities}
        return lambda path: path in names
    root = spec["root"] + "/"
    return lambda path: path.startswith(root) or path == spec["copyright"]


def collect(pin: PackagePin, deb_path, spec: dict) -> Iterator[Found]:
    files = read_deb(deb_path, wanted_paths(pin.name, spec))
    yield from READERS[pin.name](pin, files, spec)
