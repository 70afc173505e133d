"""The Super-resolution journey in the web app: :class:`pipelines.superres.SuperResolutionPipeline` with the
page's words around it (the table, the notes), the image slider's pair and the zoomed crops."""
from __future__ import annotations

import logging

from PIL import Image, ImageDraw, ImageFont

from perceptual_studio import settings
from perceptual_studio.pipelines.superres import (  # noqa: F401 - the handlers' names for the pipeline's
    BICUBIC,
    BLEND,
    FEATURE,
    METHODS,
    MIN_INPUT_SIDE,
    ORIGINAL,
    OVERLAP,
    PIXEL,
    SCALES,
    TILE,
    ProgressFn,
    SuperResolutionPipeline,
    SuperResolutionResult,
    interpolate_models,
    parse_scale,
)

from .common import identity_note

logger = logging.getLogger(__name__)

MODES: dict[str, str] = {
    "original": "I have the high-resolution original",
    "as_is": "Upscale this image as is",
}


class SROutput(SuperResolutionResult):
    """A Super-resolution result and what the page says about it."""

    @classmethod
    def of(cls, result: SuperResolutionResult) -> SROutput:
        return cls(**vars(result))

    def markdown(self) -> str:
        (w, h), (ow, oh) = self.input_size, self.output_size
        if self.mode == "original":
            head = (f"x{self.scale}: your original, degraded as in training (Gaussian blur sigma {self.blur_sigma:g}, "
                    f"bicubic / {self.scale}) to {w} x {h} px, then upscaled back to {ow} x {oh} px on `{self.device}`.")
        else:
            head = f"x{self.scale}: {w} x {h} px upscaled to {ow} x {oh} px on `{self.device}`."
        lines = [head, "", *self._table(), ""]
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

    def _table(self) -> list[str]:
        unmatched = bool(self.psnr_unmatched)
        rows = ["| method | model | time | PSNR (Y) | SSIM (Y) |" + (" PSNR before matching |" if unmatched else ""),
                "|---|---|---:|---:|---:|" + ("---:|" if unmatched else "")]
        for method in METHODS:
            if method not in self.images or method == ORIGINAL:
                continue
            model = f"a = {self.blend:g} between the two" if method == BLEND else self.models.get(method, "—")
            seconds = f"{self.seconds[method]:.3f} s" if method in self.seconds else "—"
            scores = "{:.2f} dB | {:.4f}".format(*self.metrics[method]) if method in self.metrics else "— | —"
            if unmatched:
                before = self.psnr_unmatched.get(method)
                scores += f" | {before:.2f} dB" if before is not None else " | —"
            rows.append(f"| {method} | {model} | {seconds} | {scores} |")
        return rows


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
    """Upscale ``image`` x``scale`` with bicubic and whichever of the two models are given."""
    mode = {label: key for key, label in MODES.items()}.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    pipe = SuperResolutionPipeline.from_pretrained(pixel=pixel_model_id or None, feature=feature_model_id or None,
                                                   scale=parse_scale(scale), device=settings.device(), tile=tile,
                                                   overlap=overlap)
    out = SROutput.of(pipe(image, original=mode == "original", histogram_match=histogram_match, blend=blend,
                           return_result=True, progress=progress))
    missing = [m for m in (PIXEL, FEATURE) if m not in pipe.models]
    if missing:
        out.notes.append(
            f"No {' or '.join(missing)} model chosen for x{pipe.scale}"
            + (": the perception-distortion blend needs both." if pipe.models else
               ": only bicubic is shown. Train one with `python -m train.sr`, or pull one in the Models tab.")
        )
    return out


def upscale(image: object, model_id: str | None, scale: int = 4, *, histogram_match: bool = False, tile: int = TILE,
            overlap: int = OVERLAP) -> tuple[Image.Image, float, str]:
    """One image x``scale`` with one model (bicubic when ``model_id`` is None): (result, seconds, method label).

    The batch command line's path; the image is the low-resolution input ("upscale as is")."""
    pipe = SuperResolutionPipeline.from_pretrained(model_id or None, scale=parse_scale(scale),
                                                   device=settings.device(), tile=tile, overlap=overlap)
    result = pipe(image, histogram_match=histogram_match, return_result=True)
    method = next(m for m in result.images if m != BICUBIC) if pipe.models else BICUBIC
    label = pipe.models[method].label if pipe.models else BICUBIC
    return result.images[method], result.seconds[method], label


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
