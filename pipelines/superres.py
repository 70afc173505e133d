"""SuperResolutionPipeline: bicubic and the pixel-loss and feature-loss networks of Johnson, Alahi & Fei-Fei
(2016, Sec. 5), one or all of them, scored when the high-resolution original is known::

    pipe = SuperResolutionPipeline.from_pretrained("builtin:sr-x4-pixel")
    big = pipe("small.png")                                   # the upload is the low-resolution input
    both = SuperResolutionPipeline.from_pretrained(pixel="builtin:sr-x4-pixel", feature="builtin:sr-x4-feature")
    result = both("photo.png", original=True)                 # degrade, upscale every way, PSNR/SSIM on Y

* ``original=True``: the image is the high-resolution original; the pipeline makes the low-resolution input
  with the training degradation (Gaussian blur, sigma from the models' training record, default 1.0, then
  bicubic downsampling; ``imaging.degrade``) and scores every output against the original (Y channel,
  ``scale`` pixels shaved).
* With a pixel-loss and a feature-loss model: their network interpolation (Wang et al., ESRGAN 2018, Sec. 3.4),
  the parameters ``(1 - a) * theta_pixel + a * theta_feature``, between the high-PSNR look (a = 0) and the
  sharper one (a = 1).
* ``histogram_match``: each network's output remapped so every RGB channel has the low-resolution input's
  distribution (the paper's display, ``imaging.histogram``); the PSNR before matching is kept too.
* Inputs larger than a tile run in overlapping tiles blended without seams (``networks.tiling``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from PIL import Image
from torch import nn

from perceptual_studio.imaging import ImageInputError, image_to_tensor, load_image, tensor_to_image
from perceptual_studio.imaging.degrade import bicubic_upscale, degrade
from perceptual_studio.imaging.histogram import match_histogram
from perceptual_studio.imaging.metrics import psnr_y, ssim_y
from perceptual_studio.networks.devices import device_label
from perceptual_studio.networks.inference import InferencePlan, infer
from perceptual_studio.networks.interpolate import interpolate_networks
from perceptual_studio.registry import LoadedModel
from perceptual_studio.registry.api import ModelRef

from .common import check_output_size, check_same_architecture, load_task_model, resolve_device, weight_free_options

TASK = "super-resolution"
SCALES: tuple[int, ...] = (4, 8)
ORIGINAL, BICUBIC, PIXEL, FEATURE, BLEND, NETWORK = "original", "bicubic", "pixel loss", "feature loss", "blend", "network"
METHODS: tuple[str, ...] = (ORIGINAL, BICUBIC, PIXEL, FEATURE, BLEND, NETWORK)
# Tiles in low-resolution pixels: 128 px is a 512 px (x4) or 1024 px (x8) output tile; the 32 px overlap is
# over twice the SR network's receptive-field radius (about 14 input pixels).
TILE, OVERLAP = 128, 32
MIN_INPUT_SIDE = 8
ProgressFn = Callable[[float, str], None]


@dataclass
class SuperResolutionResult:
    """Every method's output for one image, with timings and, when the original was given, PSNR/SSIM on Y."""

    scale: int
    mode: str  # "original" (the image was the original, degraded here) or "as_is" (it was the input)
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

    @property
    def image(self) -> Image.Image:
        """The sharpest network's output (feature loss, then the blend, a single network, pixel loss), else
        bicubic's."""
        return next(self.images[m] for m in (FEATURE, BLEND, NETWORK, PIXEL, BICUBIC) if m in self.images)


def interpolate_models(pixel: LoadedModel, feature: LoadedModel, alpha: float) -> nn.Module:
    """A new network with parameters ``(1 - alpha) * pixel + alpha * feature`` (``networks.interpolate``).

    Raises ``ValueError`` unless both have the same architecture and arguments.
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"the blend must be between 0 and 1, got {alpha}")
    check_same_architecture([pixel, feature])
    blend = interpolate_networks([pixel.network, feature.network], [1.0 - alpha, alpha])
    window = weight_free_options([pixel, feature])["degrid"]
    if window and getattr(blend, "degrid", window) != window:
        blend.set_degrid(window)  # the feature model's lattice filter (weight-free) stays on in every blend
    return blend


def parse_scale(scale: int | str) -> int:
    value = int(str(scale).strip().lstrip("x"))
    if value not in SCALES:
        raise ValueError(f"scale must be x4 or x8, got x{value}")
    return value


def blur_sigma(models: list[LoadedModel]) -> float:
    """The training degradation's blur, as the models recorded it (paper: 1.0)."""
    for model in models:
        sigma = model.config.training.blur_sigma
        if sigma is not None and sigma >= 0:
            return float(sigma)
    return 1.0


