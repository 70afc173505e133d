"""What every manifest command (``train.shipped.gallery``, ``train.shipped.sr_gallery``) shares: recipes, running one training
stage in its own process, knowing when a stage is finished, and making a finished model fit to ship (float16
weights, a card section, its ``builtin:`` id).
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import torch

from perceptual_studio.registry.schema import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE

logger = logging.getLogger(__name__)


SpecT = TypeVar("SpecT")  # a manifest entry: a frozen dataclass with init, iterations and options


@dataclass(frozen=True)
class Recipe:
    """Another way to train the same gallery (e.g. the paper's, for a GPU): options over the manifest's [train]
    and the iteration counts of the models trained from scratch and of the fine-tuned ones."""

    name: str
    train_options: dict[str, Any]
    scratch_iterations: int
    finetune_iterations: int

    def apply(self, spec: SpecT) -> SpecT:
        """``spec`` (any manifest entry with ``init``, ``iterations`` and ``options``) as this recipe trains it."""
        iterations = self.finetune_iterations if spec.init else self.scratch_iterations
        return replace(spec, iterations=iterations, options={**self.train_options, **spec.options})


def read_recipes(raw: dict[str, Any]) -> dict[str, Recipe]:
    """The manifest's ``[recipe.NAME]`` tables."""
    recipes = {}
    for name, table in raw.get("recipe", {}).items():
        options = dict(table)
        scratch, finetune = int(options.pop("scratch-iterations")), int(options.pop("finetune-iterations"))
        recipes[name] = Recipe(name, options, scratch, finetune)
    return recipes


def is_finished(name: str, iterations: int, models_root: Path) -> bool:
    """Whether ``models_root/name`` holds a model trained for at least ``iterations`` steps."""
    config = models_root / name / CONFIG_FILE
    if not config.is_file():
        return False
    record = json.loads(config.read_text(encoding="utf-8")).get("training") or {}
    return int(record.get("iterations") or record.get("steps") or -1) >= iterations


def store_half_precision(folder: Path) -> bool:
    """Rewrite a model's float32 weights as float16 (half the size; they load into float32). True if changed."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    weights = folder / WEIGHTS_FILE
    state = load_file(str(weights))
    if not any(t.dtype == torch.float32 for t in state.values()):
        return False
    with safe_open(str(weights), "pt") as handle:
        metadata = handle.metadata() or {}
    save_file({k: t.half() if t.dtype == torch.float32 else t for k, t in state.items()}, str(weights),
              metadata={**metadata, "stored_dtype": "float16"})
    return True


FLOAT16_SENTENCE = "The weights are stored in float16 (half the size); they load into float32."
INT8_SENTENCE = ("The weights are stored as 8-bit integers with one scale per output channel (a quarter of float32's "
                 "size; the outputs stay within about 55 dB PSNR of float32's); they load into float32.")


def store_int8(folder: Path) -> bool:
    """Rewrite a model's weights in 8-bit storage (``registry/int8_weights.py``; its config then says the format
    version that marks it, its card says how it is stored). True if changed."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from perceptual_studio.registry.int8_weights import INT8_FORMAT_VERSION, is_int8, quantize

    weights = folder / WEIGHTS_FILE
    with safe_open(str(weights), "pt") as handle:
        metadata = handle.metadata() or {}
    if is_int8(metadata):
        return False
    stored, extra = quantize(load_file(str(weights)))
    save_file(stored, str(weights), metadata={**metadata, **extra})
    config_path = folder / CONFIG_FILE
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["format_version"] = INT8_FORMAT_VERSION
    config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    say_int8_storage(folder / CARD_FILE)
    return True


def say_int8_storage(card: Path) -> None:
    """The card says how the weights are stored: the int8 sentence in place of the float16 one, or added."""
    if not card.is_file():
        return
    text = card.read_text(encoding="utf-8")
    if INT8_SENTENCE not in text:
        text = text.replace(FLOAT16_SENTENCE, INT8_SENTENCE) if FLOAT16_SENTENCE in text else (
            text.rstrip() + "\n\n" + INT8_SENTENCE + "\n")
        card.write_text(text, encoding="utf-8")


