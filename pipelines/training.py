"""``train_style``: a new style model from one style image in one call, returned as a ready pipeline::

    from perceptual_studio import train_style
    pipe = train_style("my_style.jpg")   # about a minute on a CPU: the Train tab's quick fine-tune
    pipe("photo.jpg").save("stylized.png")

The recipes are the Train tab's presets (:data:`RECIPES`); any option of ``python -m train.style``
(``train.config.StyleTrainConfig``) is a keyword argument and overrides the recipe. The trainer is imported
only when this runs, so importing the other pipelines never loads it.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from perceptual_studio import settings
from perceptual_studio.registry import RegistryError, describe

from .style import StylePipeline

_content_lock = threading.Lock()


@dataclass(frozen=True)
class Recipe:
    """A training schedule a user picks by name (the Train tab's presets)."""

    label: str
    iterations: int
    image_size: int
    batch_size: int
    learning_rate: float
    width: float
    preview_every: int
    fine_tune: bool = False  # start from a trained style model (closest_base_model's unless ``init`` says)

    def options(self) -> dict[str, Any]:
        """The ``StyleTrainConfig`` fields this recipe sets (a fine-tune keeps its base model's width)."""
        values = dict(iterations=self.iterations, image_size=self.image_size, batch_size=self.batch_size,
                      learning_rate=self.learning_rate, preview_every=self.preview_every)
        return values if self.fine_tune else {**values, "width": self.width}


RECIPES: dict[str, Recipe] = {
    "quick_finetune": Recipe("Quick fine-tune from an existing style model", 120, 128, 2, 1e-3, 1.0, 10, fine_tune=True),
    "starter": Recipe("Quick starter style from scratch (small network)", 120, 128, 2, 2e-3, 0.5, 10),
    "paper": Recipe("Paper recipe (40k iterations, 256 px, batch 4: hours on a GPU)", 40_000, 256, 4, 1e-3, 1.0, 500),
}
# A fine-tune from a shipped model reaches a recognisable new style in about a minute on two CPU cores, with a
# full-width network (benchmarks/finetune_minute.py measures it beside the half-width starter from scratch).
DEFAULT_RECIPE = "quick_finetune"
# The gallery's root model (train/shipped/gallery.toml: every other shipped style was fine-tuned from it): where a
# fine-tune starts when no shipped style can be compared with the new one.
DEFAULT_BASE_MODEL = "builtin:stained-glass"


def closest_base_model(style: Image.Image | str | Path | None) -> str | None:
    """Where a fine-tune on ``style`` starts: the shipped paper-size style whose style image is closest to it
    (:mod:`pipelines.closest_style`; ``benchmarks.finetune_minute`` measures what it gains), else
    :data:`DEFAULT_BASE_MODEL` if this registry has it, else None."""
    from .closest_style import closest_style

    match = closest_style(style) if style is not None else None
    return match.model_id if match is not None else root_base_model()


def root_base_model() -> str | None:
    """:data:`DEFAULT_BASE_MODEL` if this registry has it, else None."""
    try:
        describe(DEFAULT_BASE_MODEL)
    except RegistryError:
        return None
    return DEFAULT_BASE_MODEL


def default_content_dir() -> Path:
    return settings.data_dir() / "content" / "gallery-photos"


def default_training_content() -> str:
    """``PERCEPTUAL_TRAIN_CONTENT`` (a folder or a Hub dataset id) if set, else the shipped gallery's content
    (random crops of licensed colour-rich photos, ``train/shipped/gallery.toml``), written on first use."""
    configured = settings.train_content()
    return configured if configured else str(ensure_default_content())


def ensure_default_content() -> Path:
    """The shipped gallery's training content (random crops of licensed photos with a SOURCES.md), written on
    first use; returns its folder. A fine-tune thus sees the kind of pictures its starting model was trained on."""
    from perceptual_studio.train.shipped.gallery import build_content, read_manifest

    with _content_lock:
        # scikit-learn (its two photos) is an optional extra: without it the set has five photos' crops.
        return build_content(read_manifest().content, default_content_dir(), skip_missing=True)


def train_style(style: str | Path, *, content: str | Path | None = None, name: str | None = None,
                recipe: str = DEFAULT_RECIPE, progress: Callable[[Any], None] | None = None,
                should_stop: Callable[[], bool] | None = None, device: str | None = "auto",
                **options: Any) -> StylePipeline:
    """Train a style network on ``style`` (an image file) and return its pipeline; the model folder is
    ``pipe.model.folder`` (``name`` in the local models folder: its id is ``local:<name>``).

    ``recipe``: one of :data:`RECIPES` (default: the quick fine-tune from the shipped style closest to ``style``,
    :func:`closest_base_model`; "paper" is
    the paper's 40k iterations). ``device``: where it trains and runs ("auto": ``PERCEPTUAL_DEVICE``, else CUDA when there is one).
    ``content``: a folder of photos or a Hub dataset id (default :func:`default_training_content`).
    ``progress`` receives each ``train.loop.TrainEvent``; ``should_stop`` returning True ends training early and
    still writes the model. ``options``: ``iterations``, ``image_size``, ``style_weight``, ``init`` (fine-tune
    from a model) ... as ``python -m train.style --help`` lists them.
    """
    from perceptual_studio.train.config import StyleTrainConfig
    from perceptual_studio.train.style import train_style as run

    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    chosen = RECIPES[recipe]
    start = {}
    if chosen.fine_tune and "init" not in options:
        start = {"init": closest_base_model(style)}
        if start["init"] is None:
            raise ValueError(f"the {recipe!r} recipe fine-tunes a shipped style model and none is installed: pass "
                             "init= a style model, or use recipe='starter'")
    values = {**chosen.options(), **start, **options}
    train_on = None if device is None or str(device) == "auto" else str(device)
    config = StyleTrainConfig(style=str(style), content=str(content) if content else default_training_content(),
                              out=name or Path(style).stem, device=train_on, **values)
    folder = run(config, progress, should_stop)
    return StylePipeline.from_pretrained(Path(folder), device=device, network="paper")
