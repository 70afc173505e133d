"""Reproduce the shipped style gallery from its manifest (``train/gallery.toml``), resumably.

    python -m train.gallery                 # build the content set and style images, then train what is missing
    python -m train.gallery --only mosaic   # one style (its ``init`` model must exist already)
    python -m train.gallery --plan          # print what would run
    python -m train.gallery --recipe paper --device cuda --models-root registry/builtin/styles-paper
                                            # the paper's recipe on a GPU (gallery.toml [recipe.paper])

Each style trains with ``python -m train.style ... --resume`` in its own process, so killing this command and
rerunning it continues every unfinished style from its last checkpoint. Finished models land in
``--models-root`` (default ``registry/builtin/styles``); run folders (checkpoints, logs, previews) in
``--work-dir`` (default ``<data dir>/gallery``).
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image

import settings
from imaging.generated_styles import GENERATED_STYLES
from imaging.sample_photos import SamplePhotoUnavailable, attribution, load_sample_photo
from registry.schema import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE

logger = logging.getLogger(__name__)

MANIFEST = Path(__file__).with_name("gallery.toml")
BUILTIN_STYLES = Path(__file__).resolve().parent.parent / "registry" / "builtin" / "styles"


@dataclass(frozen=True)
class ContentSpec:
    photos: tuple[str, ...]
    held_out: tuple[str, ...]
    crops_per_photo: int
    crop_size: int
    seed: int


@dataclass(frozen=True)
class StyleSpec:
    name: str
    seed: int
    iterations: int
    init: str | None = None
    # train.style options for this style only (CLI names without the dashes), over the manifest's [train].
    options: dict[str, Any] = field(default_factory=dict)


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


@dataclass(frozen=True)
class Manifest:
    content: ContentSpec
    train_options: dict[str, Any]
    styles: tuple[StyleSpec, ...]
    source: Path = field(default=MANIFEST)
    recipes: dict[str, Recipe] = field(default_factory=dict)

    def with_recipe(self, name: str) -> "Manifest":
        """The manifest as ``recipe`` trains it (its options and iteration counts)."""
        if name not in self.recipes:
            raise ValueError(f"{self.source}: no recipe {name!r} (have: {', '.join(self.recipes) or 'none'})")
        recipe = self.recipes[name]
        return Manifest(self.content, self.train_options, tuple(recipe.apply(s) for s in self.styles), self.source,
                        self.recipes)


def read_manifest(path: Path = MANIFEST) -> Manifest:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    content = raw["content"]
    known = {"name", "seed", "iterations", "init"}
    styles = tuple(StyleSpec(**{k: v for k, v in entry.items() if k in known},
                             options={k: v for k, v in entry.items() if k not in known}) for entry in raw["style"])
    names = {s.name for s in styles}
    for spec in styles:
        if spec.name not in GENERATED_STYLES:
            raise ValueError(f"{path}: style {spec.name!r} has no generator in imaging/generated_styles.py")
        if spec.init is not None and spec.init not in names:
            raise ValueError(f"{path}: style {spec.name!r} starts from unknown style {spec.init!r}")
    return Manifest(ContentSpec(tuple(content["photos"]), tuple(content["held_out"]), int(content["crops_per_photo"]),
                                int(content["crop_size"]), int(content["seed"])),
                    dict(raw.get("train", {})), styles, path, read_recipes(raw))


def read_recipes(raw: dict[str, Any]) -> dict[str, Recipe]:
    """The manifest's ``[recipe.NAME]`` tables."""
    recipes = {}
    for name, table in raw.get("recipe", {}).items():
        options = dict(table)
        scratch, finetune = int(options.pop("scratch-iterations")), int(options.pop("finetune-iterations"))
        recipes[name] = Recipe(name, options, scratch, finetune)
    return recipes


