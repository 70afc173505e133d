"""Turn library failures into one clear, user-facing message (never a stack trace)."""
from __future__ import annotations

import logging

import torch

from perceptual_studio.imaging import ImageInputError
from perceptual_studio.registry.errors import RegistryError

logger = logging.getLogger(__name__)

OUT_OF_MEMORY = "The device ran out of memory for this image size. Try a smaller size (lower the size slider) or a smaller image."
_OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "defaultcpuallocator")


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(marker in text for marker in _OOM_MARKERS)


def user_message(exc: BaseException) -> str:
    """A one-line explanation of ``exc`` for the UI and the CLI."""
    if isinstance(exc, ImageInputError):
        return str(exc)
    if _is_out_of_memory(exc):
        return OUT_OF_MEMORY
    if isinstance(exc, RegistryError):
        return str(exc)
    if isinstance(exc, (ValueError, FileNotFoundError, KeyError, TimeoutError)):
        return str(exc).strip("'\"")
    if type(exc).__name__ == "TrainingDivergedError":  # train.loop; not imported here to keep this module light
        return f"Training stopped: {exc}"
    logger.exception("unexpected error", exc_info=exc)
    return f"Something went wrong ({type(exc).__name__}: {exc}). The app is still running; please try again."
