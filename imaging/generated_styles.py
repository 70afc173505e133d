"""Style images drawn here from a seed, so they carry no licence: the Train tab's examples and the shipped gallery.

Each maker returns a square RGB image. They imitate a medium's *texture statistics* (what a Gram matrix sees:
colours, stroke widths, orientations, edges), not any artwork.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def stained_glass(size: int = 384, cells: int = 90, seed: int = 0) -> Image.Image:
    """A Voronoi mosaic of saturated colours with dark leading between the cells."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, size, (cells, 2))
    palette = np.array([[196, 32, 48], [240, 180, 20], [30, 90, 200], [20, 140, 80], [120, 40, 160], [240, 110, 30],
                        [30, 170, 200], [230, 220, 190]], dtype=np.float64)
    colours = palette[rng.integers(0, len(palette), cells)] * rng.uniform(0.75, 1.05, (cells, 1))
    yy, xx = np.mgrid[0:size, 0:size]
    grid = np.stack([xx, yy], -1).reshape(-1, 1, 2).astype(np.float64)
    distances = np.linalg.norm(grid - points[None], axis=-1)
    order = np.argsort(distances, axis=1)
    nearest, second = order[:, 0], order[:, 1]
    rows = np.arange(len(grid))
    edge = (distances[rows, second] - distances[rows, nearest]) < 2.2
    pixels = colours[nearest]
    pixels[edge] = (25, 20, 20)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8).reshape(size, size, 3))
    return image.filter(ImageFilter.SMOOTH)


def ink_waves(size: int = 384, seed: int = 1) -> Image.Image:
    """Dark blue brush-like waves on paper."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), (236, 228, 206))
    draw = ImageDraw.Draw(image)
    for row in range(-2, size // 14 + 3):
        phase, amp = rng.uniform(0, 2 * np.pi), rng.uniform(6, 14)
        xs = np.arange(0, size + 8, 4)
        ys = row * 14 + amp * np.sin(xs / rng.uniform(18, 34) + phase)
        colour = tuple(int(c) for c in (np.array([20, 40, 90]) + rng.integers(0, 50, 3)))
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=colour, width=int(rng.integers(3, 7)))
    return image.filter(ImageFilter.GaussianBlur(0.8))


def stripes(size: int = 384, seed: int = 2) -> Image.Image:
    """Bold diagonal colour bands."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    band = ((xx + yy) // 24) % 5
    palette = rng.integers(0, 256, (5, 3))
    return Image.fromarray(palette[band].astype(np.uint8))


def _flow_angle(x: np.ndarray, y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth swirling orientation field (a sum of a few low-frequency waves)."""
    angle = np.zeros_like(x, dtype=np.float64)
    for _ in range(3):
        fx, fy = rng.uniform(1.0, 3.0, 2) * 2 * np.pi / size
        angle += rng.uniform(0.6, 1.2) * np.sin(fx * x + rng.uniform(0, 6.3)) * np.cos(fy * y + rng.uniform(0, 6.3))
    return angle * np.pi


def brush_strokes(size: int = 384, seed: int = 3) -> Image.Image:
    """Thick, short, curved strokes of a warm-and-cool palette that follow a swirling flow, impasto-like."""
    rng = np.random.default_rng(seed)
    palette = np.array([[28, 52, 120], [52, 98, 170], [238, 196, 60], [226, 140, 40], [250, 232, 170],
                        [40, 110, 90], [120, 170, 200], [20, 30, 60]], dtype=np.float64)
    image = Image.new("RGB", (size, size), (40, 60, 110))
    draw = ImageDraw.Draw(image)
    for _ in range(size * size // 60):
        x, y = rng.uniform(-10, size + 10, 2)
        colour = palette[rng.integers(0, len(palette))] + rng.normal(0, 12, 3)
        width = int(rng.integers(4, 9))
        points = [(x, y)]
        for _ in range(int(rng.integers(3, 7))):
            theta = float(_flow_angle(np.array(x), np.array(y), size, np.random.default_rng(seed)))
            x, y = x + 5 * np.cos(theta), y + 5 * np.sin(theta)
            points.append((x, y))
        draw.line(points, fill=tuple(int(c) for c in np.clip(colour, 0, 255)), width=width, joint="curve")
    return image.filter(ImageFilter.GaussianBlur(0.6))


def mosaic(size: int = 384, tile: int = 12, seed: int = 4) -> Image.Image:
    """Small square tesserae on pale grout, coloured by a smooth pattern of concentric bands."""
    rng = np.random.default_rng(seed)
    palette = np.array([[170, 40, 30], [220, 160, 60], [40, 90, 140], [230, 220, 200], [60, 120, 70],
                        [120, 60, 100]], dtype=np.float64)
    image = Image.new("RGB", (size, size), (214, 206, 188))
    draw = ImageDraw.Draw(image)
    centres = rng.uniform(0, size, (3, 2))
    for top in range(0, size, tile):
        for left in range(0, size, tile):
            cx, cy = left + tile / 2, top + tile / 2
            distance = min(np.hypot(cx - px, cy - py) for px, py in centres)
            colour = palette[int(distance / (tile * 1.6)) % len(palette)] * rng.uniform(0.8, 1.1) + rng.normal(0, 10, 3)
            jitter = rng.integers(-1, 2, 4)
            draw.rectangle([left + 1 + jitter[0], top + 1 + jitter[1], left + tile - 2 + jitter[2],
                            top + tile - 2 + jitter[3]], fill=tuple(int(c) for c in np.clip(colour, 0, 255)))
    return image.filter(ImageFilter.SMOOTH)


def woodcut(size: int = 384, seed: int = 5) -> Image.Image:
    """Black carved lines on warm paper: parallel gouge marks that bend around a few shapes and thicken in shade."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    field = yy + 18 * np.sin(xx / 37 + rng.uniform(0, 6.3)) + 10 * np.sin((xx + yy) / 23 + rng.uniform(0, 6.3))
    tone = np.zeros_like(xx)
    for cx, cy, r in zip(*rng.uniform(0, size, (2, 4)), rng.uniform(size / 8, size / 4, 4)):
        ring = np.hypot(xx - cx, yy - cy)
        field += 25 * np.exp(-((ring - r) / (r / 2)) ** 2)
        tone += np.exp(-(ring / r) ** 2)
    tone = np.clip(0.25 + 0.6 * tone / tone.max(), 0, 1)
    ink = (0.5 + 0.5 * np.sin(2 * np.pi * field / 7.0)) < tone
    paper = np.array([236, 222, 190], dtype=np.float64) + rng.normal(0, 6, (size, size, 1))
    pixels = np.where(ink[..., None], np.array([22, 18, 16], dtype=np.float64), paper)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)


