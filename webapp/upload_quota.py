"""Upload bounds of a shared app (public mode). Gradio caps each file (``max_file_size``) but not a request of many
files, nor how much one client sends over time: a single request once stored 450 MB in its upload cache in 1.4 s.
This ASGI middleware answers an upload (``POST .../upload``) with HTTP 413 and a sentence, before reading its
body, when

- the request declares no length, or more than ``PERCEPTUAL_PUBLIC_MAX_UPLOAD_REQUEST`` bytes;
- its client (``fair_queue.client_of``: the address, on a Space the forwarded one) has sent
  ``PERCEPTUAL_PUBLIC_UPLOAD_BYTES_PER_HOUR`` in the last hour, or all clients together
  ``PERCEPTUAL_PUBLIC_UPLOAD_TOTAL_PER_HOUR``.

What is admitted is swept from the cache by Gradio's ``delete_cache`` schedule (``webapp/ui.py``).
"""
from __future__ import annotations

import collections
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from perceptual_studio import settings

from .fair_queue import client_of

logger = logging.getLogger(__name__)

WINDOW_S = 3600.0


@dataclass(frozen=True)
class UploadLimits:
    per_request: int
    per_client_hour: int
    total_hour: int

    @classmethod
    def from_settings(cls) -> "UploadLimits":
        return cls(settings.public_max_upload_request(), settings.public_upload_bytes_per_hour(),
                   settings.public_upload_total_per_hour())


class UploadLedger:
    """The bytes admitted in the last hour, by client."""

    def __init__(self) -> None:
        self._sent: "collections.deque[tuple[float, str, int]]" = collections.deque()
        self._lock = threading.Lock()

    def admit(self, client: str, size: int | None, limits: UploadLimits, now: float | None = None) -> str | None:
        """Record an upload of ``size`` bytes from ``client`` and return None, or return why it is refused."""
        now = time.monotonic() if now is None else now
        if size is None:
            return "An upload here must say its size (Content-Length)."
        if size > limits.per_request:
            return (f"This upload is {size / 2**20:.0f} MiB; this shared app takes at most "
                    f"{limits.per_request / 2**20:.0f} MiB in one upload.")
        with self._lock:
            while self._sent and self._sent[0][0] < now - WINDOW_S:
                self._sent.popleft()
            mine = sum(n for _, who, n in self._sent if who == client)
            if mine + size > limits.per_client_hour:
                return ("You have uploaded as much as this shared app takes from one visitor in an hour; please try "
                        "again later.")
            if sum(n for _, _, n in self._sent) + size > limits.total_hour:
                return "This shared app has taken as many uploads as it can this hour; please try again later."
            self._sent.append((now, client, size))
        return None


class UploadQuota:
    """ASGI middleware: :class:`UploadLedger` in front of Gradio's upload route."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.ledger = UploadLedger()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST" or not scope.get("path", "").endswith("/upload"):
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request  # FastAPI's own, imported where the app runs

        request = Request(scope)
        length = request.headers.get("content-length")
        size = int(length) if length and length.isdigit() else None
        reason = self.ledger.admit(client_of(request), size, UploadLimits.from_settings())
        if reason is None:
            await self.app(scope, receive, send)
            return
        logger.info("upload refused (%s)", reason.split(";")[0])
        body = json.dumps({"error": reason, "detail": reason}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def middleware() -> list[Any]:
    """What ``launch(app_kwargs={"middleware": ...})`` takes, in public mode."""
    from starlette.middleware import Middleware

    return [Middleware(UploadQuota)]
