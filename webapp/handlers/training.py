"""The Train journey: train or fine-tune a style network in the app, one job at a time, with live progress.

The training itself is ``train.style.train_style`` (the same code as ``python -m train.style``) running in a
worker thread; its per-step callback feeds :func:`train_style_job`, a generator of :class:`TrainUpdate` the
UI streams (loss terms, preview images, the loss plot). Cancelling sets the job's ``threading.Event``: the
trainer stops after the current step and still writes a usable model folder. A module-level lock keeps it to
one job per process; the UI also queues the event with ``concurrency_limit=1`` so waiting users see their
position. Content images come from ``PERCEPTUAL_TRAIN_CONTENT`` or the small bundled set (``webapp.samples``),
or from photos uploaded with the request (decoded into a scratch folder that goes with the job). In public mode
the server bounds every request itself (``_check_public_request``), and a visitor's model is theirs
(``webapp.visitor_models``).
"""
from __future__ import annotations

import logging
import math
import re
import tempfile
import threading
import time
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Generator, Iterator

from PIL import Image

from perceptual_studio import settings
from perceptual_studio.imaging import load_image
from perceptual_studio.imaging.io import ImageInputError, resize_to_max_side
from perceptual_studio.pipelines.training import (DEFAULT_BASE_MODEL, RECIPES, Recipe, closest_base_model,
                                                 default_training_content)
from perceptual_studio.pipelines.training import root_base_model
from perceptual_studio.pipelines.training import DEFAULT_RECIPE as DEFAULT_PRESET
from perceptual_studio.registry import describe, publish, reserved_model_names
from perceptual_studio.registry.schema import CARD_FILE, LOSS_CURVE_FILE
from perceptual_studio.train.config import StyleTrainConfig
from perceptual_studio.train.data import DataError, hub_dataset_image_bytes
from perceptual_studio.train.style import train_style

from .. import samples, visitor_models
from ..jobs import Finished, JobBoard, run_in_background
from .common import loss_network_status

logger = logging.getLogger(__name__)


Preset = Recipe  # the Train tab's presets are the library's recipes
PRESETS: dict[str, Preset] = RECIPES
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class TrainRequest:
    """What the Train tab (or ``/train_style``) asks for; ``None`` weights mean the loss network's defaults."""

    style: str
    style_name: str | None = None
    preset: str = DEFAULT_PRESET
    init_model: str | None = None
    iterations: int = PRESETS[DEFAULT_PRESET].iterations
    image_size: int = PRESETS[DEFAULT_PRESET].image_size
    batch_size: int = PRESETS[DEFAULT_PRESET].batch_size
    learning_rate: float = PRESETS[DEFAULT_PRESET].learning_rate
    width: float = PRESETS[DEFAULT_PRESET].width
    content_weight: float | None = None
    style_weight: float | None = None
    tv_weight: float | None = None
    content_source: str | None = None
    preview_every: int = PRESETS[DEFAULT_PRESET].preview_every
    seed: int = 0
    content_images: tuple[str, ...] = ()  # photos uploaded with the request (the content in public mode)


@dataclass
class TrainUpdate:
    step: int
    total: int
    status: str
    losses: dict[str, float] = field(default_factory=dict)
    preview: Image.Image | None = None
    plot: Image.Image | None = None  # the model's loss figure, on the last update only
    done: bool = False
    cancelled: bool = False
    model_id: str | None = None
    card: str | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)  # (step, term, log10 loss) rows for the live plot


# ------------------------------------------------------------------------------------------ jobs and cancelling

JOBS = JobBoard()
_train_lock = JOBS.slot  # one training job per process


def new_job_id() -> str:
    return JOBS.new_id()


def cancel_job(job_id: str | None) -> str:
    """Ask job ``job_id`` to stop (also before it starts, while it waits in the queue)."""
    if not job_id:
        return "No training job to cancel."
    JOBS.cancel(job_id)
    return "Cancelling: the run stops after the current step and keeps the model trained so far."


def training_busy() -> bool:
    return JOBS.busy()


# ------------------------------------------------------------------------------------------ configs


def preset_values(preset: str) -> Preset:
    if preset not in PRESETS:
        labels = {p.label: key for key, p in PRESETS.items()}
        if preset in labels:
            return PRESETS[labels[preset]]
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset]


def _preset_key(preset: str) -> str:
    return preset if preset in PRESETS else {p.label: k for k, p in PRESETS.items()}.get(preset, preset)