def pointillism(size: int = 384, seed: int = 6) -> Image.Image:
    """Dense dots of pure colour whose mix drifts across the canvas, as in Seurat's optical mixing."""
    rng = np.random.default_rng(seed)
    palette = np.array([[230, 60, 50], [250, 200, 40], [60, 160, 80], [50, 110, 210], [240, 240, 230],
                        [160, 80, 180]], dtype=np.float64)
    image = Image.new("RGB", (size, size), (244, 238, 222))
    draw = ImageDraw.Draw(image)
    for _ in range(size * size // 14):
        x, y = rng.uniform(0, size, 2)
        bias = (np.sin(x / 50) + np.cos(y / 70) + 2) / 4 * (len(palette) - 1)
        index = int(np.clip(round(bias + rng.normal(0, 1.1)), 0, len(palette) - 1))
        radius = rng.uniform(1.5, 3.2)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius],
                     fill=tuple(int(c) for c in np.clip(palette[index] + rng.normal(0, 10, 3), 0, 255)))
    return image


def neon(size: int = 384, seed: int = 7) -> Image.Image:
    """Glowing magenta, cyan and lime tubes bent into loops on a near-black wall (not in the shipped gallery:
    the Train tab's "new style" example, far from every shipped style in colour and structure)."""
    rng = np.random.default_rng(seed)
    glow = Image.new("RGB", (size, size), (0, 0, 0))
    core = Image.new("RGB", (size, size), (0, 0, 0))
    palette = [(255, 40, 200), (30, 230, 255), (150, 255, 60), (255, 150, 30)]
    for _ in range(size // 20):
        cx, cy = rng.uniform(0, size, 2)
        radius, turns = rng.uniform(12, size / 5), rng.uniform(0.6, 1.6)
        t = np.linspace(0, 2 * np.pi * turns, 60) + rng.uniform(0, 6.3)
        wobble = 1 + 0.25 * np.sin(3 * t + rng.uniform(0, 6.3))
        points = list(zip((cx + radius * wobble * np.cos(t)).tolist(), (cy + radius * wobble * np.sin(t)).tolist()))
        colour = palette[int(rng.integers(0, len(palette)))]
        ImageDraw.Draw(glow).line(points, fill=colour, width=9, joint="curve")
        ImageDraw.Draw(core).line(points, fill=tuple(min(255, c + 150) for c in colour), width=2, joint="curve")
    wall = np.asarray(glow.filter(ImageFilter.GaussianBlur(5)), dtype=np.float64) * 1.6
    wall += np.asarray(core, dtype=np.float64) + rng.normal(8, 3, (size, size, 1))
    return Image.fromarray(np.clip(wall, 0, 255).astype(np.uint8))


GENERATED_STYLES: dict[str, Callable[..., Image.Image]] = {
    "stained-glass": stained_glass,
    "ink-waves": ink_waves,
    "stripes": stripes,
    "brush-strokes": brush_strokes,
    "mosaic": mosaic,
    "woodcut": woodcut,
    "pointillism": pointillism,
    "neon": neon,
}
