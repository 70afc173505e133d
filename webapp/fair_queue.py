"""Fair sharing of Gradio's queue in public mode. Gradio keeps one queue for every event, so a flood of joins from
one client, or a pile of heavy jobs, would fill it for every visitor ("Queue is full"), and one client's waiting
requests would all run before another visitor's first. Before an event joins, this
refuses it, with a message, when its client already has ``PERCEPTUAL_PUBLIC_WAITING_PER_CLIENT`` requests waiting,
when it is heavy and its client already has ``PERCEPTUAL_PUBLIC_HEAVY_PER_CLIENT`` heavy jobs running or waiting,
or when ``PERCEPTUAL_PUBLIC_HEAVY_WAITING`` jobs of its kind already wait; and it keeps each group's waiting events
in round-robin order of their clients (:func:`interleave`). Light requests (listings, cards) do not queue at all
(``queue=False``), so they never wait behind anyone.

It wraps ``Queue.push``, the one place Gradio admits an event (``gradio/queueing.py``; its ``(ok, message,
state)`` answer is what ``/queue/join`` returns; a refusal is HTTP 422 with the sentence, :func:`refusal_detail`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable

from perceptual_studio import settings

logger = logging.getLogger(__name__)

# The concurrency groups (``concurrency_id``) of heavy work: one such job holds a CPU for seconds to minutes.
HEAVY_KINDS: frozenset[str] = frozenset({"train", "slow", "sr", "video"})


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
            return ("You already have a heavy job (training, the baseline, Explain, super-resolution or a video) running or "
                    "waiting. This app is shared: wait for it to finish, or cancel it, then try again.")
        if sum(1 for e in waiting if e.concurrency_id == kind) >= limits.heavy_waiting:
            return "Too many jobs of this kind are waiting right now. This app is shared: please try again in a few minutes."
    return None


def interleave(events: list[Any]) -> list[Any]:
    """Waiting events in round-robin order of their clients: every client's first waiting event before anyone's
    second, and so on, each in arrival order. Gradio runs a group's events first come, first served, so without
    this one client's waiting requests would all run before another visitor's first."""
    turns: dict[str, int] = {}
    ranked = []
    for position, event in enumerate(events):
        client = client_of(event.request)
        ranked.append((turns.get(client, 0), position, event))
        turns[client] = turns.get(client, 0) + 1
    return [event for _, _, event in sorted(ranked, key=lambda r: r[:2])]


def refusal_detail(reason: str) -> list[dict[str, Any]]:
    """A refusal as Gradio's validation answer (HTTP 422): the one refusal both of Gradio's clients show as it is,
    the page under the request's first input and gradio_client as ``ValidationError``; a "queue full" answer
    (503) would reach them as a generic "busy, try again"."""
    return [{"__type__": "validate", "is_valid": False, "message": reason, "parameter_name": "this request"}]


def install(demo: Any) -> None:
    """Admit events to ``demo``'s queue (after ``demo.queue()``) only within :class:`Limits`, and keep each group's
    waiting events in :func:`interleave` order (public mode)."""
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
                return False, refusal_detail(reason), "validator_error"
        answer = await push(body, request, username)
        group = queue.event_queue_per_concurrency_id.get(fn.concurrency_id) if fn is not None else None
        if answer[0] and group is not None:
            group.queue[:] = interleave(group.queue)
        return answer

    queue.push = fair_push


def _function(demo: Any, body: Any) -> Any:
    """The event function a join asks for (None: let Gradio answer a bad index itself)."""
    index = getattr(body, "fn_index", None)
    return demo.fns.get(index) if isinstance(index, int) else None
