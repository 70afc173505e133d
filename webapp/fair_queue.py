"""Fair sharing of Gradio's queue in public mode. Gradio keeps one queue for every event, so a flood of joins from
one client, or a pile of heavy jobs, would fill it for every visitor ("Queue is full"). Before an event joins, this
refuses it, with a message, when its client already has ``PERCEPTUAL_PUBLIC_WAITING_PER_CLIENT`` requests waiting,
when it is heavy and its client already has ``PERCEPTUAL_PUBLIC_HEAVY_PER_CLIENT`` heavy jobs running or waiting,
or when ``PERCEPTUAL_PUBLIC_HEAVY_WAITING`` jobs of its kind already wait. Light requests (listings, cards) do not
queue at all (``queue=False``), so they never wait behind anyone.

It wraps ``Queue.push``, the one place Gradio admits an event (``gradio/queueing.py``; its ``(ok, message,
state)`` answer is what ``/queue/join`` returns, a refusal as HTTP 503 with the message).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable

from perceptual_studio import settings

logger = logging.getLogger(__name__)

# The concurrency groups (``concurrency_id``) of heavy work: one such job holds a CPU for seconds to minutes.
HEAVY_KINDS: frozenset[str] = frozenset({"train", "slow", "sr"})


@dataclass(frozen=True)
class Limits:
    waiting_per_client: int
    heavy_per_client: int
    heavy_waiting: int

    @classmethod
    def from_settings(cls) -> "Limits":
        return cls(settings.public_waiting_per_client(), settings.public_heavy_per_client(),
                   settings.public_heavy_waiting())


def client_of(request: Any) -> str:
    """Who sent a request: its address (on a Space, the first address the Space's proxy forwarded), never the
    session hash a client makes up."""
    if request is None:
        return "unknown"
    if settings.running_on_space():
        forwarded = (request.headers.get("x-forwarded-for") or "").split(",")[0].strip()
        if forwarded:
            return forwarded
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "unknown"


def refusal(kind: str | None, client: str, waiting: Iterable[Any], running: Iterable[Any], limits: Limits) -> str | None:
    """Why an event of ``kind`` from ``client`` may not join now (None: it may), given the events waiting and
    running (each with ``concurrency_id`` and ``request``)."""
    waiting, running = list(waiting), list(running)
    mine = [e for e in waiting if client_of(e.request) == client]
    if len(mine) >= limits.waiting_per_client:
        return (f"You already have {len(mine)} requests waiting. This app is shared: wait for them to finish, "
                "then try again.")
    if kind in HEAVY_KINDS:
        heavy_mine = [e for e in mine + [e for e in running if client_of(e.request) == client]
                      if e.concurrency_id in HEAVY_KINDS]
        if len(heavy_mine) >= limits.heavy_per_client:
            return ("You already have a heavy job (training, the baseline, Explain or super-resolution) running or "
                    "waiting. This app is shared: wait for it to finish, or cancel it, then try again.")
        if sum(1 for e in waiting if e.concurrency_id == kind) >= limits.heavy_waiting:
            return "Too many jobs of this kind are waiting right now. This app is shared: please try again in a few minutes."
    return None


def install(demo: Any) -> None:
    """Admit events to ``demo``'s queue (after ``demo.queue()``) only within :class:`Limits` (public mode)."""
    queue = demo._queue
    push = queue.push

    async def fair_push(body: Any, request: Any, username: str | None):
        fn = _function(demo, body)
        if fn is not None:
            waiting = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
            running = [e for job in queue.active_jobs if job for e in job]
            reason = refusal(fn.concurrency_id, client_of(request), waiting, running, Limits.from_settings())
            if reason is not None:
                logger.info("queue: refused %s from a client (%s)", fn.name, reason.split(".")[0])
                return False, reason, "queue_full"
        return await push(body, request, username)

    queue.push = fair_push


def _function(demo: Any, body: Any) -> Any:
    """The event function a join asks for (None: let Gradio answer a bad index itself)."""
    index = getattr(body, "fn_index", None)
    return demo.fns.get(index) if isinstance(index, int) else None
