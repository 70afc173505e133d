"""Turn library failures into one clear, user-facing message (never a stack trace)."""
from __future__ import annotations

import logging
import re

import torch

from perceptual_studio import settings

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


def user_message(exc: BaseException, *, public: bool | None = None) -> str:
    """A one-line explanation of ``exc`` for the UI and the CLI. In public mode (default: ``settings.public_mode``)
    it names no server path and is cut to :data:`MAX_PUBLIC_MESSAGE` characters; an unexpected error is named by
    its kind alone."""
    public = settings.public_mode() if public is None else public
    message = _message(exc, public)
    return _for_the_public(message) if public else message


def _message(exc: BaseException, public: bool) -> str:
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
    details = "" if public else f": {exc}"
    return f"Something went wrong ({type(exc).__name__}{details}). The app is still running; please try again."


MAX_PUBLIC_MESSAGE = 400
# An absolute POSIX path (not the path part of a URL, nor the "/" of an owner/name id): from "/" to a delimiter.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/[^\s'\"(),;:]+")
_HOME_PATH = re.compile(r"(?<![\w/])~/[^\s'\"(),;:]*")
# The server's settings are the owner's business: a hint naming one is dropped, a bare name becomes "a setting".
_SETTING = r"\b(?:PERCEPTUAL|HF|GRADIO|HUGGING_FACE)_[A-Z0-9_]+\b"
_SETTING_HINT = re.compile(r"\s*\((?=[^()]*" + _SETTING + r")[^()]*\)")
_SETTING_NAME = re.compile(_SETTING)


def _for_the_public(message: str) -> str:
    """``message`` with every server path reduced to its last part, no setting named, and no longer than a sentence
    or two."""
    def last_part(match: re.Match) -> str:
        name = match.group(0).rstrip("/.").rpartition("/")[2]
        return f"…/{name}" if name else "…"

    message = _HOME_PATH.sub(last_part, _ABSOLUTE_PATH.sub(last_part, message))
    message = _SETTING_NAME.sub("a server setting", _SETTING_HINT.sub("", message))
    return message if len(message) <= MAX_PUBLIC_MESSAGE else message[: MAX_PUBLIC_MESSAGE - 1] + "…"
