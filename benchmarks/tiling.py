"""Time and peak memory of a large stylization (3840x2160 by default), whole vs tiled (networks/tiling.py).

``python -m benchmarks.tiling [--size 3840x2160] [--tiles 512 1024 2048] [--device cpu] [--json PATH]``

Each variant runs in a fresh subprocess, so its peak resident memory (``VmHWM``, benchmarks/memory.py: the
whole process: interpreter, torch, model, image, output) is its own; on CUDA the peak allocated device memory is reported
too. Variants: the whole image in one :func:`networks.inference.run_network` call; :func:`run_network_tiled`
(whole-image instance-norm statistics) per tile size; and, for contrast, :func:`run_tiled` with each tile
normalised on its own statistics (style drift). PSNR is against the one-call output.
The network is the full ``johnson-style`` network fitted for a few Adam steps (benchmarks/speed.py), so its
output is not flat; speed and memory do not depend on the weights. Target (the project's): a
3840x2160 stylization within 4 GB peak memory on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.common import device_name, loadavg, psnr, write_json
from perceptual_studio.imaging.io import image_to_tensor
from perceptual_studio.imaging.sample_photos import load_sample_photo

ROOT = Path(__file__).resolve().parents[1]
TARGET_PEAK_GB = 4.0


def test_image(width: int, height: int) -> torch.Tensor:
    """scikit-image's ``coffee`` photo (CC0) resized to ``width`` x ``height``: (1, 3, H, W) in [0, 1]."""
    image = image_to_tensor(load_sample_photo("coffee"))
    return F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1)


