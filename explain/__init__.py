"""Explaining the loss network with Zeiler & Fergus's tools (ECCV 2014): deconvnet projections, top-9
views, invariance curves, and a training run's previews over time.

The library parts are :class:`Deconvnet`, :func:`top9`, :func:`invariance_curves`, :func:`find_previews` and
:func:`evolution_strip`; the app's Explain tab calls them from ``webapp/handlers/explain.py``.
"""
from .deconvnet import (
    Deconvnet,
    ReceptiveField,
    receptive_fields,
    strongest_position,
    to_display,
)
from .evolution import Preview, evolution_strip, find_previews
from .invariance import (
    INVARIANCE_LAYERS,
    TRANSFORMS,
    InvarianceResult,
    invariance_curves,
    transform_images,
)
from .samples import SAMPLE_NAMES, sample_images
from .top9 import Top9Result, TopActivation, top9, top_activations

__all__ = [
    "Deconvnet",
    "INVARIANCE_LAYERS",
    "InvarianceResult",
    "Preview",
    "ReceptiveField",
    "SAMPLE_NAMES",
    "TRANSFORMS",
    "Top9Result",
    "TopActivation",
    "evolution_strip",
    "find_previews",
    "invariance_curves",
    "receptive_fields",
    "sample_images",
    "strongest_position",
    "to_display",
    "top9",
    "top_activations",
    "transform_images",
]
