"""Invariance analysis (Zeiler & Fergus, ECCV 2014, Sec. 5 and Fig. 5) for the loss network's taps.

An image is translated (vertically, as in the paper), scaled about its centre or rotated over a range; for
each loss layer we measure the Euclidean distance between the feature vectors of the original and of the
transformed image. As in the paper the whole feature vector is compared (the image keeps its size:
uncovered areas are filled by reflection). Deviation: distances are divided by the norm of the original
feature vector, so layers (and the pixel curve drawn alongside) share one axis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from perceptual_studio.imaging.figures import line_plot
from perceptual_studio.networks.vgg import LossNetwork

from .top9 import report

Transform = Literal["translate", "scale", "rotate"]
TRANSFORMS: tuple[str, ...] = ("translate", "scale", "rotate")
INVARIANCE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
PIXELS = "pixels"
# The feature reconstruction taps Johnson et al. use (paper: relu2_2; their code: relu3_3).
CONTENT_TAPS: tuple[str, ...] = ("relu2_2", "relu3_3")
_BATCH = 8
_IDENTITY = {"translate": 0.0, "scale": 1.0, "rotate": 0.0}
_AXIS_LABEL = {
    "translate": "vertical translation (pixels)",
    "scale": "scale (ratio)",
    "rotate": "rotation (degrees)",
}


@dataclass
class InvarianceResult:
    transform: str
    values: list[float]  # the transform amounts, e.g. shifts in pixels
    distances: dict[str, list[float]]  # layer (and "pixels") -> ||f(T x) - f(x)|| / ||f(x)|| per value
    image_size: tuple[int, int]  # (height, width) of the analysed image
    plot: Image.Image = field(repr=False)
    summary: str = ""  # sentences worked out from the numbers


def check_transform(kind: str) -> None:
    if kind not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {kind!r}")


def default_values(kind: str, size: int) -> list[float]:
    """The paper-like sweep for an image whose longer side is ``size`` pixels."""
    check_transform(kind)
    if kind == "translate":
        step = max(size // 32, 1)
        return [float(v) for v in range(-8 * step, 8 * step + 1, step)]
    if kind == "scale":
        return [round(0.6 + 0.1 * i, 2) for i in range(11)]
    return [float(v) for v in range(0, 361, 15)]


def transform_images(image: torch.Tensor, kind: str, values: Sequence[float]) -> torch.Tensor:
    """(N, C, H, W): ``image`` (1, C, H, W) transformed by each value, size kept, reflection fill.

    translate: shift down by v pixels; scale: zoom by v about the centre; rotate: v degrees anticlockwise.
    """
    check_transform(kind)
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"expected one image of shape (1, C, H, W), got {tuple(image.shape)}")
    _, channels, height, width = image.shape
    thetas = []
    for v in values:
        # theta maps output to input coordinates, both normalised to [-1, 1] per axis.
        if kind == "translate":
            theta = [[1.0, 0.0, 0.0], [0.0, 1.0, -2.0 * v / height]]
        elif kind == "scale":
            if v <= 0:
                raise ValueError(f"scale factors must be positive, got {v}")
            theta = [[1.0 / v, 0.0, 0.0], [0.0, 1.0 / v, 0.0]]
        else:
            c, s = math.cos(math.radians(v)), math.sin(math.radians(v))
            # A pixel-space rotation expressed in per-axis normalised coordinates (keeps non-square images undistorted).
            theta = [[c, -s * height / width, 0.0], [s * width / height, c, 0.0]]
        thetas.append(theta)
    theta = torch.tensor(thetas, dtype=image.dtype, device=image.device)
    grid = F.affine_grid(theta, [len(thetas), channels, height, width], align_corners=False)
    return F.grid_sample(image.expand(len(thetas), -1, -1, -1), grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@torch.no_grad()
def invariance_curves(
    net: LossNetwork,
    image: torch.Tensor,
    kind: str,
    values: Sequence[float] | None = None,
    *,
    layers: Sequence[str] = INVARIANCE_LAYERS,
    progress: Callable[..., object] | None = None,
) -> InvarianceResult:
    """Relative feature distances per layer (and for pixels) of ``image`` (1, 3, H, W) in [0, 1] under ``kind``."""
    check_transform(kind)
    missing = [name for name in layers if name not in net.layers]
    if missing:
        raise ValueError(f"the loss network does not tap {missing}; build it with these layers")
    values = list(default_values(kind, max(image.shape[-2:])) if values is None else values)
    device = next(net.parameters()).device
    image = image.to(device=device, dtype=torch.float32)
    reference = net(image)
    distances: dict[str, list[float]] = {name: [] for name in layers}
    distances[PIXELS] = []

    def relative(a: torch.Tensor, b: torch.Tensor) -> list[float]:
        norm = float(b.norm())
        if norm == 0:  # a dead layer for this image: no scale to compare against
            return [math.nan] * a.shape[0]
        return ((a - b).flatten(1).norm(dim=1) / norm).tolist()

    for start in range(0, len(values), _BATCH):
        report(progress, 0.05 + 0.85 * start / len(values), f"{kind}: features of the transformed images")
        chunk = values[start : start + _BATCH]
        moved = transform_images(image, kind, chunk)
        taps = net(moved)
        for name in layers:
            distances[name] += relative(taps[name], reference[name])
        distances[PIXELS] += relative(moved, image)

    report(progress, 0.95, "plotting")
    plot = line_plot(
        values,
        distances,
        title=f"Feature change under {kind} ({net.identity})",
        xlabel=_AXIS_LABEL[kind],
        ylabel="||f(Tx) - f(x)|| / ||f(x)||",
        dashed=(PIXELS,),
    )
    result = InvarianceResult(kind, values, distances, tuple(image.shape[-2:]), plot)
    result.summary = summarise(result)
    report(progress, 1.0, "done")
    return result


def _describe(kind: str, offset: float) -> str:
    """Words for a transform ``offset`` away from the identity."""
    if kind == "translate":
        return f"a {offset:g}-pixel shift"
    if kind == "scale":
        return f"a {offset:.0%} scale change"
    return f"a {offset:g} degree rotation"


def _mean(numbers: Sequence[float]) -> float:
    finite = [n for n in numbers if math.isfinite(n)]
    return sum(finite) / len(finite) if finite else math.nan


def summarise(result: InvarianceResult) -> str:
    """What the numbers show, in words: small-misalignment tolerance of the content taps vs pixels, and depth."""
    kind, values, distances = result.transform, result.values, result.distances
    identity = _IDENTITY[kind]

    def offset(v: float) -> float:
        return min(abs(v - identity) % 360, 360 - abs(v - identity) % 360) if kind == "rotate" else abs(v - identity)

    offsets = [offset(v) for v in values]
    nonzero = [o for o in offsets if o > 1e-9]
    if not nonzero:
        return "Only the identity transform was evaluated, so there is nothing to compare."
    smallest = min(nonzero)
    small = [i for i, o in enumerate(offsets) if abs(o - smallest) < 1e-9]
    moved = [i for i, o in enumerate(offsets) if o > 1e-9]
    sentences = [_small_misalignment(kind, smallest, small, distances), _depth_trend(kind, moved, distances)]
    return " ".join(sentence for sentence in sentences if sentence)


def _small_misalignment(kind: str, smallest: float, small: list[int], distances: dict[str, list[float]]) -> str | None:
    """The content taps against the pixels at the smallest transform: does the feature loss tolerate it?"""
    pixel = _mean([distances[PIXELS][i] for i in small])
    content = [name for name in CONTENT_TAPS if name in distances]
    if not content or not math.isfinite(pixel):
        return None
    feats = {name: _mean([distances[name][i] for i in small]) for name in content}
    listed = " and ".join(f"{name} by {value:.0%}" for name, value in feats.items())
    calmer = [name for name, value in feats.items() if value < pixel]
    head = f"At {_describe(kind, smallest)}, the features move ({listed} of their norm) against {pixel:.0%} for the pixels"
    if len(calmer) == len(feats):
        return (f"{head}: for this loss network the feature reconstruction loss tolerates a small misalignment "
                "that a per-pixel loss punishes.")
    if not calmer:
        return (f"{head}: for this loss network the feature reconstruction loss does not tolerate a small "
                "misalignment better than a per-pixel loss does.")
    return (f"{head}: only {', '.join(calmer)} changes less than the pixels, so the feature loss tolerates "
            "small misalignments better than a per-pixel loss only at that tap.")


def _depth_trend(kind: str, moved: list[int], distances: dict[str, list[float]]) -> str | None:
    """How the change averaged over the sweep runs with depth (Zeiler & Fergus: deeper is more invariant)."""
    layers = [name for name in distances if name != PIXELS]
    averages = {name: _mean([distances[name][i] for i in moved]) for name in layers}
    ranked = [name for name in layers if math.isfinite(averages[name])]
    if len(ranked) < 2:
        return None
    falling = all(averages[a] >= averages[b] for a, b in zip(ranked, ranked[1:]))
    rising = all(averages[a] <= averages[b] for a, b in zip(ranked, ranked[1:]))
    first, last = ranked[0], ranked[-1]
    if falling:
        return (f"Averaged over the sweep, the change falls with depth, from {averages[first]:.0%} at {first} to "
                f"{averages[last]:.0%} at {last}: deeper layers are more invariant to {kind}.")
    if rising:
        return (f"Averaged over the sweep, the change grows with depth, from {averages[first]:.0%} at {first} to "
                f"{averages[last]:.0%} at {last}: deeper layers are less invariant to {kind} here.")
    most = min(ranked, key=averages.__getitem__)
    least = max(ranked, key=averages.__getitem__)
    return (f"Averaged over the sweep, {most} changes least ({averages[most]:.0%}) and {least} most "
            f"({averages[least]:.0%}); the change does not simply fall with depth.")
