"""The running request, as the app's policies need it (public mode): who sent it (the owner of a visitor's models)
and whether its work should go on (its client still there, its time not up). Everything here reads Gradio's own
context of the event being processed (``gradio.context.LocalContext``), so the handlers stay free of Gradio: they
get an owner key and plain callables."""
from __future__ import annotations

import time
from typing import Any, Callable

from perceptual_studio import settings
from perceptual_studio.webapp import visitor_models


def current_visitor() -> str | None:
    """Who sent the running request, in public mode: ``hf:<user>`` when signed in with Hugging Face, else
    ``session:<hash>`` (the browser session, or an API client's); None in a local app, whose one user owns
    every model."""
    if not settings.public_mode():
        return None
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    username = getattr(request, "username", None)
    if username:
        return f"hf:{username}"
    session = getattr(request, "session_hash", None)
    return f"session:{session}" if session else None


def current_owner() -> str | None:
    """The running request's owner key for visitors' models (``visitor_models.owner_key``)."""
    return visitor_models.owner_key(current_visitor())


def check_model_access(*model_ids: str | None) -> None:
    """Refuse another visitor's model as if it did not exist (public mode; ``visitor_models.check_access``)."""
    owner = current_owner()
    for model_id in model_ids:
        visitor_models.check_access(model_id, owner)


class RequestStopped(ValueError):
    """A request stopped by the app (public mode): its client left, or it ran past the time limit."""


def request_guard() -> Callable[[], None]:
    """In public mode, a check for the running request's long work to call at each step: it raises
    :class:`RequestStopped` once the request has run ``PERCEPTUAL_PUBLIC_MAX_REQUEST_SECONDS`` or its client has
    gone (Gradio marks an event not ``alive`` when its page or API client disconnects), so abandoned work stops at
    its next step instead of holding a core for minutes. Made in the event's own thread, where Gradio's context
    names the request; a local app gets a check that does nothing."""
    if not settings.public_mode():
        return lambda: None
    gone = client_gone_check()
    limit = settings.public_max_request_seconds()
    deadline = time.monotonic() + limit

    def check() -> None:
        if gone():
            raise RequestStopped("Stopped: the page or client that asked for this is gone.")
        if time.monotonic() > deadline:
            raise RequestStopped(f"Stopped after {limit} s, the longest one request runs in this shared app; try a "
                                 "smaller image or fewer iterations.")

    return check


def client_gone_check() -> Callable[[], bool]:
    """In public mode, whether the running request's client has gone (callable from any thread, e.g. a training
    job's own, whose generator Gradio stops calling when its client leaves); always False in a local app."""
    if not settings.public_mode():
        return lambda: False
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    return lambda: _client_gone(blocks, event_id)


def _client_gone(blocks: Any, event_id: str | None) -> bool:
    """Whether Gradio's queue has marked the running event ``event_id`` as abandoned by its client."""
    queue = getattr(blocks, "_queue", None)
    for job in getattr(queue, "active_jobs", None) or []:
        for running in job or []:
            if getattr(running, "_id", None) == event_id:
                return not getattr(running, "alive", True)
    return False
