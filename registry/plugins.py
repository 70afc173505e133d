"""Architecture plugins: third-party networks announced through a Python entry-point group.

A package adds architectures by declaring, in its ``pyproject.toml``::

    [project.entry-points."perceptual_studio.architectures"]
    my-style-net = "my_package.nets:MyStyleNet"

The entry-point name is the architecture name. The object it points to is one of:

- an ``nn.Module`` class (or factory function) with a ``task`` attribute (``"style-transfer"`` or
  ``"super-resolution"``): registered under the entry-point name;
- a ``networks.architectures.Architecture``, or a zero-argument function returning one or a list of them;
- a class already registered by ``@register_architecture`` when its module was imported (nothing more to do).

Plugins load lazily, once, on first use of the registry (no folder scanning, no import-time work). A plugin
that fails to import or is malformed is logged and reported in ``PluginReport.errors``; the others still
load. A name that is already taken raises ``DuplicateArchitectureError`` (BasicSR ``utils/registry.py``):
it is never silently overwritten, and the first registration stays in place.
"""
from __future__ import annotations

import importlib.metadata
import inspect
import logging
import threading
from dataclasses import dataclass, field

from perceptual_studio import networks  # noqa: F401  built-ins register first, so they win any clash
from perceptual_studio.networks import architectures
from perceptual_studio.networks.architectures import (
    TASKS,
    Architecture,
    DuplicateArchitectureError,
    add_architecture,
)

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "perceptual_studio.architectures"


@dataclass
class PluginReport:
    loaded: list[str] = field(default_factory=list)  # architecture names the entry points registered
    errors: list[str] = field(default_factory=list)  # one line per plugin that failed, duplicates included
    duplicates: list[str] = field(default_factory=list)  # the subset of errors that are name clashes


_lock = threading.RLock()
_report: PluginReport | None = None


def _provider(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    name = dist.metadata["Name"] if dist is not None else None
    return f"plugin {name or entry_point.value}"


def _architectures_from(entry_point: importlib.metadata.EntryPoint, obj: object, provider: str) -> list[Architecture]:
    if isinstance(obj, Architecture):
        return [obj]
    task = getattr(obj, "task", None)
    if callable(obj) and isinstance(task, str):
        return [Architecture(entry_point.name, task, obj, provider)]  # type: ignore[arg-type]
    if inspect.isfunction(obj) and not inspect.signature(obj).parameters:
        made = obj()
        made = [made] if isinstance(made, Architecture) else list(made) if isinstance(made, (list, tuple)) else made
        if isinstance(made, list) and all(isinstance(a, Architecture) for a in made):
            return made
    raise TypeError(
        f"{entry_point.value} must be an nn.Module class with a 'task' attribute (one of {TASKS}), an "
        f"Architecture, or a zero-argument function returning Architecture objects"
    )


def _load_entry_point(entry_point: importlib.metadata.EntryPoint, report: PluginReport) -> None:
    provider = _provider(entry_point)
    before = dict(architectures._ARCHITECTURES)
    try:
        obj = entry_point.load()
    except DuplicateArchitectureError as exc:  # its module registered a taken name at import time
        report.errors.append(f"{provider} ({entry_point.name}): {exc}")
        report.duplicates.append(str(exc))
        return
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the registry down
        report.errors.append(f"{provider} ({entry_point.name}) failed to load: {type(exc).__name__}: {exc}")
        return
    # A module that used @register_architecture has registered itself while being imported.
    registered_now = {n: a for n, a in architectures._ARCHITECTURES.items() if n not in before}
    report.loaded += sorted(registered_now)
    if any(a.constructor is obj for a in architectures._ARCHITECTURES.values()):
        return
    try:
        found = _architectures_from(entry_point, obj, provider)
        for arch in found:
            if arch.task not in TASKS:
                raise TypeError(f"task {arch.task!r} is not one of {TASKS}")
    except Exception as exc:  # noqa: BLE001
        report.errors.append(f"{provider} ({entry_point.name}) is malformed: {exc}")
        return
    for arch in found:
        existing = architectures._ARCHITECTURES.get(arch.name)
        if existing is not None and existing.constructor is arch.constructor:
            continue
        try:
            add_architecture(arch)
        except DuplicateArchitectureError as exc:
            report.errors.append(f"{provider} ({entry_point.name}): {exc}")
            report.duplicates.append(str(exc))
        else:
            report.loaded.append(arch.name)


def load_plugins(*, strict: bool = True) -> PluginReport:
    """Load every entry point of the group once; return what loaded and what failed.

    Raises ``DuplicateArchitectureError`` (on this and later calls) when a plugin tried to take a name that
    is already registered, unless ``strict=False``; other plugin failures are only logged and reported.
    """
    global _report
    with _lock:
        if _report is None:
            report = PluginReport()
            for entry_point in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                _load_entry_point(entry_point, report)
            for line in report.errors:
                logger.warning("architecture plugin problem: %s", line)
            _report = report
        report = _report
    if strict and report.duplicates:
        raise DuplicateArchitectureError("; ".join(report.duplicates))
    return report


def reset_plugins() -> None:
    """Forget loaded plugins and unregister their architectures (tests, or after installing a package)."""
    global _report
    with _lock:
        # networks.architectures has no public unregister: plugins are the only ones that ever need it.
        for name in _report.loaded if _report is not None else []:
            architectures._ARCHITECTURES.pop(name, None)
        _report = None
        importlib.invalidate_caches()
