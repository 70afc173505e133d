"""Reproduce the shipped style gallery from its manifest (``train/shipped/gallery.toml``), resumably.

    python -m train.shipped.gallery                 # build the content set and style images, then train what is missing
    python -m train.shipped.gallery --only mosaic   # one style (its ``init`` model must exist already)
    python -m train.shipped.gallery --plan          # print what would run
    python -m train.shipped.gallery --recipe paper --device cuda --models-root registry/builtin/styles-paper
                                            # the paper's recipe on a GPU (gallery.toml [recipe.paper])

Each style trains with ``python -m train.style ... --resume`` in its own process, so killing this command and
rerunning it continues every unfinished style from its last checkpoint. Finished models land in
``--models-root`` (default ``registry/builtin/styles``); run folders (checkpoints, logs, previews) in
``--work-dir`` (default ``<data dir>/gallery``).
"""
from __future__ import annotations

import logging
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from perceptual_studio import settings
from perceptual_studio.imaging.generated_styles import GENERATED_STYLES
from perceptual_studio.imaging.sample_photos import SamplePhotoUnavailable, attribution, load_sample_photo
from perceptual_studio.registry.schema import CARD_FILE, CONFIG_FILE

from .fast_variants import (
    FAST_HEADING,
    FastSpec,
    distill_command,
    evaluate_fast_variant,
    fast_card_section,
    read_fast_spec,
)
from .shipping import (
    Recipe,
    is_finished,
    make_shippable,
    manifest_command_line,
    option_flags,
    read_recipes,
    read_with_recipe,
    run_training,
    store_half_precision,
)

logger = logging.getLogger(__name__)

MANIFEST = Path(__file__).with_name("gallery.toml")
BUILTIN_STYLES = Path(__file__).resolve().parents[2] / "registry" / "builtin" / "styles"


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
    # Its fast variant's objective steps, when not the [fast] table's.
    fast_objective_iterations: int | None = None


@dataclass(frozen=True)
class Manifest:
    content: ContentSpec
    train_options: dict[str, Any]
    styles: tuple[StyleSpec, ...]
    source: Path = field(default=MANIFEST)
    recipes: dict[str, Recipe] = field(default_factory=dict)
    fast: FastSpec | None = None  # how each style's fast variant is distilled (train/shipped/fast_variants.py)

    def with_recipe(self, name: str) -> "Manifest":
        """The manifest as ``recipe`` trains it (its options and iteration counts)."""
        if name not in self.recipes:
            raise ValueError(f"{self.source}: no recipe {name!r} (have: {', '.join(self.recipes) or 'none'})")
        recipe = self.recipes[name]
        return replace(self, styles=tuple(recipe.apply(s) for s in self.styles))


def read_manifest(path: Path = MANIFEST) -> Manifest:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    content = raw["content"]
    known = {"name", "seed", "iterations", "init", "fast-objective-iterations"}
    styles = tuple(StyleSpec(**{k.replace("-", "_"): v for k, v in entry.items() if k in known},
                             options={k: v for k, v in entry.items() if k not in known}) for entry in raw["style"])
    names = {s.name for s in styles}
    for spec in styles:
        if spec.name not in GENERATED_STYLES:
            raise ValueError(f"{path}: style {spec.name!r} has no generator in imaging/generated_styles.py")
        if spec.init is not None and spec.init not in names:
            raise ValueError(f"{path}: style {spec.name!r} starts from unknown style {spec.init!r}")
    return Manifest(ContentSpec(tuple(content["photos"]), tuple(content["held_out"]), int(content["crops_per_photo"]),
                                int(content["crop_size"]), int(content["seed"])),
                    dict(raw.get("train", {})), styles, path, read_recipes(raw), read_fast_spec(raw))


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
        "Reproduce the whole gallery: `python -m train.shipped.gallery` (resumable; `train/shipped/gallery.toml`).", "",
    ])


def finalize_shipped(folder: Path, spec: StyleSpec, manifest: Manifest) -> bool:
    """A finished gallery style made fit to ship (:func:`make_shippable`). True if it changed anything."""
    return make_shippable(folder, GALLERY_HEADING, gallery_card_section(spec, manifest), BUILTIN_STYLES)


def train_command(spec: StyleSpec, manifest: Manifest, *, content: Path, styles: Path, work_dir: Path,
                  models_root: Path, extra: list[str], runs: str = "runs", name: str | None = None,
                  iterations: int | None = None, init: str | None = None) -> list[str]:
    """``python -m train.style`` for ``spec`` (resumable). ``name``, ``iterations`` and ``init`` (a model id or
    folder) replace the style's own, for a fast variant trained with the style's objective."""
    name = name or spec.name
    command = [sys.executable, "-m", "perceptual_studio.train.style", "--style", str(style_image(spec, styles)),
               "--content", str(content), "--style-name", spec.name, "--out", str(models_root / name),
               "--run-dir", str(work_dir / runs / name), "--iterations", str(iterations or spec.iterations),
               "--seed", str(spec.seed), "--preview-image", str(work_dir / "preview.jpg"), "--resume", "--quiet"]
    if init is None and spec.init:  # the shipped model's id, so the card names it rather than a folder here
        init = f"builtin:{spec.init}" if models_root.resolve() == BUILTIN_STYLES.resolve() else str(models_root / spec.init)
    if init is not None:
        command += ["--init", init]
    return command + option_flags({**manifest.train_options, **spec.options}) + extra


