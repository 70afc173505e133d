"""The Stylize journey: one feed-forward pass of a style network (Johnson, Alahi & Fei-Fei 2016, Sec. 4).

Around the paper's single pass the app offers three controls the paper does not have:

* **style scale**: the network sees the content at ``output size x style scale``; its output is resized to
  the output size. The network's receptive field is fixed in pixels, so a smaller input gives larger brush
  strokes relative to the picture, independently of the output size.
* **style strength**: a linear blend of the stylised image with the content (1 = the network's output).
* Inputs longer than ``PERCEPTUAL_STYLE_TILE`` (1024 px) run tile by tile with whole-image instance-norm
  statistics (``networks.tiling.run_network_tiled``), so a large output does not need the memory of one pass.
* **preserve original colours**: luminance-only transfer (Gatys, Bethge, Hertzmann & Shechtman 2016,
  "Preserving color in neural artistic style transfer"): the result keeps its own luma (Y of YCbCr) and
  takes the content's chroma (Cb, Cr).
* **style blends**: two or more style models of one architecture mixed by network interpolation
  (``networks.interpolate``, as ESRGAN's Sec. 3.4 does for super-resolution): the parameters
  ``sum(w_i * theta_i)`` with the user's weights normalised to sum to 1 form one network, which then runs
  through the same pipeline as a single model.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

import settings
from imaging import image_to_tensor, load_image, tensor_to_image
from networks.inference import infer
from networks.interpolate import interpolate_networks
from registry import LoadedModel, RegistryError, fast_variant

from .common import (
    check_output_size,
    check_same_architecture,
    device_label,
    identity_note,
    load_registry_model,
    resize_longest,
    style_tile,
)

logger = logging.getLogger(__name__)

MIN_NETWORK_SIDE = 32
STYLE_SCALE_RANGE = (0.25, 2.0)


def preserve_colours(stylised: Image.Image, content: Image.Image) -> Image.Image:
    """Luminance-only transfer: Y from ``stylised``, Cb and Cr from ``content`` (resized to match)."""
    if content.size != stylised.size:
        content = content.resize(stylised.size, Image.Resampling.BICUBIC)
    y, _, _ = stylised.convert("YCbCr").split()
    _, cb, cr = content.convert("YCbCr").split()
    return Image.merge("YCbCr", (y, cb, cr)).convert("RGB")


def blend(stylised: Image.Image, content: Image.Image, strength: float) -> Image.Image:
    """``strength`` x stylised + (1 - ``strength``) x content, in 8-bit RGB."""
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"style strength must be between 0 and 1, got {strength}")
    if strength == 1.0:
        return stylised
    if content.size != stylised.size:
        content = content.resize(stylised.size, Image.Resampling.BICUBIC)
    return Image.blend(content, stylised, strength)


@dataclass(frozen=True)
class BlendPart:
    """One model of a result and its share: a plain Stylize result has one part with weight 1."""

    model_id: str
    style: str | None
    loss_network: str | None  # the identity its training record names
    weight: float  # normalised: the parts' weights sum to 1
    requested: float  # the weight as the user gave it


@dataclass
class StylizeOutput:
    """One Stylize result (a single model or a blend) and what the page says about it."""

    image: Image.Image
    seconds: float  # the network pass alone
    total_seconds: float  # decoding, resizing and post-processing included
    device: str
    plan: str
    parts: tuple[BlendPart, ...]  # one model, or the models of a blend
    network_size: tuple[int, int]
    network_note: str | None = None  # which network size ran and why (:func:`choose_network`)

    @property
    def model_id(self) -> str:
        """The model's id; a blend's ids joined with " + "."""
        return " + ".join(part.model_id for part in self.parts)

    @property
    def style(self) -> str | None:
        """The model's style name; a blend's joined with " + " (None if no part names one)."""
        styles = [part.style for part in self.parts if part.style]
        return " + ".join(styles) if styles else None

    @property
    def loss_network(self) -> str | None:
        """The loss network every part was trained with; None when unrecorded or when a blend's parts differ."""
        identities = {part.loss_network for part in self.parts}
        return identities.pop() if len(identities) == 1 else None

    def _models_markdown(self) -> str:
        if len(self.parts) == 1:
            part = self.parts[0]
            return f"Model `{part.model_id}` (style *{part.style or '?'}*), {identity_note(part.loss_network)}."
        given = ", ".join(f"{part.requested:g}" for part in self.parts)
        lines = [f"Blend of {len(self.parts)} style models (network interpolation of their weights; your weights "
                 f"{given}, normalised to sum to 1):"]
        lines += [f"- `{part.model_id}` (style *{part.style or '?'}*): weight **{part.weight:.2f}**, "
                  f"{identity_note(part.loss_network)}" for part in self.parts]
        if len({part.loss_network for part in self.parts}) > 1:
            lines.append("\nThese models were trained with different loss networks (above): the blend mixes "
                         "different objectives.")
        return "\n".join(lines)

    def markdown(self) -> str:
        width, height = self.image.size
        nw, nh = self.network_size
        after_models = "\n\n" if len(self.parts) > 1 else "  \n"  # a list needs a blank line to end
        return (
            f"**{width} x {height} px in {self.seconds:.3f} s** (network pass; {self.total_seconds:.2f} s in all) "
            f"on `{self.device}` ({self.plan}).  \n"
            f"{self._models_markdown()}{after_models}"
            + (f"{self.network_note}  \n" if self.network_note else "")
            + f"The network saw {nw} x {nh} px."
        )


