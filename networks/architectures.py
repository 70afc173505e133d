"""The architecture table: architecture name -> constructor and the task it serves.

Modelled on timm's ``_registry.py`` and BasicSR's ``utils/registry.py``: one decorator registers a
network class under a unique name; registering a name twice raises instead of silently overwriting.
Built-in networks register themselves when ``networks`` is imported; third-party plugins arrive through
the ``perceptual_studio.architectures`` entry-point group (see ``registry/plugins.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from torch import nn

Task = Literal["style-transfer", "super-resolution"]
TASKS: tuple[str, ...] = ("style-transfer", "super-resolution")


@dataclass(frozen=True)
class Architecture:
    name: str
    task: str
    constructor: Callable[..., nn.Module]
    # Where the architecture came from ("builtin" or the plugin distribution), for error messages.
    provider: str = "builtin"


_ARCHITECTURES: dict[str, Architecture] = {}


class DuplicateArchitectureError(ValueError):
    pass


class UnknownArchitectureError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


def register_architecture(name: str, task: str, provider: str = "builtin"):
    """Class/function decorator registering ``name`` for ``task``."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")

    def decorator(constructor: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        add_architecture(Architecture(name, task, constructor, provider))
        return constructor

    return decorator


def add_architecture(architecture: Architecture) -> None:
    existing = _ARCHITECTURES.get(architecture.name)
    if existing is not None:
        raise DuplicateArchitectureError(
            f"architecture {architecture.name!r} is already registered by {existing.provider}; "
            f"{architecture.provider} tried to register it again"
        )
    _ARCHITECTURES[architecture.name] = architecture


def get_architecture(name: str) -> Architecture:
    try:
        return _ARCHITECTURES[name]
    except KeyError:
        installed = ", ".join(sorted(_ARCHITECTURES)) or "none"
        raise UnknownArchitectureError(
            f"no installed plugin provides architecture {name!r}; installed architectures: {installed}. "
            f"Install the package that provides {name!r} (it registers it under the "
            f"'perceptual_studio.architectures' entry-point group)."
        ) from None


def list_architectures(task: str | None = None) -> list[Architecture]:
    return sorted(
        (a for a in _ARCHITECTURES.values() if task is None or a.task == task), key=lambda a: a.name
    )


def create_model(name: str, **kwargs) -> nn.Module:
    return get_architecture(name).constructor(**kwargs)
