"""Training evolution: a training run's preview images over the iterations, side by side.

The counterpart of Zeiler & Fergus's feature-evolution figure (ECCV 2014, Sec. 4.2, Fig. 4) for this
project: the loss network is fixed, so what evolves is the transformation network's output, which the
training loop saves as previews. Expected layout of a run (or model) folder, step number in the name::

    previews/step_000100.png    (also .jpg; any name whose last number is the step, e.g. previews/100.png)
    preview_000100.png          (flat layout, same rule)

Files without a number (e.g. the model card thumbnail ``preview.jpg``) are not previews of a step.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

# The montage (and its frame picker) lives with the project's other figures; re-exported for explain's API.
from perceptual_studio.imaging.figures import evenly, evolution_strip

__all__ = ["PREVIEW_PATTERNS", "Preview", "evenly", "evolution_strip", "find_previews"]

PREVIEW_PATTERNS: tuple[str, ...] = (
    "previews/*.png", "previews/*.jpg", "previews/*.jpeg", "preview_*.png", "preview_*.jpg", "preview_*.jpeg",
)
_NUMBER = re.compile(r"(\d+)")


class Preview(NamedTuple):
    step: int
    path: Path


def find_previews(folder: str | Path) -> list[Preview]:
    """The previews in a run folder (see the module docstring), sorted by step, then by name."""
    folder = Path(folder)
    found: dict[Path, Preview] = {}
    for pattern in PREVIEW_PATTERNS:
        for path in folder.glob(pattern):
            numbers = _NUMBER.findall(path.stem)
            if path.is_file() and numbers:
                found[path] = Preview(int(numbers[-1]), path)
    return sorted(found.values(), key=lambda p: (p.step, p.path.name))