def use_builtin_id(folder: Path) -> bool:
    """Point the card's usage examples at the shipped id (``builtin:NAME``; training wrote ``local:NAME``).
    True if changed."""
    card = folder / CARD_FILE
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    local = f"local:{folder.name}"
    if local not in text:
        return False
    card.write_text(text.replace(local, f"builtin:{folder.name}"), encoding="utf-8")
    return True


def append_card_section(folder: Path, heading: str, section: str) -> bool:
    """Append ``section`` (which starts with ``heading``) to the model card once. True if changed."""
    card = folder / CARD_FILE
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    if heading in text:
        return False
    card.write_text(text.rstrip() + "\n" + section, encoding="utf-8")
    return True


def make_shippable(folder: Path, heading: str, section: str, builtin_root: Path, *, int8: bool = False) -> bool:
    """Make a finished model fit to ship (idempotent): float16 weights (``int8``: 8-bit, for the style networks,
    whose outputs are judged by eye), ``section`` appended to its card, and the card's usage pointed at
    ``builtin:NAME`` when the folder is in ``builtin_root``. True if it changed anything."""
    changed = [store_int8(folder) if int8 else store_half_precision(folder), append_card_section(folder, heading, section)]
    if folder.parent.resolve() == builtin_root.resolve():
        changed.append(use_builtin_id(folder))
    return any(changed)


def redraw_preview(folder: Path, photo_file: Path, side: int = 256) -> None:
    """Draw a shipped style's ``preview.jpg`` (its gallery thumbnail) anew from its shipped weights, on the photo
    file the gallery's training previews use at ``train.style``'s ``--preview-size`` (so CI reproduces it)."""
    from perceptual_studio.imaging.io import image_to_tensor, load_image, resize_to_max_side, tensor_to_image
    from perceptual_studio.networks.inference import infer
    from perceptual_studio.registry import load_model_folder
    from perceptual_studio.registry.schema import PREVIEW_FILE

    model = load_model_folder(folder, "cpu")
    out = infer(model.network, image_to_tensor(resize_to_max_side(load_image(photo_file), side))).output
    tensor_to_image(out).save(folder / PREVIEW_FILE, format="JPEG", quality=90)


LOG_FILE = "train.log"


def run_training(name: str, command: list[str], log: Path | None = None) -> bool:
    """Run one training command in its own process (so an interruption loses at most a checkpoint interval);
    its output is shown and, with ``log``, appended to that file too (a long run is followed with ``tail -f``)."""
    if log is None:
        returncode = subprocess.call(command)
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as sink, subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1) as process:
            sink.write(f"$ {' '.join(command)}\n")
            for line in process.stdout:
                sys.stdout.write(line)
                sink.write(line)
                sink.flush()
        returncode = process.returncode
    if returncode != 0:
        logger.error("training %s failed; rerun this command to resume it%s", name,
                     f" (its output: {log})" if log else "")
        return False
    return True


def option_flags(options: dict[str, Any]) -> list[str]:
    """Manifest options (CLI names without the dashes) as command-line flags; ``true`` is a bare switch,
    ``false`` its ``--no-`` twin."""
    flags: list[str] = []
    for option, value in options.items():
        if isinstance(value, bool):
            flags.append(f"--{option}" if value else f"--no-{option}")
        else:
            flags += [f"--{option}", str(value)]
    return flags


def manifest_command_line(prog: str, description: str, *, manifest: Path, models_root: Path, work_dir: str,
                          item: str, recipe_help: str) -> argparse.ArgumentParser:
    """The options every manifest command (``train.shipped.gallery``, ``train.shipped.sr_gallery``) shares; anything else on its
    command line goes to each training command."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--manifest", type=Path, default=manifest)
    parser.add_argument("--only", nargs="+", metavar=item.upper(), help=f"train only these {item}s")
    parser.add_argument("--models-root", type=Path, default=models_root)
    parser.add_argument("--work-dir", type=Path, default=None, help=f"default: <data dir>/{work_dir}")
    parser.add_argument("--plan", action="store_true", help="print the commands and exit")
    parser.add_argument("--recipe", help=recipe_help)
    return parser


def read_with_recipe(read, path: Path, recipe: str | None, what: str):
    """``read(path)``, as ``recipe`` trains it; None (the reason logged) when the manifest cannot be used."""
    try:
        manifest = read(path)
        return manifest.with_recipe(recipe) if recipe else manifest
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.error("cannot read the %s manifest: %s", what, exc)
        return None


