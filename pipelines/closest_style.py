"""Which shipped style is closest to a new style image: where the Train tab's fine-tune starts when the user
picks no model. A network already painting with a similar palette and strokes has less to unlearn, so its style
loss on the new image starts lower and falls to a recognisable result sooner (``benchmarks.finetune_minute``
measures it against the gallery's root model).

Closeness is the paper's own style measure: the Gram matrices of the loss network's style layers (Sec. 3.1),
compared layer by layer relative to the new image's own, so that no layer's scale dominates.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from perceptual_studio.imaging.io import ImageInputError, image_to_tensor, load_image, resize_to_max_side
from perceptual_studio.losses.functional import gram_matrix
from perceptual_studio.networks.vgg import STYLE_LAYERS, LossNetwork, default_vgg16_weights
from perceptual_studio.registry import list_models
from perceptual_studio.registry.schema import STYLE_IMAGE_FILE

logger = logging.getLogger(__name__)

SIGNATURE_SIDE = 256  # the Train tab's style size; Gram matrices are per-pixel averages, so sizes need not match
_signatures: dict[tuple[str, str, str], list[torch.Tensor]] = {}  # (style image, mtime, loss network) -> Grams
_networks: dict[str, LossNetwork] = {}  # by the loss network's identity
_lock = threading.Lock()  # one job at a time computes (and caches) signatures


@dataclass(frozen=True)
class StyleMatch:
    """The closest model and every candidate's distance (lower is closer), closest first."""

    model_id: str
    distance: float
    ranking: tuple[tuple[str, float], ...]


def style_signature(image: Image.Image, network: LossNetwork) -> list[torch.Tensor]:
    """The Gram matrix of each style layer for ``image`` at :data:`SIGNATURE_SIDE` px."""
    with torch.no_grad():
        taps = network(image_to_tensor(resize_to_max_side(image, SIGNATURE_SIDE)))
    return [gram_matrix(taps[layer])[0] for layer in STYLE_LAYERS]


def signature_distance(new: list[torch.Tensor], shipped: list[torch.Tensor]) -> float:
    """Mean over the style layers of ||G_new - G||_F^2 / ||G_new||_F^2."""
    return float(sum(((a - b).pow(2).sum() / a.pow(2).sum().clamp_min(1e-12)).item() for a, b in zip(new, shipped))
                 / len(new))


def starting_points() -> dict[str, Path]:
    """The shipped paper-size style models a fine-tune can start from, with their style images: not the fast or
    stable variants (the Train tab's fine-tune trains a full-width network)."""
    return {entry.id: entry.path / STYLE_IMAGE_FILE for entry in list_models("style-transfer", "builtin")
            if entry.error is None and entry.variant_of is None and entry.path is not None
            and (entry.path / STYLE_IMAGE_FILE).is_file()}


def _cached_signature(file: Path, network: LossNetwork) -> list[torch.Tensor] | None:
    """The signature of a shipped style image, computed once; None (and a warning) if it cannot be read."""
    try:
        key = (str(file), str(file.stat().st_mtime_ns), network.identity)
        if key not in _signatures:
            _signatures[key] = style_signature(load_image(file), network)
    except (ImageInputError, OSError) as exc:
        logger.warning("the style image %s cannot be compared (%s): left out of the closest-style choice",
                       file.parent.name, exc)
        return None
    return _signatures[key]


def _loss_network() -> LossNetwork:
    weights = default_vgg16_weights()
    if weights.identity not in _networks:
        _networks[weights.identity] = LossNetwork(STYLE_LAYERS, weights)
    return _networks[weights.identity]


def closest_style(style: Image.Image | str | Path, candidates: dict[str, Path] | None = None,
                  network: LossNetwork | None = None) -> StyleMatch | None:
    """The candidate (model id -> its style image; default :func:`starting_points`) whose style image is closest
    to ``style``'s; None when there is no candidate (or none can be read)."""
    candidates = starting_points() if candidates is None else candidates
    if not candidates:
        return None
    image = style if isinstance(style, Image.Image) else load_image(style)
    with _lock:
        network = network or _loss_network()
        new = style_signature(image.convert("RGB"), network)
        shipped = {model_id: _cached_signature(file, network) for model_id, file in candidates.items()}
    ranking = sorted(((model_id, signature_distance(new, signature)) for model_id, signature in shipped.items()
                      if signature is not None), key=lambda pair: pair[1])
    return StyleMatch(ranking[0][0], ranking[0][1], tuple(ranking)) if ranking else None
