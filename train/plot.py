"""Pictures of a run, drawn with Pillow (no plotting library needed): the loss curve and the preview strip.

The strip shows the fixed validation image's output at successive steps, the way Zeiler & Fergus (2014,
Fig. 4) show features evolving during training.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from PIL import Image, ImageDraw, ImageFont

COLOURS = {"total": (20, 20, 20), "content": (31, 119, 180), "style": (214, 39, 40), "tv": (44, 160, 44),
           "pixel": (148, 103, 189)}


def _nice_log_ticks(low: float, high: float) -> list[float]:
    return [10.0 ** e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)]


def plot_losses(history: Sequence[dict[str, Any]], path: str | Path, *, size: tuple[int, int] = (720, 420),
                title: str = "training loss") -> Path:
    """A log-scale line plot of each non-zero loss term against the step."""
    path = Path(path)
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, top, bottom = 70, 20, 30, 40
    draw.text((left, 8), title, fill="black", font=font)
    series = {name: [(row["step"], row[name]) for row in history
                     if isinstance(row.get(name), (int, float)) and math.isfinite(row[name]) and row[name] > 0]
              for name in COLOURS}
    series = {k: v for k, v in series.items() if v}
    if not series:
        draw.text((left, height // 2), "no loss values yet", fill="gray", font=font)
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        return path
    steps = [s for values in series.values() for s, _ in values]
    values = [v for vs in series.values() for _, v in vs]
    s0, s1 = min(steps), max(max(steps), min(steps) + 1)
    lo, hi = math.log10(min(values)), math.log10(max(values))
    if hi - lo < 1e-6:
        lo, hi = lo - 0.5, hi + 0.5

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + (step - s0) / (s1 - s0) * (width - left - right)
        y = top + (hi - math.log10(value)) / (hi - lo) * (height - top - bottom)
        return x, y

    draw.rectangle([left, top, width - right, height - bottom], outline=(160, 160, 160))
    for tick in _nice_log_ticks(10 ** lo, 10 ** hi):
        if 10 ** lo <= tick <= 10 ** hi:
            _, y = xy(s0, tick)
            draw.line([left, y, width - right, y], fill=(230, 230, 230))
            draw.text((4, y - 6), f"{tick:.0e}", fill="black", font=font)
    for frac in (0.0, 0.5, 1.0):
        step = s0 + frac * (s1 - s0)
        x, _ = xy(step, 10 ** lo)
        draw.text((x - 12, height - bottom + 6), f"{step:.0f}", fill="black", font=font)
    draw.text((width // 2 - 12, height - 16), "step", fill="black", font=font)
    legend_x = left + 16 + int(draw.textlength(title, font=font))  # the legend follows the title, above the plot
    for name, points in series.items():
        colour = COLOURS[name]
        coords = [xy(s, v) for s, v in points]
        if len(coords) == 1:
            x, y = coords[0]
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        else:
            draw.line(coords, fill=colour, width=2)
        draw.text((legend_x, 8), name, fill=colour, font=font)
        legend_x += 8 + int(draw.textlength(name, font=font)) + 8
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def evolution_strip(previews: Sequence[Path], path: str | Path, *, max_frames: int = 8, tile: int = 160) -> Path | None:
    """Up to ``max_frames`` evenly spaced previews side by side, each labelled with its step."""
    previews = sorted(previews)
    if not previews:
        return None
    if len(previews) > max_frames:
        picks = [round(i * (len(previews) - 1) / (max_frames - 1)) for i in range(max_frames)]
        previews = [previews[i] for i in dict.fromkeys(picks)]
    frames = []
    for preview in previews:
        with Image.open(preview) as image:
            frame = image.convert("RGB")
        scale = tile / max(frame.size)  # small previews are enlarged, large ones reduced, to one tile size
        frame = frame.resize((max(1, round(frame.width * scale)), max(1, round(frame.height * scale))),
                             Image.Resampling.BICUBIC)
        frames.append((preview, frame))
    strip = Image.new("RGB", (len(frames) * (tile + 4) + 4, tile + 24), "white")
    draw = ImageDraw.Draw(strip)
    for i, (preview, frame) in enumerate(frames):
        x = 4 + i * (tile + 4)
        strip.paste(frame, (x, 4))
        step = preview.stem.removeprefix("step_").lstrip("0") or "0"
        draw.text((x, tile + 8), f"step {step}", fill="black", font=ImageFont.load_default())
    path = Path(path)
    strip.save(path, quality=90)
    return path
