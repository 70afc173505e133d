"""The Explain journey (Zeiler & Fergus's tools on the loss network, from :mod:`explain`): inputs as Gradio hands them over, (image, markdown) out.

The loss network is built lazily on first use and cached; every text says which one was used, and loudly
when it is the random-weight fallback. ``progress`` is anything called like ``gr.Progress``:
``progress(fraction, desc=...)``.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image

from perceptual_studio import settings
from perceptual_studio.explain.deconvnet import Deconvnet
from perceptual_studio.explain.evolution import evenly, evolution_strip, find_previews
from perceptual_studio.explain.invariance import (
    INVARIANCE_LAYERS,
    PIXELS,
    InvarianceResult,
    check_transform,
    invariance_curves,
)
from perceptual_studio.explain.samples import DEFAULT_SIZE, load_sample, sample_images, square, stack
from perceptual_studio.explain.top9 import DEFAULT_CHANNELS, Top9Result, report, top9
from perceptual_studio.imaging.io import ImageSource, image_to_tensor, load_image
from perceptual_studio.networks.vgg import (
    LAYER_NAMES,
    TAP_NAMES,
    LossNetwork,
    default_vgg16_weights,
    describe_loss_network,
)

Progress = Callable[..., object]

# Layers offered in the UI (any VGG-16 layer name up to pool5 is accepted).
EXPLAIN_LAYERS: tuple[str, ...] = TAP_NAMES
DEFAULT_TOP9_LAYER = "relu3_3"
DEFAULT_INVARIANCE_SAMPLE = "chelsea"
MAX_EXTRA_IMAGES = 12
MAX_EVOLUTION_FRAMES = 8

# The loss networks built for recent layer choices, least recently used first: each holds its own VGG-16
# convolutions (up to ~60 MB), so a visitor trying many layer sets must not grow memory without end.
_NETWORKS: OrderedDict[tuple[str, tuple[str, ...]], LossNetwork] = OrderedDict()
_NETWORKS_KEPT = 3
_NETWORKS_LOCK = threading.Lock()
# Deconvnet hooks sit on shared modules, so runs on the cached networks take turns.
_RUN_LOCK = threading.Lock()


def loss_network(layers: Sequence[str]) -> LossNetwork:
    """The process-wide loss network (``default_vgg16_weights``) tapping ``layers``, built once, on the app's device."""
    weights = default_vgg16_weights()
    key = (weights.identity, tuple(layers))
    with _NETWORKS_LOCK:
        if key not in _NETWORKS:
            _NETWORKS[key] = LossNetwork(tuple(layers), weights).to(settings.device())
            while len(_NETWORKS) > _NETWORKS_KEPT:
                _NETWORKS.popitem(last=False)
        _NETWORKS.move_to_end(key)
        return _NETWORKS[key]


def network_note(net: LossNetwork) -> str:
    """Markdown naming the loss network; a warning when its weights are random."""
    note = f"Loss network: `{net.identity}` (weights from {net.weights_source}): {describe_loss_network(net.identity)}"
    if not net.is_pretrained:
        note += (
            f"\n\n**Warning: these features come from a RANDOM-weight VGG-16 (`{net.identity}`)**, because no "
            "pretrained VGG-16 weights could be loaded. They show what random filters respond to, not the "
            "ImageNet features Zeiler & Fergus visualise."
        )
    return note


def parse_channels(channels: Sequence[int | float | str] | str | None) -> list[int] | None:
    """Feature-map numbers from a list or a text such as ``"3, 17 42"``; None or empty means "choose"."""
    if channels is None:
        return None
    items = channels.replace(",", " ").split() if isinstance(channels, str) else list(channels)
    if not items:
        return None
    parsed = []
    for item in items:
        try:
            number = float(item)
        except (TypeError, ValueError):
            raise ValueError(f"feature map numbers must be whole numbers, got {item!r}") from None
        if not math.isfinite(number) or number != int(number):
            raise ValueError(f"feature map numbers must be whole numbers, got {item!r}")
        parsed.append(int(number))
    return list(dict.fromkeys(parsed))


def _check_map_count(count: int) -> None:
    """In public mode, a bound on the maps one request projects (each is a pass down to the pixels)."""
    limit = settings.public_max_feature_maps()
    if settings.public_mode() and count > limit:
        raise ValueError(f"{count} feature maps is more than this shared app projects at once (at most {limit}).")


def _as_image(item: Any) -> ImageSource:
    # gr.Gallery hands over (image, caption) pairs; gr.File hands over objects with a .name path.
    if isinstance(item, (tuple, list)) and item:
        item = item[0]
    if hasattr(item, "name") and not hasattr(item, "read") and not isinstance(item, Image.Image):
        item = item.name
    return item


def _top9_text(result: Top9Result, net: LossNetwork, n_samples: int, size: int) -> str:
    rf = result.receptive_field
    n_uploads = len(result.image_names) - n_samples
    uploads = f" + {n_uploads} upload{'s' * (n_uploads != 1)}" if n_uploads else ""
    lines = [
        f"**Top-9 activations at {result.layer}** (Zeiler & Fergus 2014, Fig. 2) over {len(result.image_names)} "
        f"images ({n_samples} bundled samples{uploads}), each centre-cropped to {size}x{size} px.",
        "",
        f"Receptive field of {result.layer}: {rf.size}x{rf.size} px, stride {rf.stride} px. Left: the deconvnet "
        "projection of each activation into the (normalised) input space, grey = 0; right: the image patch "
        "its receptive field covers (grey outside the image).",
        "",
        "| map | strongest | images (count) |",
        "|---|---|---|",
    ]
    for channel in result.channels:
        found = result.activations[channel]
        if not found:
            lines.append(f"| {channel} | never active on these images | |")
            continue
        counts: dict[str, int] = {}
        for a in found:
            counts[result.image_names[a.image_index]] = counts.get(result.image_names[a.image_index], 0) + 1
        sources = ", ".join(f"{name} ({n})" for name, n in counts.items())
        lines.append(f"| {channel} | {found[0].value:.3g} | {sources} |")
    return "\n".join(lines) + "\n\n" + network_note(net)


