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
from perceptual_studio.webapp.malloc_arenas import heavy_work_ended, release_free_memory
from perceptual_studio.webapp.request_context import request_guard

logger = logging.getLogger(__name__)


def user_errors(fn: Callable) -> Callable:
    """Re-raise every failure of ``fn`` (a function or a generator function) as ``gr.Error(user_message)``.

    The message is raised outside the ``except`` block so that it holds no reference to the failure: the failure's
    traceback holds the frames of the work it stopped (a stopped baseline's L-BFGS history is 1.2 GB at 512 px), and
    Gradio keeps the error it reports in a reference cycle that only a full garbage collection frees.
    """
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_wrapper(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
                return
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a readable message
                message = user_message(exc)
            raise gr.Error(message)

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a readable message
            message = user_message(exc)
        raise gr.Error(message)

    return wrapper


def event(gpu_seconds: int | None = None, *, heavy: bool = False) -> Callable[[Callable], Callable]:
    """``user_errors``, plus ZeroGPU for ``gpu_seconds`` when the event runs networks; ``heavy``: the event frees
    hundreds of MB when it ends, which go back to the system (``release_free_memory``)."""
    def decorate(fn: Callable) -> Callable:
        inner = gpu(duration=gpu_seconds)(fn) if gpu_seconds else fn
        return user_errors(_then_release_memory(inner) if heavy else inner)

    return decorate


def _then_release_memory(fn: Callable) -> Callable:
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_wrapper(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            finally:
                release_free_memory()
                heavy_work_ended()

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        finally:
            release_free_memory()
            heavy_work_ended()

    return wrapper


def progress_callback(progress: gr.Progress) -> Callable[[float, str], None]:
    """A handler's ``progress(fraction, text)``: drives ``gr.Progress`` and, in public mode, stops abandoned or
    overlong work at its next step (``request_context.request_guard``)."""
    check = request_guard()

    def report(fraction: float, text: str) -> None:
        check()
        progress(fraction, desc=text)

    return report


def progress_callback_kw(progress: gr.Progress) -> Callable[..., None]:
    """explain's handlers call ``progress(fraction, desc=...)``, as gr.Progress itself does."""
    report = progress_callback(progress)
    return lambda fraction, desc=None, **_: report(fraction, desc or "")


def visitor_token(oauth_token: gr.OAuthToken | None) -> str | None:
    """A signed-in visitor's token (Hub listing and pulls then see what they may see); None: anonymous on a
    Space, huggingface_hub's own token elsewhere."""
    return oauth_token.token if oauth_token is not None else None


def on_space_with_oauth() -> bool:
    return bool(settings.running_on_space() and settings.oauth_client_id())
