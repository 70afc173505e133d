"""Load check: 20 concurrent stylize requests through gradio_client all complete (none lost, none mixed up),
and repeating the burst does not grow the server's memory without bound."""
from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from apptools import STYLE_ID, app_environment, launch_app, photo  # noqa: E402
from gradio_client import handle_file  # noqa: E402

REQUESTS = 20
ROUNDS = 4
# Allowed RSS growth between the second burst and the last: caches (models, inference copies, Gradio's
# queue) fill during the first bursts; afterwards memory must stay flat.
MAX_GROWTH_MB = 60


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status on this platform")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with app_environment(tmp_path_factory.mktemp("load")) as env, launch_app() as url:
        yield gradio_client.Client(url, verbose=False), env


@pytest.fixture(autouse=True)
def _app_environment(served, monkeypatch) -> None:
    for key, value in served[1].items():
        monkeypatch.setenv(key, value)


def burst(client, inputs: list[Path]) -> list[tuple[int, int]]:
    jobs = [client.submit(handle_file(str(path)), STYLE_ID, 48 + 8 * i, False, 1.0, 1.0, api_name="/stylize")
            for i, path in enumerate(inputs)]
    sizes = []
    for job in jobs:
        image_path, info = job.result(timeout=120)
        sizes.append(Image.open(image_path).size)
        assert "px in" in info
    return sizes


def test_twenty_concurrent_stylize_requests_complete_without_memory_growth(served, tmp_path) -> None:
    client, _ = served
    inputs = [photo(tmp_path / f"in{i}.png", (40 + 2 * i, 30), seed=i) for i in range(REQUESTS)]
    expected = []
    for i, path in enumerate(inputs):
        w, h = Image.open(path).size
        side = 48 + 8 * i
        expected.append((side, round(h * side / w)))
    readings = []
    for _ in range(ROUNDS):
        assert burst(client, inputs) == expected  # every request answered, each with its own size
        gc.collect()
        readings.append(rss_mb())
    growth = readings[-1] - readings[1]
    print(f"RSS after each burst of {REQUESTS}: " + ", ".join(f"{r:.0f} MB" for r in readings))
    assert growth < MAX_GROWTH_MB, f"memory grew by {growth:.0f} MB over {ROUNDS - 2} bursts: {readings}"
    assert np.isfinite(readings).all()
