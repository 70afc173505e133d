"""Calibrate the style-transfer loss weights for a loss network: a grid of baseline runs and a contact sheet.

``python -m benchmarks.calibrate_loss_weights [--style-weights 1 3 10 30] [--tv-weights 1000] [--size 192]
[--iterations 120] [--photos chelsea astronaut] [--out reports/calibration]``

For every (photo, example style, style weight, TV weight) the optimisation baseline (L-BFGS-B from the
content image, as the app's Compare tab runs it) optimises the objective of ``PerceptualLossConfig.for_weights``
with the given overrides. It prints a Markdown table of the objective's terms at the end (content, style, TV,
and the style term's fall from the content image), and writes ``contact_sheet.png`` (one row per photo and
style: content | style | one column per weight) and ``results.json``. The loss network is named in all three.

Photos: scikit-image's bundled samples (public domain / CC0, see ``webapp/samples.py``); styles: the
generated examples of ``webapp/samples.py``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw


def _fit(tensor: torch.Tensor, side: int) -> torch.Tensor:
    _, _, h, w = tensor.shape
    scale = side / max(h, w)
    return F.interpolate(tensor, size=(max(8, round(h * scale)), max(8, round(w * scale))), mode="bilinear",
                         antialias=True, align_corners=False).clamp(0, 1)


def _sheet(rows: list[list[Image.Image]], labels: list[str], header: list[str], cell: int) -> Image.Image:
    pad, top = 4, 18
    sheet = Image.new("RGB", (len(header) * (cell + pad) + pad, len(rows) * (cell + pad + top) + top + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for col, text in enumerate(header):
        draw.text((pad + col * (cell + pad), 2), text, fill="black")
    for r, (row, label) in enumerate(zip(rows, labels)):
        y = top + r * (cell + pad + top)
        draw.text((pad, y), label, fill="black")
        for col, image in enumerate(row):
            thumb = image.copy()
            thumb.thumbnail((cell, cell))
            sheet.paste(thumb, (pad + col * (cell + pad), y + top - 4))
    return sheet


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style-weights", type=float, nargs="+", default=[1.0, 3.0, 10.0, 30.0])
    parser.add_argument("--tv-weights", type=float, nargs="+", default=[1000.0])
    parser.add_argument("--content-weight", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--style-size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=120)
    parser.add_argument("--photos", nargs="+", default=["chelsea", "astronaut"])
    parser.add_argument("--styles", nargs="+", default=None, help="example style names (default: all)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="reports/calibration")
    return parser.parse_args(argv)


def _calibrate_one(args: argparse.Namespace, weights: object, out: Path, photo: str, style: str, content: torch.Tensor,
                   style_image: torch.Tensor, style_weight: float, tv_weight: float) -> tuple[dict, Image.Image]:
    """One baseline run at one (style weight, TV weight): its record (also printed) and its output, saved in ``out``."""
    from perceptual_studio.baseline import run_baseline
    from perceptual_studio.imaging import tensor_to_image
    from perceptual_studio.losses import PerceptualLoss, PerceptualLossConfig

    config = PerceptualLossConfig.for_weights(weights, style_weight=style_weight, tv_weight=tv_weight,
                                              content_weight=args.content_weight)
    loss = PerceptualLoss(config, weights=weights)
    loss.set_style(style_image)
    with torch.no_grad():
        start_terms = loss(content, content).as_floats()
    started = time.perf_counter()
    result = run_baseline(content, style_image, loss, iterations=args.iterations)
    with torch.no_grad():
        terms = loss(result.image, content).as_floats()
    record = {"photo": photo, "style": style, "style_weight": style_weight, "tv_weight": tv_weight,
              "content_weight": args.content_weight, "terms": terms,
              "style_fall": start_terms["style"] / max(terms["style"], 1e-12),
              "seconds": time.perf_counter() - started, "loss_network": weights.identity}
    name = f"{photo}-{style}-sw{style_weight:g}-tv{tv_weight:g}.png"
    tensor_to_image(result.image).save(out / name)
    print(f"{photo:10} {style:14} style_weight={style_weight:<6g} tv={tv_weight:<6g} content={terms['content']:.3g} "
          f"style={terms['style']:.3g} tv={terms['tv']:.3g} style fell {record['style_fall']:.0f}x "
          f"({record['seconds']:.0f} s)", flush=True)
    return record, tensor_to_image(result.image)


def _write_outputs(args: argparse.Namespace, weights: object, out: Path, rows: list[list[Image.Image]],
                   labels: list[str], grid: list[tuple[float, float]], results: list[dict]) -> None:
    """``contact_sheet.png`` (labelled with the loss network) and ``results.json``."""
    header = ["content", "style"] + [f"sw={s:g} tv={t:g}" for s, t in grid]
    sheet = _sheet(rows, labels, header, cell=args.size)
    ImageDraw.Draw(sheet).text((4, sheet.height - 14), f"loss network: {weights.identity}", fill="black")
    sheet.save(out / "contact_sheet.png")
    (out / "results.json").write_text(json.dumps({"loss_network": weights.identity, "source": weights.source,
                                                  "iterations": args.iterations, "size": args.size,
                                                  "results": results}, indent=2))


def _print_table(results: list[dict], loss_network: str) -> None:
    print(f"\n| photo | style | style weight | TV weight | content | style | TV | style fell |  (loss network `{loss_network}`)")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        t = r["terms"]
        print(f"| {r['photo']} | {r['style']} | {r['style_weight']:g} | {r['tv_weight']:g} | {t['content']:.3g} | "
              f"{t['style']:.3g} | {t['tv']:.3g} | {r['style_fall']:.0f}x |")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    from perceptual_studio.imaging import image_to_tensor, load_image, tensor_to_image
    from perceptual_studio.networks.vgg import default_vgg16_weights
    from perceptual_studio.webapp import samples

    weights = default_vgg16_weights()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    photo_paths = dict(zip(samples.EXAMPLE_PHOTOS, samples.example_photos()))
    style_paths = dict(zip(samples.EXAMPLE_STYLES, samples.example_styles()))
    styles = args.styles or list(style_paths)
    grid = list(itertools.product(args.style_weights, args.tv_weights))
    results, rows, labels = [], [], []
    print(f"loss network: {weights.identity} ({weights.source}); {args.iterations} L-BFGS iterations at {args.size} px")
    for photo, style in itertools.product(args.photos, styles):
        content = _fit(image_to_tensor(load_image(photo_paths[photo])), args.size)
        style_image = _fit(image_to_tensor(load_image(style_paths[style])), args.style_size)
        row = [tensor_to_image(content), tensor_to_image(style_image)]
        for style_weight, tv_weight in grid:
            record, image = _calibrate_one(args, weights, out, photo, style, content, style_image, style_weight, tv_weight)
            results.append(record)
            row.append(image)
        rows.append(row)
        labels.append(f"{photo} / {style}")
    _write_outputs(args, weights, out, rows, labels, grid, results)
    _print_table(results, weights.identity)
    print(f"\ncontact sheet: {out / 'contact_sheet.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
