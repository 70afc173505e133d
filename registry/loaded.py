"""What loading a model folder gives: the ready network with its config and id, as one typed object."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from perceptual_studio import settings

from . import int8_weights
from .checks import _build, validate_folder
from .errors import ModelFormatError
from .schema import WEIGHTS_FILE, ModelConfig


@dataclass(frozen=True)
class LoadedModel:
    """A network in eval mode, the ``config.json`` it was built from, and its canonical id (``local:mosaic``,
    ``hub:alice/mosaic``; None for a folder loaded by path). Calling it runs the network."""

    network: nn.Module
    config: ModelConfig
    model_id: str | None = None
    folder: Path | None = None  # the folder it was read from

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The network on a (N, 3, H, W) batch in [0, 1], as the pipelines run it: the precision plan and
        runtime chosen for this machine, tiles for large style inputs, the output clamped to [0, 1]."""
        from perceptual_studio.networks.inference import infer

        whole_image_tile = settings.style_tile() if self.config.task == "style-transfer" else None
        return infer(self.network, x, whole_image_tile=whole_image_tile).output

    @property
    def label(self) -> str:
        """The id if known, else the style or scale ("mosaic", "x4")."""
        return self.model_id or self.config.label


def load_model_folder(folder: str | os.PathLike, device: torch.device | str | None = None, *,
                      name: str | None = None, model_id: str | None = None) -> LoadedModel:
    """Build the network a model folder describes and load its weights (safetensors only, strict keys).

    Returns the network in eval mode on ``device`` (default ``settings.device()``) with its parsed config.
    """
    from safetensors import SafetensorError, safe_open

    folder = Path(folder)
    name = name or folder.name
    config = validate_folder(folder, name=name)
    try:
        with safe_open(str(folder / WEIGHTS_FILE), "pt", device="cpu") as handle:  # one read: tensors and metadata
            state = {key: handle.get_tensor(key) for key in handle.keys()}
            metadata = handle.metadata()
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ModelFormatError(f"{name}: {WEIGHTS_FILE} could not be read: {exc}") from None
    if int8_weights.is_int8(metadata):  # 8-bit storage (registry/int8_weights.py): back to float32 first
        state = int8_weights.dequantize(state, metadata, name)
    elif any(t.dtype == torch.int8 for t in state.values()):
        raise ModelFormatError(f"{name}: {WEIGHTS_FILE} holds int8 tensors without their scales")
    model = _build(config, name)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFormatError(f"{name}: {WEIGHTS_FILE} does not match config.json: {exc}") from None
    return LoadedModel(model.to(device if device is not None else settings.device()).eval(), config, model_id, folder)
