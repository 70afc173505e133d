"""Held-out evaluation of super-resolution (Johnson et al. 2016, Sec. 5): every method on the same
low-resolution inputs, scored against the original.

Each image is centre-cropped to a multiple of the scale (at most ``max_side``), degraded exactly as in
training (``imaging.degrade.degrade``: Gaussian blur, bicubic downsampling, 8-bit), then upscaled by bicubic
and by each network. Scores, all on the luma with ``border`` pixels shaved (``imaging.metrics``):

* PSNR and SSIM (the paper's measures; they favour the blur a per-pixel loss produces);
* the relu2_2 feature distance to the original (the paper's feature loss, lower is closer), when a loss network
  is given;
* the gradient-energy ratio to the original (recovered detail: 1 is the original's, bicubic is far below);
* the cross-hatch measure: grid-locked periodic pattern beyond the original's, in dB;
* the colour shift: mean CIELAB Delta E between copies of the output and the original blurred with a sigma of the
  scale factor (a change of colour, not of detail; bicubic's sets the floor).

With ``histogram_match`` every network also appears as "<name> + histogram match": its output matched to the
low-resolution input (``imaging.histogram``), as the paper displays its results.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch
from PIL import Image
from torch import nn

from perceptual_studio.imaging.degrade import degrade
from perceptual_studio.imaging.io import ImageInputError, image_to_tensor, load_image
from perceptual_studio.imaging.metrics import MIN_GRID_SPACING, colour_shift, cross_hatch_db, gradient_energy_ratio, psnr_y, ssim_y
from perceptual_studio.losses import PerceptualLoss
from perceptual_studio.networks.inference import InferencePlan
from perceptual_studio.pipelines.superres import BICUBIC, upscale_all

logger = logging.getLogger(__name__)

MATCHED_SUFFIX = " + histogram match"


def crop_to_multiple(image: Image.Image, scale: int, max_side: int | None) -> Image.Image:
    """Centre-crop to at most ``max_side`` and to a multiple of ``scale`` (the ground truth is never resized)."""
    width, height = image.size
    w = min(width, max_side or width) // scale * scale
    h = min(height, max_side or height) // scale * scale
    left, top = (width - w) // 2, (height - h) // 2
    return image.crop((left, top, left + w, top + h))


@dataclass(frozen=True)
class SRScores:
    """One method's scores on one image (or their mean over images)."""

    psnr: float
    ssim: float
    gradient_ratio: float
    cross_hatch_db: float
    colour_shift: float
    feature_distance: float | None = None

    @staticmethod
    def mean(scores: Sequence["SRScores"]) -> "SRScores":
        def average(name: str) -> float | None:
            values = [getattr(s, name) for s in scores]
            return None if any(v is None for v in values) else sum(values) / len(values)

        return SRScores(**{f.name: average(f.name) for f in fields(SRScores)})

    def as_dict(self) -> dict[str, float | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SRImageScores:
    image: str
    size: tuple[int, int]  # of the cropped original
    scores: dict[str, SRScores]  # method -> scores, in the evaluation's method order


@dataclass(frozen=True)
class SREvaluation:
    """Per-image and mean scores of every method at one scale."""

    scale: int
    methods: tuple[str, ...]
    images: tuple[SRImageScores, ...]
    border: int
    degradation: str
    loss_network: str | None  # identity of the network behind ``feature_distance``, None when not measured

    def mean(self, method: str) -> SRScores:
        return SRScores.mean([row.scores[method] for row in self.images])

    def as_figures(self, method: str) -> dict[str, float | int]:
        """The numbers a model's config.json records: its mean PSNR/SSIM and bicubic's."""
        model, bicubic = self.mean(method), self.mean(BICUBIC)
        return {"psnr_y": round(model.psnr, 3), "ssim_y": round(model.ssim, 4), "bicubic_psnr_y": round(bicubic.psnr, 3),
                "bicubic_ssim_y": round(bicubic.ssim, 4), "gradient_ratio": round(model.gradient_ratio, 3),
                "colour_shift": round(model.colour_shift, 3), "bicubic_colour_shift": round(bicubic.colour_shift, 3),
                "eval_images": len(self.images)}

    def markdown(self, methods: Sequence[str] | None = None, *, per_image: bool = True) -> str:
        """One row per image and method (then the means): PSNR, SSIM, feature distance, detail, cross-hatch,
        colour shift."""
        methods = list(methods or self.methods)
        feature = self.loss_network is not None
        head = "| image | method | PSNR-Y (dB) | SSIM-Y |" + (" relu2_2 distance |" if feature else "") + \
               " gradient energy / original | cross-hatch (dB) | colour shift (ΔE) |"
        lines = [head, "|---|---|---:|---:|" + ("---:|" if feature else "") + "---:|---:|---:|"]

        def row(label: str, method: str, s: SRScores, bold: bool = False) -> str:
            cells = [f"{s.psnr:.2f}", f"{s.ssim:.4f}"] + ([f"{s.feature_distance:.4g}"] if feature else []) + \
                    [f"{s.gradient_ratio:.3f}", f"{s.cross_hatch_db:+.2f}", f"{s.colour_shift:.2f}"]
            if bold:
                cells = [f"**{c}**" for c in cells]
            return f"| {label} | {method} | " + " | ".join(cells) + " |"

        if per_image:
            for image in self.images:
                lines += [row(image.image, m, image.scores[m]) for m in methods]
        label = f"mean of {len(self.images)}"
        lines += [row(label, m, self.mean(m), bold=True) for m in methods]
        return "\n".join(lines)


def _named_images(images: Iterable[Path | str | tuple[str, Image.Image]]) -> Iterable[tuple[str, Image.Image]]:
    for item in images:
        if isinstance(item, tuple):
            yield item
            continue
        try:
            yield Path(item).name, load_image(item)
        except ImageInputError as exc:
            logger.warning("skipping evaluation image %s: %s", item, exc)


def score(output: Image.Image, original: Image.Image, scale: int, border: int,
          feature_distance: float | None = None) -> SRScores:
    return SRScores(psnr=psnr_y(output, original, border), ssim=ssim_y(output, original, border),
                    gradient_ratio=gradient_energy_ratio(output, original, border),
                    cross_hatch_db=cross_hatch_db(output, original, scale, border),
                    colour_shift=colour_shift(output, original, blur_sigma=scale, border=border),
                    feature_distance=feature_distance)


@torch.no_grad()
def evaluate_sr(models: Mapping[str, nn.Module], images: Iterable[Path | str | tuple[str, Image.Image]], *,
                scale: int, blur_sigma: float = 1.0, border: int | None = None, max_side: int | None = 512,
                device: torch.device | str = "cpu", feature_loss: PerceptualLoss | None = None,
                histogram_match: bool = False) -> SREvaluation | None:
    """Score bicubic and each of ``models`` (name -> network, all x``scale``) on ``images`` (files, or
    (name, image) pairs); None when no image is usable. ``feature_loss``: a feature-loss ``PerceptualLoss``
    (relu2_2) whose content term is the feature distance; it must live on ``device``."""
    border = scale if border is None else border
    methods = [BICUBIC] + list(models) + ([m + MATCHED_SUFFIX for m in models] if histogram_match else [])
    modes = {name: model.training for name, model in models.items()}
    for model in models.values():
        model.eval()
    rows = []
    try:
        for name, picture in _named_images(images):
            original = crop_to_multiple(picture, scale, max_side)
            if min(original.size) < 2 * border + MIN_GRID_SPACING * scale:
                logger.warning("skipping evaluation image %s: %dx%d is too small for x%d", name, *original.size, scale)
                continue
            hr = image_to_tensor(original).to(device)
            lr = degrade(hr, scale, blur_sigma)
            # The pipeline's own step, in float32 and one pass: the scores do not depend on this machine's plan.
            up = upscale_all(lr, models, scale, plan=InferencePlan(torch.device(device), None, channels_last=False),
                             tile=None, histogram_match=histogram_match)
            pictures = {**up.images, **up.unmatched}
            if histogram_match:
                pictures.update({method + MATCHED_SUFFIX: up.images[method] for method in models})
            scores = {}
            for method in methods:
                distance = None
                if feature_loss is not None:
                    output = image_to_tensor(pictures[method]).to(device)  # scored as saved: 8-bit
                    distance = float(feature_loss(output, hr).content)
                scores[method] = score(pictures[method], original, scale, border, distance)
            rows.append(SRImageScores(name, original.size, scores))
    finally:
        for name, model in models.items():
            model.train(modes[name])
    if not rows:
        return None
    identity = feature_loss.identity if feature_loss is not None else None
    return SREvaluation(scale, tuple(methods), tuple(rows), border, degradation_label(scale, blur_sigma), identity)


def degradation_label(scale: int, blur_sigma: float) -> str:
    """How the low-resolution inputs were made (``imaging.degrade.degrade``), for cards and reports."""
    return f"Gaussian blur sigma {blur_sigma:g}, bicubic x1/{scale} (torch, no antialias), 8-bit"


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


# ------------------------------------------------------------------------------------------ the shipped models' bar

PIXEL_METHOD, FEATURE_METHOD = "pixel loss", "feature loss"
# What the shipped models must do on held-out photos (the report's verdicts and tests/test_sr.py use these).
PIXEL_MARGIN_DB = {4: 1.5, 8: 0.8}  # pixel loss over bicubic, mean PSNR-Y
FEATURE_DISTANCE_CUT = 0.10  # the feature model's relu2_2 distance at least this much below the pixel model's
X4_FEATURE_DETAIL = (0.6, 1.2)  # its gradient-energy ratio at x4
MAX_CROSS_HATCH_DB = 2.0
COLOUR_SHIFT_ALLOWANCE = 0.5  # Delta E over bicubic's, both losses and scales


@dataclass(frozen=True)
class TargetCheck:
    name: str
    met: bool
    detail: str


def check_targets(evaluation: SREvaluation) -> list[TargetCheck]:
    """Each bar of the shipped pair (``pixel loss`` and ``feature loss`` in ``evaluation``) at its scale."""
    scale = evaluation.scale
    bicubic, pixel = evaluation.mean(BICUBIC), evaluation.mean(PIXEL_METHOD)
    margin = pixel.psnr - bicubic.psnr
    checks = [TargetCheck(f"x{scale} pixel loss >= bicubic + {PIXEL_MARGIN_DB[scale]} dB", margin >= PIXEL_MARGIN_DB[scale],
                          f"{margin:+.2f} dB")]
    worst = min(evaluation.images, key=lambda r: r.scores[PIXEL_METHOD].psnr - r.scores[BICUBIC].psnr)
    worst_margin = worst.scores[PIXEL_METHOD].psnr - worst.scores[BICUBIC].psnr
    checks.append(TargetCheck(f"x{scale} pixel loss: no photo below bicubic", worst_margin >= 0,
                              f"lowest {worst_margin:+.2f} dB ({worst.image})"))
    if FEATURE_METHOD in evaluation.methods:
        feature = evaluation.mean(FEATURE_METHOD)
        if feature.feature_distance is not None and pixel.feature_distance is not None:
            cut = 1 - feature.feature_distance / pixel.feature_distance
            checks.append(TargetCheck(f"x{scale} feature loss: relu2_2 distance >= {FEATURE_DISTANCE_CUT:.0%} below the "
                                      "pixel model's", cut >= FEATURE_DISTANCE_CUT, f"{cut:.1%} lower"))
        closer = abs(1 - feature.gradient_ratio) < abs(1 - pixel.gradient_ratio)
        detail_ok = closer and (scale != 4 or X4_FEATURE_DETAIL[0] <= feature.gradient_ratio <= X4_FEATURE_DETAIL[1])
        bounds = f", within {X4_FEATURE_DETAIL[0]}-{X4_FEATURE_DETAIL[1]}" if scale == 4 else ""
        checks.append(TargetCheck(f"x{scale} feature loss: more detail than the pixel model{bounds}", detail_ok,
                                  f"gradient energy {feature.gradient_ratio:.2f} vs {pixel.gradient_ratio:.2f} "
                                  f"(bicubic {bicubic.gradient_ratio:.2f})"))
        checks.append(TargetCheck(f"x{scale} feature loss: cross-hatch <= +{MAX_CROSS_HATCH_DB:g} dB",
                                  feature.cross_hatch_db <= MAX_CROSS_HATCH_DB, f"{feature.cross_hatch_db:+.2f} dB"))
    for method in (PIXEL_METHOD, FEATURE_METHOD):
        if method in evaluation.methods:
            shift = evaluation.mean(method).colour_shift
            limit = bicubic.colour_shift + COLOUR_SHIFT_ALLOWANCE
            checks.append(TargetCheck(f"x{scale} {method}: colour shift <= bicubic's + {COLOUR_SHIFT_ALLOWANCE}",
                                      shift <= limit, f"ΔE {shift:.2f} vs bicubic {bicubic.colour_shift:.2f}"))
    return checks