@dataclass(frozen=True)
class BlendedNetwork:
    """A style blend ready to run: the interpolated network and the models it mixes."""

    network: nn.Module
    parts: tuple[BlendPart, ...]


def _check_controls(output_size: int, style_scale: float) -> None:
    """Refuse bad sizes before any image is decoded or model loaded."""
    low, high = STYLE_SCALE_RANGE
    if not low <= style_scale <= high:
        raise ValueError(f"style scale must be between {low} and {high}, got {style_scale}")
    if output_size < MIN_NETWORK_SIDE:
        raise ValueError(f"output size must be at least {MIN_NETWORK_SIDE} px, got {output_size}")


def _render(image: Image.Image, network: nn.Module, parts: tuple[BlendPart, ...], output_size: int,
            preserve_original_colours: bool, strength: float, style_scale: float, started: float) -> StylizeOutput:
    """The one Stylize pipeline after the model is chosen: sizes, the network pass (tiled when large), strength
    and colours. A single model and a blend differ only in the network and the parts they hand in."""
    target = resize_longest(image, output_size)
    check_output_size(*target.size)
    network_side = max(MIN_NETWORK_SIDE, round(output_size * style_scale))
    network_input = resize_longest(image, network_side)
    if min(network_input.size) < 8:
        raise ValueError(f"the image is too narrow ({image.width} x {image.height}) for this style scale")
    check_output_size(*network_input.size, what="The network's input")
    run = infer(network, image_to_tensor(network_input), whole_image_tile=style_tile())
    stylised = tensor_to_image(run.output)
    if stylised.size != target.size:
        stylised = stylised.resize(target.size, Image.Resampling.BICUBIC)
    result = blend(stylised, target, strength)
    if preserve_original_colours:
        result = preserve_colours(result, target)
    return StylizeOutput(
        image=result,
        seconds=run.seconds,
        total_seconds=time.perf_counter() - started,
        device=device_label(settings.device()),
        plan=run.plan,
        parts=parts,
        network_size=network_input.size,
    )


def _part(model: LoadedModel, weight: float, requested: float) -> BlendPart:
    return BlendPart(model.label, model.config.style, model.config.training.loss_network, weight, requested)


