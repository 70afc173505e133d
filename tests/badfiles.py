"""Bad uploads of many kinds, made on the fly (nothing committed): what a public Space receives."""
from __future__ import annotations

import io
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png_header(width: int = 60000, height: int = 60000) -> bytes:
    """A valid PNG signature and IHDR declaring a huge image, with a tiny (wrong) body: a decompression bomb's shape."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _png_chunk(b"IEND", b""))


def huge_gif_header(width: int = 60000, height: int = 60000) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b";"


def _image_bytes(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 90, 40)).save(buffer, fmt)
    return buffer.getvalue()


def bad_files(folder: Path) -> dict[str, Path]:
    """name -> a file on disk, each a kind of upload the app must refuse with its own message."""
    folder.mkdir(parents=True, exist_ok=True)
    png, jpeg = _image_bytes("PNG"), _image_bytes("JPEG")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "hello")
    kinds = {
        "empty.png": b"",
        "text-named.png": b"this is not an image, just text\n",
        "pickle-named.png": pickle.dumps({"weights": [1, 2, 3]}),
        "bomb-header.png": huge_png_header(),
        "bomb-header.gif": huge_gif_header(),
        "truncated.png": png[: len(png) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
        "page-named.jpg": b"<!DOCTYPE html><html><body>hi</body></html>",
        "archive-named.png": archive.getvalue(),
        "document-named.jpg": b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n",
    }
    paths = {}
    for name, data in kinds.items():
        paths[name] = folder / name
        paths[name].write_bytes(data)
    return paths
