"""StylePipeline: one feed-forward pass of a style network (Johnson, Alahi & Fei-Fei 2016, Sec. 4), as a
library call::

    pipe = StylePipeline.from_pretrained("builtin:stained-glass")   # an id, a Hub repo or a model folder
    image = pipe("photo.jpg", size=768, strength=0.8)

Around the paper's single pass it offers controls the paper does not have:

* **style scale**: the network sees the content at ``size x style_scale``; its output is resized to ``size``.
  The network's receptive field is fixed in pixels, so a smaller input gives larger brush strokes relative to
  the picture, independently of the output size.
* **strength**: a linear blend of the stylised image with the content (1 = the network's output).
* **preserve_colours**: luminance-only transfer (Gatys, Bethge, Hertzmann & Shechtman 2016, "Preserving color
  in neural artistic style transfer"): the result keeps its own luma (Y of YCbCr) and takes the content's
  chroma (Cb, Cr).
* Inputs longer than ``PERCEPTUAL_STYLE_TILE`` (1024 px) run tile by tile with whole-image instance-norm
  statistics (``networks.tiling``), so a large output does not need the memory of one pass.
* **blends** (:meth:`StylePipeline.blend`): style models of one architecture mixed by network interpolation
  (``networks.interpolate``, as ESRGAN's Sec. 3.4 does for super-resolution): the parameters
  ``sum(w_i * theta_i)`` with the weights normalised to sum to 1 form one network, which then runs like one
  model.
* **network size** (``network=``): on a CPU, ``"auto"`` runs a model's fast variant (a smaller network trained
  with its objective, found from the config files alone) and on a GPU the paper-size network.
"""
from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
from PIL import Image
from torch import nn

from perceptual_studio import settings
from perceptual_studio.imaging import image_to_tensor, load_image, tensor_to_image
from perceptual_studio.networks.devices import device_label
from perceptual_studio.networks.inference import infer
from perceptual_studio.networks.interpolate import interpolate_networks
from perceptual_studio.registry import LoadedModel, RegistryError, fast_variant, stable_variant
from perceptual_studio.registry.api import ModelRef, read_config

from .common import (
    check_output_size,
    check_same_architecture,
    check_task,
    load_task_model,
    resize_longest,
    resolve_device,
    unusable,
)

TASK = "style-transfer"
MIN_NETWORK_SIDE = 32
STYLE_SCALE_RANGE = (0.25, 2.0)
NETWORK_SIZES = ("auto", "fast", "paper", "stable")


# ------------------------------------------------------------------------------------------ typed results


@dataclass(frozen=True)
class BlendPart:
    """One model of a result and its share: a single model's result has one part with weight 1."""

    model_id: str
    style: str | None
    loss_network: str | None  # the identity its training record names
    weight: float  # normalised: the parts' weights sum to 1
    requested: float  # the weight as given


@dataclass
class StyleResult:
    """One stylised image and how it was made (``pipe(..., return_result=True)``)."""

    image: Image.Image
    seconds: float  # the network pass alone
    total_seconds: float  # decoding, resizing and post-processing included
    device: str
    plan: str  # how the network ran (precision, layout, runtime, tiles)
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


@dataclass(frozen=True)
class NetworkChoice:
    """The model that runs for a request, and a sentence saying which size it is and why."""

    model_id: str
    note: str | None


# ------------------------------------------------------------------------------------------ image operations


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


def check_controls(size: int, style_scale: float) -> None:
    """Refuse bad sizes before any image is decoded or model loaded."""
    low, high = STYLE_SCALE_RANGE
    if not low <= style_scale <= high:
        raise ValueError(f"style scale must be between {low} and {high}, got {style_scale}")
    if size < MIN_NETWORK_SIDE:
        raise ValueError(f"output size must be at least {MIN_NETWORK_SIDE} px, got {size}")


# ------------------------------------------------------------------------------------------ which network


