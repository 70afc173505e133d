"""ZeroGPU support: ``@gpu(duration=...)`` is ``spaces.GPU`` when the ``spaces`` package is installed, else a no-op.

``spaces.GPU`` itself does nothing outside a ZeroGPU Space (it checks ``SPACES_ZERO_GPU``), so the same
handlers run unchanged locally, on a dedicated-GPU Space and on a free CPU Space.
"""
from __future__ import annotations

from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


def gpu(duration: int = 60) -> Callable[[F], F]:
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)
