"""Reproduce the shipped style gallery from its manifests, resumably: the paintings (``train/shipped/paintings.toml``,
trained on the licensed corpus's photos) and the generated patterns (``train/shipped/gallery.toml``).

    python -m train.shipped.gallery --manifest train/shipped/paintings.toml   # the paintings (needs the corpus)
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

import json
import logging
import shutil
import sys
import tomllib
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from perceptual_studio import settings
from perceptual_studio.imaging.corpus import CorpusError, read_corpus
from perceptual_studio.imaging.generated_styles import GENERATED_STYLES
from perceptual_studio.imaging.sample_photos import SamplePhotoUnavailable, attribution, load_sample_photo
from perceptual_studio.registry.schema import CARD_FILE, CONFIG_FILE, StyleImageCredit

from . import paintings
from .content_photos import CORPUS, SAMPLE_PHOTOS, ContentPhotos, ContentSpec, content_photos

from .fast_variants import (
    FAST_HEADING,
    FastSpec,
    distill_command,
    evaluate_fast_variant,
    fast_card_section,
    read_fast_spec,
)
from .shipping import (
    append_card_section,
    Recipe,
    is_finished,
    make_shippable,
    manifest_command_line,
    option_flags,
    read_recipes,
    INT8_SENTENCE,
    read_with_recipe,
    redraw_preview,
    run_training,
    store_int8,
)
from .stable_variants import STABLE_HEADING, StableSpec, evaluate_stable_variant, read_stable_spec, stable_card_section

logger = logging.getLogger(__name__)

MANIFEST = Path(__file__).with_name("gallery.toml")
PAINTINGS_MANIFEST = Path(__file__).with_name("paintings.toml")
MANIFESTS = (PAINTINGS_MANIFEST, MANIFEST)  # the whole shipped gallery, in the order it is shown
BUILTIN_STYLES = Path(__file__).resolve().parents[2] / "registry" / "builtin" / "styles"
# The one photo every shipped style's preview (its gallery thumbnail) shows: held out by every manifest (and by
# the corpus's split), and bundled with scikit-image, so CI reproduces each preview without the corpus.
PREVIEW_PHOTO = "astronaut"
CORPUS_CONTENT = "content-corpus"  # a work directory's crops of the corpus, for stable variants that learn on it


@dataclass(frozen=True)
class StyleSpec:
    name: str
    iterations: int
    seed: int = 0  # of the training, and of a generated style image
    init: str | None = None  # a style of the same manifest, or a shipped model ("builtin:stained-glass")
    painting: str | None = None  # the corpus id of the painting it is trained on; else a generated pattern
    title: str | None = None  # the painting's title and year where the corpus names only its file
    year: str | None = None
    crop_border: int = 0  # pixels cut from every side of the painting (a scan's frame)
    # train.style options for this style only (CLI names without the dashes), over the manifest's [train].
    options: dict[str, Any] = field(default_factory=dict)
    # Its fast variant's objective steps, when not the [fast] table's.
    fast_objective_iterations: int | None = None
    # Its stable variant's temporal weight, when not the [stable] table's (a style's objective sets the scale
    # the temporal loss competes with, so one weight does not fit every style).
    stable_temporal_weight: float | None = None
    # Its stable variant's share of flat pairs in the temporal loss, when not the [stable] table's.
    stable_temporal_flat_share: float | None = None
    # "corpus": its stable variant learns on the licensed corpus's training photos (less this manifest's held-out
    # ones) instead of the manifest's content; None: on the manifest's content.
    stable_content: str | None = None
    # Its stable variant's steps, when not the [stable] table's.
    stable_iterations: int | None = None


@dataclass(frozen=True)
class Manifest:
    content: ContentSpec
    train_options: dict[str, Any]
    styles: tuple[StyleSpec, ...]
    source: Path = field(default=MANIFEST)
    recipes: dict[str, Recipe] = field(default_factory=dict)
    fast: FastSpec | None = None  # how each style's fast variant is distilled (train/shipped/fast_variants.py)
    stable: StableSpec | None = None  # how each fast variant's stable variant is trained (stable_variants.py)
    work_dir_name: str = "gallery"  # its content, style images and runs: <data dir>/<this>

    def stable_corpus_content(self) -> ContentSpec:
        """The content of the stable variants that learn on the corpus: its training photos, cropped as the
        ``[stable]`` table says, never the corpus's held-out photos nor this manifest's."""
        return ContentSpec((), self.content.held_out, self.stable.corpus_crops_per_photo, self.content.crop_size,
                           self.content.seed, CORPUS, self.content.corpus)

    def with_recipe(self, name: str) -> "Manifest":
        """The manifest as ``recipe`` trains it (its options and iteration counts)."""
        if name not in self.recipes:
            raise ValueError(f"{self.source}: no recipe {name!r} (have: {', '.join(self.recipes) or 'none'})")
        recipe = self.recipes[name]
        return replace(self, styles=tuple(recipe.apply(s) for s in self.styles))


def read_manifest(path: Path = MANIFEST) -> Manifest:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    content = raw["content"]
    known = {"name", "seed", "iterations", "init", "fast-objective-iterations", "painting", "title", "year",
             "crop-border", "stable-temporal-weight", "stable-temporal-flat-share", "stable-content",
             "stable-iterations"}
    styles = tuple(StyleSpec(**{k.replace("-", "_"): v for k, v in entry.items() if k in known},
                             options={k: v for k, v in entry.items() if k not in known}) for entry in raw["style"])
    names = {s.name for s in styles}
    for spec in styles:
        if spec.painting is None and spec.name not in GENERATED_STYLES:
            raise ValueError(f"{path}: style {spec.name!r} names no painting and has no generator in "
                             "imaging/generated_styles.py")
        if spec.init is not None and spec.init not in names and not spec.init.startswith("builtin:"):
            raise ValueError(f"{path}: style {spec.name!r} starts from unknown style {spec.init!r}")
        if spec.stable_content not in (None, CORPUS):
            raise ValueError(f"{path}: style {spec.name!r}: stable-content must be {CORPUS!r}, got {spec.stable_content!r}")
    source = content.get("source", SAMPLE_PHOTOS)
    if source not in (SAMPLE_PHOTOS, CORPUS):
        raise ValueError(f"{path}: [content] source must be {SAMPLE_PHOTOS!r} or {CORPUS!r}, got {source!r}")
    held_out = tuple(content.get("held_out", ()))
    if source == SAMPLE_PHOTOS and PREVIEW_PHOTO not in held_out:
        raise ValueError(f"{path}: the preview photo {PREVIEW_PHOTO!r} must be held out")
    return Manifest(ContentSpec(tuple(content.get("photos", ())), held_out, int(content["crops_per_photo"]),
                                int(content["crop_size"]), int(content["seed"]), source),
                    dict(raw.get("train", {})), styles, path, read_recipes(raw), read_fast_spec(raw),
                    read_stable_spec(raw), str(raw.get("work-dir", "gallery")))


def read_gallery() -> list[Manifest]:
    """Every manifest of the shipped gallery, the paintings first."""
    return [read_manifest(path) for path in MANIFESTS]


def build_content(spec: ContentSpec, folder: Path, *, skip_missing: bool = False,
                  photos: ContentPhotos | None = None) -> Path:
    """Random multi-scale crops (with flips) of the manifest's photos; written once, with a SOURCES.md.

    ``skip_missing``: leave out photos whose optional package is not installed (scikit-learn's two, for the
    app's default content) instead of failing, as reproducing the gallery must."""
    marker = folder / "SOURCES.md"
    if marker.is_file():
        return folder
    overlap = set(spec.photos) & set(spec.held_out)
    if overlap:
        raise ValueError(f"photos both trained on and held out: {sorted(overlap)}")
    photos = photos or content_photos(spec, preview=PREVIEW_PHOTO)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    used = []
    for name, load in photos.train.items():
        try:
            photo = load()
        except SamplePhotoUnavailable as exc:
            if not skip_missing:
                raise
            logger.warning("training content: sample photo %s left out (%s)", name, exc)
            continue
        used.append(name)
        _write_crops(photo, name, spec, rng, folder)
    credits = photos.train_credits if spec.source == CORPUS else [attribution(tuple(used))]  # the ones found
    marker.write_text(
        "# Gallery training content\n\n"
        f"{spec.crops_per_photo} random square crops (35-100% of the shorter side, half of them mirrored, resized to "
        f"{spec.crop_size} px, seed {spec.seed}) of each of these photos:\n\n" + "\n".join(credits) + "\n\n"
        f"Held out (never trained on):\n\n{photos.held_out_credits}\n", encoding="utf-8")
    return folder


def _write_crops(photo: Image.Image, name: str, spec: ContentSpec, rng: np.random.Generator, folder: Path) -> None:
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


def preview_photo() -> Image.Image:
    """The one fixed, held-out photo every shipped style's preview (its gallery thumbnail) shows."""
    photo = load_sample_photo(PREVIEW_PHOTO)
    photo.thumbnail((384, 384), Image.Resampling.LANCZOS)
    return photo


def style_image(spec: StyleSpec, folder: Path, corpus_dir: Path | None = None) -> Path:
    """The style's image in ``folder``: its painting from the corpus, or its generated pattern (written once)."""
    path = folder / f"{spec.name}.png"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        if spec.painting is not None:
            corpus = read_corpus(corpus_dir)
            paintings.write_style_image(paintings.painting_of(corpus, spec.painting), corpus, path,
                                        crop_border=spec.crop_border)
        else:
            GENERATED_STYLES[spec.name](seed=spec.seed).save(path)
    return path


GALLERY_HEADING = "## In the shipped gallery"


def _style_lines(spec: StyleSpec, corpus_dir: Path | None) -> list[str]:
    if spec.painting is None:
        return [f"Style image: drawn by `imaging/generated_styles.py` (`{spec.name}`, seed {spec.seed}; no licence "
                "needed)."]
    corpus = read_corpus(corpus_dir)
    painting = paintings.painting_of(corpus, spec.painting)
    return paintings.credit_lines(painting, style_credit(spec, corpus_dir), corpus)


def style_credit(spec: StyleSpec, corpus_dir: Path | None = None) -> StyleImageCredit | None:
    """A painting style's credit; None for a generated pattern."""
    if spec.painting is None:
        return None
    return paintings.credit(paintings.painting_of(read_corpus(corpus_dir), spec.painting), title=spec.title,
                            year=spec.year)


def gallery_card_section(spec: StyleSpec, manifest: Manifest) -> str:
    """What a shipped model's card adds: its style image and licence, its manifest entry, its training photos and
    their licences, the command."""
    content = manifest.content
    photos = content_photos(content, preview=PREVIEW_PHOTO)
    start = f"fine-tuned from `{_init_id(spec.init)}`" if spec.init else "trained from scratch"
    options = ", ".join(f"`--{k} {v}`" for k, v in {**manifest.train_options, **spec.options}.items())
    return "\n".join([
        "", GALLERY_HEADING, "", *_style_lines(spec, content.corpus), "",
        f"{start.capitalize()}, {spec.iterations} iterations, with {options}.",
        "",
        *_content_lines(content, photos),
        "Never trained on (the preview and quality figures use them):", "", photos.held_out_credits, "",
        INT8_SENTENCE, "",
        f"Reproduce it: `python -m train.shipped.gallery --manifest train/shipped/{manifest.source.name}` (resumable).", "",
    ])


def _content_lines(content: ContentSpec, photos: ContentPhotos) -> list[str]:
    crops = (f"{content.crops_per_photo} random crops (35-100% of the shorter side, half mirrored, {content.crop_size} "
             f"px, seed {content.seed})")
    if content.source == CORPUS:  # the corpus lists every photo; the card says how many and under which licences
        return [*photos.train_credits, "", f"The crops: {content.crops_per_photo} per photo, 35-100% of the shorter "
                f"side, half mirrored, {content.crop_size} px, seed {content.seed}.", ""]
    return [f"Content: {crops} of each of these photos:", "", *photos.train_credits, ""]


def _init_id(init: str) -> str:
    return init if init.startswith("builtin:") else f"builtin:{init}"


def finalize_shipped(folder: Path, spec: StyleSpec, manifest: Manifest) -> bool:
    """A finished gallery style made fit to ship (:func:`make_shippable`, and a painting's credit in its record).
    True if it changed anything."""
    credit = style_credit(spec, manifest.content.corpus)
    recorded = credit is not None and paintings.record_credit(folder, credit)
    return make_shippable(folder, GALLERY_HEADING, gallery_card_section(spec, manifest), BUILTIN_STYLES,
                          int8=True) or recorded


def train_command(spec: StyleSpec, manifest: Manifest, *, content: Path, styles: Path, work_dir: Path,
                  models_root: Path, extra: list[str], runs: str = "runs", name: str | None = None,
                  iterations: int | None = None, init: str | None = None, run_name: str | None = None) -> list[str]:
    """``python -m train.style`` for ``spec`` (resumable). ``name``, ``iterations`` and ``init`` (a model id or
    folder) replace the style's own, for a fast variant trained with the style's objective; ``run_name`` (default
    ``name``) names its run folder, so that a stage trained again with other settings does not resume the old run."""
    name = name or spec.name
    command = [sys.executable, "-m", "perceptual_studio.train.style", "--style",
               str(style_image(spec, styles, manifest.content.corpus)),
               "--content", str(content), "--style-name", spec.name, "--out", str(models_root / name),
               "--run-dir", str(work_dir / runs / (run_name or name)), "--iterations", str(iterations or spec.iterations),
               "--seed", str(spec.seed), "--preview-image", str(work_dir / "preview.jpg"), "--resume", "--quiet"]
    if init is None and spec.init:  # the shipped model's id, so the card names it rather than a folder here
        if spec.init.startswith("builtin:"):  # a shipped model outside this manifest
            init = spec.init
        else:
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
    parser.add_argument("--redraw-previews", action="store_true",
                        help="redraw every finished model's preview.jpg on the preview photo, then exit")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="the image corpus of a manifest trained on it (default: <data dir>/corpus)")
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    manifest = read_with_recipe(read_manifest, args.manifest, args.recipe, "gallery")
    if manifest is None:
        return 2
    manifest = replace(manifest, content=replace(manifest.content, corpus=args.corpus))
    work_dir = args.work_dir or settings.data_dir() / manifest.work_dir_name
    content, preview = work_dir / "content", work_dir / "preview.jpg"
    if args.redraw_previews:
        return redraw_previews(manifest, args.models_root, work_dir)
    if not args.plan:  # a plan only names the folders
        try:
            build_content(manifest.content, content)
        except SamplePhotoUnavailable as exc:
            logger.error("the gallery's training photos need an optional package (%s): pip install -e '.[gallery]'",
                         exc)
            return 2
        except CorpusError as exc:
            logger.error("%s", exc)
            return 2
        if not preview.is_file():
            preview_photo().save(preview, quality=93)
    try:
        stages = style_stages(manifest, args.models_root, work_dir, extra, args.recipe)
    except CorpusError as exc:  # a painting's style image comes from the corpus
        logger.error("%s", exc)
        return 2
    models = list(dict.fromkeys(stage.model for stage in stages))
    unknown = sorted(set(args.only or ()) - set(models))
    if unknown:
        logger.error("no model %s in %s (have: %s)", ", ".join(unknown), args.manifest, ", ".join(models))
        return 2
    return run_stages([s for s in stages if not args.only or s.model in args.only], plan=args.plan)


