"""Make Gradio's result cache safe for identical concurrent results.

Gradio names a cached result after the hash of its bytes, and ``save_pil_to_cache`` / ``save_bytes_to_cache``
(gradio 6.31) rewrite that file in place with ``Path.write_bytes`` every time. Two visitors who stylize the
same example photo with the same model get byte-identical results, hence the same path: while the second
request truncates and rewrites the file, the first visitor's download of it can read zero bytes, and the
browser or ``gradio_client`` sees "peer closed connection without sending complete message body"
(``python -m benchmarks.load`` lost 3 of 300 requests this way). ``save_file_to_cache`` already writes under a
temporary name and renames it into place; :func:`install` does the same for the other two writers.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gradio import processing_utils

_installed = False
GRADIO_SAVE_PIL_TO_CACHE = processing_utils.save_pil_to_cache  # the in-place original, kept for the tests


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old complete file or the new one, never a partial one."""
    if path.is_file() and path.stat().st_size == len(data):
        # Named by the hash of its bytes, so it already holds them; touched because ``delete_cache`` ages files
        # by time and this new reference must outlive the schedule of the first one.
        try:
            os.utime(path)
        except OSError:
            pass
        return
    fd, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def _save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:  # noqa: A002
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    _write_atomically(path, data)
    return str(path)


def _save_bytes_to_cache(data: bytes, file_name: str, cache_dir: str) -> str:
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    if not Path(file_name).suffix:
        file_name += processing_utils.detect_audio_format(data)
    path = folder / Path(file_name).name
    _write_atomically(path, data)
    return str(path.resolve())


def install() -> None:
    """Replace the two in-place writers (idempotent). Callers of ``processing_utils.<name>`` pick this up,
    including ``save_img_array_to_cache``, which looks ``save_pil_to_cache`` up in the module at call time."""
    global _installed
    if not _installed:
        processing_utils.save_pil_to_cache = _save_pil_to_cache
        processing_utils.save_bytes_to_cache = _save_bytes_to_cache
        _installed = True
