"""Reproduce the shipped super-resolution models from their manifest (``train/shipped/sr_gallery.toml``), resumably.

    python -m train.shipped.sr_gallery                 # write the photos, then train what is missing, in manifest order
    python -m train.shipped.sr_gallery --only sr-x4-pixel
    python -m train.shipped.sr_gallery --plan          # print the commands and exit
    python -m train.shipped.sr_gallery --recipe gpu --device cuda --models-root data/sr-gpu
                                               # the longer recipe on a GPU (sr_gallery.toml [recipe.gpu])

Each model trains with ``python -m train.sr ... --resume`` in its own process, so killing this command and
rerunning it continues the unfinished model from its last checkpoint. Per scale: a warm-up on small patches
(``shipped = false``: kept in the work dir), the pixel-loss model on the paper's 288 px patches fine-tuned from
it, and the feature-loss model fine-tuned from that (``init``). ``train.sr`` evaluates every model on the held-out photos
(bicubic beside it) into its card; ``python -m benchmarks.report --sections 3`` compares all four.
Finished models land in ``--models-root`` (default ``registry/builtin/sr``) in float16; run folders in
``--work-dir`` (default ``<data dir>/sr-gallery``).
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perceptual_studio import settings
from perceptual_studio.imaging.corpus import HELD_OUT, PHOTO, TRAIN, Corpus, CorpusError, CorpusImage, read_corpus
from perceptual_studio.registry.schema import CARD_FILE, CONFIG_FILE

from .corpus_photos import corpus_attribution, photo_file_name, trained_on_lines
from .shipping import (
    LOG_FILE,
    Recipe,
    is_finished,
    make_shippable,
    manifest_command_line,
    option_flags,
    read_recipes,
    read_with_recipe,
    run_training,
)

logger = logging.getLogger(__name__)

MANIFEST = Path(__file__).with_name("sr_gallery.toml")
BUILTIN_SR = Path(__file__).resolve().parents[2] / "registry" / "builtin" / "sr"
SHIPPED_HEADING = "## In the shipped super-resolution set"


@dataclass(frozen=True)
class PhotoSpec:
    """The photos come from the licensed corpus (``python -m imaging.corpus build``), which also holds the split:
    every train photo whose short side is at least ``min_side``, and every held-out photo."""

    preview: str  # a held-out corpus photo id
    min_side: int = 288

    def train(self, corpus: Corpus) -> list[CorpusImage]:
        return corpus.select(kind=PHOTO, split=TRAIN, min_side=self.min_side)

    def held_out(self, corpus: Corpus) -> list[CorpusImage]:
        return corpus.select(kind=PHOTO, split=HELD_OUT)

    def check(self, corpus: Corpus) -> None:
        if corpus.by_id(self.preview).split != HELD_OUT:
            raise CorpusError(f"the preview photo {self.preview} is not a held-out photo of the corpus")


@dataclass(frozen=True)
class SRModelSpec:
    name: str
    scale: int
    loss: str
    iterations: int
    init: str | None = None
    # False for an intermediate stage (a warm-up): written to <work dir>/models, never shipped or listed.
    shipped: bool = True
    # train.sr options for this model only (CLI names without the dashes), over the manifest's [train].
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SRManifest:
    photos: PhotoSpec
    train_options: dict[str, Any]
    models: tuple[SRModelSpec, ...]
    source: Path = MANIFEST
    recipes: dict[str, Recipe] = field(default_factory=dict)

    def with_recipe(self, name: str) -> "SRManifest":
        if name not in self.recipes:
            raise ValueError(f"{self.source}: no recipe {name!r} (have: {', '.join(self.recipes) or 'none'})")
        recipe = self.recipes[name]
        return SRManifest(self.photos, self.train_options, tuple(recipe.apply(m) for m in self.models), self.source,
                          self.recipes)

    def model(self, scale: int, loss: str) -> SRModelSpec | None:
        """The shipped model of this scale and loss."""
        return next((m for m in self.models if m.scale == scale and m.loss == loss and m.shipped), None)

    def spec(self, name: str) -> SRModelSpec:
        return next(m for m in self.models if m.name == name)


def read_manifest(path: Path = MANIFEST) -> SRManifest:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    photos = raw["photos"]
    if photos.get("source") != "corpus":
        raise ValueError(f"{path}: [photos] source must be \"corpus\" (imaging/corpus)")
    spec = PhotoSpec(photos["preview"], int(photos.get("min-side", 288)))
    known = {"name", "scale", "loss", "iterations", "init", "shipped"}
    models = tuple(SRModelSpec(**{k: v for k, v in entry.items() if k in known},
                               options={k: v for k, v in entry.items() if k not in known}) for entry in raw["model"])
    names = [m.name for m in models]
    for i, model in enumerate(models):
        if model.init is not None and model.init not in names[:i]:
            raise ValueError(f"{path}: {model.name} starts from {model.init!r}, which is not listed before it")
        if model.init is not None and models[names.index(model.init)].scale != model.scale:
            raise ValueError(f"{path}: {model.name} (x{model.scale}) cannot start from {model.init}, another scale")
    return SRManifest(spec, dict(raw.get("train", {})), models, path, read_recipes(raw))


def write_photos(spec: PhotoSpec, corpus: Corpus, folder: Path) -> tuple[Path, Path]:
    """The training and held-out photos of the corpus as files (``folder/train``, ``folder/held-out``; links to
    the corpus's files where the file system allows) with a SOURCES.md; rewritten when the corpus changes."""
    train, held_out = folder / "train", folder / "held-out"
    marker = folder / "SOURCES.md"
    stamp = f"corpus manifest sha256 {corpus.digest}"
    if marker.is_file() and stamp in marker.read_text(encoding="utf-8"):
        return train, held_out
    for target, images in ((train, spec.train(corpus)), (held_out, spec.held_out(corpus))):
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for image in images:
            try:
                os.link(corpus.path(image), target / photo_file_name(image.id))
            except OSError:
                shutil.copyfile(corpus.path(image), target / photo_file_name(image.id))
    marker.write_text(
        f"# Super-resolution photos\n\nFrom the licensed image corpus ({stamp}; `python -m imaging.corpus build`).\n\n"
        f"Trained on (random patches of the whole photos):\n\n{corpus_attribution(spec.train(corpus))}\n\n"
        "Held out (never trained on; every model is evaluated on them):\n\n"
        f"{corpus_attribution(spec.held_out(corpus))}\n", encoding="utf-8")
    return train, held_out


def corpus_lines(photos: PhotoSpec, corpus: Corpus) -> list[str]:
    """The card's account of the photos: how many, their licences, the corpus that holds them, the held-out list."""
    held_out = photos.held_out(corpus)
    return [
        *trained_on_lines(corpus, photos.train(corpus), "random patches of"),
        "", f"Never trained on: the corpus's {len(held_out)} held-out photos (split by source photo; the evaluation "
        "above and the preview use them):", "", corpus_attribution(held_out), ""]


def shipped_card_section(spec: SRModelSpec, manifest: SRManifest, corpus: Corpus) -> str:
    """What a shipped SR model's card adds: its manifest entry and stages, its photos and licences, the command."""
    options = {**manifest.train_options, **spec.options}

    def described(model: SRModelSpec) -> str:
        merged = {**manifest.train_options, **model.options}
        return f"{model.iterations} iterations on {merged.get('patch-size', 288)} px patches"

    stages, parent = [], spec.init
    while parent is not None:  # what this model was fine-tuned from, back to the start
        stage = manifest.spec(parent)
        kind = f"`builtin:{stage.name}`" if stage.shipped else f"the stage `{stage.name}` (not shipped)"
        stages.append(f"{kind}: {stage.loss} loss, {described(stage)}")
        parent = stage.init
    start = ("fine-tuned from " + "; in turn from ".join(stages)) if stages else "trained from scratch"
    return "\n".join([
        "", SHIPPED_HEADING, "",
        f"x{spec.scale}, {spec.loss} loss, {described(spec)}, {start}. Options: "
        + ", ".join(f"`--{k} {v}`" for k, v in options.items()) + ". The paper trains 200k iterations on 10k COCO "
        "images; these models saw far fewer steps and photos, so they show the paper's comparison rather than "
        "its numbers.", "",
        *corpus_lines(manifest.photos, corpus),
        "", "The weights are stored in float16 (half the size); they load into float32.", "",
        "Reproduce all four: `python -m train.shipped.sr_gallery` (resumable; `train/shipped/sr_gallery.toml`). Compare them: "
        "`python -m benchmarks.report --sections 3`.", "",
    ])


def finalize_shipped(folder: Path, spec: SRModelSpec, manifest: SRManifest, corpus: Corpus, stages: Path) -> bool:
    """A finished SR model made fit to ship (``train.shipped.shipping.make_shippable``), a stage it started from
    named as ``stage:NAME`` rather than by a folder of the machine that trained it. True if it changed anything."""
    renamed = name_stages(folder, stages, [m.name for m in manifest.models if not m.shipped])
    return make_shippable(folder, SHIPPED_HEADING, shipped_card_section(spec, manifest, corpus), BUILTIN_SR) or renamed


def name_stages(folder: Path, stages: Path, names: list[str]) -> bool:
    """Replace ``stages/NAME`` with ``stage:NAME`` in the model's card and config. True if changed."""
    changed = False
    for file in (folder / CARD_FILE, folder / CONFIG_FILE):
        text = file.read_text(encoding="utf-8") if file.is_file() else ""
        renamed = text
        for name in names:
            renamed = renamed.replace(str(stages.resolve() / name), f"stage:{name}")
        if renamed != text:
            file.write_text(renamed, encoding="utf-8")
            changed = True
    return changed


def recipe_folders(work_dir: Path, recipe: str | None) -> tuple[Path, Path]:
    """The run folders and the stage (warm-up) models of a recipe: each recipe keeps its own, so a GPU run never
    passes for the CPU one."""
    suffix = f"-{recipe}" if recipe else ""
    return work_dir / f"runs{suffix}", work_dir / f"models{suffix}"


def model_folder(spec: SRModelSpec, models_root: Path, stages: Path) -> Path:
    """Where a model is written: ``models_root`` when shipped, else the recipe's own stage folder."""
    return models_root / spec.name if spec.shipped else stages / spec.name


def train_command(spec: SRModelSpec, manifest: SRManifest, *, train: Path, held_out: Path, work_dir: Path,
                  models_root: Path, extra: list[str], recipe: str | None = None) -> list[str]:
    runs, stages = recipe_folders(work_dir, recipe)
    command = [sys.executable, "-m", "perceptual_studio.train.sr", "--data", str(train), "--eval-data", str(held_out),
               "--scale", str(spec.scale), "--loss", spec.loss, "--out", str(model_folder(spec, models_root, stages)),
               "--run-dir", str(runs / spec.name), "--iterations", str(spec.iterations), "--seed", "0",
               "--preview-image", str(held_out / photo_file_name(manifest.photos.preview))]
    command += option_flags({**manifest.train_options, **spec.options})
    if spec.init:
        parent = manifest.spec(spec.init)
        shipped_here = parent.shipped and models_root.resolve() == BUILTIN_SR.resolve()
        # A shipped model by its registry id, so the card names it rather than a folder of this machine.
        command += ["--init", f"builtin:{parent.name}" if shipped_here else str(model_folder(parent, models_root, stages))]
    return command + ["--resume", "--quiet"] + extra


def main(argv: list[str] | None = None) -> int:
    parser = manifest_command_line(
        "python -m train.shipped.sr_gallery", __doc__.split("\n")[0], manifest=MANIFEST, models_root=BUILTIN_SR,
        work_dir="sr-gallery", item="model",
        recipe_help="train with a [recipe.NAME] of the manifest (gpu: the longer recipe); its runs go to "
                    "<work dir>/runs-NAME, its warm-ups to <work dir>/models-NAME")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="the image corpus folder (default: <data dir>/corpus; python -m imaging.corpus build)")
    args, extra = parser.parse_known_args(argv)  # anything else goes to every train.sr command
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    manifest = read_with_recipe(read_manifest, args.manifest, args.recipe, "super-resolution")
    if manifest is None:
        return 2
    work_dir = args.work_dir or settings.data_dir() / "sr-gallery"
    photos = work_dir / "photos"
    stages = recipe_folders(work_dir, args.recipe)[1]
    unknown = sorted(set(args.only or ()) - {m.name for m in manifest.models})
    if unknown:
        logger.error("no model %s in %s (have: %s)", ", ".join(unknown), args.manifest,
                     ", ".join(m.name for m in manifest.models))
        return 2
    train, held_out = photos / "train", photos / "held-out"
    corpus = None
    if not args.plan:  # a plan only names the folders
        try:
            corpus = read_corpus(args.corpus)
            manifest.photos.check(corpus)
            write_photos(manifest.photos, corpus, photos)
        except CorpusError as exc:
            logger.error("%s", exc)
            return 2
    for spec in manifest.models:
        if args.only and spec.name not in args.only:
            continue
        command = train_command(spec, manifest, train=train, held_out=held_out, work_dir=work_dir,
                                models_root=args.models_root, extra=extra, recipe=args.recipe)
        if args.plan:
            sys.stdout.write(" ".join(command) + "\n")  # the plan is this command's output
            continue
        folder = model_folder(spec, args.models_root, stages)
        if is_finished(folder.name, spec.iterations, folder.parent):
            if spec.shipped and finalize_shipped(folder, spec, manifest, corpus, stages):
                logger.info("%s: made ready to ship (float16 weights, card: shipped section, builtin id)", spec.name)
            logger.info("%s: finished (%d iterations), skipped", spec.name, spec.iterations)
            continue
        if spec.init and not (model_folder(manifest.spec(spec.init), args.models_root, stages) / CONFIG_FILE).is_file():
            logger.error("%s starts from %s, which is not trained yet", spec.name, spec.init)
            return 1
        logger.info("%s: training (%d iterations)", spec.name, spec.iterations)
        if not run_training(spec.name, command, recipe_folders(work_dir, args.recipe)[0] / spec.name / LOG_FILE):
            return 1
        if spec.shipped:
            finalize_shipped(folder, spec, manifest, corpus, stages)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