def run_stages(stages: list["Stage"], *, plan: bool) -> int:
    """Print (``plan``) or run each stage in order, skipping (and finalizing) finished ones; 0, or 1 on a failure."""
    for stage in stages:
        if stage.skip_reason:
            if plan:  # a comment line: the plan stays a list of commands to run
                sys.stdout.write(f"# {stage.name}: {stage.skip_reason}; skipped\n")
            else:
                logger.log(logging.INFO if stage.done else logging.WARNING, "%s: %s; skipped", stage.name,
                           stage.skip_reason)
            continue
        finished = is_finished(stage.folder.name, stage.iterations, stage.folder.parent)
        if plan:  # the plan is this command's output: what a run would train, the rest as comments
            sys.stdout.write(f"# {stage.name}: finished; skipped\n" if finished else " ".join(stage.command) + "\n")
            continue
        if finished:
            if stage.finalize(stage.folder):
                logger.info("%s: made ready to ship (compact weights, card section, builtin id)", stage.name)
            logger.info("%s: finished (%d iterations), skipped", stage.name, stage.iterations)
            continue
        missing = [str(folder) for folder in stage.needs if not (folder / CONFIG_FILE).is_file()]
        if missing:
            logger.error("%s starts from %s, which is not trained yet", stage.name, ", ".join(missing))
            return 1
        if stage.prepare is not None:
            try:
                stage.prepare()
            except CorpusError as exc:
                logger.error("%s: %s", stage.name, exc)
                return 1
        logger.info("%s: training (%d iterations)", stage.name, stage.iterations)
        if not run_training(stage.name, stage.command):
            return 1
        stage.finalize(stage.folder)
    return 0


