"""Figures for model cards, the Explain views and the benchmark report: the one place plots are drawn.

* :func:`line_plot`: named series over one x axis (linear or log y, dashed reference lines), drawn with
  matplotlib and returned as a PIL image of an exact pixel size.
* :func:`plot_losses`: a training run's loss terms against the step on a log scale, saved as a PNG
  (``loss_curve.png`` in run and model folders, and the live plot of the app's training tab).
* :func:`evolution_strip` / :func:`save_evolution_strip`: a labelled montage of preview images (Pillow), the
  training evolution the way Zeiler & Fergus (ECCV 2014, Fig. 4) show features evolving.

matplotlib is imported inside the functions (it takes about half a second to import; the app must start
fast), and only its object-oriented API is used: a :class:`matplotlib.figure.Figure` rendered by its own
``FigureCanvasAgg``. That never touches pyplot's global state nor selects a backend, so callers that use
pyplot are unaffected. Rendering is serialised by a lock, since matplotlib's text layout shares caches
between figures; a plot takes a few tens of milliseconds.
"""
from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from perceptual_studio.imaging.io import load_image

LOSS_TERMS: tuple[str, ...] = ("total", "content", "style", "tv", "pixel")
# One colour per loss term everywhere (matplotlib's tab10 colours; the total in near-black).
LOSS_COLOURS: dict[str, str] = {"total": "#141414", "content": "tab:blue", "style": "tab:red", "tv": "tab:green",
                                "pixel": "tab:purple"}
DASHED_COLOUR = "#1e1e1e"  # reference lines (``dashed``), unless ``colours`` names one
MARKER_LIMIT = 40  # markers on every point while no series has more points than this (markers=None)
_DPI = 100
_LOCK = threading.Lock()


def _number(value: Any) -> float:
    """``value`` as a float, NaN when it is not a finite number (None, strings, NaN, inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return math.nan
    value = float(value)
    return value if math.isfinite(value) else math.nan


def _render(figure: Any, canvas: Any, size: tuple[int, int]) -> Image.Image:
    canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")
    if image.size != size:  # float rounding of inches x dpi; never more than a pixel
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def _drawable_lines(x: Sequence[float], series: Mapping[str, Sequence[float]],
                    log_y: bool) -> list[tuple[str, list[float], list[float]]]:
    """(name, xs, ys) per series with the missing points left out (NaN, None, infinite, or not positive on a log
    axis)."""
    xs = [_number(v) for v in x]
    lines: list[tuple[str, list[float], list[float]]] = []
    for name, ys in series.items():
        if len(ys) != len(xs):
            raise ValueError(f"series {name!r} has {len(ys)} values for {len(xs)} x values")
        kept = [(a, b) for a, b in zip(xs, map(_number, ys))
                if math.isfinite(a) and math.isfinite(b) and (b > 0 or not log_y)]
        lines.append((name, [a for a, _ in kept], [b for _, b in kept]))
    return lines


def line_plot(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    dashed: Sequence[str] = (),
    log_y: bool = False,
    size: tuple[int, int] = (720, 420),
    colours: Mapping[str, str] | None = None,
    markers: bool | None = None,
    empty_text: str = "no data",
) -> Image.Image:
    """Lines of ``series`` (name -> y values, one per ``x``) with axes, grid, title and a legend on the right.

    Points whose value is missing (NaN, None, infinite; or not positive when ``log_y``) are left out and the
    line joins its neighbours. Series named in ``dashed`` are reference lines: dashed, near-black unless
    ``colours`` gives them a colour; the others take matplotlib's tab10 colours in order. ``markers``: a dot
    on every point (None: only when no series has more than :data:`MARKER_LIMIT` points; a lone point always
    gets one). With nothing to draw, the axes show ``empty_text``. Returns an RGB image of exactly ``size``
    (width, height) pixels.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    width, height = size
    if width < 64 or height < 64:
        raise ValueError(f"plot size must be at least 64x64 pixels, got {width}x{height}")
    lines = _drawable_lines(x, series, log_y)
    longest = max((len(px) for _, px, _ in lines), default=0)
    show_markers = longest <= MARKER_LIMIT if markers is None else markers

    with _LOCK:
        figure = Figure(figsize=((width + 0.25) / _DPI, (height + 0.25) / _DPI), dpi=_DPI, layout="constrained")
        canvas = FigureCanvasAgg(figure)
        ax = figure.add_subplot()
        drawn = 0
        for i, (name, px, py) in enumerate(lines):
            is_dashed = name in dashed
            colour = (colours or {}).get(name) or (DASHED_COLOUR if is_dashed else f"C{i % 10}")
            if not px:
                continue
            ax.plot(px, py, color=colour, linestyle="--" if is_dashed else "-", linewidth=1.8, label=name,
                    marker="o" if show_markers or len(px) == 1 else None, markersize=3.5)
            drawn += 1
        if drawn:
            if log_y:
                ax.set_yscale("log")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False,
                      fontsize="small")
        else:
            ax.text(0.5, 0.5, empty_text, transform=ax.transAxes, ha="center", va="center", color="gray")
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, color="#e6e6e6", linewidth=0.8)
        ax.set_axisbelow(True)
        return _render(figure, canvas, (width, height))


def plot_losses(history: Sequence[Mapping[str, Any]], path: str | Path, *, size: tuple[int, int] = (720, 420),
                title: str = "training loss") -> Path:
    """A log-scale line plot of each loss term with positive values (:data:`LOSS_TERMS`) against the step.

    ``history`` is the run's ``loss.jsonl`` rows (``{"step": ..., "total": ..., "content": ..., ...}``); rows
    without a step are skipped. Writes the plot to ``path`` (format from its suffix, PNG for
    ``loss_curve.png``), creating the folder, and returns ``path``.
    """
    path = Path(path)
    rows = [row for row in history if math.isfinite(_number(row.get("step")))]
    x = [float(row["step"]) for row in rows]
    series = {name: [_number(row.get(name)) for row in rows] for name in LOSS_TERMS}
    series = {name: ys for name, ys in series.items() if any(y > 0 for y in ys)}  # NaN > 0 is False
    image = line_plot(x, series, title=title, xlabel="step", ylabel="loss (log scale)", log_y=True, size=size,
                      colours=LOSS_COLOURS, empty_text="no loss values yet")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


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


def save_evolution_strip(previews: Sequence[str | Path], path: str | Path, *, max_frames: int = 8,
                         tile: int = 160) -> Path | None:
    """Up to ``max_frames`` evenly spaced previews (named ``step_<N>.<ext>``) in one row, each ``tile`` pixels
    high and labelled with its step, saved to ``path`` (JPEG quality 90 for ``evolution.jpg``). None when
    there are no previews. The training loop's counterpart of :func:`explain.find_previews` + :func:`evolution_strip`.
    """
    previews = evenly(sorted(Path(p) for p in previews), max_frames) if previews else []
    if not previews:
        return None
    labels = [f"step {p.stem.removeprefix('step_').lstrip('0') or '0'}" for p in previews]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    evolution_strip(previews, labels, height=tile, columns=len(previews)).save(path, quality=90)
    return path
