"""The Super-resolution journey: bicubic, the pixel-loss and the feature-loss networks of Johnson, Alahi &
Fei-Fei (2016, Sec. 5) side by side, with PSNR/SSIM on Y when the high-resolution original is known.

* "I have the original": the app makes the low-resolution input with the training degradation (Gaussian blur,
  sigma from the model's training record, default 1.0, then bicubic downsampling; ``train.data.degrade``) and
  scores every output against the original (``train.metrics``: Y channel, ``scale`` pixels shaved).
* "Upscale as is": the upload is the low-resolution input; nothing can be scored.
* Perception-distortion: network interpolation (Wang et al., ESRGAN 2018, Sec. 3.4): the parameters
  ``(1 - a) * theta_pixel + a * theta_feature`` of two models with identical architecture give a third model
  between the high-PSNR pixel-loss look (a = 0) and the sharper feature-loss look (a = 1).
* Histogram matching (the paper's display, Sec. 5): each network's output remapped so every RGB channel has the
  low-resolution input's distribution of values (``imaging.histogram``); with the original known, the table
  also gives the PSNR before matching, so its effect is visible. Bicubic is left as it is.
* Inputs larger than a tile run in overlapping tiles blended without seams (``networks.tiling``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from PIL import Image, ImageDraw, ImageFont
from torch import nn

import settings
from imaging import ImageInputError, image_to_tensor, load_image, tensor_to_image
from imaging.degrade import bicubic_upscale, degrade
from imaging.histogram import match_histogram
from imaging.metrics import psnr_y, ssim_y
from networks.inference import infer
from networks.interpolate import interpolate_networks
from registry import LoadedModel

from .common import check_output_size, check_same_architecture, device_label, identity_note, load_registry_model

logger = logging.getLogger(__name__)

MODES: dict[str, str] = {
    "original": "I have the high-resolution original",
    "as_is": "Upscale this image as is",
}
SCALES: tuple[int, ...] = (4, 8)
ORIGINAL, BICUBIC, PIXEL, FEATURE, BLEND = "original", "bicubic", "pixel loss", "feature loss", "blend"
METHODS: tuple[str, ...] = (ORIGINAL, BICUBIC, PIXEL, FEATURE, BLEND)
# Tiles in low-resolution pixels: 128 px is a 512 px (x4) or 1024 px (x8) output tile; the 32 px overlap is
# over twice the SR network's receptive-field radius (about 14 input pixels).
TILE, OVERLAP = 128, 32
MIN_INPUT_SIDE = 8
ProgressFn = Callable[[float, str], None]


@dataclass
class SROutput:
    scale: int
    mode: str
    input_size: tuple[int, int]
    images: dict[str, Image.Image]  # in METHODS order, only those computed
    seconds: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, tuple[float, float]] = field(default_factory=dict)  # method -> (PSNR dB, SSIM) on Y
    histogram_matched: bool = False
    psnr_unmatched: dict[str, float] = field(default_factory=dict)  # method -> PSNR before histogram matching
    models: dict[str, str] = field(default_factory=dict)  # method -> model id
    loss_networks: dict[str, str | None] = field(default_factory=dict)
    blend: float | None = None
    blur_sigma: float | None = None
    notes: list[str] = field(default_factory=list)
    device: str = ""
    plan: str | None = None  # how the networks ran (precision, layout, tiles)

    @property
    def output_size(self) -> tuple[int, int]:
        return self.input_size[0] * self.scale, self.input_size[1] * self.scale

    def markdown(self) -> str:
        (w, h), (ow, oh) = self.input_size, self.output_size
        if self.mode == "original":
            head = (f"x{self.scale}: your original, degraded as in training (Gaussian blur sigma {self.blur_sigma:g}, "
                    f"bicubic / {self.scale}) to {w} x {h} px, then upscaled back to {ow} x {oh} px on `{self.device}`.")
        else:
            head = f"x{self.scale}: {w} x {h} px upscaled to {ow} x {oh} px on `{self.device}`."
        unmatched = bool(self.psnr_unmatched)
        rows = ["| method | model | time | PSNR (Y) | SSIM (Y) |" + (" PSNR before matching |" if unmatched else ""),
                "|---|---|---:|---:|---:|" + ("---:|" if unmatched else "")]
        for method in METHODS:
            if method not in self.images or method == ORIGINAL:
                continue
            model = self.models.get(method, "—")
            if method == BLEND:
                model = f"a = {self.blend:g} between the two"
            seconds = f"{self.seconds[method]:.3f} s" if method in self.seconds else "—"
            scores = "{:.2f} dB | {:.4f}".format(*self.metrics[method]) if method in self.metrics else "— | —"
            if unmatched:
                before = self.psnr_unmatched.get(method)
                scores += f" | {before:.2f} dB" if before is not None else " | —"
            rows.append(f"| {method} | {model} | {seconds} | {scores} |")
        lines = [head, "", *rows, ""]
        if self.metrics:
            lines.append(f"PSNR and SSIM on the luma (Y) channel with a {self.scale}-pixel border shaved. The paper's "
                         "point: the feature-loss model scores lower on these yet looks sharper.")
        if self.histogram_matched:
            lines.append("The networks' outputs are histogram-matched to the low-resolution input (as the paper "
                         "shows them); bicubic is not.")
        if self.plan:
            lines.append(f"The networks ran as: {self.plan}.")
        for method, identity in self.loss_networks.items():
            lines.append(f"{method}: `{self.models.get(method)}` {identity_note(identity)}.")
        lines += self.notes
        return "  \n".join(lines)


# ------------------------------------------------------------------------------------------ network interpolation



def interpolate_models(pixel: LoadedModel, feature: LoadedModel, alpha: float) -> nn.Module:
    """A new network with parameters ``(1 - alpha) * pixel + alpha * feature`` (``networks.interpolate``).

    Raises ``ValueError`` unless both have the same architecture and arguments.
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"the blend must be between 0 and 1, got {alpha}")
    check_same_architecture([pixel, feature])
    return interpolate_networks([pixel.network, feature.network], [1.0 - alpha, alpha])