def build_content(spec: ContentSpec, folder: Path, *, skip_missing: bool = False) -> Path:
    """Random multi-scale crops (with flips) of the manifest's photos; written once, with a SOURCES.md.

    ``skip_missing``: leave out photos whose optional package is not installed (scikit-learn's two, for the
    app's default content) instead of failing, as reproducing the gallery must."""
    marker = folder / "SOURCES.md"
    if marker.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    overlap = set(spec.photos) & set(spec.held_out)
    if overlap:
        raise ValueError(f"photos both trained on and held out: {sorted(overlap)}")
    rng = np.random.default_rng(spec.seed)
    used = []
    for name in spec.photos:
        try:
            photo = load_sample_photo(name)
        except SamplePhotoUnavailable as exc:
            if not skip_missing:
                raise
            logger.warning("training content: sample photo %s left out (%s)", name, exc)
            continue
        used.append(name)
        shorter = min(photo.size)
        for k in range(spec.crops_per_photo):
            side = int(shorter * rng.uniform(0.35, 1.0))
            left = int(rng.integers(0, photo.width - side + 1))
            top = int(rng.integers(0, photo.height - side + 1))
            crop = photo.crop((left, top, left + side, top + side)).resize((spec.crop_size, spec.crop_size),
                                                                         Image.Resampling.LANCZOS)
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            crop.save(folder / f"{name}-{k:03d}.jpg", quality=93)
    marker.write_text(
        "# Gallery training content\n\n"
        f"{spec.crops_per_photo} random square crops (35-100% of the shorter side, half of them mirrored, resized to "
        f"{spec.crop_size} px, seed {spec.seed}) of each of these photos:\n\n{attribution(tuple(used))}\n\n"
        f"Held out (never trained on):\n\n{attribution(spec.held_out)}\n", encoding="utf-8")
    return folder


def preview_photo(manifest: Manifest) -> Image.Image:
    """The one fixed, held-out photo every style's preview (its gallery thumbnail) shows."""
    photo = load_sample_photo(manifest.content.held_out[0])
    photo.thumbnail((384, 384), Image.Resampling.LANCZOS)
    return photo


def style_image(spec: StyleSpec, folder: Path) -> Path:
    path = folder / f"{spec.name}.png"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        GENERATED_STYLES[spec.name](seed=spec.seed).save(path)
    return path


def is_finished(name: str, iterations: int, models_root: Path) -> bool:
    """Whether ``models_root/name`` holds a model trained for at least ``iterations`` steps."""
    config = models_root / name / CONFIG_FILE
    if not config.is_file():
        return False
    record = json.loads(config.read_text(encoding="utf-8")).get("training") or {}
    return int(record.get("iterations", record.get("steps", -1))) >= iterations


GALLERY_HEADING = "## In the shipped gallery"


def gallery_card_section(spec: StyleSpec, manifest: Manifest) -> str:
    """What a shipped model's card adds: its manifest entry, its training photos and licences, the command."""
    content = manifest.content
    start = f"fine-tuned from `builtin:{spec.init}`" if spec.init else "trained from scratch"
    options = ", ".join(f"`--{k} {v}`" for k, v in {**manifest.train_options, **spec.options}.items())
    return "\n".join([
        "", GALLERY_HEADING, "",
        f"Style image: drawn by `imaging/generated_styles.py` (`{spec.name}`, seed {spec.seed}; no licence needed). "
        f"{start.capitalize()}, {spec.iterations} iterations, with {options}.",
        "",
        f"Content: {content.crops_per_photo} random crops (35-100% of the shorter side, half mirrored, "
        f"{content.crop_size} px, seed {content.seed}) of each of these photos:", "", attribution(content.photos), "",
        "Never trained on (the preview and quality figures use them):", "", attribution(content.held_out), "",
        "The weights are stored in float16 (half the size); they load into float32.", "",
        "Reproduce the whole gallery: `python -m train.gallery` (resumable; `train/gallery.toml`).", "",
    ])


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


def make_shippable(folder: Path, heading: str, section: str, builtin_root: Path) -> bool:
    """Make a finished model fit to ship (idempotent): float16 weights, ``section`` appended to its card, and
    the card's usage pointed at ``builtin:NAME`` when the folder is in ``builtin_root``. True if it changed anything."""
    changed = [store_half_precision(folder), append_card_section(folder, heading, section)]
    if folder.parent.resolve() == builtin_root.resolve():
        changed.append(use_builtin_id(folder))
    return any(changed)