NETWORK_CHOICES: dict[str, str] = {
    "auto": "Auto: the fast variant on a CPU, the paper-size network on a GPU",
    "fast": "Fast variant (a smaller network trained to stand in for the paper-size one)",
    "paper": "Paper-size network (Johnson et al.'s architecture)",
}


@dataclass(frozen=True)
class NetworkChoice:
    """The model that runs for a request, and a sentence saying which size it is and why."""

    model_id: str
    note: str | None


def choose_network(model_id: str | None, network: str = "auto", device: torch.device | None = None) -> NetworkChoice:
    """Which network runs for style model ``model_id`` under ``network`` (see :data:`NETWORK_CHOICES`).

    ``auto`` runs a model's fast variant on a CPU (where it is several times quicker) and the paper-size network
    on a GPU (where both take milliseconds); a model without a fast variant runs as it is. Picking a fast variant
    itself with ``paper`` runs the model it stands in for. ``device``: the app's (``settings.device()``)."""
    network = str(network or "auto").strip().lower()
    if network not in NETWORK_CHOICES:
        raise ValueError(f"network must be one of {', '.join(NETWORK_CHOICES)}, got {network!r}")
    requested = load_registry_model(model_id, "style-transfer")
    requested_id = requested.model_id or str(model_id)
    teacher = requested.config.training.variant_of
    if teacher is not None:
        if network == "paper":
            return NetworkChoice(teacher, f"Paper-size network `{teacher}`, which `{requested_id}` stands in for.")
        return NetworkChoice(requested_id, f"Fast variant of `{teacher}`.")
    device = device if device is not None else settings.device()
    wants_fast = network == "fast" or (network == "auto" and device.type == "cpu")
    if not wants_fast:
        return NetworkChoice(requested_id, "Paper-size network" + (" (auto: on a GPU)." if network == "auto" else "."))
    try:
        fast = fast_variant(requested_id)
    except RegistryError:
        fast = None
    if fast is None:
        return NetworkChoice(requested_id, None if network == "auto" else
                             f"`{requested_id}` has no fast variant: the paper-size network ran.")
    why = "auto: on a CPU" if network == "auto" else "as chosen"
    return NetworkChoice(fast, f"Fast variant `{fast}` of `{requested_id}` ({why}; choose the paper-size network "
                               "under Network for the original).")


def stylize(
    content: object,
    model_id: str | None,
    output_size: int = 512,
    preserve_original_colours: bool = False,
    strength: float = 1.0,
    style_scale: float = 1.0,
    network: str = "auto",
) -> StylizeOutput:
    """Stylise ``content`` (any image source) with registry style model ``model_id``, or its fast variant
    (``network``, :func:`choose_network`)."""
    started = time.perf_counter()
    output_size, style_scale = int(output_size), float(style_scale)
    _check_controls(output_size, style_scale)
    image = load_image(content)
    choice = choose_network(model_id, network)
    model = load_registry_model(choice.model_id, "style-transfer")
    output = _render(image, model.network, (_part(model, 1.0, 1.0),), output_size, preserve_original_colours,
                     strength, style_scale, started)
    return replace(output, network_note=choice.note)


# ------------------------------------------------------------------------------------------ style blends


def normalise_blend_weights(model_ids: Sequence[str], weights: Sequence[float]) -> list[float]:
    """``weights`` scaled to sum to 1, after the checks a blend needs before any model is loaded.

    Any non-negative numbers are accepted (70 and 30 mean 0.7 and 0.3) so a user never has to make them add up.
    """
    if len(model_ids) < 2:
        raise ValueError(f"A blend needs two or more style models, got {len(model_ids)}: for one model use Stylize.")
    if len(weights) != len(model_ids):
        raise ValueError(f"{len(model_ids)} models but {len(weights)} weight{'' if len(weights) == 1 else 's'}: "
                         "give one weight per model.")
    values = []
    for model_id, weight in zip(model_ids, weights):
        try:
            value = float(weight)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"Blend weights must be non-negative numbers: {model_id} has {weight!r}.")
        values.append(value)
    total = sum(values)
    if total <= 0:
        raise ValueError("At least one blend weight must be above 0.")
    return [value / total for value in values]


