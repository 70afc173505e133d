"""How every event function meets Gradio: failures become ``gr.Error`` with a readable message (never a trace),
GPU-heavy events get ZeroGPU time, and handler progress callbacks drive ``gr.Progress``."""
from __future__ import annotations

import functools
import inspect
import logging
from typing import Any, Callable

import gradio as gr

from perceptual_studio import settings
from perceptual_studio.webapp.errors import user_message
from perceptual_studio.webapp.gpu import gpu

logger = logging.getLogger(__name__)


def user_errors(fn: Callable) -> Callable:
    """Re-raise every failure of ``fn`` (a function or a generator function) as ``gr.Error(user_message)``."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_wrapper(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a readable message
                raise gr.Error(user_message(exc)) from None

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a readable message
            raise gr.Error(user_message(exc)) from None

    return wrapper


def event(gpu_seconds: int | None = None) -> Callable[[Callable], Callable]:
    """``user_errors``, plus ZeroGPU for ``gpu_seconds`` when the event runs networks."""
    def decorate(fn: Callable) -> Callable:
        inner = gpu(duration=gpu_seconds)(fn) if gpu_seconds else fn
        return user_errors(inner)

    return decorate


def progress_callback(progress: gr.Progress) -> Callable[[float, str], None]:
    return lambda fraction, text: progress(fraction, desc=text)


def progress_callback_kw(progress: gr.Progress) -> Callable[..., None]:
    """explain's handlers call ``progress(fraction, desc=...)``, as gr.Progress itself does."""
    return lambda fraction, desc=None, **_: progress(fraction, desc=desc)


def visitor_token(oauth_token: gr.OAuthToken | None) -> str | None:
    """A signed-in visitor's token (Hub listing and pulls then see what they may see); None: anonymous on a
    Space, huggingface_hub's own token elsewhere."""
    return oauth_token.token if oauth_token is not None else None


def on_space_with_oauth() -> bool:
    return bool(settings.running_on_space() and settings.oauth_client_id())
