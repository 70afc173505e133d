"""A quick, retry-free check that the Hugging Face Hub answers, so offline use costs seconds, not minutes.

huggingface_hub retries connection errors with exponential back-off (about 25 s in all before it gives
up); one plain request with a short timeout tells us first whether trying is worth it.
"""
from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

from perceptual_studio import settings

DEFAULT_TIMEOUT_S = 3.0
_CACHE_TTL_S = 60.0
_cache: dict[str, tuple[float, bool, str]] = {}
_lock = threading.Lock()


def hub_endpoint() -> str:
    from huggingface_hub import constants

    # A trailing slash (``HF_ENDPOINT=https://hf.co/``) would make every URL ``//api/...``.
    return (settings.hf_endpoint() or constants.ENDPOINT).rstrip("/")


def hub_offline_mode() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or settings.hf_hub_offline()


def probe_hub(endpoint: str | None = None, timeout: float = DEFAULT_TIMEOUT_S, *, fresh: bool = False) -> tuple[bool, str]:
    """Return ``(reachable, reason)``; any HTTP answer, even an error status, counts as reachable."""
    if hub_offline_mode():
        return False, "HF_HUB_OFFLINE is set"
    endpoint = (endpoint or hub_endpoint()).rstrip("/")
    now = time.monotonic()
    with _lock:
        cached = _cache.get(endpoint)
        if cached and not fresh and now - cached[0] < _CACHE_TTL_S:
            return cached[1], cached[2]
    try:
        with urllib.request.urlopen(f"{endpoint}/api/models?limit=1", timeout=timeout):
            result = (True, "ok")
    except urllib.error.HTTPError as exc:
        result = (True, f"HTTP {exc.code}")
    except Exception as exc:  # noqa: BLE001 - DNS, refused, timeout, TLS: all mean "not reachable now"
        reason = getattr(exc, "reason", None) or exc
        result = (False, f"{endpoint} is unreachable ({reason})")
    with _lock:
        _cache[endpoint] = (now, *result)
    return result