def _check_distinct(model_ids: Sequence[str], models: Sequence[LoadedModel]) -> None:
    """Refuse a model given twice (also under two spellings of its id): its weights would be counted twice,
    which is rarely what was meant; the user can give it once with the total weight."""
    seen: dict[str, str] = {}
    for model_id, model in zip(model_ids, models):
        if model.label in seen:
            spelled = f" (as {seen[model.label]} and {model_id})" if seen[model.label] != model_id else ""
            raise ValueError(f"{model.label} is in the blend twice{spelled}: give each model once, "
                             "with its total weight.")
        seen[model.label] = model_id


def blended_network(model_ids: Sequence[str], weights: Sequence[float]) -> BlendedNetwork:
    """The interpolated network of style models ``model_ids`` with ``weights`` (normalised to sum to 1).

    Raises ``ValueError`` for fewer than two models, a weight count that differs, a negative weight, all weights
    zero, a model given twice, a model that is not a style model, or models of different architectures.
    """
    ids = [str(model_id).strip() for model_id in model_ids]
    shares = normalise_blend_weights(ids, weights)
    models = [load_registry_model(model_id, "style-transfer") for model_id in ids]
    _check_distinct(ids, models)
    check_same_architecture(models)
    network = interpolate_networks([model.network for model in models], shares)
    parts = tuple(_part(model, share, float(given)) for model, share, given in zip(models, shares, weights))
    return BlendedNetwork(network, parts)


def stylize_blend(
    content: object,
    model_ids: Sequence[str],
    weights: Sequence[float],
    output_size: int = 512,
    preserve_original_colours: bool = False,
    strength: float = 1.0,
    style_scale: float = 1.0,
) -> StylizeOutput:
    """Stylise ``content`` with a blend of style models of one architecture: their weights interpolated with
    ``weights`` (any non-negative numbers, normalised to sum to 1), then the same pipeline as :func:`stylize`."""
    started = time.perf_counter()
    output_size, style_scale = int(output_size), float(style_scale)
    _check_controls(output_size, style_scale)
    blended = blended_network(model_ids, weights)
    image = load_image(content)
    return _render(image, blended.network, blended.parts, output_size, preserve_original_colours, strength,
                   style_scale, started)


def blend_summary(model_ids: Sequence[str], weights: Sequence[float]) -> str:
    """What the chosen weights amount to, before anything runs: the UI's live line under the weight sliders."""
    ids = list(model_ids)
    if len(ids) < 2:
        return "Choose two or more style models above; weight *n* belongs to the *n*-th model chosen."
    try:
        shares = normalise_blend_weights(ids, list(weights)[: len(ids)])
    except ValueError as exc:
        return f"⚠️ {exc}"
    return "Blend: " + " · ".join(f"{n}. `{model_id}` **{share:.0%}**"
                                  for n, (model_id, share) in enumerate(zip(ids, shares), start=1))


def stylize_frame(frame: np.ndarray | None, model_id: str | None, size: int = 256,
                  network: str = "auto") -> np.ndarray | None:
    """One webcam frame through the model (or its fast variant, ``network``) at ``size`` px (longest side):
    the live stream's handler.

    No model selected: the frame is returned unchanged, so the preview keeps running while the user picks one.
    """
    if frame is None:
        return None
    if not model_id:
        return frame
    image = resize_longest(load_image(frame), int(size))
    model = load_registry_model(choose_network(model_id, network).model_id, "style-transfer")
    with torch.inference_mode():
        run = infer(model.network, image_to_tensor(image))
    return np.asarray(tensor_to_image(run.output))