@dataclass
class Upscaled:
    """Bicubic's and each network's output for one low-resolution input."""

    images: dict[str, Image.Image]  # bicubic first, then the networks in the order given (matched, if asked)
    unmatched: dict[str, Image.Image]  # the networks' outputs before histogram matching (only when matched)
    seconds: dict[str, float]
    plan: str | None  # how the last network ran


def upscale_all(lr: torch.Tensor, networks: Mapping[str, nn.Module], scale: int, *, plan: InferencePlan | None = None,
                tile: int | None = TILE, overlap: int = OVERLAP, histogram_match: bool = False,
                progress: ProgressFn | None = None) -> Upscaled:
    """Upscale ``lr`` (1, 3, h, w) x``scale`` by bicubic and by each of ``networks`` (method -> network):
    the one place the app, the library and the held-out evaluation make SR outputs. ``plan``: the inference
    plan (default: the machine's fastest; the evaluation asks for float32). ``histogram_match``: each network's
    output matched to ``lr`` (the paper's display)."""
    low = tensor_to_image(lr) if histogram_match else None  # the reference, only when matching
    done = Upscaled({}, {}, {}, None)
    steps = 1 + len(networks)
    if progress is not None:
        progress(0.0, "bicubic")
    started = time.perf_counter()
    done.images[BICUBIC] = tensor_to_image(bicubic_upscale(lr, scale).cpu())
    done.seconds[BICUBIC] = time.perf_counter() - started
    for step, (method, network) in enumerate(networks.items(), start=1):
        if progress is not None:
            progress(step / steps, method if method == BLEND else f"{method} model")
        run = infer(network, lr, plan, tile=tile, overlap=overlap)
        picture = tensor_to_image(run.output.cpu())
        if histogram_match:
            done.unmatched[method] = picture
            picture = match_histogram(picture, low)
        done.images[method], done.seconds[method], done.plan = picture, run.seconds, run.plan
    return done


