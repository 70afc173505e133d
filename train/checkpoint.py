"""Checkpoints of a training run: everything needed to continue it exactly, with no pickles.

A checkpoint is a folder ``<run>/checkpoints/step_00001000/`` holding

* ``model.safetensors``: the network's state dict;
* ``optimizer.safetensors``: the optimiser's tensors (Adam's moments and step counts) and the RNG states;
* ``state.json``: step, elapsed time, the first loss (for the explosion check), the optimiser's hyper-parameters
  and non-tensor state.

A checkpoint is written beside its final name and renamed into place, then ``checkpoints/latest.json`` is
replaced atomically, so an interrupted write never leaves a half checkpoint as the latest. The data order
is a function of the step (``train/data.py``), so model + optimiser + step is the whole state of a run.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

CHECKPOINTS_DIR = "checkpoints"
LATEST_FILE = "latest.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "state.json"


class CheckpointError(RuntimeError):
    pass


@dataclass(frozen=True)
class Checkpoint:
    step: int
    folder: Path
    state: dict[str, Any]


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in sd["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith("state."):
            continue
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    for pid, entries in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(entries)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()} for group in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(run_dir: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict[str, Any], keep: int = 2) -> Path:
    """Write the checkpoint of ``step`` and make it the latest; keep the ``keep`` newest."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    staging = root / f".tmp-step_{step:08d}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    weights = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(staging / MODEL_FILE))
    opt_tensors, opt_meta = _flatten_optimizer(optimizer)
    opt_tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, rng in enumerate(torch.cuda.get_rng_state_all()):
            opt_tensors[f"rng.cuda.{i}"] = rng
    save_file(opt_tensors, str(staging / OPTIMIZER_FILE))
    payload = {**state, "step": step, "optimizer": opt_meta}
    (staging / STATE_FILE).write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    latest_tmp = root / f".{LATEST_FILE}.tmp"
    latest_tmp.write_text(json.dumps({"step": step, "folder": final.name}) + "\n", encoding="utf-8")
    os.replace(latest_tmp, root / LATEST_FILE)
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint of a run, or None when there is none."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    pointer = root / LATEST_FILE
    if not pointer.is_file():
        return None
    try:
        folder = root / json.loads(pointer.read_text(encoding="utf-8"))["folder"]
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"the latest checkpoint of {run_dir} cannot be read ({exc})") from None
    return Checkpoint(int(state["step"]), folder, state)


def load_checkpoint(checkpoint: Checkpoint, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> None:
    """Restore the model (strict keys), optimiser and RNG states from ``checkpoint``."""
    try:
        weights = load_file(str(checkpoint.folder / MODEL_FILE), device="cpu")
        model.load_state_dict(weights, strict=True)
    except (OSError, RuntimeError) as exc:
        raise CheckpointError(f"{checkpoint.folder} does not fit this network: {exc}") from None
    tensors = load_file(str(checkpoint.folder / OPTIMIZER_FILE), device="cpu")
    if optimizer is not None:
        optimizer.load_state_dict(_unflatten_optimizer(tensors, checkpoint.state["optimizer"]))
    if "rng.cpu" in tensors:
        torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)


def load_weights(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint.folder / MODEL_FILE), device="cpu")
