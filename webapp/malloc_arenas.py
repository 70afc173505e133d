"""Keep the server's memory level under concurrent requests (glibc only; elsewhere a no-op).

glibc gives each thread that allocates its own malloc arena (up to 8 per core). Gradio runs every request in
a worker thread, and image tensors of a few MB are freed in one arena and requested in another, so the heap
fragments and the resident size creeps up with each burst of visitors. Two arenas, as ``MALLOC_ARENA_MAX=2``
would set before start-up, keep it level at a negligible cost in lock contention (the heavy work runs inside
torch, not malloc). It must run before the worker threads start.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

from perceptual_studio import settings

logger = logging.getLogger(__name__)

M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (unless ``MALLOC_ARENA_MAX`` is already set); True if the cap was applied."""
    if settings.malloc_arena_max():
        return False  # the operator chose: glibc read it at start-up
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        applied = bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return False
    if applied:
        logger.debug("malloc arenas capped at %d", arenas)
    return applied