def main(argv: list[str] | None = None) -> int:
    parser = manifest_command_line(
        "python -m train.shipped.gallery", __doc__.split("\n")[0], manifest=MANIFEST, models_root=BUILTIN_STYLES,
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
    stages = style_stages(manifest, args.models_root, work_dir, extra, args.recipe)
    models = list(dict.fromkeys(stage.model for stage in stages))
    unknown = sorted(set(args.only or ()) - set(models))
    if unknown:
        logger.error("no model %s in %s (have: %s)", ", ".join(unknown), args.manifest, ", ".join(models))
        return 2
    for stage in stages:
        if args.only and stage.model not in args.only:
            continue
        if args.plan:
            sys.stdout.write(" ".join(stage.command) + "\n")  # the plan is this command's output
            continue
        if is_finished(stage.folder.name, stage.iterations, stage.folder.parent):
            if stage.finalize(stage.folder):
                logger.info("%s: made ready to ship (float16 weights, card section, builtin id)", stage.name)
            logger.info("%s: finished (%d iterations), skipped", stage.name, stage.iterations)
            continue
        missing = [str(folder) for folder in stage.needs if not (folder / CONFIG_FILE).is_file()]
        if missing:
            logger.error("%s starts from %s, which is not trained yet", stage.name, ", ".join(missing))
            return 1
        logger.info("%s: training (%d iterations)", stage.name, stage.iterations)
        if not run_training(stage.name, stage.command):
            return 1
        stage.finalize(stage.folder)
    return 0


@dataclass(frozen=True)
class Stage:
    """One training run of the gallery: its command, the folder it writes, the model folders it starts from,
    and how its result is made fit to ship."""

    name: str
    model: str  # the shipped model it builds (``--only`` selects by it); a fast variant takes two stages
    iterations: int
    folder: Path
    needs: tuple[Path, ...]
    command: list[str]
    finalize: Callable[[Path], bool]


def _nothing_to_finalize(folder: Path) -> bool:
    """A stage whose result is not shipped (a fast variant's distilled student) has nothing to finalize."""
    return False


def style_stages(manifest: Manifest, models_root: Path, work_dir: Path, extra: list[str],
                 recipe: str | None) -> list[Stage]:
    """Every style of the manifest, then (with a ``[fast]`` table) every style's fast variant: its distilled
    student, then that student trained with the style's objective."""
    content, preview, styles = work_dir / "content", work_dir / "preview.jpg", work_dir / "styles"
    runs = work_dir / (f"runs-{recipe}" if recipe else "runs")
    stages = [Stage(spec.name, spec.name, spec.iterations, models_root / spec.name,
                    (models_root / spec.init,) if spec.init else (),
                    train_command(spec, manifest, content=content, styles=styles, work_dir=work_dir,
                                  models_root=models_root, extra=extra, runs=runs.name),
                    lambda folder, spec=spec: finalize_shipped(folder, spec, manifest))
              for spec in manifest.styles]
    fast = manifest.fast
    if fast is None:
        return stages
    first = next(spec.name for spec in manifest.styles if not spec.init)
    shipped = models_root.resolve() == BUILTIN_STYLES.resolve()
    students = work_dir / (f"students-{recipe}" if recipe else "students")

    def model_id(name: str) -> str:  # a shipped model by its registry id, so cards name it, not a folder here
        return f"builtin:{name}" if shipped else str(models_root / name)

    for spec in manifest.styles:
        name, student = fast.name(spec.name), students / fast.student_name(spec.name)
        first_student = students / fast.student_name(first)
        stages.append(Stage(
            fast.student_name(spec.name), name,
            fast.scratch_iterations if spec.name == first else fast.finetune_iterations, student,
            (models_root / spec.name,) if spec.name == first else (models_root / spec.name, first_student),
            distill_command(spec.name, spec.seed, spec=fast, first_style=first, teacher=model_id(spec.name),
                            init=str(_shown_path(first_student)), content=content, preview=preview,
                            out=_shown_path(student), run_dir=runs / fast.student_name(spec.name), extra=extra),
            _nothing_to_finalize))
        objective = spec.fast_objective_iterations or fast.objective_iterations
        stages.append(Stage(
            name, name, objective, models_root / name, (student,),
            train_command(spec, manifest, content=content, styles=styles, work_dir=work_dir, models_root=models_root,
                          extra=extra + ["--variant-of", model_id(spec.name)], runs=runs.name, name=name,
                          iterations=objective, init=str(_shown_path(student))),
            lambda folder, spec=spec: finalize_fast(folder, spec, manifest, models_root, styles)))
    return stages


def _shown_path(folder: Path) -> Path:
    """``folder`` relative to the working directory when inside it: the training record (and the card) name
    the student's folder, which should not carry this machine's absolute path."""
    try:
        return folder.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return folder


def finalize_fast(folder: Path, spec: StyleSpec, manifest: Manifest, models_root: Path, styles: Path) -> bool:
    """A finished fast variant made fit to ship: evaluated against its teacher once (the card section keeps
    the result), then :func:`make_shippable`. True if it changed anything."""
    card = folder / CARD_FILE
    section = ""
    changed = store_half_precision(folder)  # first, so the card's figures are the shipped weights'
    if not card.is_file() or FAST_HEADING not in card.read_text(encoding="utf-8"):
        photos = {name: load_sample_photo(name) for name in manifest.content.held_out}
        evaluation = evaluate_fast_variant(folder, models_root / spec.name, style_image(spec, styles), photos)
        teacher = f"builtin:{spec.name}" if models_root.resolve() == BUILTIN_STYLES.resolve() else spec.name
        section = fast_card_section(evaluation, manifest.fast, teacher, attribution(manifest.content.held_out),
                                    spec.fast_objective_iterations or manifest.fast.objective_iterations)
    return make_shippable(folder, FAST_HEADING, section, BUILTIN_STYLES) or changed


if __name__ == "__main__":
    raise SystemExit(main())
