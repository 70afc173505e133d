"""Read Qt's binary resource files (``.rcc``, magic ``qres``) without Qt.

Layout (qtbase ``src/corelib/io/qresource.cpp``; all integers big-endian): the magic, then format version, tree
offset, data offset and names offset (4 bytes each; version 3 adds a flags word). A tree node is 14 bytes
(version 1) or 22 (version 2 and later add an 8-byte modification time): name offset (4), flags (2), then a
directory's child count and first child index (4 + 4) or a file's territory and language (2 + 2) and data
offset (4). A name is a 2-byte length, a 4-byte hash and that many UTF-16BE code units. A data entry is a 4-byte
length and the bytes; with the compressed flag they are ``qCompress`` output: a 4-byte uncompressed size, then a
zlib stream.
"""
from __future__ import annotations

import struct
import zlib

MAGIC = b"qres"
_COMPRESSED, _DIRECTORY, _COMPRESSED_ZSTD = 0x01, 0x02, 0x04
# Guards against a hostile or damaged file: a real activity holds a few hundred files.
MAX_ENTRIES = 100_000


class RccError(ValueError):
    """The bytes are not a readable Qt resource file (says why in one line)."""


def _unpack(fmt: str, data: bytes, offset: int) -> tuple[int, ...]:
    end = offset + struct.calcsize(fmt)
    if offset < 0 or end > len(data):
        raise RccError(f"truncated resource file (needs byte {end}, has {len(data)})")
    return struct.unpack_from(fmt, data, offset)


def read_rcc(data: bytes) -> dict[str, bytes]:
    """Every file in the resource, keyed by its path inside it (``a/b/c.webp``), decompressed."""
    if data[:4] != MAGIC:
        raise RccError("not a Qt resource file (no 'qres' magic)")
    version, tree, payload, names = _unpack(">IIII", data, 4)
    if version not in (1, 2, 3):
        raise RccError(f"unsupported Qt resource format version {version}")
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = _unpack(">H", data, names + offset)
        start = names + offset + 6
        if start + 2 * length > len(data):
            raise RccError("truncated resource file (a name runs past the end)")
        return data[start:start + 2 * length].decode("utf-16-be", errors="replace")

    files: dict[str, bytes] = {}
    pending = [(0, "")]  # (node index, its parent's path)
    seen = 0
    while pending:
        index, prefix = pending.pop()
        seen += 1
        if seen > MAX_ENTRIES:
            raise RccError(f"more than {MAX_ENTRIES} entries, or a loop in the tree")
        base = tree + index * node_size
        name_offset, flags = _unpack(">IH", data, base)
        path = f"{prefix}{name_at(name_offset)}" if index else ""
        if flags & _DIRECTORY:
            count, first = _unpack(">II", data, base + 6)
            if first <= index:
                raise RccError("a directory points back into the tree (a loop)")
            pending.extend((child, f"{path}/" if path else "") for child in range(first, first + count))
            continue
        (data_offset,) = _unpack(">I", data, base + 10)
        (size,) = _unpack(">I", data, payload + data_offset)
        start = payload + data_offset + 4
        if start + size > len(data):
            raise RccError(f"truncated resource file ({path} runs past the end)")
        blob = data[start:start + size]
        if flags & _COMPRESSED_ZSTD:
            raise RccError(f"{path} is zstd-compressed, which this reader does not handle")
        if flags & _COMPRESSED:
            try:
                blob = zlib.decompress(blob[4:])
            except zlib.error as exc:
                raise RccError(f"{path}: damaged compressed data ({exc})") from None
        files[path] = blob
    return files


def write_rcc(files: dict[str, bytes], *, compress: bool = True) -> bytes:
    """A version-3 resource file holding ``files`` (a flat or nested path map): what the tests read back."""
    tree_root: dict = {}
    for path, blob in files.items():
        node = tree_root
        parts = path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = blob

    names = bytearray()
    name_offsets: dict[str, int] = {}

    def name_offset(name: str) -> int:
        if name not in name_offsets:
            encoded = name.encode("utf-16-be")
            name_offsets[name] = len(names)
            names.extend(struct.pack(">HI", len(encoded) // 2, 0) + encoded)
        return name_offsets[name]

    # Breadth-first numbering: a directory's children are consecutive, as rcc writes them.
    nodes: list[tuple[str, object]] = [("", tree_root)]
    order: list[tuple[str, object, int, int]] = []
    payload = bytearray()
    index = 0
    while index < len(nodes):
        name, item = nodes[index]
        if isinstance(item, dict):
            order.append((name, item, len(item), len(nodes)))
            nodes.extend(sorted(item.items()))
        else:
            order.append((name, item, 0, 0))
        index += 1
    tree = bytearray()
    for name, item, count, first in order:
        offset = name_offset(name) if name else 0
        if isinstance(item, dict):
            tree.extend(struct.pack(">IHII", offset, _DIRECTORY, count, first) + bytes(8))
        else:
            blob = bytes(item)
            flags = 0
            if compress:
                blob, flags = struct.pack(">I", len(blob)) + zlib.compress(blob), _COMPRESSED
            tree.extend(struct.pack(">IHHHI", offset, flags, 0, 0, len(payload)) + bytes(8))
            payload.extend(struct.pack(">I", len(blob)) + blob)
    header_size = 24
    tree_offset = header_size
    payload_offset = tree_offset + len(tree)
    names_offset = payload_offset + len(payload)
    header = MAGIC + struct.pack(">IIIII", 3, tree_offset, payload_offset, names_offset, 0)
    return bytes(header + tree + payload + names)