def explain_top9(
    layer: str = DEFAULT_TOP9_LAYER,
    channels: Sequence[int] | str | None = None,
    extra_images: Sequence[Any] | None = None,
    progress: Progress | None = None,
    *,
    size: int = DEFAULT_SIZE,
    n_channels: int = DEFAULT_CHANNELS,
) -> tuple[Image.Image, str]:
    """The top-9 grid for ``layer`` over the bundled samples plus ``extra_images``, and its description.

    ``channels``: feature-map numbers (list or text); None/empty picks the ``n_channels`` strongest maps.
    Time grows with the number of maps shown and with depth (every projection is a pass down to pixels).
    """
    if layer not in LAYER_NAMES:
        raise ValueError(f"unknown layer {layer!r}; choose one of {', '.join(EXPLAIN_LAYERS)}")
    wanted = parse_channels(channels)
    _check_map_count(len(wanted) if wanted else int(n_channels))
    extras = [item for item in (extra_images or []) if item is not None]
    if len(extras) > MAX_EXTRA_IMAGES:
        raise ValueError(f"at most {MAX_EXTRA_IMAGES} extra images, got {len(extras)}")
    report(progress, 0.0, "loading images")
    samples = sample_images(size)
    names = [name for name, _ in samples] + [f"upload {i + 1}" for i in range(len(extras))]
    pictures = [image for _, image in samples] + [square(load_image(_as_image(item)), size) for item in extras]
    net = loss_network(("pool5",))
    images = stack(pictures).to(settings.device())
    with _RUN_LOCK, Deconvnet(net) as deconv:
        result = top9(deconv, images, layer, wanted, n_channels=n_channels, image_names=names, progress=progress)
    return result.grid, _top9_text(result, net, len(samples), size)


def _fit(image: Image.Image, size: int) -> Image.Image:
    """Resize so the longer side is ``size`` (up or down), keeping the aspect ratio."""
    scale = size / max(image.size)
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if min(target) < 32:
        raise ValueError(f"the image is too narrow ({image.width}x{image.height}) for VGG-16's five poolings")
    return image if target == image.size else image.resize(target, Image.Resampling.LANCZOS)


def _invariance_text(result: InvarianceResult, net: LossNetwork, source: str) -> str:
    height, width = result.image_size
    unit = {"translate": " px", "scale": "x", "rotate": " deg"}[result.transform]
    picks = sorted(set(evenly(range(len(result.values)), 7)))
    columns = [*INVARIANCE_LAYERS, PIXELS]
    lines = [
        f"**Invariance to {result.transform}** (Zeiler & Fergus 2014, Fig. 5) for {source}, {width}x{height} px. "
        "Each curve is ||f(Tx) - f(x)|| / ||f(x)||: the distance between the feature vectors of the original "
        "and the transformed image, divided by the original's norm so layers share one axis; the dashed curve "
        "is the same for the pixels.",
        "",
        result.summary,
        "",
        "| " + result.transform + " | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for i in picks:
        cells = " | ".join(f"{result.distances[name][i]:.3f}" for name in columns)
        lines.append(f"| {result.values[i]:g}{unit} | {cells} |")
    return "\n".join(lines) + "\n\n" + network_note(net)


def explain_invariance(
    image: ImageSource | None = None,
    transform: str = "translate",
    progress: Progress | None = None,
    *,
    size: int = DEFAULT_SIZE,
) -> tuple[Image.Image, str]:
    """Feature distance vs. transform for the loss taps relu1_2..relu5_3 and pixels: the plot and its reading.

    With no image, the bundled ``chelsea`` sample is used. The image is resized to ``size`` px on its longer side.
    """
    check_transform(transform)
    report(progress, 0.0, "loading the image")
    if image is None:
        picture, source = load_sample(DEFAULT_INVARIANCE_SAMPLE), f"the bundled sample '{DEFAULT_INVARIANCE_SAMPLE}'"
    else:
        picture, source = load_image(_as_image(image)), "your image"
    picture = _fit(picture, size)
    net = loss_network(INVARIANCE_LAYERS)
    with _RUN_LOCK:
        result = invariance_curves(net, image_to_tensor(picture), transform, progress=progress)
    return result.plot, _invariance_text(result, net, source)


def explain_evolution(folder: str | Path, max_frames: int = MAX_EVOLUTION_FRAMES) -> tuple[Image.Image | None, str]:
    """A training run's previews as a strip, at most ``max_frames`` spread over the run, and a caption."""
    previews = find_previews(folder)
    if not previews:
        return None, (
            f"No previews in `{folder}`: a run saves them as `previews/step_000100.png` (or `preview_000100.png`)."
        )
    shown = evenly(previews, max_frames)
    strip = evolution_strip([p.path for p in shown], [f"step {p.step}" for p in shown])
    text = (
        f"The transformation network's output at {len(shown)} of the run's {len(previews)} saved previews "
        f"(steps {shown[0].step} to {shown[-1].step}), like Zeiler & Fergus's Fig. 4 of features evolving "
        "during training."
    )
    return strip, text
