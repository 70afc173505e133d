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
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

import settings
from imaging import image_to_tensor, load_image, tensor_to_image
from networks.inference import infer

from .common import (
    check_output_size,
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


@dataclass
class StylizeOutput:
    image: Image.Image
    seconds: float  # the network pass alone
    total_seconds: float  # decoding, resizing and post-processing included
    device: str
    plan: str
    model_id: str
    style: str | None
    loss_network: str | None
    network_size: tuple[int, int]

    def markdown(self) -> str:
        width, height = self.image.size
        nw, nh = self.network_size
        return (
            f"**{width} x {height} px in {self.seconds:.3f} s** (network pass; {self.total_seconds:.2f} s in all) "
            f"on `{self.device}` ({self.plan}).  \n"
            f"Model `{self.model_id}` (style *{self.style or '?'}*), {identity_note(self.loss_network)}.  \n"
            f"The network saw {nw} x {nh} px."
        )


def stylize(
    content: object,
    model_id: str | None,
    output_size: int = 512,
    preserve_original_colours: bool = False,
    strength: float = 1.0,
    style_scale: float = 1.0,
) -> StylizeOutput:
    """Stylise ``content`` (any image source) with registry style model ``model_id``."""
    started = time.perf_counter()
    output_size, style_scale = int(output_size), float(style_scale)
    low, high = STYLE_SCALE_RANGE
    if not low <= style_scale <= high:
        raise ValueError(f"style scale must be between {low} and {high}, got {style_scale}")
    if output_size < MIN_NETWORK_SIDE:
        raise ValueError(f"output size must be at least {MIN_NETWORK_SIDE} px, got {output_size}")
    image = load_image(content)
    model = load_registry_model(model_id, "style-transfer")
    target = resize_longest(image, output_size)
    check_output_size(*target.size)
    network_side = max(MIN_NETWORK_SIDE, round(output_size * style_scale))
    network_input = resize_longest(image, network_side)
    if min(network_input.size) < 8:
        raise ValueError(f"the image is too narrow ({image.width} x {image.height}) for this style scale")
    check_output_size(*network_input.size, what="The network's input")
    run = infer(model.network, image_to_tensor(network_input), whole_image_tile=style_tile())
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
        model_id=model.label,
        style=model.config.style,
        loss_network=model.config.training.loss_network,
        network_size=network_input.size,
    )


def stylize_frame(frame: np.ndarray | None, model_id: str | None, size: int = 256) -> np.ndarray | None:
    """One webcam frame through the model at ``size`` px (longest side): the live stream's handler.

    No model selected: the frame is returned unchanged, so the preview keeps running while the user picks one.
    """
    if frame is None:
        return None
    if not model_id:
        return frame
    image = resize_longest(load_image(frame), int(size))
    model = load_registry_model(model_id, "style-transfer")
    with torch.inference_mode():
        run = infer(model.network, image_to_tensor(image))
    return np.asarray(tensor_to_image(run.output))
