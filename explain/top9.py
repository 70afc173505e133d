"""Top-9 view (Zeiler & Fergus, ECCV 2014, Sec. 4 and Fig. 2): for a layer's feature maps, the 9 strongest
activations over a set of images, each projected to pixels beside the image patch that caused it.

The patch is the unit's analytic receptive field. Deviation: with only a handful of images, the 9 come
from all positions of all images, not one per image as in the paper; by default only local maxima (3x3)
count, so one blob does not fill the 9 slots with near-copies. Non-positive activations are never shown.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from perceptual_studio.imaging.io import tensor_to_image

from .deconvnet import Deconvnet, Layer, ReceptiveField, to_display

Progress = Callable[..., object]

TOP_K = 9
DEFAULT_CHANNELS = 4
_PROJECTION_BATCH = 12  # signals projected together; bounds memory at high resolution
_EMPTY = (40, 40, 40)
_BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class TopActivation:
    image_index: int
    y: int  # position in the feature map
    x: int
    value: float


@dataclass
class Top9Result:
    layer: str
    receptive_field: ReceptiveField
    image_names: list[str]
    channels: list[int]
    activations: dict[int, list[TopActivation]]  # channel -> strongest first
    grid: Image.Image = field(repr=False)


def report(progress: Progress | None, fraction: float, desc: str) -> None:
    """Call a ``gr.Progress``-like callback, ``progress(fraction, desc=...)``, if there is one."""
    if progress is not None:
        progress(fraction, desc=desc)


def top_activations(maps: torch.Tensor, k: int = TOP_K, peaks_only: bool = True) -> list[TopActivation]:
    """The ``k`` largest positive values of one feature map over images, ``maps`` of shape (N, H, W).

    With ``peaks_only`` a value counts only if no 3x3 neighbour is larger. Ties keep image/raster order.
    """
    if maps.ndim != 3:
        raise ValueError(f"expected maps of shape (N, H, W), got {tuple(maps.shape)}")
    maps = maps.detach().float()
    eligible = maps > 0
    if peaks_only:
        eligible &= maps >= F.max_pool2d(maps.unsqueeze(1), 3, stride=1, padding=1).squeeze(1)
    flat = torch.where(eligible, maps, torch.full_like(maps, -torch.inf)).flatten()
    order = torch.sort(flat, descending=True, stable=True).indices[:k]
    height, width = maps.shape[1:]
    found = []
    for index in order.tolist():
        if flat[index] == -torch.inf:
            break
        image_index, rest = divmod(index, height * width)
        y, x = divmod(rest, width)
        found.append(TopActivation(image_index, y, x, float(flat[index])))
    return found


def _crop(image: torch.Tensor, box: tuple[int, int, int, int], fill: float) -> torch.Tensor:
    """The (C, h, w) crop of ``image`` (C, H, W) at ``box``, filled with ``fill`` where it leaves the image."""
    top, left, bottom, right = box
    out = torch.full((image.shape[0], bottom - top, right - left), fill, dtype=image.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(bottom, image.shape[1]), min(right, image.shape[2])
    if y1 > y0 and x1 > x0:
        out[:, y0 - top : y1 - top, x0 - left : x1 - left] = image[:, y0:y1, x0:x1]
    return out


def _tile(crop: torch.Tensor, tile: int) -> Image.Image:
    image = tensor_to_image(crop)
    # Small fields are magnified pixel by pixel, so the viewer sees their true resolution.
    resample = Image.Resampling.NEAREST if image.width < tile else Image.Resampling.LANCZOS
    return image.resize((tile, tile), resample)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _compose(
    blocks: list[tuple[str, list[Image.Image], list[Image.Image]]], tile: int, k: int
) -> Image.Image:
    """One block per feature map: a title, then projections (left) and image patches (right), 3 per row."""
    columns = 3
    rows = -(-k // columns)
    gap, margin, between, title_h = 2, 8, 16, 18
    grid_w = columns * tile + (columns - 1) * gap
    grid_h = rows * tile + (rows - 1) * gap
    width = 2 * margin + 2 * grid_w + between
    header_h = title_h + 4
    height = margin + header_h + len(blocks) * (title_h + grid_h + margin) + margin // 2
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = _font(12)
    draw.text((margin, margin), "projection (deconvnet)", fill=(0, 0, 0), font=font)
    draw.text((margin + grid_w + between, margin), "image patch (receptive field)", fill=(0, 0, 0), font=font)
    y = margin + header_h
    for title, projections, patches in blocks:
        draw.text((margin, y), title, fill=(90, 90, 90), font=font)
        y += title_h
        for side, tiles in enumerate((projections, patches)):
            x0 = margin + side * (grid_w + between)
            for slot in range(k):
                r, c = divmod(slot, columns)
                xy = (x0 + c * (tile + gap), y + r * (tile + gap))
                if slot < len(tiles):
                    canvas.paste(tiles[slot], xy)
                else:
                    draw.rectangle([xy, (xy[0] + tile - 1, xy[1] + tile - 1)], fill=_EMPTY)
        y += grid_h + margin
    return canvas


def top9(
    deconv: Deconvnet,
    images: torch.Tensor,
    layer: Layer,
    channels: Sequence[int] | None = None,
    *,
    n_channels: int = DEFAULT_CHANNELS,
    k: int = TOP_K,
    peaks_only: bool = True,
    image_names: Sequence[str] | None = None,
    tile: int = 64,
    progress: Progress | None = None,
) -> Top9Result:
    """The top-``k`` view of ``layer`` over ``images`` (N, 3, H, W) in [0, 1], inside ``with deconv``.

    ``channels`` default: the ``n_channels`` feature maps with the largest activation over the images.
    """
    names = list(image_names) if image_names is not None else [f"image {i}" for i in range(images.shape[0])]
    if len(names) != images.shape[0]:
        raise ValueError(f"{len(names)} image names for {images.shape[0]} images")
    layer_name = deconv.layer_names[deconv.index(layer)]
    report(progress, 0.05, f"forward pass to {layer_name}")
    acts = deconv.forward(images, layer)
    n_maps = acts.shape[1]
    if channels is None:
        strongest = acts.amax(dim=(0, 2, 3))
        channels = torch.sort(strongest, descending=True, stable=True).indices[: min(n_channels, n_maps)].tolist()
    channels = [int(c) for c in channels]
    bad = [c for c in channels if not 0 <= c < n_maps]
    if bad:
        raise ValueError(f"feature map(s) {bad} do not exist: {layer_name} has maps 0..{n_maps - 1}")
    found = {c: top_activations(acts[:, c], k, peaks_only) for c in channels}

    selections = [(c, a) for c in channels for a in found[c]]
    projections: list[torch.Tensor] = []
    for start in range(0, len(selections), _PROJECTION_BATCH):
        chunk = selections[start : start + _PROJECTION_BATCH]
        report(progress, 0.1 + 0.8 * start / max(len(selections), 1), f"projecting {layer_name} activations to pixels")
        signal = torch.zeros((len(chunk), *acts.shape[1:]), dtype=acts.dtype, device=acts.device)
        for row, (c, a) in enumerate(chunk):
            signal[row, c, a.y, a.x] = a.value
        projections.extend(deconv.down(signal, [a.image_index for _, a in chunk]).cpu())

    report(progress, 0.95, "drawing the grid")
    rf = deconv.receptive_field(layer)
    pictures = images.detach().float().cpu()
    blocks = []
    index = 0
    for c in channels:
        projection_tiles, patch_tiles = [], []
        for a in found[c]:
            box = rf.box(a.y, a.x)
            projection_tiles.append(_tile(to_display(_crop(projections[index], box, 0.0).unsqueeze(0))[0], tile))
            patch_tiles.append(_tile(_crop(pictures[a.image_index], box, 0.5), tile))
            index += 1
        top = f"{found[c][0].value:.3g}" if found[c] else "none (never active)"
        blocks.append((f"{layer_name}, map {c}: strongest {top}", projection_tiles, patch_tiles))
    grid = _compose(blocks, tile, k)
    report(progress, 1.0, "done")
    return Top9Result(layer_name, rf, names, channels, found, grid)
