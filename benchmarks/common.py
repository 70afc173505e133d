"""Helpers every benchmark shares: load average, device name and synchronisation, PSNR, test photos, run logs.

Device names come from :mod:`networks.devices`, as the app's and the training records' do.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from perceptual_studio.imaging.sample_photos import load_sample_photo
from perceptual_studio.networks.devices import device_name  # noqa: F401 - the benchmarks' tables name the device with it

if TYPE_CHECKING:
    import torch
    from PIL import Image


def loadavg() -> str:
    """The 1/5/15-minute load averages as ``"a/b/c"`` (``"n/a"`` where the OS has none): background load
    skews every timing, so each benchmark prints it at start and end."""
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so a wall-clock timing covers it."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)





def psnr(output: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB for images in [0, 1] (compared in float32 on the CPU; inf when identical)."""
    mse = float(((output.float().cpu() - reference.float().cpu()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def skimage_photo(name: str) -> Image.Image:
    """A licensed sample photo (``imaging.sample_photos``) as an RGB PIL image."""
    return load_sample_photo(name)


def read_history(run_dir: str | Path, *, missing_ok: bool = False) -> list[dict]:
    """A training run's ``loss.jsonl`` rows (``missing_ok``: ``[]`` when the run logged none)."""
    path = Path(run_dir) / "loss.jsonl"
    if missing_ok and not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_json(path: Path | None, results: dict) -> None:
    """Write a benchmark's raw numbers to ``path`` (``--json``; nothing when None), creating its folder."""
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))
