"""The library's pipelines: what the app's tabs do, as calls (diffusers- and timm-style).

* :class:`StylePipeline` (``pipelines.style``): ``from_pretrained(id | Hub repo | folder)``, ``blend({...})``,
  ``pipe(image, size=, strength=, preserve_colours=, style_scale=)``, ``save_pretrained``, ``push_to_hub``;
* :class:`SuperResolutionPipeline` (``pipelines.superres``): bicubic and one or two SR networks, scored against
  the original when given;
* :func:`train_style` (``pipelines.training``): a new style model in one call.

Names load on first use: importing the style and SR pipelines never imports the trainer, the baseline or Gradio.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "StylePipeline": "style", "StyleResult": "style", "BlendPart": "style", "choose_network": "style",
    "SuperResolutionPipeline": "superres", "SuperResolutionResult": "superres",
    "train_style": "training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'perceptual_studio.pipelines' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