def redraw_previews(manifest: Manifest, models_root: Path, work_dir: Path) -> int:
    """After the preview photo changed: every finished model's thumbnail drawn anew from its shipped weights."""
    preview = work_dir / "preview.jpg"
    preview.parent.mkdir(parents=True, exist_ok=True)
    preview_photo().save(preview, quality=93)
    names = [n for spec in manifest.styles for n in (spec.name, manifest.fast.name(spec.name) if manifest.fast else None) if n]
    for folder in (models_root / name for name in names):
        if (folder / CONFIG_FILE).is_file():
            redraw_preview(folder, preview)
            logger.info("%s: preview redrawn", folder.name)
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
    skip_reason: str | None = None  # why it is not trained (a result that did not meet its bars, kept aside)
    done: bool = False  # skipped because what it leads to is shipped already, not because something failed
    prepare: Callable[[], object] | None = None  # what it needs written before it trains (its own content)


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
                    (_init_folder(spec.init, models_root),) if spec.init else (),
                    train_command(spec, manifest, content=content, styles=styles, work_dir=work_dir,
                                  models_root=models_root, extra=extra, runs=runs.name),
                    lambda folder, spec=spec: finalize_shipped(folder, spec, manifest))
              for spec in manifest.styles]
    fast = manifest.fast
    if fast is None:
        return stages
    # The students start from the first style's (trained from scratch), or all from the [fast] table's init.
    first = None if fast.init else next(spec.name for spec in manifest.styles if not spec.init)
    shipped = models_root.resolve() == BUILTIN_STYLES.resolve()
    students = work_dir / (f"students-{recipe}" if recipe else "students")

    def model_id(name: str) -> str:  # a shipped model by its registry id, so cards name it, not a folder here
        return f"builtin:{name}" if shipped else str(models_root / name)

    objectives = {spec.name: spec.fast_objective_iterations or fast.objective_iterations for spec in manifest.styles}
    students_done = _students_done(fast, objectives, first, models_root)
    for spec in manifest.styles:
        name, student = fast.name(spec.name), students / fast.student_name(spec.name)
        first_student = fast.init or str(_shown_path(students / fast.student_name(first)))
        first_folder = _init_folder(fast.init, models_root) if fast.init else students / fast.student_name(first)
        stages.append(Stage(
            fast.student_name(spec.name), name,
            fast.scratch_iterations if spec.name == first else fast.finetune_iterations, student,
            (models_root / spec.name,) if spec.name == first else (models_root / spec.name, first_folder),
            distill_command(spec.name, spec.seed, spec=fast, first_style=first, teacher=model_id(spec.name),
                            init=first_student, content=content, preview=preview,
                            out=_shown_path(student), run_dir=runs / fast.student_name(spec.name), extra=extra),
            _nothing_to_finalize,
            skip_reason=f"{name} is trained already" if students_done[spec.name] else None,
            done=students_done[spec.name]))
        objective = objectives[spec.name]
        stages.append(Stage(
            name, name, objective, models_root / name, (student,),
            train_command(spec, manifest, content=content, styles=styles, work_dir=work_dir, models_root=models_root,
                          extra=extra + ["--variant-of", model_id(spec.name)], runs=runs.name, name=name,
                          iterations=objective, init=str(_shown_path(student))),
            lambda folder, spec=spec: finalize_fast(folder, spec, manifest, models_root, styles)))
    return stages + _stable_stages(manifest, models_root, work_dir, extra, runs, model_id)


