"""Import pytorch/examples ``fast_neural_style`` checkpoints (``candy.pth``, ``mosaic.pth``, ...) as model folders.

Those files are plain state dicts saved with ``torch.save`` (pickles). They are read once, here, with
``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers and refuses anything
that would run code; the stale InstanceNorm ``running_mean``/``running_var`` keys of pre-0.4 checkpoints are
dropped; the rest must match ``networks.legacy.PyTorchExamplesTransformerNet`` exactly. The result is an
ordinary model folder (safetensors + config + card) that the registry loads like any other.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from perceptual_studio import settings
from perceptual_studio.networks.legacy import (
    ARCHITECTURE_NAME,
    PyTorchExamplesTransformerNet,
    drop_stale_norm_stats,
)
from perceptual_studio.networks.vgg import TORCHVISION_IDENTITY

from .checks import _check_size, _compare
from .errors import ModelFormatError
from .schema import max_weights_bytes
from .writing import save_model

ORIGIN = "pytorch/examples fast_neural_style"


def _reason(exc: BaseException) -> str:
    """The informative part of torch.load's long, ANSI-coloured weights_only message."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    found = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:Please use|Check the documentation|$)", text, re.S)
    reason = " ".join((found.group(1) if found else text).split())
    return reason or type(exc).__name__


def read_legacy_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a pytorch/examples checkpoint safely; return its tensors without the stale norm statistics."""
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such file")
    _check_size(path, max_weights_bytes(), "weights")
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise ModelFormatError(
            f"{path.name} could not be read as a plain PyTorch state dict (weights_only=True): {_reason(exc)}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ModelFormatError(f"{path.name} is not a state dict (a mapping of names to tensors)")
    if state and all(k.startswith("module.") for k in state):  # saved from nn.DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return drop_stale_norm_stats(state)


def import_legacy_checkpoint(
    path: str | os.PathLike,
    name: str | None = None,
    *,
    folder: str | os.PathLike | None = None,
    style: str | None = None,
    style_image: Any = None,
    preview: Any = None,
    overwrite: bool = False,
) -> Path:
    """Convert a pytorch/examples ``.pth`` into a model folder; return the folder.

    The folder is ``folder`` if given, else ``<models dir>/<name>`` with ``name`` defaulting to the file's
    stem (``candy.pth`` -> ``local:candy``). ``style`` defaults to the same stem.
    """
    path = Path(path)
    state = read_legacy_state_dict(path)
    model = PyTorchExamplesTransformerNet()
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    _compare(expected, {k: tuple(v.shape) for k, v in state.items()}, path.name)
    model.load_state_dict(state, strict=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    stem = path.stem
    target = Path(folder) if folder is not None else settings.models_dir() / (name or stem)
    training = {
        # pytorch/examples' vgg.py builds torchvision's ImageNet-pretrained VGG-16, and its train() hard-codes
        # these taps; the loss weights, data and length of the published models are not recorded in the file.
        "loss_network": TORCHVISION_IDENTITY,
        "content_layers": ["relu2_2"],
        "style_layers": ["relu1_2", "relu2_2", "relu3_3", "relu4_3"],
        "imported_from": path.name,
        "imported_sha256": digest,
        "origin": ORIGIN,
    }
    extra = (
        f"## Provenance\n\nImported from `{path.name}` (sha256 `{digest[:16]}...`), a {ORIGIN} checkpoint, with "
        f"`python -m registry import-legacy`. Its loss weights, training data and length were not recorded in "
        f"the file; per pytorch/examples' code the loss network was torchvision's ImageNet VGG-16. Architecture "
        f"`{ARCHITECTURE_NAME}` reproduces that network exactly (outputs cropped to the input size)."
    )
    return save_model(model, target, architecture=ARCHITECTURE_NAME, architecture_args={}, training=training,
                      style=style or stem, style_image=style_image, preview=preview, card_extra=extra,
                      overwrite=overwrite)