def unique_model_name(wanted: str) -> str:
    """``wanted`` as a folder name, suffixed -2, -3... so no model or run folder is overwritten, and never the
    name of a shipped model or of a zoo import (a bare id then names one model, and the zoo importer its own)."""
    base = _NAME_CHARS.sub("-", wanted).strip("-._")[:60] or "style"
    reserved = reserved_model_names()
    name, n = base, 1
    while name in reserved or (settings.models_dir() / name).exists() or (settings.runs_dir() / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _optional_weight(value: Any, name: str) -> float | None:
    if value in (None, ""):
        return None
    value = float(value)
    if value <= 0:
        return None  # 0 in the form means "the default", as the field's help says
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number")
    return value


# The request's fields that are the config's own (same name, same meaning): copied by name, cast to the config's
# type (a UI number box hands over 120.0 for 120). The others are the UI's: a preset, an optional init, a content
# source that may be blank, loss weights where 0 means "the default".
_OPTIONAL_WEIGHTS = {"content_weight": "content weight", "style_weight": "style weight", "tv_weight": "TV weight"}


def _shared_fields() -> dict[str, type]:
    hints = typing.get_type_hints(StyleTrainConfig)
    own = {f.name for f in fields(TrainRequest)} - set(_OPTIONAL_WEIGHTS) - {"style_name"}
    return {f.name: hints[f.name] for f in fields(StyleTrainConfig) if f.name in own}


_HUB_DATASET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
# A style name others will read in cards and pickers: letters (any script), digits, spaces and . _ ' -.
_STYLE_NAME = re.compile(r"^[\w .'-]{1,60}$")


def _check_public_request(request: TrainRequest) -> None:
    """In public mode (``settings.public_mode``) the server bounds a training request itself: no server folder as
    content (and no word on whether one exists), a Hub dataset only when the owner allows it, a step limit."""
    if not settings.public_mode():
        return
    name = (request.style_name or "").strip()
    if name and not _STYLE_NAME.match(name):
        raise ValueError("A style name here is up to 60 letters, digits, spaces and . _ ' - (it is shown to "
                         "everyone who uses this app).")
    source = (request.content_source or "").strip()
    if source and not (settings.public_hub_content() and _HUB_DATASET_ID.match(source)):
        allowed = " or a Hugging Face dataset id (owner/name)" if settings.public_hub_content() else ""
        raise ValueError("In this shared app, training uses the bundled licensed photos, or photos you upload"
                         f"{allowed}: leave the content field empty.")
    if source:
        _check_hub_content_size(source)
    _check_uploads(request.content_images)
    _check_public_sizes(request)
    limit = settings.public_max_iterations()
    if int(request.iterations) > limit:
        raise ValueError(f"{int(request.iterations)} training steps is more than this shared app runs for one "
                         f"request (at most {limit}); train longer on your own machine (perceptual-train-style).")


# What the Train tab's sliders offer; in public mode the server holds a request to them too.
PUBLIC_IMAGE_SIZE_RANGE = (32, 512)
PUBLIC_BATCH_RANGE = (1, 8)


def _check_uploads(paths: tuple[str, ...]) -> None:
    count, limit_count = len(paths), settings.public_max_content_images()
    if count > limit_count:
        raise ValueError(f"{count} content photos is more than this shared app takes with one request (at most "
                         f"{limit_count}).")
    size, limit_bytes = sum(_file_size(path) for path in paths), settings.public_max_content_bytes()
    if size > limit_bytes:
        raise ValueError(f"The content photos add up to {size / 2**20:.1f} MiB, more than this shared app takes with "
                         f"one request ({limit_bytes / 2**20:.0f} MiB).")


def _check_public_sizes(request: TrainRequest) -> None:
    low, high = PUBLIC_IMAGE_SIZE_RANGE
    if not low <= int(request.image_size) <= high:
        raise ValueError(f"The training image size here is {low} to {high} px, not {int(request.image_size)}.")
    low, high = PUBLIC_BATCH_RANGE
    if not low <= int(request.batch_size) <= high:
        raise ValueError(f"The batch size here is {low} to {high}, not {int(request.batch_size)}.")


def _check_hub_content_size(repo_id: str) -> None:
    """A Hub dataset a visitor names is measured before anything is downloaded, and refused over the cap."""
    try:
        size = hub_dataset_image_bytes(repo_id)
    except DataError as exc:
        raise ValueError(str(exc)) from None
    limit = settings.public_max_hub_content_bytes()
    if size > limit:
        raise ValueError(f"The dataset {repo_id} holds {size / 2**20:.0f} MiB of images, more than this shared app "
                         f"downloads for one training ({limit / 2**20:.0f} MiB).")


def _file_size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0  # a missing upload is reported by the image reader, with its own message


UPLOADED_CONTENT_MAX_SIDE = 1024  # uploaded content photos are kept at most this size: training crops far smaller


def save_uploaded_content(paths: tuple[str, ...], folder: Path) -> Path:
    """Decode each uploaded content photo (the image reader's checks and messages) and save it, at most
    ``UPLOADED_CONTENT_MAX_SIDE`` px, as PNG in ``folder``: the trainer reads a folder, and never the upload."""
    folder.mkdir(parents=True, exist_ok=True)
    for n, path in enumerate(paths):
        try:
            image = resize_to_max_side(load_image(path), UPLOADED_CONTENT_MAX_SIDE)
        except ImageInputError as exc:
            raise ValueError(f"Content photo {n + 1}: {exc}") from None
        image.save(folder / f"content-{n:03d}.png")
    return folder


def build_config(request: TrainRequest, name: str, owner: str | None = None,
                 content_folder: Path | None = None) -> StyleTrainConfig:
    """The ``StyleTrainConfig`` for ``request``, writing the model as ``<models dir>/<name>``; ``owner``: who
    asks (public mode: another visitor's model cannot be fine-tuned); ``content_folder``: the request's uploaded
    content photos, saved (:func:`save_uploaded_content`)."""
    preset = preset_values(request.preset)
    init = (request.init_model or "").strip() or None
    visitor_models.check_access(init, owner)
    if preset.fine_tune and init is None:
        init = root_base_model()
    if preset.fine_tune and init is None:
        raise ValueError("The fine-tune preset starts from an existing style model: choose one (or use the starter preset).")
    _check_public_request(request)
    values: dict[str, Any] = {name: kind(getattr(request, name)) if kind in (int, float) else getattr(request, name)
                              for name, kind in _shared_fields().items()}
    values.update({key: _optional_weight(getattr(request, key), label) for key, label in _OPTIONAL_WEIGHTS.items()})
    return StyleTrainConfig(
        **values,
        out=name,
        content=str(content_folder) if content_folder is not None else
        ((request.content_source or "").strip() or default_training_content()),
        style_name=(request.style_name or "").strip() or None,
        init=init if preset.fine_tune else None,
        checkpoint_every=max(50, int(request.iterations) // 4),
        log_every=1,
        preview_size=192,
        preview_image=str(samples.example_photos()[0]),  # a photo not trained on: the preview shows generalisation
    )


# ------------------------------------------------------------------------------------------ the job


def _losses_text(losses: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in losses.items() if v)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _figure(folder: Path) -> Image.Image | None:
    """The model's own loss figure (``loss_curve.png``, drawn once by the trainer at the end)."""
    path = folder / LOSS_CURVE_FILE
    if not path.is_file():
        return None
    with Image.open(path) as image:
        return image.convert("RGB")


def _curve_rows(losses: dict[str, float], step: int) -> list[dict[str, Any]]:
    """Long-format rows (step, term, log10 loss) of one step for the tab's live line plot; the terms differ by
    orders of magnitude, so they are compared on a log scale."""
    return [{"step": step, "term": term, "log10 loss": math.log10(value)}
            for term, value in losses.items() if value and value > 0]


@dataclass
class _JobProgress:
    """What a running job has seen of the trainer's events so far."""

    curve: list[dict[str, Any]] = field(default_factory=list)  # grows by each step's rows; never rebuilt
    preview: Image.Image | None = None
    last_event: Any = None  # the trainer's latest ``TrainEvent``
    timed_out: bool = False  # stopped by public mode's time limit, not by the visitor

    def add(self, batch: list[Any]) -> None:
        for event in batch:
            if event.losses and not event.done and not event.cancelled:
                self.curve += _curve_rows(event.losses, event.step)
            if event.preview is not None:
                self.preview = event.preview
        self.last_event = batch[-1]


def _job_head(config: StyleTrainConfig, name: str, identity: str, warning: Any, closest: bool = False) -> str:
    """The status's first line, repeated on every update: what is trained, how, against which loss network."""
    start = f", fine-tuning `{config.init}`" + (" (the shipped style closest to yours)" if closest else "")
    return (f"Training **{config.name}** as `local:{name}`: {config.iterations} steps at {config.image_size} px, "
            f"batch {config.batch_size}" + (start if config.init else "") +
            f". Loss network `{identity}`." + (" ⚠️ Random-weight loss network: the style is learnt from "
                                               "random features." if warning else ""))


def _step_status(head: str, latest: Any) -> str:
    per_step = latest.elapsed_s / latest.step if latest.step else None
    eta = f", about {_duration(per_step * (latest.total - latest.step))} left" if per_step else ""
    rate = f" · {per_step:.2f} s/step" if per_step else ""
    return (f"{head}  \nStep {latest.step}/{latest.total}{rate}{eta}.  \n"
            f"Losses: {_losses_text(latest.losses) or '…'}")


def _training_steps(config: StyleTrainConfig, style: Image.Image, name: str, stop: threading.Event, head: str,
                    seen: _JobProgress, abandoned: Callable[[], bool]) -> Generator[TrainUpdate, None, Finished | None]:
    """Run the trainer in a worker thread, yielding an update per batch of its events; returns its ``Finished``
    (``None`` if it ended without one). The trainer checks at every step whether to stop: cancelled, timed out,
    or ``abandoned`` (its visitor left: the web server then stops asking this generator for updates, so only the
    worker thread itself can notice)."""
    def should_stop() -> bool:
        if not stop.is_set() and abandoned():
            stop.set()
        return stop.is_set()

    def run(report, flag) -> Path:
        return train_style(config, progress=report, should_stop=should_stop, style_image=style)

    def time_is_up() -> None:
        seen.timed_out = True
        stop.set()

    # In a shared app no request holds a core for longer than the limit; the model so far is kept.
    timer = threading.Timer(settings.public_max_train_seconds(), time_is_up) if settings.public_mode() else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        for batch in run_in_background(run, stop, name=f"train-{name}"):
            if isinstance(batch, Finished):
                return batch
            seen.add(batch)
            latest = seen.last_event
            yield TrainUpdate(latest.step, latest.total, _step_status(head, latest), dict(latest.losses),
                              seen.preview, None, curve=list(seen.curve))
    finally:
        if timer is not None:
            timer.cancel()
    return None


def _final_update(config: StyleTrainConfig, finished: Finished | None, seen: _JobProgress, stop: threading.Event,
                  identity: str, started: float) -> TrainUpdate:
    """The last update: the new model's id, card and loss figure (raises the trainer's error if it failed)."""
    if finished is None or finished.error is not None:
        raise finished.error if finished is not None else RuntimeError("the training job ended without a result")
    folder = Path(finished.result)
    final = seen.last_event
    steps = final.step if final is not None else 0
    cancelled = bool(stop.is_set() and steps < config.iterations)
    model_id = f"local:{folder.name}"
    card_path = folder / CARD_FILE
    card = card_path.read_text(encoding="utf-8") if card_path.is_file() else None
    if cancelled and seen.timed_out:
        status = (f"Stopped at step {steps} of {config.iterations}: this shared app gives one training "
                  f"{_duration(settings.public_max_train_seconds())}. The model so far is saved as `{model_id}` "
                  f"and is in the Stylize gallery.")
    elif cancelled:
        status = (f"Cancelled at step {steps} of {config.iterations}; the model so far is saved as `{model_id}` "
                  f"and is in the Stylize gallery.")
    else:
        status = (f"Done: `{model_id}` ({steps} steps in {_duration(time.perf_counter() - started)}). "
                  f"It is now in the Stylize gallery; publish it to the Hub below.")
    if final is not None and final.losses:
        status += f"  \nFinal losses: {_losses_text(final.losses)}. Loss network `{identity}`."
    preview_final = final.preview if final is not None and final.preview is not None else seen.preview
    return TrainUpdate(steps, config.iterations, status, dict(final.losses) if final else {}, preview_final,
                       _figure(folder), done=True, cancelled=cancelled, model_id=model_id, card=card,
                       curve=list(seen.curve))


def _run_job(request: TrainRequest, stop: threading.Event, style: Image.Image, owner: str | None,
             abandoned: Callable[[], bool]) -> Iterator[TrainUpdate]:
    """The job itself, once it holds the training slot; ``style`` is the decoded style image."""
    name = unique_model_name(request.style_name or Path(request.style).stem)
    _check_public_request(request)  # before any upload is decoded
    with tempfile.TemporaryDirectory(prefix="content-", dir=_scratch_dir()) as scratch:
        content = save_uploaded_content(request.content_images, Path(scratch)) if request.content_images else None
        yield from _train_named(request, name, stop, style, owner, content, abandoned)


def _scratch_dir() -> Path:
    folder = settings.data_dir() / "scratch"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _train_named(request: TrainRequest, name: str, stop: threading.Event, style: Image.Image, owner: str | None,
                 content: Path | None, abandoned: Callable[[], bool]) -> Iterator[TrainUpdate]:
    started = time.perf_counter()
    closest = preset_values(request.preset).fine_tune and not (request.init_model or "").strip()
    if closest:  # the shipped styles' Gram matrices are computed once per app: a few seconds the first time
        yield TrainUpdate(0, int(request.iterations), "Choosing the shipped style closest to yours to start from…")
        request = replace(request, init_model=closest_base_model(style))
        if stop.is_set():
            yield TrainUpdate(0, int(request.iterations), "Cancelled before it started.", done=True, cancelled=True)
            return
    config = build_config(request, name, owner, content)
    identity, warning = loss_network_status()
    head = _job_head(config, name, identity, warning, closest=closest and config.init is not None)
    yield TrainUpdate(0, config.iterations, head + "  \nPreparing (loss network, style targets, content images)…")
    seen = _JobProgress()
    try:
        finished = yield from _training_steps(config, style, name, stop, head, seen, abandoned)
        last = _final_update(config, finished, seen, stop, identity, started)
    finally:
        # Public mode: the model is its owner's (also when the visitor left or it failed), its run folder goes,
        # the quotas hold.
        visitor_models.after_training(name, owner)
    yield last


def train_style_job(request: TrainRequest, job_id: str | None = None, owner: str | None = None,
                    abandoned: Callable[[], bool] = lambda: False) -> Iterator[TrainUpdate]:
    """Train a style model for ``request``, yielding progress; the last update names the new model, which in
    public mode belongs to ``owner`` (``visitor_models.owner_key``). ``abandoned``: whether the visitor has
    left (the training then stops at its next step and keeps its model, as Cancel does).

    Raises ``ValueError`` with a user message for bad inputs and when another job holds the training slot.
    """
    stop = JOBS.stop_flag(job_id)
    if stop.is_set():
        yield TrainUpdate(0, int(request.iterations), "Cancelled before it started.", done=True, cancelled=True)
        return
    style = load_image(request.style)  # a bad upload fails here with the image reader's message; decoded once
    if not JOBS.slot.acquire(blocking=False):
        raise ValueError("Another training job is running in this app; only one runs at a time. Try again when it finishes.")
    try:
        yield from _run_job(request, stop, style, owner, abandoned)
    finally:
        JOBS.slot.release()
        JOBS.forget(job_id)


def run_training(request: TrainRequest, job_id: str | None = None, owner: str | None = None) -> TrainUpdate:
    """Run :func:`train_style_job` to the end and return its last update (scripts, tests, the CLI)."""
    last = None
    for last in train_style_job(request, job_id, owner):
        pass
    assert last is not None
    return last


def with_preset(request: TrainRequest) -> TrainRequest:
    """``request`` with the numeric options of its preset (what choosing the preset in the UI fills in)."""
    preset = preset_values(request.preset)
    return replace(request, preset=_preset_key(request.preset), iterations=preset.iterations,
                   image_size=preset.image_size, batch_size=preset.batch_size, learning_rate=preset.learning_rate,
                   width=preset.width, preview_every=preset.preview_every)


# ------------------------------------------------------------------------------------------ publishing


def publish_model(model_id: str | None, repo_id: str | None, token: str | None = None, private: bool = False,
                  owner: str | None = None) -> str:
    """Upload a local model folder to the Hub as ``repo_id``; returns Markdown with the link (never the token).
    In public mode only a visitor model's ``owner`` may publish it, and a published one outlives the expiry."""
    if not model_id:
        raise ValueError("Choose a local model to publish (train one first).")
    visitor_models.check_access(str(model_id), owner)
    repo_id = (repo_id or "").strip()
    if not repo_id or "/" not in repo_id:
        raise ValueError("Enter the Hub repo id to publish to, as owner/name.")
    entry, _ = describe(str(model_id))
    if entry.source != "local" or entry.path is None:
        raise ValueError(f"{model_id} is not a local model; only local models can be published from here.")
    result = publish(entry.path, repo_id, token=(token or "").strip() or None, private=True if private else None)
    visitor_models.mark_published(Path(entry.path).name)
    visibility = "private" if result.private else "the owner's default visibility"
    return f"Published `{model_id}` to [{result.repo_id}]({result.url}) ({visibility}); commit `{result.commit or '?'}`."