def child(args: argparse.Namespace) -> int:
    """One variant in this process; prints a JSON line and saves the output as float16 for the PSNR."""
    from benchmarks.memory import current_rss_mb, peak_rss_mb
    from perceptual_studio.networks import StyleTransformNet
    from perceptual_studio.networks.inference import choose_plan, run_network
    from perceptual_studio.networks.tiling import run_network_tiled, run_tiled

    model = StyleTransformNet()
    model.load_state_dict(torch.load(args.weights, weights_only=True))
    model.eval()
    plan = choose_plan(model, args.device, args.precision)
    x = test_image(args.width, args.height)
    cuda = plan.device.type == "cuda"
    if args.variant == "whole":
        def call() -> torch.Tensor:
            return run_network(model, x, plan).cpu()
    elif args.variant == "tiled":
        def call() -> torch.Tensor:
            return run_network_tiled(model, x, plan, tile=args.tile)
    else:
        def call() -> torch.Tensor:
            return run_tiled(lambda t: run_network(model, t, plan).cpu(), x, tile=args.tile, overlap=64)
    before = current_rss_mb()
    if cuda:
        torch.cuda.reset_peak_memory_stats(plan.device)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = call()
        if cuda:
            torch.cuda.synchronize(plan.device)
        times.append(time.perf_counter() - start)
    result = {
        "seconds": sorted(times)[len(times) // 2], "times": times, "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before, "plan": plan.describe(),
        "device_peak_mb": torch.cuda.max_memory_allocated(plan.device) / 2**20 if cuda else None,
    }
    torch.save(out.half(), args.out)
    print(json.dumps(result))
    return 0


def run_variant(variant: str, tile: int, args: argparse.Namespace, weights: Path, work: Path) -> dict:
    out = work / f"{variant}-{tile}.pt"
    command = [sys.executable, "-m", "benchmarks.tiling", "--child", variant, "--tile", str(tile), "--weights", str(weights),
               "--width", str(args.width), "--height", str(args.height), "--precision", args.precision,
               "--repeats", str(args.repeats), "--out", str(out)] + (["--device", args.device] if args.device else [])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        return {"variant": variant, "tile": tile, "error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row.update(variant=variant, tile=tile, output=str(out))
    return row


def measure(args: argparse.Namespace) -> dict:
    from benchmarks.speed import fitted_style_network

    work = Path(tempfile.mkdtemp(prefix="tiling-bench-"))
    weights = work / "style.pt"
    torch.save(fitted_style_network().state_dict(), weights)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    results = {"size": f"{args.width}x{args.height}", "device": str(device), "device_name": device_name(device),
               "threads": torch.get_num_threads(), "torch": torch.__version__, "loadavg_start": loadavg(), "rows": []}
    variants = ([("whole", 0)] if not args.skip_whole else []) + [("tiled", t) for t in args.tiles]
    variants += [("naive", t) for t in args.naive_tiles]
    for variant, tile in variants:
        results["rows"].append(run_variant(variant, tile, args, weights, work))
    results["loadavg_end"] = loadavg()
    reference = next((r for r in results["rows"] if r["variant"] == "whole" and "error" not in r), None)
    if reference is not None:
        ref = torch.load(reference["output"], weights_only=True)
        for row in results["rows"]:
            if "error" not in row and row is not reference:
                row["psnr_vs_whole_db"] = psnr(torch.load(row["output"], weights_only=True), ref)
    for row in results["rows"]:
        if "output" in row:
            Path(row.pop("output")).unlink(missing_ok=True)
    return results


LABELS = {"whole": "whole image, one run_network call", "tiled": "run_network_tiled (whole-image statistics)",
          "naive": "run_tiled, per-tile statistics (style drift)"}


def format_markdown(results: dict) -> str:
    lines = [
        f"Stylization of a {results['size']} image, {results['device']} ({results['device_name']}), torch "
        f"{results['torch']}, {results['threads']} threads; load average {results['loadavg_start']} at start, "
        f"{results['loadavg_end']} at end. Peak memory: the whole process's peak resident set (each variant in "
        f"its own process).",
        "",
        "| variant | tile (image px) | time (s) | peak RSS (GB) | RSS before the call (GB) | device peak (GB) | PSNR vs whole (dB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["rows"]:
        label = LABELS[row["variant"]]
        tile = str(row["tile"]) if row["variant"] != "whole" else "-"
        if "error" in row:
            lines.append(f"| {label} | {tile} | failed: {row['error']} | | | | |")
            continue
        device_peak = f"{row['device_peak_mb'] / 1024:.2f}" if row.get("device_peak_mb") is not None else "-"
        psnr = row.get("psnr_vs_whole_db")
        lines.append(f"| {label} | {tile} | {row['seconds']:.2f} | {row['peak_rss_mb'] / 1024:.2f} | "
                     f"{row['rss_before_mb'] / 1024:.2f} | {device_peak} | {'reference' if psnr is None else f'{psnr:.1f}'} |")
    tiled = [r for r in results["rows"] if r["variant"] == "tiled" and "error" not in r]
    if tiled:
        worst = max(tiled, key=lambda r: r["peak_rss_mb"])
        verdict = "met" if worst["peak_rss_mb"] / 1024 <= TARGET_PEAK_GB else "NOT met"
        sizes = ", ".join(f"{r['tile']}: {r['peak_rss_mb'] / 1024:.2f} GB in {r['seconds']:.1f} s" for r in tiled)
        lines += ["", f"Target: {results['size']} within {TARGET_PEAK_GB:g} GB peak memory, tiled: {verdict} (tile {sizes})."]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tiling", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="3840x2160", help="WIDTHxHEIGHT")
    parser.add_argument("--tiles", type=int, nargs="*", default=[512, 1024, 2048], help="run_network_tiled tile sizes")
    parser.add_argument("--naive-tiles", type=int, nargs="*", default=[1024], help="run_tiled (per-tile statistics) tile sizes")
    parser.add_argument("--skip-whole", action="store_true", help="skip the one-call run (it needs the most memory)")
    parser.add_argument("--device", default=None, help="cpu, cuda... (default: settings.device())")
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per variant (median reported)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", choices=("whole", "tiled", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--tile", type=int, default=1024, help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--height", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.width is None or args.height is None:
        try:
            args.width, args.height = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            parser.error(f"--size must be WIDTHxHEIGHT, got {args.size!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if args.child:
        args.variant = args.child
        return child(args)
    results = measure(args)
    print(format_markdown(results))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
