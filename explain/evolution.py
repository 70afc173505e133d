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
from typing import NamedTuple, Sequence

from PIL import Image, ImageDraw, ImageFont

from imaging.io import load_image

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


def evenly(items: Sequence, count: int) -> list:
    """At most ``count`` items spread evenly, always keeping the first and last."""
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    if len(items) <= count:
        return list(items)
    if count == 1:
        return [items[-1]]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def evolution_strip(
    image_paths: Sequence[str | Path], labels: Sequence[str], *, height: int = 160, columns: int = 8
) -> Image.Image:
    """The images in a row (wrapping after ``columns``), each scaled to ``height`` with its label below."""
    if len(image_paths) != len(labels):
        raise ValueError(f"{len(image_paths)} images but {len(labels)} labels")
    if not image_paths:
        raise ValueError("no images to show")
    if height <= 0 or columns <= 0:
        raise ValueError("height and columns must be positive")
    tiles = []
    for path in image_paths:
        image = load_image(path)
        width = max(1, round(image.width * height / image.height))
        tiles.append(image.resize((width, height), Image.Resampling.LANCZOS))
    gap, label_h, margin = 6, 20, 6
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    canvas_w = 2 * margin + max(sum(t.width for t in row) + gap * (len(row) - 1) for row in rows)
    canvas_h = 2 * margin + len(rows) * (height + label_h) + (len(rows) - 1) * gap
    canvas = Image.new("RGB", (canvas_w, canvas_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=13)
    index = 0
    for r, row in enumerate(rows):
        x, y = margin, margin + r * (height + label_h + gap)
        for tile in row:
            canvas.paste(tile, (x, y))
            draw.text((x + tile.width / 2, y + height + 3), labels[index], fill=(20, 20, 20), font=font, anchor="mt")
            x += tile.width + gap
            index += 1
    return canvas
