"""A small line plot drawn with Pillow, so the Explain views need no plotting library.

Drawn at twice the size and downsampled, which anti-aliases the lines.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont

# matplotlib's "tab10" colours, in order.
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
_SUPERSAMPLE = 2


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step + 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-6:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _label(value: float) -> str:
    return f"{value:g}"


def line_plot(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    dashed: Sequence[str] = (),
    size: tuple[int, int] = (720, 420),
) -> Image.Image:
    """Lines of ``series`` (name -> y values) over ``x``, with axes, ticks and a legend on the right."""
    s = _SUPERSAMPLE
    width, height = size[0] * s, size[1] * s
    font = ImageFont.load_default(size=12 * s)
    title_font = ImageFont.load_default(size=14 * s)
    left, right, top, bottom = 64 * s, 130 * s, 34 * s, 52 * s
    plot_w, plot_h = width - left - right, height - top - bottom

    values = [v for ys in series.values() for v in ys if math.isfinite(v)]
    y_ticks = nice_ticks(min([0.0, *values]), max([0.0, *values]) or 1.0)
    x_ticks = nice_ticks(min(x), max(x), 8)
    x_lo, x_hi = min(x_ticks[0], min(x)), max(x_ticks[-1], max(x))
    y_lo, y_hi = y_ticks[0], y_ticks[-1]

    def to_px(xv: float, yv: float) -> tuple[float, float]:
        return (left + (xv - x_lo) / ((x_hi - x_lo) or 1) * plot_w, top + (1 - (yv - y_lo) / ((y_hi - y_lo) or 1)) * plot_h)

    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    grid_colour, axis_colour, text_colour = (230, 230, 230), (60, 60, 60), (20, 20, 20)
    for yv in y_ticks:
        _, py = to_px(x_lo, yv)
        draw.line([(left, py), (left + plot_w, py)], fill=grid_colour, width=s)
        draw.text((left - 6 * s, py), _label(yv), fill=text_colour, font=font, anchor="rm")
    for xv in x_ticks:
        px, _ = to_px(xv, y_lo)
        draw.line([(px, top), (px, top + plot_h)], fill=grid_colour, width=s)
        draw.text((px, top + plot_h + 6 * s), _label(xv), fill=text_colour, font=font, anchor="mt")
    draw.rectangle([(left, top), (left + plot_w, top + plot_h)], outline=axis_colour, width=s)
    draw.text((left + plot_w / 2, 8 * s), title, fill=text_colour, font=title_font, anchor="mt")
    draw.text((left + plot_w / 2, height - 8 * s), xlabel, fill=text_colour, font=font, anchor="mb")
    label_img = Image.new("RGB", (plot_h, 16 * s), (255, 255, 255))
    ImageDraw.Draw(label_img).text((plot_h / 2, 8 * s), ylabel, fill=text_colour, font=font, anchor="mm")
    image.paste(label_img.rotate(90, expand=True), (4 * s, top))

    legend_x, legend_y = left + plot_w + 14 * s, top + 4 * s
    for i, (name, ys) in enumerate(series.items()):
        colour = (30, 30, 30) if name in dashed else PALETTE[i % len(PALETTE)]
        points = [to_px(xv, yv) for xv, yv in zip(x, ys) if math.isfinite(yv)]
        if name in dashed:
            for a, b in zip(points, points[1:]):
                _dashed_line(draw, a, b, colour, 2 * s, 6 * s)
        elif len(points) > 1:
            draw.line(points, fill=colour, width=2 * s, joint="curve")
        for px, py in points:
            draw.ellipse([(px - 2.5 * s, py - 2.5 * s), (px + 2.5 * s, py + 2.5 * s)], fill=colour)
        ly = legend_y + i * 18 * s
        if name in dashed:
            _dashed_line(draw, (legend_x, ly + 7 * s), (legend_x + 22 * s, ly + 7 * s), colour, 2 * s, 5 * s)
        else:
            draw.line([(legend_x, ly + 7 * s), (legend_x + 22 * s, ly + 7 * s)], fill=colour, width=2 * s)
        draw.text((legend_x + 28 * s, ly + 7 * s), name, fill=text_colour, font=font, anchor="lm")
    return image.resize(size, Image.Resampling.LANCZOS)


def _dashed_line(draw: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float],
                 colour: tuple[int, int, int], width: int, dash: float) -> None:
    length = math.dist(a, b)
    if length == 0:
        return
    steps = max(int(length // dash), 1)
    for i in range(0, steps, 2):
        t0, t1 = i / steps, min((i + 1) / steps, 1.0)
        draw.line([(a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0),
                   (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1)], fill=colour, width=width)
