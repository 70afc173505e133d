"""Keep the server's memory level under concurrent requests (glibc only; elsewhere a no-op).

glibc gives each thread that allocates its own malloc arena (up to 8 per core). Gradio runs every request in
a worker thread, and image tensors of a few MB are freed in one arena and requested in another, so the heap
fragments and the resident size creeps up with each burst of visitors. Two arenas, as ``MALLOC_ARENA_MAX=2``
would set before start-up, keep it level at a negligible cost in lock contention (the heavy work runs inside
torch, not malloc). It must run before the worker threads start.

A heavy request (a 2048 px super-resolution, the baseline at 512 px) frees hundreds of MB of activations that
glibc keeps in its heaps for reuse; :func:`release_free_memory` hands them back to the system after it (measured:
1709 -> 1412 MB after one of each), so the server's size returns to its level once the heavy work is done; and
:func:`start_releasing` does the same every few seconds for whatever else ran (a trim takes 2 ms on an idle heap,
20-40 ms after a 1024 px stylize, so it runs in its own thread rather than after every request).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import threading

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


def release_free_memory() -> bool:
    """Return the free memory at the top of glibc's heaps to the system (``malloc_trim(0)``); False elsewhere."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        return bool(ctypes.CDLL(name).malloc_trim(0))
    except (OSError, AttributeError):  # not glibc
        return False


_heavy_work_ended = threading.Event()


def heavy_work_ended() -> None:
    """Note that a heavy request ended: the next pass of :func:`start_releasing` collects garbage first."""
    _heavy_work_ended.set()


def start_releasing(every_s: float = 15.0) -> threading.Thread:
    """Call :func:`release_free_memory` every ``every_s`` seconds in a daemon thread (the app's).

    After heavy work it runs a full garbage collection first: Gradio keeps a finished request's error and frames in
    reference cycles, which hold its inputs (measured: 40 MB of the server's size after the heaviest mix of
    benchmarks.abuse). A collection takes about 0.35 s with the app's handlers loaded (390 000 objects), so it runs
    only then, not on every pass.
    """
    def loop() -> None:
        while True:
            threading.Event().wait(every_s)
            if _heavy_work_ended.is_set():
                _heavy_work_ended.clear()
                gc.collect()
            release_free_memory()

    thread = threading.Thread(target=loop, name="release-free-memory", daemon=True)
    thread.start()
    return thread
