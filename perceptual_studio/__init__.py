"""Perceptual Studio: real-time style transfer and super-resolution with perceptual losses.

The library's one import name::

    from perceptual_studio import StylePipeline
    pipe = StylePipeline.from_pretrained("builtin:stained-glass")
    pipe("photo.jpg").save("stylized.png")

Its parts are subpackages (``perceptual_studio.pipelines``, ``.registry``, ``.networks``, ``.losses``,
``.train``, ``.explain``, ``.baseline``, ``.imaging``, ``.webapp``) and ``perceptual_studio.settings`` (every
environment variable). Names below load on first use, so ``import perceptual_studio`` stays cheap and the
pipelines never pull in the trainer, the baseline or Gradio.
"""
from __future__ import annotations

import importlib
from pathlib import Path

__version__ = "0.1.0"

# In a source checkout the subpackages are the project's top-level folders beside this one (registry/,
# networks/ ...); an installed wheel holds them inside this folder, and this adds nothing.
_CHECKOUT = Path(__file__).resolve().parent.parent
if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "networks" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))  # noqa: F821 - a package's __path__

_EXPORTS = {
    "StylePipeline": "pipelines.style",
    "StyleResult": "pipelines.style",
    "SuperResolutionPipeline": "pipelines.superres",
    "SuperResolutionResult": "pipelines.superres",
    "stylize_video": "pipelines.video",
    "VideoResult": "pipelines.video",
    "train_style": "pipelines.training",
    "list_models": "registry.api",
    "load_model": "registry.api",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'perceptual_studio' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