def choose_network(model: ModelRef | None, network: str = "auto", device: torch.device | None = None) -> NetworkChoice:
    """Which network runs for style model ``model`` under ``network`` ("auto", "fast", "paper" or "stable").

    ``auto`` runs a model's fast variant on a CPU (where it is several times quicker) and the paper-size network
    on a GPU (where both take milliseconds); a model without a fast variant runs as it is. Asking for a fast
    variant itself with ``paper`` runs the model it stands in for. ``stable`` (video, the webcam) runs the
    model's stable variant, trained to flicker less from frame to frame, and ``auto``'s choice where it has none.
    Only config files are read here: the weights of a network that will not run are never loaded."""
    network = str(network or "auto").strip().lower()
    if network not in NETWORK_SIZES:
        raise ValueError(f"network must be one of {', '.join(NETWORK_SIZES)}, got {network!r}")
    if model is None or not str(model).strip():
        raise ValueError("Choose a style transfer model first (none is selected).")
    try:
        canonical, config = read_config(model if not isinstance(model, str) else model.strip())
    except RegistryError as exc:
        raise unusable(model, exc) from None
    check_task(config.task, TASK, str(model))
    requested_id = canonical or str(model)
    teacher = config.training.variant_of
    if network == "stable":
        if config.training.temporal_weight:
            return NetworkChoice(requested_id, f"Stable variant of `{teacher}`.")
        stable = _variant(stable_variant, teacher or canonical)
        if stable is not None:
            return NetworkChoice(stable, f"Stable variant `{stable}` of `{teacher or requested_id}` (trained to "
                                         "flicker less from frame to frame).")
        fallback = choose_network(model, "auto", device)
        return NetworkChoice(fallback.model_id, f"`{teacher or requested_id}` has no stable variant yet: "
                                                f"`{fallback.model_id}` ran frame by frame.")
    if teacher is not None:
        if network == "paper":
            return NetworkChoice(teacher, f"Paper-size network `{teacher}`, which `{requested_id}` stands in for.")
        return NetworkChoice(requested_id, f"Fast variant of `{teacher}`.")
    device = device if device is not None else settings.device()
    wants_fast = network == "fast" or (network == "auto" and device.type == "cpu")
    if not wants_fast:
        return NetworkChoice(requested_id, "Paper-size network" + (" (auto: on a GPU)." if network == "auto" else "."))
    fast = _variant(fast_variant, canonical)
    if fast is None:
        return NetworkChoice(requested_id, None if network == "auto" else
                             f"`{requested_id}` has no fast variant: the paper-size network ran.")
    why = "auto: on a CPU" if network == "auto" else "as chosen"
    return NetworkChoice(fast, f"Fast variant `{fast}` of `{requested_id}` ({why}; choose the paper-size network "
                               "under Network for the original).")


def _variant(find, canonical: str | None) -> str | None:
    """``find(canonical)`` (``fast_variant`` or ``stable_variant``), None where there is none."""
    if canonical is None:  # a folder given by path: its variants are not in any registry listing
        return None
    try:
        return find(canonical)
    except RegistryError:
        return None