def finalize_shipped(folder: Path, spec: StyleSpec, manifest: Manifest) -> bool:
    """A finished gallery style made fit to ship (:func:`make_shippable`). True if it changed anything."""
    return make_shippable(folder, GALLERY_HEADING, gallery_card_section(spec, manifest), BUILTIN_STYLES)


def run_training(name: str, command: list[str]) -> bool:
    """Run one training command in its own process (so an interruption loses at most a checkpoint interval)."""
    if subprocess.call(command) != 0:
        logger.error("training %s failed; rerun this command to resume it", name)
        return False
    return True


def train_command(spec: StyleSpec, manifest: Manifest, *, content: Path, styles: Path, work_dir: Path,
                  models_root: Path, extra: list[str], runs: str = "runs") -> list[str]:
    command = [sys.executable, "-m", "train.style", "--style", str(style_image(spec, styles)),
               "--content", str(content), "--style-name", spec.name, "--out", str(models_root / spec.name),
               "--run-dir", str(work_dir / runs / spec.name), "--iterations", str(spec.iterations),
               "--seed", str(spec.seed), "--preview-image", str(work_dir / "preview.jpg"), "--resume", "--quiet"]
    if spec.init:  # the shipped model's registry id, so the card names it rather than a folder of this machine
        init = f"builtin:{spec.init}" if models_root.resolve() == BUILTIN_STYLES.resolve() else str(models_root / spec.init)
        command += ["--init", init]
    for option, value in {**manifest.train_options, **spec.options}.items():
        command += [f"--{option}", str(value)]
    return command + extra


def manifest_command_line(prog: str, description: str, *, manifest: Path, models_root: Path, work_dir: str,
                          item: str, recipe_help: str) -> argparse.ArgumentParser:
    """The options every manifest command (``train.gallery``, ``train.sr_gallery``) shares; anything else on its
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


def main(argv: list[str] | None = None) -> int:
    parser = manifest_command_line(
        "python -m train.gallery", __doc__.split("\n")[0], manifest=MANIFEST, models_root=BUILTIN_STYLES,
        work_dir="gallery", item="style",
        recipe_help="train with a [recipe.NAME] of the manifest (e.g. paper, for a GPU); its runs go to "
                    "<work dir>/runs-NAME")
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    manifest = read_with_recipe(read_manifest, args.manifest, args.recipe, "gallery")
    if manifest is None:
        return 2
    work_dir = args.work_dir or settings.data_dir() / "gallery"
    content, preview = work_dir / "content", work_dir / "preview.jpg"
    if not args.plan:  # a plan only names the folders
        try:
            build_content(manifest.content, content)
        except SamplePhotoUnavailable as exc:
            logger.error("the gallery's training photos need an optional package (%s): pip install -e '.[gallery]'",
                         exc)
            return 2
        if not preview.is_file():
            preview_photo(manifest).save(preview, quality=93)
    for spec in manifest.styles:
        if args.only and spec.name not in args.only:
            continue
        command = train_command(spec, manifest, content=content, styles=work_dir / "styles", work_dir=work_dir,
                                models_root=args.models_root, extra=extra,
                                runs=f"runs-{args.recipe}" if args.recipe else "runs")
        if args.plan:
            sys.stdout.write(" ".join(command) + "\n")  # the plan is this command's output
            continue
        if is_finished(spec.name, spec.iterations, args.models_root):
            if finalize_shipped(args.models_root / spec.name, spec, manifest):
                logger.info("%s: made ready to ship (float16 weights, card: gallery section, builtin id)", spec.name)
            logger.info("%s: finished (%d iterations), skipped", spec.name, spec.iterations)
            continue
        if spec.init and not (args.models_root / spec.init / CONFIG_FILE).is_file():
            logger.error("%s starts from %s, which is not trained yet", spec.name, spec.init)
            return 1
        logger.info("%s: training (%d iterations)", spec.name, spec.iterations)
        if not run_training(spec.name, command):
            return 1
        finalize_shipped(args.models_root / spec.name, spec, manifest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
