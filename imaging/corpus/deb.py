"""Read files out of a Debian package (``.deb``) without dpkg: an ``ar`` archive whose ``data.tar.*`` member
holds the installed tree. Only the members asked for are kept in memory."""
from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Callable

AR_MAGIC = b"!<arch>\n"
_HEADER = 60
_DATA_MEMBERS = ("data.tar.xz", "data.tar.gz", "data.tar.bz2", "data.tar")
# The largest single file kept from a package: far above any image it ships, far below what would hurt.
MAX_MEMBER_BYTES = 256 * 1024 * 1024


class DebError(ValueError):
    """The file is not a readable Debian package (says why in one line)."""


def _ar_members(data: bytes) -> dict[str, bytes]:
    if data[:8] != AR_MAGIC:
        raise DebError("not a Debian package (no ar archive magic)")
    members: dict[str, bytes] = {}
    offset = 8
    while offset + _HEADER <= len(data):
        header = data[offset:offset + _HEADER]
        if header[58:60] != b"`\n":
            raise DebError("damaged package (bad ar member header)")
        name = header[:16].decode("ascii", errors="replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError("damaged package (bad ar member size)") from None
        start = offset + _HEADER
        if start + size > len(data):
            raise DebError(f"truncated package ({name} runs past the end of the file)")
        members[name] = data[start:start + size]
        offset = start + size + (size % 2)
    return members


def read_deb(path: Path | str, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """The regular files of the package's data tree whose path (``usr/share/...``, no leading ``./``) satisfies
    ``wanted``, keyed by that path."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DebError(f"cannot read {path.name}: {exc.strerror or exc}") from None
    members = _ar_members(data)
    tar_name = next((n for n in _DATA_MEMBERS if n in members), None)
    if tar_name is None:
        raise DebError(f"{path.name} has no data.tar member (found: {', '.join(members) or 'nothing'})")
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(members[tar_name]), mode="r:*") as tar:
            for info in tar:
                name = info.name.removeprefix("./")
                if not info.isfile() or not wanted(name):
                    continue
                if info.size > MAX_MEMBER_BYTES:
                    raise DebError(f"{path.name}: {name} is {info.size} bytes, over the {MAX_MEMBER_BYTES} limit")
                handle = tar.extractfile(info)
                if handle is not None:
                    files[name] = handle.read()
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, DebError):
            raise
        raise DebError(f"{path.name}: damaged data archive ({exc})") from None
    return files


def write_deb(files: dict[str, bytes], *, package: str = "fixture", version: str = "1.0") -> bytes:
    """A minimal ``.deb`` holding ``files`` (path -> bytes) under its data tree: what the tests build."""
    def tar_of(entries: dict[str, bytes], mode: str) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode) as tar:
            for name, blob in entries.items():
                info = tarfile.TarInfo(f"./{name}")
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
        return buffer.getvalue()

    control = f"Package: {package}\nVersion: {version}\nArchitecture: all\n".encode()
    members = [("debian-binary", b"2.0\n"), ("control.tar.gz", tar_of({"control": control}, "w:gz")),
               ("data.tar.xz", tar_of(files, "w:xz"))]
    out = bytearray(AR_MAGIC)
    for name, blob in members:
        out.extend(f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(blob):<10}`\n".encode("ascii"))
        out.extend(blob + (b"\n" if len(blob) % 2 else b""))
    return bytes(out)
