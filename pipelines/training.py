"""``train_style``: a new style model from one style image in one call, returned as a ready pipeline::

    from perceptual_studio import train_style
    pipe = train_style("my_style.jpg", iterations=400)      # the bundled training photos, the default recipe
    pipe("photo.jpg").save("stylized.png")

Any option of ``python -m train.style`` (``train.config.StyleTrainConfig``) is a keyword argument. The trainer
is imported only when this runs, so importing the other pipelines never loads it.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from perceptual_studio import settings

from .style import StylePipeline

_content_lock = threading.Lock()


def default_content_dir() -> Path:
    return settings.data_dir() / "content" / "gallery-photos"


def default_training_content() -> str:
    """``PERCEPTUAL_TRAIN_CONTENT`` (a folder or a Hub dataset id) if set, else the shipped gallery's content
    (random crops of licensed colour-rich photos, ``train/gallery.toml``), written on first use."""
    configured = settings.train_content()
    return configured if configured else str(ensure_default_content())


def ensure_default_content() -> Path:
    """The shipped gallery's training content (random crops of licensed photos with a SOURCES.md), written on
    first use; returns its folder. A fine-tune thus sees the kind of pictures its starting model was trained on."""
    from perceptual_studio.train.gallery import build_content, read_manifest

    with _content_lock:
        # scikit-learn (its two photos) is an optional extra: without it the set has five photos' crops.
        return build_content(read_manifest().content, default_content_dir(), skip_missing=True)


def train_style(style: str | Path, *, content: str | Path | None = None, name: str | None = None,
                progress: Callable[[Any], None] | None = None, should_stop: Callable[[], bool] | None = None,
                device: str | None = "auto", **options: Any) -> StylePipeline:
    """Train a style network on ``style`` (an image file) and return its pipeline; the model folder is
    ``pipe.model.folder`` (``name`` in the local models folder: its id is ``local:<name>``).

    ``device``: where it trains and runs ("auto": ``PERCEPTUAL_DEVICE``, else CUDA when there is one).
    ``content``: a folder of photos or a Hub dataset id (default :func:`default_training_content`).
    ``progress`` receives each ``train.loop.TrainEvent``; ``should_stop`` returning True ends training early and
    still writes the model. ``options``: ``iterations``, ``image_size``, ``style_weight``, ``init`` (fine-tune
    from a model) ... as ``python -m train.style --help`` lists them.
    """
    from perceptual_studio.train.config import StyleTrainConfig
    from perceptual_studio.train.style import train_style as run

    train_on = None if device is None or str(device) == "auto" else str(device)
    config = StyleTrainConfig(style=str(style), content=str(content) if content else default_training_content(),
                              out=name or Path(style).stem, device=train_on, **options)
    folder = run(config, progress, should_stop)
    return StylePipeline.from_pretrained(Path(folder), device=device, network="paper")