# ------------------------------------------------------------------------------------------ blends


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
    which is rarely what was meant; it can be given once with the total weight."""
    seen: dict[str, str] = {}
    for model_id, model in zip(model_ids, models):
        if model.label in seen:
            spelled = f" (as {seen[model.label]} and {model_id})" if seen[model.label] != model_id else ""
            raise ValueError(f"{model.label} is in the blend twice{spelled}: give each model once, "
                             "with its total weight.")
        seen[model.label] = model_id


def _part(model: LoadedModel, weight: float, requested: float) -> BlendPart:
    return BlendPart(model.label, model.config.style, model.config.training.loss_network, weight, requested)


# ------------------------------------------------------------------------------------------ the pipeline


class StylePipeline:
    """A ready style network (one model or a blend) on a device; call it on an image.

    Build one with :meth:`from_pretrained` or :meth:`blend`. The networks are the registry's cached copies:
    making a second pipeline for the same model costs no second load.
    """

    def __init__(self, network: nn.Module, parts: tuple[BlendPart, ...], device: torch.device, *,
                 note: str | None = None, model: LoadedModel | None = None) -> None:
        self.network = network
        self.parts = parts
        self.device = device
        self.note = note
        self.model = model  # the loaded model when the pipeline is one (None for a blend)

    @classmethod
    def from_pretrained(cls, model: ModelRef, *, device: str | torch.device | None = "auto", network: str = "auto",
                        token: str | None = None) -> StylePipeline:
        """The pipeline of style model ``model``: a registry id (``builtin:mosaic``, ``local:x``), a Hub repo
        (``owner/name``) or a model folder's path. ``network``: "auto" (the fast variant on a CPU), "fast" or
        "paper" (:func:`choose_network`). ``token``: for a private Hub repo."""
        target = resolve_device(device)
        choice = choose_network(model, network, target)
        chosen = model if choice.model_id == str(model) else choice.model_id  # a folder stays a Path
        loaded = load_task_model(chosen, TASK, target, token=token)
        return cls(loaded.network, (_part(loaded, 1.0, 1.0),), target, note=choice.note, model=loaded)

    @classmethod
    def blend(cls, weights: Mapping[ModelRef, float] | Sequence[tuple[ModelRef, float]], *,
              device: str | torch.device | None = "auto", token: str | None = None) -> StylePipeline:
        """A pipeline mixing style models of one architecture: ``{model: weight, ...}`` (or ``(model, weight)``
        pairs) with any non-negative weights, normalised to sum to 1. Raises ``ValueError`` for fewer than two
        models, a negative weight, all weights zero, a model given twice (under any spelling of its id), a model
        that is not a style model, or different architectures."""
        target = resolve_device(device)
        pairs = list(weights.items()) if isinstance(weights, Mapping) else list(weights)
        ids = [str(model).strip() if isinstance(model, str) else model for model, _ in pairs]
        given = [weight for _, weight in pairs]
        shares = normalise_blend_weights([str(i) for i in ids], given)
        models = [load_task_model(model, TASK, target, token=token) for model in ids]
        _check_distinct([str(i) for i in ids], models)
        check_same_architecture(models)
        network = interpolate_networks([model.network for model in models], shares)
        parts = tuple(_part(model, share, float(w)) for model, share, w in zip(models, shares, given))
        return cls(network, parts, target)

    def __call__(self, image: object, size: int = 512, strength: float = 1.0, preserve_colours: bool = False,
                 style_scale: float = 1.0, *, return_result: bool = False) -> Image.Image | StyleResult:
        """Stylise ``image`` (a path, bytes, PIL image or array) at ``size`` px (longer side); returns the PIL
        image, or with ``return_result`` a :class:`StyleResult` with timings, plan and model identity."""
        started = time.perf_counter()
        size, style_scale = int(size), float(style_scale)
        check_controls(size, style_scale)
        result = self._render(load_image(image), size, float(strength), bool(preserve_colours), style_scale,
                              started)
        return result if return_result else result.image

    def _render(self, image: Image.Image, size: int, strength: float, keep_colours: bool, style_scale: float,
                started: float) -> StyleResult:
        target = resize_longest(image, size)
        check_output_size(*target.size)
        network_input = resize_longest(image, max(MIN_NETWORK_SIDE, round(size * style_scale)))
        if min(network_input.size) < 8:
            raise ValueError(f"the image is too narrow ({image.width} x {image.height}) for this style scale")
        check_output_size(*network_input.size, what="The network's input")
        run = infer(self.network, image_to_tensor(network_input).to(self.device),
                    whole_image_tile=settings.style_tile())
        stylised = tensor_to_image(run.output)
        if stylised.size != target.size:
            stylised = stylised.resize(target.size, Image.Resampling.BICUBIC)
        result = blend(stylised, target, strength)
        if keep_colours:
            result = preserve_colours(result, target)
        return StyleResult(image=result, seconds=run.seconds, total_seconds=time.perf_counter() - started,
                           device=device_label(self.device), plan=run.plan, parts=self.parts,
                           network_size=network_input.size, network_note=self.note)

    def frame(self, frame: object, size: int = 256) -> Image.Image:
        """One video or webcam frame at ``size`` px (longer side), with none of the photo path's extras."""
        image = resize_longest(load_image(frame), int(size))
        with torch.inference_mode():
            run = infer(self.network, image_to_tensor(image).to(self.device))
        return tensor_to_image(run.output)

    # -------------------------------------------------------------------------------------- sharing

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write this pipeline's model as a model folder (config, weights, card and images), loadable by
        :meth:`from_pretrained`. A blend is written as a new model whose card names its parts."""
        folder = Path(folder)
        if self.model is not None and self.model.folder is not None:
            _copy_folder(self.model.folder, folder)
            return folder
        from perceptual_studio.registry.writing import save_model

        mixed = ", ".join(f"`{part.model_id}` {part.weight:.2f}" for part in self.parts)
        return save_model(self.network, folder,  # save_model copies the tensors to the CPU itself
                          style=" + ".join(p.style or p.model_id for p in self.parts),
                          card_extra=f"A blend by network interpolation of {mixed}.")

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool | None = None):
        """Publish this pipeline's model as Hub repo ``repo_id`` (``registry.publish``); returns where it went."""
        import tempfile

        from perceptual_studio.registry import publish

        with tempfile.TemporaryDirectory() as scratch:
            folder = self.save_pretrained(Path(scratch) / repo_id.rpartition("/")[2])
            return publish(folder, repo_id, token=token, private=private)

    def __repr__(self) -> str:
        models = ", ".join(f"{part.model_id}: {part.weight:.2f}" for part in self.parts)
        return f"StylePipeline({models}; device={self.device})"


def _copy_folder(source: Path, destination: Path) -> None:
    if destination.exists():
        raise FileExistsError(f"{destination} already exists")
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns(".*"))
