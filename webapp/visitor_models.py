"""Visitors' models on a shared app (public mode): whose they are, how long they stay, how many each may keep.

A model a visitor trains belongs to that visitor: their Hub account when signed in, else their browser session
(the page they trained it from; an API client's session). The app records each one (``<data dir>/
visitor-models.json``: name, owner, time, published), so it touches those alone, never a model the owner
installed, and:

- lists and serves a visitor's model to its owner alone (:func:`hidden_names`, :func:`check_access`: to anyone
  else it does not exist, with the registry's own "no model" message, so a name says nothing);
- lets its owner alone publish it, and keeps a published one past the expiry (:func:`mark_published`);
- removes it after ``PERCEPTUAL_PUBLIC_VISITOR_MODEL_HOURS`` unless published (:func:`sweep`, also on a timer),
  beyond ``PERCEPTUAL_PUBLIC_MODELS_PER_VISITOR`` of one owner the owner's oldest, and beyond
  ``PERCEPTUAL_PUBLIC_MAX_VISITOR_MODELS`` in all the oldest of anyone's;
- drops a finished training's run folder (checkpoints and previews, tens of MB).

The record is kept in memory and written through to the file, so the per-frame access check of a webcam stream
reads no disk. Owners are stored as a hash of the account or session, never the session itself.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from perceptual_studio import settings
from perceptual_studio.registry import InvalidModelIdError
from perceptual_studio.registry.api import parse_model_id

logger = logging.getLogger(__name__)

RECORD_FILE = "visitor-models.json"
SWEEP_EVERY_S = 600.0  # how often the app's timer removes expired models (public mode)


@dataclass
class VisitorModel:
    name: str
    owner: str  # owner_key() of the visitor who trained it
    created: float
    published: bool = False


_lock = threading.Lock()
_loaded: tuple[Path, list[VisitorModel]] | None = None  # the record of one data folder, kept in memory


def owner_key(identity: str | None) -> str | None:
    """What the record stores for ``identity`` (``hf:<user>`` or ``session:<hash>``): a hash, not the session."""
    return hashlib.sha256(identity.encode()).hexdigest()[:32] if identity else None


def _record_path() -> Path:
    return settings.data_dir() / RECORD_FILE


def _entries() -> list[VisitorModel]:
    """The record (call with ``_lock`` held); read from disk once per data folder."""
    global _loaded
    path = _record_path()
    if _loaded is None or _loaded[0] != path:
        _loaded = (path, _read(path))
    return _loaded[1]


def _read(path: Path) -> list[VisitorModel]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    entries = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            entries.append(VisitorModel(item["name"], str(item.get("owner") or ""), float(item.get("created") or 0),
                                        bool(item.get("published"))))
    return entries


def _write(entries: list[VisitorModel]) -> None:
    global _loaded
    path = _record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(e) for e in entries], indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    _loaded = (path, entries)


def _remove(entries: list[VisitorModel]) -> None:
    for entry in entries:
        shutil.rmtree(settings.models_dir() / entry.name, ignore_errors=True)
        shutil.rmtree(settings.runs_dir() / entry.name, ignore_errors=True)


def _over_quota(entries: list[VisitorModel], owner: str) -> list[VisitorModel]:
    """The models beyond the per-visitor and the total cap: the owner's oldest, then anyone's oldest."""
    entries = sorted(entries, key=lambda e: e.created)
    mine = [e for e in entries if e.owner == owner]
    removed = mine[: max(0, len(mine) - settings.public_models_per_visitor())]
    rest = [e for e in entries if e not in removed]
    removed += rest[: max(0, len(rest) - settings.public_max_visitor_models())]
    return removed


def after_training(name: str, owner: str | None = None) -> list[str]:
    """In public mode: record the new model ``name`` (if the training wrote one) as ``owner``'s, drop its run
    folder, and remove what is past its time or beyond the quotas (never the model just made); the names removed
    ([] outside public mode)."""
    if not settings.public_mode():
        return []
    shutil.rmtree(settings.runs_dir() / name, ignore_errors=True)
    owner = owner or ""
    with _lock:
        entries = [e for e in _entries() if e.name != name and (settings.models_dir() / e.name).is_dir()]
        if (settings.models_dir() / name).is_dir():
            entries.append(VisitorModel(name, owner, time.time()))
        removed = [e for e in _expired(entries) if e.name != name]
        entries = [e for e in entries if e not in removed]
        over = [e for e in _over_quota(entries, owner) if e.name != name]
        removed += over
        _remove(removed)
        _write([e for e in entries if e not in over])
    if removed:
        logger.info("visitor models: removed %d (%s)", len(removed), ", ".join(e.name for e in removed))
    return [e.name for e in removed]


def _expired(entries: list[VisitorModel], now: float | None = None) -> list[VisitorModel]:
    cutoff = (now if now is not None else time.time()) - settings.public_visitor_model_hours() * 3600
    return [e for e in entries if not e.published and e.created < cutoff]


def sweep(now: float | None = None) -> list[str]:
    """Remove the visitor models past their time (unpublished ones); the names removed."""
    if not settings.public_mode():
        return []
    with _lock:
        entries = _entries()
        removed = _expired(entries, now)
        if removed:
            _remove(removed)
            _write([e for e in entries if e not in removed])
    if removed:
        logger.info("visitor models: %d expired (%s)", len(removed), ", ".join(e.name for e in removed))
    return [e.name for e in removed]


def start_sweeping(every_s: float = SWEEP_EVERY_S) -> threading.Timer:
    """Sweep now and then every ``every_s`` seconds, in a daemon timer (the app's, in public mode)."""
    def tick() -> None:
        try:
            sweep()
        except OSError as exc:  # a full or read-only disk must not stop the timer
            logger.warning("visitor models: sweep failed (%s)", type(exc).__name__)
        start_sweeping(every_s)

    timer = threading.Timer(every_s, tick)
    timer.daemon = True
    timer.start()
    return timer


def hidden_names(owner: str | None) -> frozenset[str]:
    """The local model names ``owner`` may not see: the visitor models of everyone else (none outside public
    mode, where the one user owns everything)."""
    if not settings.public_mode():
        return frozenset()
    with _lock:
        return frozenset(e.name for e in _entries() if e.owner != (owner or ""))


def owned_names(owner: str | None) -> list[str]:
    """``owner``'s visitor models, newest first."""
    with _lock:
        mine = [e for e in _entries() if e.owner == (owner or "")]
    return [e.name for e in sorted(mine, key=lambda e: e.created, reverse=True)]


def check_access(model_id: str | None, owner: str | None) -> None:
    """Raise the registry's "no model" error when ``model_id`` names another visitor's model (public mode)."""
    if not model_id or not settings.public_mode():
        return
    try:
        source, name = parse_model_id(str(model_id))
    except InvalidModelIdError:
        return  # the registry answers a malformed id itself
    if source in (None, "local") and name in hidden_names(owner):
        raise ValueError(f"no model named {name!r}; the Models tab lists what is available")


def mark_published(name: str) -> None:
    """A visitor published ``name``: it stays past the expiry (it still counts in the quotas)."""
    if not settings.public_mode():
        return
    with _lock:
        entries = _entries()
        for entry in entries:
            if entry.name == name:
                entry.published = True
        _write(entries)
