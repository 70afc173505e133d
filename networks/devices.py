"""Naming the device a result was computed on, one way for the app, the training records and the benchmarks."""
from __future__ import annotations

import platform
from pathlib import Path

import torch

from perceptual_studio import settings


def device_name(device: torch.device | str) -> str:
    """The GPU's name, or the CPU's model name from /proc/cpuinfo (else what ``platform`` knows)."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def device_label(device: torch.device | str | None = None) -> str:
    """"cuda (NVIDIA H100 80GB HBM3)" or "cpu": what results and cards say they ran on (default: the app's device)."""
    device = torch.device(device) if device is not None else settings.device()
    if device.type == "cuda" and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return str(device)
