"""Process memory for the benchmarks: peak and current resident set size, in MiB.

The peak is ``VmHWM`` from ``/proc/self/status``, which starts afresh when a process is exec'd.
``resource.getrusage(...).ru_maxrss`` does not: a subprocess inherits its parent's high-water mark, so a
benchmark child started from a parent holding 1 GB would report at least 1 GB. Off Linux it falls back to
``ru_maxrss`` (and says so through :data:`SOURCE`).
"""
from __future__ import annotations

import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
SOURCE = "VmHWM (/proc/self/status)" if _STATUS.exists() else "ru_maxrss"


def _status_mb(field: str) -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident set size so far."""
    value = _status_mb("VmHWM")
    if value is not None:
        return value
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kilobytes elsewhere


def current_rss_mb() -> float:
    """This process's resident set size now (the peak where the current value is unavailable)."""
    value = _status_mb("VmRSS")
    return value if value is not None else peak_rss_mb()
