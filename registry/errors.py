"""The registry's exceptions: one base class, so callers (the CLI, the app) can catch them all and show the
message, which is always a complete sentence a user can act on."""
from __future__ import annotations


class RegistryError(Exception):
    """Base class; ``str(exc)`` is the message to show."""


class ModelFormatError(RegistryError):
    """A model folder or repo is incomplete or inconsistent: missing file, bad config, corrupt weights, wrong shapes."""


class UnsafeModelError(ModelFormatError):
    """Refused for safety: pickle weights, oversized files, invalid ids or paths."""


class MissingPluginError(ModelFormatError):
    """The model's ``config.json`` names an architecture no installed plugin provides."""


class ModelNotFoundError(RegistryError, LookupError):
    pass


class AmbiguousModelIdError(RegistryError, ValueError):
    pass


class InvalidModelIdError(RegistryError, ValueError):
    pass


class HubUnavailableError(RegistryError):
    """The Hub could not be reached (or offline mode is on) and the cache cannot stand in."""


class PrivateModelError(RegistryError):
    """A private repo that this app will not copy into a cache other visitors share (on a Space)."""


class PublishError(RegistryError):
    """Publishing failed; the message never contains the token."""
