"""Long jobs behind a web request (training): a worker thread per job, its events streamed back to the request's
generator, cancellation by job id (also while the job still waits in Gradio's queue), and a one-job slot.

Nothing here knows what the job does or how its progress is shown: that is the handler's (``handlers/training.py``).
"""
from __future__ import annotations

import queue
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterator

Report = Callable[[Any], None]


@dataclass
class Finished:
    """The job's end: its return value, or the exception it raised."""

    result: Any = None
    error: BaseException | None = None


class JobBoard:
    """Stop flags by job id, and one slot (only one job of this kind runs at a time in the process)."""

    def __init__(self, max_jobs: int = 256) -> None:
        self._flags: "OrderedDict[str, threading.Event]" = OrderedDict()
        self._lock = threading.Lock()
        self._max_jobs = max_jobs
        self.slot = threading.Lock()

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def stop_flag(self, job_id: str | None) -> threading.Event:
        """The job's stop flag (created on first use: a cancel may come before the job starts)."""
        with self._lock:
            if not job_id:
                return threading.Event()
            flag = self._flags.get(job_id)
            if flag is None:
                flag = self._flags[job_id] = threading.Event()
                while len(self._flags) > self._max_jobs:
                    self._flags.popitem(last=False)
            return flag

    def cancel(self, job_id: str) -> None:
        self.stop_flag(job_id).set()

    def forget(self, job_id: str | None) -> None:
        with self._lock:
            if job_id:
                self._flags.pop(job_id, None)

    def busy(self) -> bool:
        return self.slot.locked()


def run_in_background(work: Callable[[Report, threading.Event], Any], stop: threading.Event, *,
                      name: str) -> Iterator[list[Any] | Finished]:
    """Run ``work(report, stop)`` in a thread; yield every batch of events it reports as they arrive (all that
    queued up since the last batch), then one :class:`Finished`.

    Closing the generator early (the visitor left, the request was cancelled) sets ``stop`` and waits up to a
    minute for the job to wind down, so a job never outlives its request unnoticed.
    """
    events: "queue.Queue[Any]" = queue.Queue()
    done = object()
    outcome = Finished()

    def target() -> None:
        try:
            outcome.result = work(events.put, stop)
        except BaseException as exc:  # noqa: BLE001 - handed over to the generator's thread
            outcome.error = exc
        finally:
            events.put(done)

    worker = threading.Thread(target=target, name=name, daemon=True)
    worker.start()
    try:
        finished = False
        while not finished:
            batch = [events.get()]
            while True:
                try:
                    batch.append(events.get_nowait())
                except queue.Empty:
                    break
            finished = batch[-1] is done
            batch = [event for event in batch if event is not done]
            if batch:
                yield batch
        yield outcome
    finally:
        if worker.is_alive():
            stop.set()
            worker.join(timeout=60)