class SuperResolutionPipeline:
    """Bicubic plus up to two SR networks of one scale (a single one, or a pixel-loss and a feature-loss
    model with their blend) on a device; call it on an image."""

    def __init__(self, models: dict[str, LoadedModel], scale: int, device: torch.device, *,
                 tile: int = TILE, overlap: int = OVERLAP) -> None:
        self.models = models  # method (NETWORK, or PIXEL and/or FEATURE) -> model
        self.scale = scale
        self.device = device
        self.tile, self.overlap = tile, overlap

    @classmethod
    def from_pretrained(cls, model: ModelRef | None = None, *, pixel: ModelRef | None = None,
                        feature: ModelRef | None = None, scale: int | str | None = None,
                        device: str | torch.device | None = "auto", token: str | None = None,
                        tile: int = TILE, overlap: int = OVERLAP) -> SuperResolutionPipeline:
        """One SR model (``model``: an id, a Hub repo or a folder), or a ``pixel``-loss and/or ``feature``-loss
        pair to compare; none at all gives bicubic alone (then ``scale`` is needed). ``scale`` defaults to the
        models' own and is checked against it."""
        if model is not None and (pixel is not None or feature is not None):
            raise ValueError("give one model, or a pixel-loss and a feature-loss model, not both")
        target = resolve_device(device)
        models = {method: load_task_model(ref, TASK, target, token=token)
                  for method, ref in ((NETWORK, model), (PIXEL, pixel), (FEATURE, feature)) if ref}
        own = {int(m.config.scale) for m in models.values() if m.config.scale is not None}
        if scale is None:
            if len(own) != 1:
                raise ValueError("give the scale (x4 or x8)" if not own else "the models are of different scales")
            scale = own.pop()
        chosen = parse_scale(scale)
        for method, loaded in models.items():
            if loaded.config.scale is not None and int(loaded.config.scale) != chosen:
                raise ValueError(f"{loaded.label} is a x{loaded.config.scale} model; choose a x{chosen} model or "
                                 f"switch the scale to x{loaded.config.scale}.")
        return cls(models, chosen, target, tile=tile, overlap=overlap)

    def __call__(self, image: object, *, original: bool = False, histogram_match: bool = False,
                 blend: float = 0.5, return_result: bool = False,
                 progress: ProgressFn | None = None) -> Image.Image | SuperResolutionResult:
        """Upscale ``image`` (the low-resolution input, or with ``original`` the high-resolution original to
        degrade and score against). Returns the sharpest network's image, or with ``return_result`` every
        method's in a :class:`SuperResolutionResult`."""
        picture = load_image(image)
        sigma = blur_sigma(list(self.models.values()))
        images: dict[str, Image.Image] = {}
        if original:
            hr = self._crop_original(picture)
            images[ORIGINAL] = hr
            lr = degrade(image_to_tensor(hr), self.scale, sigma)
        else:
            if min(picture.size) < MIN_INPUT_SIDE:
                raise ImageInputError(f"The image ({picture.width} x {picture.height}) is too small: at least "
                                      f"{MIN_INPUT_SIDE} px a side.")
            check_output_size(picture.width * self.scale, picture.height * self.scale,
                              what=f"The x{self.scale} result")
            lr = image_to_tensor(picture)
        out = SuperResolutionResult(scale=self.scale, mode="original" if original else "as_is",
                                    input_size=(lr.shape[-1], lr.shape[-2]), images=images, blur_sigma=sigma,
                                    device=device_label(self.device), histogram_matched=bool(histogram_match))
        unmatched = self._run_all(lr, out, histogram_match, blend, progress)
        if original:
            self._score(out, unmatched)
        out.images = {m: out.images[m] for m in METHODS if m in out.images}
        return out if return_result else out.image

    def _crop_original(self, picture: Image.Image) -> Image.Image:
        scale = self.scale
        width, height = (picture.width // scale) * scale, (picture.height // scale) * scale
        if min(width, height) < MIN_INPUT_SIDE * scale:
            raise ImageInputError(
                f"The original ({picture.width} x {picture.height}) is too small for x{scale}: it needs at least "
                f"{MIN_INPUT_SIDE * scale} px a side, so the low-resolution input has {MIN_INPUT_SIDE}."
            )
        check_output_size(width, height)
        return picture.crop((0, 0, width, height))

    def _run_all(self, lr: torch.Tensor, out: SuperResolutionResult, histogram_match: bool, blend: float,
                 progress: ProgressFn | None) -> dict[str, Image.Image]:
        """Every method into ``out``; returns the networks' outputs before histogram matching (when matched)."""
        networks = {method: model.network for method, model in self.models.items()}
        if PIXEL in self.models and FEATURE in self.models:
            out.blend = float(blend)
            networks[BLEND] = interpolate_models(self.models[PIXEL], self.models[FEATURE], out.blend)
        done = upscale_all(lr.to(self.device), networks, self.scale, tile=self.tile, overlap=self.overlap,
                           histogram_match=histogram_match, progress=progress)
        out.images.update(done.images)
        out.seconds.update(done.seconds)
        out.plan = done.plan
        for method, model in self.models.items():
            out.models[method] = model.label
            out.loss_networks[method] = model.config.training.loss_network
        return done.unmatched

    def _score(self, out: SuperResolutionResult, unmatched: dict[str, Image.Image]) -> None:
        reference, border = out.images[ORIGINAL], self.scale
        for method, result in out.images.items():
            if method != ORIGINAL:
                out.metrics[method] = (psnr_y(result, reference, border=border),
                                       ssim_y(result, reference, border=border))
        out.psnr_unmatched = {m: psnr_y(p, reference, border=border) for m, p in unmatched.items()}

    def __repr__(self) -> str:
        models = ", ".join(f"{method}: {model.label}" for method, model in self.models.items()) or "bicubic only"
        return f"SuperResolutionPipeline(x{self.scale}; {models}; device={self.device})"
