"""imaging/figures.py: line plots (matplotlib, off pyplot), the loss curve file and the preview strip."""
from __future__ import annotations

import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageColor

from perceptual_studio.imaging.figures import (
    LOSS_COLOURS,
    evenly,
    line_plot,
    plot_losses,
    save_evolution_strip,
)

ROOT = Path(__file__).resolve().parents[1]


def pixels_near(image: Image.Image, colour: str, tolerance: int = 30) -> int:
    """How many pixels of ``image`` are within ``tolerance`` (per channel) of the named colour."""
    target = np.array(ImageColor.getrgb(_named(colour)))
    return int((np.abs(np.asarray(image.convert("RGB")).astype(int) - target).max(axis=-1) <= tolerance).sum())


def _named(colour: str) -> str:
    from matplotlib.colors import to_hex

    return to_hex(colour)


def test_line_plot_has_the_requested_size_and_skips_missing_values() -> None:
    plot = line_plot([0, 1, 2], {"a": [0, math.nan, 1], "b": [0, 0.5, 0.2], "empty": [math.nan] * 3},
                     title="t", xlabel="x", ylabel="y", dashed=("b",))
    assert isinstance(plot, Image.Image) and plot.mode == "RGB" and plot.size == (720, 420)
    assert pixels_near(plot, "C0") > 50  # series "a" in the first tab10 colour
    for size in ((820, 440), (333, 257)):  # sizes whose inches x dpi round down in floating point
        assert line_plot([1, 2], {"a": [1, 2]}, size=size).size == size


def test_line_plot_rejects_mismatched_series_and_tiny_sizes() -> None:
    with pytest.raises(ValueError, match="has 2 values for 3"):
        line_plot([0, 1, 2], {"a": [1, 2]})
    with pytest.raises(ValueError, match="at least"):
        line_plot([0, 1], {"a": [1, 2]}, size=(10, 10))


def test_line_plot_log_scale_and_nothing_to_draw() -> None:
    log = line_plot([1, 2, 3], {"a": [1e-3, 0.0, 1e3]}, log_y=True)  # the zero cannot be drawn on a log axis
    assert log.size == (720, 420) and pixels_near(log, "C0") > 50
    empty = line_plot([1, 2], {"a": [math.nan, math.nan]}, empty_text="nothing yet")
    assert pixels_near(empty, "C0") == 0


def test_plot_losses_writes_the_terms_present(tmp_path) -> None:
    history = [{"step": s, "total": 100 / (s + 1), "content": 50 / (s + 1), "style": 40 / (s + 1) ** 0.5,
                "tv": 0.0, "elapsed_s": s / 10} for s in range(0, 200, 5)]
    history.append({"note": "a row without a step is skipped"})
    path = plot_losses(history, tmp_path / "model" / "loss_curve.png", title="mosaic: training loss")
    assert path == tmp_path / "model" / "loss_curve.png"
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (720, 420)
        for term in ("total", "content", "style"):
            assert pixels_near(image, LOSS_COLOURS[term]) > 50, term
        for term in ("tv", "pixel"):  # all zero / absent: not drawn, not in the legend
            assert pixels_near(image, LOSS_COLOURS[term]) == 0, term
    small = plot_losses([], tmp_path / "empty.png", size=(400, 300))
    assert Image.open(small).size == (400, 300)


def test_plots_from_several_threads_at_once() -> None:
    def draw(i: int) -> tuple[int, int]:
        return line_plot(list(range(50)), {f"s{i}": [math.sin(x / (i + 1)) for x in range(50)]}, title=str(i)).size

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(draw, range(8))) == [(720, 420)] * 8


def test_save_evolution_strip_picks_evenly_and_labels_steps(tmp_path) -> None:
    assert evenly(list(range(10)), 4) == [0, 3, 6, 9] and evenly([1, 2], 5) == [1, 2]
    previews = []
    for step in range(100, 1300, 100):
        previews.append(tmp_path / f"step_{step:06d}.jpg")
        Image.new("RGB", (64, 48), (step % 256, 0, 0)).save(previews[-1])
    path = save_evolution_strip(previews, tmp_path / "evolution.jpg", max_frames=4, tile=40)
    with Image.open(path) as strip:
        # Four frames 40 px high (53 px wide), 6 px gaps and margins, a 20 px label band.
        assert strip.size == (2 * 6 + 4 * 53 + 3 * 6, 2 * 6 + 40 + 20)
    assert save_evolution_strip([], tmp_path / "none.jpg") is None and not (tmp_path / "none.jpg").exists()


def test_importing_figures_does_not_import_matplotlib() -> None:
    code = "import sys, imaging.figures; assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
