"""The Stylize journey in the web app: :class:`pipelines.style.StylePipeline` with the page's words around it.

The pipeline does the work (sizes, the network pass, strength, colours, blends, the network size); this
module turns the UI's plain values into pipeline calls and a result into Markdown.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from threading import Lock
from typing import Sequence

import numpy as np
from PIL import Image

from perceptual_studio import settings
from perceptual_studio.imaging import load_image
from perceptual_studio.pipelines.common import resize_longest
from perceptual_studio.pipelines.flow_blend import FlowGuidedBlend
from perceptual_studio.pipelines.style import (  # noqa: F401 - the handlers' names for the pipeline's types
    BlendPart,
    NetworkChoice,
    StylePipeline,
    StyleResult,
    blend,
    choose_network,
    normalise_blend_weights,
    preserve_colours,
)

from .common import identity_note

logger = logging.getLogger(__name__)

MAX_BLEND_PARTS = 4  # the page offers two to four; the server holds every caller to it

NETWORK_CHOICES: dict[str, str] = {
    "auto": "Auto: the fast variant on a CPU, the paper-size network on a GPU",
    "fast": "Fast variant (a smaller network trained to stand in for the paper-size one)",
    "paper": "Paper-size network (Johnson et al.'s architecture)",
}


class StylizeOutput(StyleResult):
    """A Stylize result (a single model or a blend) and what the page says about it."""

    @classmethod
    def of(cls, result: StyleResult) -> StylizeOutput:
        return cls(**vars(result))

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


def stylize(
    content: object,
    model_id: str | None,
    output_size: int = 512,
    preserve_original_colours: bool = False,
    strength: float = 1.0,
    style_scale: float = 1.0,
    network: str = "auto",
) -> StylizeOutput:
    """Stylise ``content`` (any image source) with style model ``model_id``, or its fast variant (``network``)."""
    pipe = StylePipeline.from_pretrained(_model_id(model_id), device=settings.device(), network=network)
    return StylizeOutput.of(pipe(content, output_size, strength, preserve_original_colours, style_scale,
                                 return_result=True))


def _model_id(model_id: str | None) -> str | None:
    return str(model_id).strip() if model_id is not None else None


def blended_network(model_ids: Sequence[str], weights: Sequence[float]) -> StylePipeline:
    """The pipeline of style models ``model_ids`` mixed with ``weights`` (its ``network`` and ``parts``)."""
    ids = [str(model_id).strip() for model_id in model_ids]
    if len(ids) > MAX_BLEND_PARTS:
        raise ValueError(f"A blend mixes at most {MAX_BLEND_PARTS} style models, got {len(ids)}.")
    normalise_blend_weights(ids, weights)  # one weight per model, checked before pairing them
    return StylePipeline.blend(list(zip(ids, weights)), device=settings.device())


def stylize_blend(
    content: object,
    model_ids: Sequence[str],
    weights: Sequence[float],
    output_size: int = 512,
    preserve_original_colours: bool = False,
    strength: float = 1.0,
    style_scale: float = 1.0,
) -> StylizeOutput:
    """Stylise ``content`` with a blend of style models of one architecture (weights normalised to sum to 1)."""
    from perceptual_studio.pipelines.style import check_controls

    check_controls(int(output_size), float(style_scale))  # before any model is loaded
    pipe = blended_network(model_ids, weights)
    return StylizeOutput.of(pipe(content, output_size, strength, preserve_original_colours, style_scale,
                                 return_result=True))


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


# ------------------------------------------------------------------------------------------ the webcam

_STREAM_PIPELINES: OrderedDict[tuple[str, str, str], StylePipeline] = OrderedDict()
_STREAM_LOCK = Lock()
STREAM_PIPELINES_KEPT = 4  # a few streams' models; each is also in the registry's bounded model cache


def stream_pipeline(model_id: str, network: str = "auto") -> StylePipeline:
    """The pipeline a webcam stream runs: resolved on its first frame, then reused (no registry scan per frame)."""
    key = (model_id, str(network), str(settings.device()))
    with _STREAM_LOCK:
        if key in _STREAM_PIPELINES:
            _STREAM_PIPELINES.move_to_end(key)
            return _STREAM_PIPELINES[key]
    pipe = StylePipeline.from_pretrained(model_id, device=settings.device(), network=network)
    with _STREAM_LOCK:
        _STREAM_PIPELINES[key] = pipe
        while len(_STREAM_PIPELINES) > STREAM_PIPELINES_KEPT:
            _STREAM_PIPELINES.popitem(last=False)
    return pipe


def forget_stream_pipelines() -> None:
    """Drop the streams' pipelines (after a model changes on disk, and between tests)."""
    with _STREAM_LOCK:
        _STREAM_PIPELINES.clear()


def stylize_frame(frame: np.ndarray | None, model_id: str | None, size: int = 256,
                  network: str = "auto", steady: FlowGuidedBlend | None = None) -> np.ndarray | None:
    """One webcam frame through the model (or its fast variant, ``network``) at ``size`` px (longest side):
    the live stream's handler. ``steady``: the stream's own blend with its previous frame along the motion
    (``pipelines.flow_blend``), or None.

    No model selected: the frame is returned unchanged, so the preview keeps running while the user picks one.
    """
    if frame is None:
        return None
    if not model_id:
        return frame
    pipe = stream_pipeline(str(model_id).strip(), network)
    if steady is None:
        return np.asarray(pipe.frame(frame, int(size)))
    content = resize_longest(load_image(frame), int(size))
    stylised = pipe.frame(content, int(size))
    if stylised.size != content.size:
        stylised = stylised.resize(content.size, Image.Resampling.BICUBIC)
    return steady(np.asarray(content.convert("RGB")), np.asarray(stylised.convert("RGB")))
