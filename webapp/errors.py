"""Turn library failures into one clear, user-facing message (never a stack trace)."""
from __future__ import annotations

import logging

import torch

from imaging import ImageInputError

logger = logging.getLogger(__name__)


def user_message(exc: BaseException) -> str:
    """A one-line explanation of ``exc`` for the UI and the CLI."""
    if isinstance(exc, ImageInputError):
        return str(exc)
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return "The device ran out of memory for this image size. Try a smaller size (lower the size slider)."
    if isinstance(exc, (ValueError, FileNotFoundError, KeyError)):
        return str(exc).strip("'\"")
    logger.exception("unexpected error")
    return f"Something went wrong ({type(exc).__name__}: {exc}). The app is still running; please try again."
