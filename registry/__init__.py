"""The model registry: list, load, save, publish and pull Perceptual Studio models (see ``registry/api.py``).

Exports resolve lazily (PEP 562), so ``import registry`` stays cheap.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "list_models": "api", "load_model": "api", "save_model": "api", "publish": "api", "pull": "api",
    "describe": "api", "fast_variant": "api", "stable_variant": "api", "resolve_model_id": "api", "parse_model_id": "api",
    "reserved_model_names": "api", "clear_memory_cache": "api",
    "Listing": "api", "ModelEntry": "sources", "ModelConfig": "model_format", "TrainingRecord": "model_format",
    "load_model_folder": "model_format", "validate_folder": "model_format", "LoadedModel": "model_format",
    "import_legacy_checkpoint": "legacy", "import_onnx_model": "onnx_zoo", "import_zoo_styles": "onnx_zoo",
    "load_plugins": "plugins", "ENTRY_POINT_GROUP": "plugins",
    "RegistryError": "errors", "ModelFormatError": "errors", "UnsafeModelError": "errors",
    "MissingPluginError": "errors", "ModelNotFoundError": "errors", "AmbiguousModelIdError": "errors",
    "InvalidModelIdError": "errors", "HubUnavailableError": "errors", "PublishError": "errors", "PrivateModelError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