def _stable_stages(manifest: Manifest, models_root: Path, work_dir: Path, extra: list[str], runs: Path,
                   model_id: Callable[[str], str]) -> list[Stage]:
    """With a ``[stable]`` table, every style's stable variant: its fast variant fine-tuned with the temporal loss,
    skipped where this very try was judged and kept out before."""
    stages: list[Stage] = []
    styles = work_dir / "styles"
    for spec in manifest.styles if manifest.stable is not None else ():
        stable = manifest.stable.for_style(spec.stable_temporal_weight, spec.stable_temporal_flat_share,
                                           spec.stable_content, spec.stable_iterations)
        name, fast_name = stable.name(spec.name), manifest.fast.name(spec.name)
        rejected = rejected_folder(work_dir, name, stable)
        content, prepare = work_dir / "content", None
        if stable.content == CORPUS:
            content = work_dir / CORPUS_CONTENT
            prepare = partial(build_content, manifest.stable_corpus_content(), content)
        stages.append(Stage(
            name, name, stable.iterations, models_root / name, (models_root / fast_name,),
            train_command(spec, manifest, content=content, styles=styles, work_dir=work_dir, models_root=models_root,
                          extra=extra + ["--variant-of", model_id(spec.name), *stable.flags(),
                                         *option_flags(stable.options)],
                          runs=runs.name, name=name, iterations=stable.iterations, init=model_id(fast_name),
                          run_name=rejected.name),
            lambda folder, spec=spec, stable=stable: finalize_stable(folder, spec, stable, manifest, models_root,
                                                                     styles, work_dir),
            skip_reason=_rejected_reason(stable, rejected), prepare=prepare))
    return stages


