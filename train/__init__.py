"""Training: fast style models from a style image, and pixel- vs feature-loss super-resolution models
(Johnson, Alahi & Fei-Fei, ECCV 2016, Sec. 4-5). One code path serves the CLIs and the web app::

    from perceptual_studio.train import StyleTrainConfig, train_style
    folder = train_style(StyleTrainConfig(style="wave.jpg", content="photos/", out="wave"), progress=print)

``python -m train.style`` / ``python -m train.sr`` are the command lines (docs/training.md); the tooling that
rebuilds the shipped models is ``train.shipped``.
Exports resolve lazily (PEP 562), so ``import train`` stays cheap.
"""
from __future__ import annotations

from typing import Any

_EXPORTS = {
    "StyleTrainConfig": "config", "SRTrainConfig": "config", "ConfigError": "config",
    "train_style": "style", "train_sr": "sr", "evaluate_sr": "sr_eval", "SREvaluation": "sr_eval",
    "TrainEvent": "loop", "TrainingDivergedError": "loop", "ProgressCallback": "loop",
    "DataError": "data", "psnr_y": "perceptual_studio.imaging.metrics", "ssim_y": "perceptual_studio.imaging.metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'train' has no attribute {name!r}")
    import importlib

    module = _EXPORTS[name]
    return getattr(importlib.import_module(module if "." in module else f".{module}", __name__), name)