# ------------------------------------------------------------------------------------------ the journey


def _blur_sigma(*models: LoadedModel) -> float:
    """The training degradation's blur, as the models recorded it (paper: 1.0)."""
    for model in models:
        sigma = model.config.training.blur_sigma
        if sigma is not None and sigma >= 0:
            return float(sigma)
    return 1.0


def _check_scale(model: LoadedModel, model_id: str, scale: int) -> None:
    model_scale = model.config.scale
    if model_scale is not None and int(model_scale) != scale:
        raise ValueError(f"{model_id} is a x{model_scale} model; choose a x{scale} model or switch the scale to x{model_scale}.")


def super_resolve(
    image: object,
    mode: str = "original",
    scale: int = 4,
    pixel_model_id: str | None = None,
    feature_model_id: str | None = None,
    blend: float = 0.5,
    progress: ProgressFn | None = None,
    *,
    histogram_match: bool = False,
    tile: int = TILE,
    overlap: int = OVERLAP,
) -> SROutput:
    """Upscale ``image`` x``scale`` with bicubic and whichever of the two models are given (see module docstring)."""
    mode = {label: key for key, label in MODES.items()}.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    scale = int(str(scale).lstrip("x"))
    if scale not in SCALES:
        raise ValueError(f"scale must be x4 or x8, got x{scale}")
    picture = load_image(image)
    models: dict[str, tuple[str, LoadedModel]] = {}
    for method, model_id in ((PIXEL, pixel_model_id), (FEATURE, feature_model_id)):
        if model_id:
            model = load_registry_model(model_id, "super-resolution")
            _check_scale(model, model_id, scale)
            models[method] = (model.label, model)
    sigma = _blur_sigma(*(m for _, m in models.values()))

    images: dict[str, Image.Image] = {}
    if mode == "original":
        width, height = (picture.width // scale) * scale, (picture.height // scale) * scale
        if min(width, height) < MIN_INPUT_SIDE * scale:
            raise ImageInputError(
                f"The original ({picture.width} x {picture.height}) is too small for x{scale}: it needs at least "
                f"{MIN_INPUT_SIDE * scale} px a side, so the low-resolution input has {MIN_INPUT_SIDE}."
            )
        hr = picture.crop((0, 0, width, height))
        check_output_size(width, height)
        images[ORIGINAL] = hr
        lr = degrade(image_to_tensor(hr), scale, sigma)
    else:
        if min(picture.size) < MIN_INPUT_SIDE:
            raise ImageInputError(f"The image ({picture.width} x {picture.height}) is too small: at least {MIN_INPUT_SIDE} px a side.")
        check_output_size(picture.width * scale, picture.height * scale, what=f"The x{scale} result")
        lr = image_to_tensor(picture)
    out = SROutput(scale=scale, mode=mode, input_size=(lr.shape[-1], lr.shape[-2]), images=images,
                   blur_sigma=sigma, device=device_label(settings.device()), histogram_matched=bool(histogram_match))
    low = tensor_to_image(lr) if histogram_match else None  # the reference, only when matching
    unmatched: dict[str, Image.Image] = {}

    def network_image(method: str, output) -> Image.Image:
        picture = tensor_to_image(output)
        if not histogram_match:
            return picture
        unmatched[method] = picture
        return match_histogram(picture, low)

    steps = 1 + len(models) + (1 if len(models) == 2 else 0)
    done = 0

    def report(text: str) -> None:
        if progress is not None:
            progress(done / steps, text)

    report("bicubic")
    started = time.perf_counter()
    images[BICUBIC] = tensor_to_image(bicubic_upscale(lr, scale))
    out.seconds[BICUBIC] = time.perf_counter() - started
    done += 1
    for method, (model_id, model) in models.items():
        report(f"{method} model")
        run = infer(model.network, lr, tile=tile, overlap=overlap)
        images[method], out.seconds[method] = network_image(method, run.output), run.seconds
        out.plan = run.plan
        out.models[method] = model_id
        out.loss_networks[method] = model.config.training.loss_network
        done += 1
    if len(models) == 2:
        report("blend")
        alpha = float(blend)
        mixed = interpolate_models(models[PIXEL][1], models[FEATURE][1], alpha)
        run = infer(mixed, lr, tile=tile, overlap=overlap)
        images[BLEND], out.seconds[BLEND], out.blend = network_image(BLEND, run.output), run.seconds, alpha
    else:
        missing = [m for m in (PIXEL, FEATURE) if m not in models]
        out.notes.append(
            f"No {' or '.join(missing)} model chosen for x{scale}"
            + (": the perception-distortion blend needs both." if models else
               ": only bicubic is shown. Train one with `python -m train.sr`, or pull one in the Models tab.")
        )
    if ORIGINAL in images:
        for method, result in images.items():
            if method != ORIGINAL:
                out.metrics[method] = (psnr_y(result, images[ORIGINAL], border=scale),
                                       ssim_y(result, images[ORIGINAL], border=scale))
        out.psnr_unmatched = {m: psnr_y(picture, images[ORIGINAL], border=scale) for m, picture in unmatched.items()}
    out.images = {m: images[m] for m in METHODS if m in images}
    return out


def upscale(image: object, model_id: str | None, scale: int = 4, *, histogram_match: bool = False, tile: int = TILE,
            overlap: int = OVERLAP) -> tuple[Image.Image, float, str]:
    """One image x``scale`` with one model (bicubic when ``model_id`` is None): (result, seconds, method label).

    The batch command line's path; the image is the low-resolution input ("upscale as is"). ``histogram_match``
    matches a network's output to the input (module docstring).
    """
    scale = int(str(scale).lstrip("x"))
    if scale not in SCALES:
        raise ValueError(f"scale must be x4 or x8, got x{scale}")
    picture = load_image(image)
    if min(picture.size) < MIN_INPUT_SIDE:
        raise ImageInputError(f"The image ({picture.width} x {picture.height}) is too small: at least {MIN_INPUT_SIDE} px a side.")
    check_output_size(picture.width * scale, picture.height * scale, what=f"The x{scale} result")
    lr = image_to_tensor(picture)
    if model_id is None:
        started = time.perf_counter()
        result = tensor_to_image(bicubic_upscale(lr, scale))
        return result, time.perf_counter() - started, BICUBIC
    model = load_registry_model(model_id, "super-resolution")
    _check_scale(model, model_id, scale)
    run = infer(model.network, lr, tile=tile, overlap=overlap)
    result = tensor_to_image(run.output)
    if histogram_match:
        result = match_histogram(result, picture)
    return result, run.seconds, model.label


def default_slider_pair(available: list[str]) -> tuple[str, str]:
    """Bicubic on the left, the sharpest network result on the right."""
    right = next((m for m in (FEATURE, BLEND, PIXEL) if m in available), BICUBIC)
    left = BICUBIC if right != BICUBIC or ORIGINAL not in available else ORIGINAL
    return left, right


def slider_images(images: dict[str, Image.Image], left: str, right: str) -> tuple[Image.Image, Image.Image] | None:
    """The (left, right) pair for the image slider; a missing method falls back to the default pair."""
    if not images:
        return None
    fallback = default_slider_pair(list(images))
    left = left if left in images else fallback[0]
    right = right if right in images else fallback[1]
    return images[left], images[right]


def zoom_crop(images: dict[str, Image.Image], centre_x: float = 0.5, centre_y: float = 0.5, *,
              crop: int | None = None, tile: int = 256) -> Image.Image | None:
    """The same square crop of every result, enlarged with nearest-neighbour and labelled, side by side.

    ``centre_x``/``centre_y`` are fractions of the width/height; ``crop`` defaults to a sixth of the shorter side
    (between 24 and 128 output pixels), where the paper's fine detail and cross-hatch artifacts show.
    """
    if not images:
        return None
    width, height = next(iter(images.values())).size
    side = crop or max(24, min(128, min(width, height) // 6))
    side = min(side, width, height)
    left = min(max(0, round(float(centre_x) * width - side / 2)), width - side)
    top = min(max(0, round(float(centre_y) * height - side / 2)), height - side)
    gap, band = 6, 20
    canvas = Image.new("RGB", (len(images) * (tile + gap) + gap, tile + band + gap), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, (name, picture) in enumerate(images.items()):
        piece = picture.crop((left, top, left + side, top + side)).resize((tile, tile), Image.Resampling.NEAREST)
        x = gap + i * (tile + gap)
        canvas.paste(piece, (x, band))
        draw.text((x, 4), name, fill="black", font=font)
    return canvas