def _students_done(fast: FastSpec, objectives: dict[str, int], first: str | None,
                   models_root: Path) -> dict[str, bool]:
    """For each style, whether its distilled student is no longer needed. A student serves only its fast variant
    (and, without an init, the first serves every other student): once those are trained, a fresh work
    directory need not distil it again."""
    trained = {name: is_finished(fast.name(name), iterations, models_root) for name, iterations in objectives.items()}
    return {name: done and (bool(fast.init) or name != first or all(trained.values())) for name, done in trained.items()}


def _rejected_reason(stable: StableSpec, rejected: Path) -> str | None:
    """Why a stable variant's stage is skipped: this try was judged and kept out before (None: it was not)."""
    if not (rejected / CONFIG_FILE).is_file():
        return None
    return (f"did not meet the bars at temporal weight {stable.temporal_weight:g}"
            + (f", flat share {stable.flat_share:g}" if stable.flat_share else "")
            + f" (its card: {_shown_path(rejected)}); give the style another stable-temporal-weight or "
            "stable-temporal-flat-share to try again")


def _init_folder(init: str, models_root: Path) -> Path:
    """The folder a stage starting from ``init`` (a style of the manifest, a shipped id or a folder) needs."""
    if init.startswith("builtin:"):
        return BUILTIN_STYLES / init.split(":", 1)[1]
    return models_root / init


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
    changed = store_int8(folder)  # first, so the card's figures are the shipped weights'
    credit = style_credit(spec, manifest.content.corpus)
    if credit is not None:
        changed = paintings.record_credit(folder, credit) or changed
    if not card.is_file() or FAST_HEADING not in card.read_text(encoding="utf-8"):
        photos = content_photos(manifest.content, preview=PREVIEW_PHOTO)
        evaluation = evaluate_fast_variant(folder, models_root / spec.name, style_image(spec, styles, manifest.content.corpus),
                                           photos.load_held_out())
        teacher = f"builtin:{spec.name}" if models_root.resolve() == BUILTIN_STYLES.resolve() else spec.name
        section = fast_card_section(evaluation, manifest.fast, teacher, photos.held_out_credits,
                                    spec.fast_objective_iterations or manifest.fast.objective_iterations,
                                    manifest.source.name)
    shipped = make_shippable(folder, FAST_HEADING, section, BUILTIN_STYLES, int8=True)
    if spec.painting is not None:
        shipped = append_card_section(folder, PAINTING_HEADING, painting_card_section(spec, manifest)) or shipped
    return shipped or changed


