"""What visitors' trainings leave on a shared app's disk (public mode). The app records each model a visitor trains
(``<data dir>/visitor-models.json``: name and time), so it touches those alone, never a model the owner installed:
a finished training keeps its model folder and drops its run folder (checkpoints and previews, tens of MB), and
beyond ``PERCEPTUAL_PUBLIC_MAX_VISITOR_MODELS`` visitor models the oldest are removed first.
"""
from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path

from perceptual_studio import settings

logger = logging.getLogger(__name__)

RECORD_FILE = "visitor-models.json"
_lock = threading.Lock()


def _record_path() -> Path:
    return settings.data_dir() / RECORD_FILE


def _read() -> list[dict]:
    try:
        entries = json.loads(_record_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)] if isinstance(entries, list) else []


def _write(entries: list[dict]) -> None:
    path = _record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def after_training(name: str) -> list[str]:
    """In public mode: record the visitor's new model ``name``, drop its run folder, and remove the oldest visitor
    models beyond the limit; the names removed (an empty list outside public mode)."""
    if not settings.public_mode():
        return []
    shutil.rmtree(settings.runs_dir() / name, ignore_errors=True)
    with _lock:
        entries = [e for e in _read() if e["name"] != name] + [{"name": name, "created": time.time()}]
        entries = [e for e in entries if (settings.models_dir() / e["name"]).is_dir()]
        entries.sort(key=lambda e: e.get("created", 0))
        excess = max(0, len(entries) - settings.public_max_visitor_models())
        removed, entries = entries[:excess], entries[excess:]
        for entry in removed:
            shutil.rmtree(settings.models_dir() / entry["name"], ignore_errors=True)
            shutil.rmtree(settings.runs_dir() / entry["name"], ignore_errors=True)
        _write(entries)
    if removed:
        logger.info("visitor models: removed the oldest %d (%s)", len(removed), ", ".join(e["name"] for e in removed))
    return [e["name"] for e in removed]