def rejected_folder(work_dir: Path, name: str, stable: StableSpec) -> Path:
    """Where a stable variant that did not meet the bars is kept (with its card), out of the registry's reach."""
    return work_dir / "rejected" / f"{name}{stable.run_suffix()}"


def finalize_stable(folder: Path, spec: StyleSpec, stable: StableSpec, manifest: Manifest, models_root: Path,
                    styles: Path, work_dir: Path) -> bool:
    """A finished stable variant made fit to ship, as :func:`finalize_fast`: judged against its fast variant once
    (warping error and objective, :mod:`stable_variants`; the card section keeps the result). One that does not
    meet the bars is moved to :func:`rejected_folder` first, then given its card there, so that the app never runs
    it. True if a model was made ready to ship (False: nothing to do, or rejected)."""
    card = folder / CARD_FILE
    if card.is_file() and STABLE_HEADING in card.read_text(encoding="utf-8"):  # judged, and passed, before
        _warn_if_trained_at_another_weight(folder, stable)
        return _make_stable_shippable(folder, spec, manifest, "")
    photos = content_photos(manifest.content, preview=PREVIEW_PHOTO)
    fast_name = manifest.fast.name(spec.name)
    evaluation = evaluate_stable_variant(folder, models_root / fast_name, models_root / spec.name,
                                         style_image(spec, styles, manifest.content.corpus), photos.load_held_out())
    shipped = models_root.resolve() == BUILTIN_STYLES.resolve()
    trained_on = None
    if stable.content == CORPUS:
        corpus_content = manifest.stable_corpus_content()
        trained_on = ["It learnt on other photos than its fast variant: the licensed corpus's training photos, more "
                      "and more varied, never the held-out ones below.", "",
                      *_content_lines(corpus_content, content_photos(corpus_content, preview=PREVIEW_PHOTO))]
    section = stable_card_section(evaluation, stable, f"builtin:{fast_name}" if shipped else fast_name,
                                  f"builtin:{spec.name}" if shipped else spec.name, photos.held_out_credits,
                                  manifest.source.name, trained_on)
    logger.info("%s: warping error %.0f%% of the fast variant's (worst clip %.0f%%), objective %+.1f%%",
                folder.name, 100 * evaluation.warping_ratio(), 100 * evaluation.worst_ratio(),
                100 * evaluation.excess())
    if evaluation.passes():
        return _make_stable_shippable(folder, spec, manifest, section)
    rejected = rejected_folder(work_dir, folder.name, stable)
    if rejected.exists():
        shutil.rmtree(rejected)
    rejected.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(folder), str(rejected))  # first: an interruption never leaves a judged failure in the registry
    append_card_section(rejected, STABLE_HEADING, section)
    logger.warning("%s does not meet the bars at temporal weight %g (flat share %g): kept out of the registry in %s",
                   folder.name, stable.temporal_weight, stable.flat_share, _shown_path(rejected))
    return False


def _make_stable_shippable(folder: Path, spec: StyleSpec, manifest: Manifest, section: str) -> bool:
    changed = store_int8(folder)
    credit = style_credit(spec, manifest.content.corpus)
    if credit is not None:
        changed = paintings.record_credit(folder, credit) or changed
    changed = make_shippable(folder, STABLE_HEADING, section, BUILTIN_STYLES, int8=True) or changed
    if spec.painting is not None:
        changed = append_card_section(folder, PAINTING_HEADING, painting_card_section(spec, manifest)) or changed
    return changed


def _warn_if_trained_at_another_weight(folder: Path, stable: StableSpec) -> None:
    """A shipped stable variant is not trained again when its manifest's temporal loss changes: say so."""
    record = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8")).get("training") or {}
    trained = record.get("temporal_weight")
    if trained is None:
        return
    weight, share = float(trained), float(record.get("temporal_flat_share") or 0.0)
    if abs(weight - stable.temporal_weight) > 1e-6 * stable.temporal_weight or abs(share - stable.flat_share) > 1e-9:
        logger.warning("%s was trained with temporal weight %g and flat share %g, the manifest now says %g and %g: "
                       "remove %s to train it again", folder.name, weight, share, stable.temporal_weight,
                       stable.flat_share, _shown_path(folder))


PAINTING_HEADING = "## The painting"


def painting_card_section(spec: StyleSpec, manifest: Manifest) -> str:
    """A fast variant's card names the painting its style comes from, as its paper-size network's card does."""
    return "\n".join(["", PAINTING_HEADING, "", *_style_lines(spec, manifest.content.corpus), ""])


if __name__ == "__main__":
    raise SystemExit(main())
