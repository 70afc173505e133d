"""Inference speed and memory of the transformation networks per size and device, against the arithmetic floor.

``python -m benchmarks.inference [--device cpu|cuda] [--sizes 256 512 1024] [--batch N] [--memory] [--json PATH]``

For each network and size: the median (and min) seconds of :func:`networks.inference.run_network` under the
plan :func:`choose_plan` picks (timed round-robin with the float32 eager model, after a warm-up), the PSNR of
its output against float32 eager, the network's FLOPs (``torch.utils.flop_counter`` on the meta device; a
multiply-add counts 2), and the *arithmetic floor*: FLOPs divided by the device's measured peak, a large
matrix multiply in the plan's dtype. "of peak" is floor / median: how close the network gets to the limit.
Memory: on CUDA the peak allocated during the call; on CPU (``--memory``) each row runs once more in a fresh
subprocess and reports its peak resident set (``VmHWM``, benchmarks/memory.py: interpreter + torch + model +
tensors) and how much the call added to it.

Networks: ``johnson-style`` (paper widths) and ``johnson-sr`` x4 (256 -> 1024 px) and x8 (128 -> 1024 px),
fitted for a few Adam steps so the PSNR is meaningful (speed does not depend on the weights). The project's
speed targets are checked at the end: 2-core CPU: style 512x512 <= 0.15 s, SR x4 from 256x256 <=
0.5 s; one H100: style 1024x1024 <= 2 ms, 512x512 >= 1000 images/s in batches. With ``--cuda-graphs`` (CUDA)
the opt-in CUDA-graph plan is timed as well.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.common import device_name, loadavg, psnr, sync, write_json

ROOT = Path(__file__).resolve().parents[1]

TARGETS_CPU = {"style 512x512": 0.15, "SR x4 256->1024": 0.5}
TARGETS_GPU = {"style 1024x1024": 0.002}
TARGET_GPU_BATCH_IMAGES_PER_S = 1000.0


def network_flops(model: nn.Module, shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on an input of ``shape`` (counted on the meta device: nothing is computed)."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(model).eval().to("meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.empty(shape, device="meta"))
    return int(counter.get_total_flops())


def peak_flops(device: torch.device, dtype: torch.dtype | None, repeats: int = 5) -> float:
    """FLOP/s of a large square matrix multiply in ``dtype`` (None = float32): the device's practical peak."""
    dtype = dtype or torch.float32
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times)


def fitted_sr_network(scale: int, size: int = 96, steps: int = 20, seed: int = 0, **kwargs) -> nn.Module:
    """A ``johnson-sr`` network fitted for a few Adam steps to undo a bicubic downscale of a photo."""
    from benchmarks.speed import fit_network, photo
    from perceptual_studio.networks import SuperResolutionNet

    torch.manual_seed(seed)
    high = photo("astronaut", size)
    low = F.interpolate(high, scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    return fit_network(SuperResolutionNet(scale=scale, **kwargs), low, high, steps)


def _workloads(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """(label, network kind, input shape) rows; the kind names a network built once per run."""
    rows = [{"label": f"style {s}x{s}", "net": "style", "shape": (1, 3, s, s)} for s in args.sizes]
    if args.batch > 1:
        s = args.batch_size_px
        rows.append({"label": f"style {s}x{s}, batch {args.batch}", "net": "style", "shape": (args.batch, 3, s, s)})
    for scale, low in ((4, args.sr_low), (8, args.sr_low // 2)):
        if low >= 16:
            rows.append({"label": f"SR x{scale} {low}->{low * scale}", "net": f"sr{scale}", "shape": (1, 3, low, low)})
    return rows


def _input(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    from benchmarks.speed import photo

    image = photo("coffee", max(shape[-2:]))[..., : shape[-2], : shape[-1]]
    return image.repeat(shape[0], 1, 1, 1).to(device)


def memory_child(kind: str, shape: tuple[int, ...], device: str | None, precision: str) -> dict:
    """Run one workload twice in this (fresh) process: the resident set before, and the peak after."""
    from benchmarks.memory import current_rss_mb, peak_rss_mb
    from perceptual_studio.networks import StyleTransformNet, SuperResolutionNet
    from perceptual_studio.networks.inference import choose_plan, run_network

    torch.manual_seed(0)
    model = StyleTransformNet() if kind == "style" else SuperResolutionNet(scale=int(kind[2:]))
    model.eval()
    plan = choose_plan(model, device, precision)
    x = _input(shape, plan.device)
    before = current_rss_mb()
    for _ in range(2):
        run_network(model, x, plan)
    return {"peak_rss_mb": peak_rss_mb(), "rss_before_mb": before}


def _memory_in_subprocess(row: dict, args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "benchmarks.inference", "--memory-child", row["net"],
               "--memory-shape", *map(str, row["shape"]), "--precision", args.precision]
    if args.device:
        command += ["--device", args.device]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        return {"memory_error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(args: argparse.Namespace) -> dict:
    from benchmarks.speed import fitted_style_network, time_interleaved
    from perceptual_studio.networks.inference import choose_plan, run_network

    device = torch.device(args.device) if args.device else None
    style = fitted_style_network(steps=args.fit_steps)
    nets: dict[str, nn.Module] = {"style": style}
    plans = {"style": choose_plan(style, device, args.precision)}
    device = plans["style"].device
    for scale in (4, 8):
        nets[f"sr{scale}"] = fitted_sr_network(scale, steps=args.fit_steps // 2)
        plans[f"sr{scale}"] = choose_plan(nets[f"sr{scale}"], device, args.precision)
    references = {k: copy.deepcopy(v).to(device).eval() for k, v in nets.items()}
    peak = peak_flops(device, plans["style"].dtype)
    results = {
        "device": str(device), "device_name": device_name(device), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "plan": plans["style"].describe(), "repeats": args.repeats,
        "peak_flops": peak, "peak_dtype": str(plans["style"].dtype or torch.float32).removeprefix("torch."),
        "loadavg_start": loadavg(), "rows": [],
    }
    for row in _workloads(args, device):
        model, plan, reference = nets[row["net"]], plans[row["net"]], references[row["net"]]
        x = _input(row["shape"], device)
        fns = {"fast": lambda: run_network(model, x, plan)}
        if not args.skip_float32:
            fns["float32"] = lambda: reference(x)
        graphs = replace(plan, cuda_graphs=True) if args.cuda_graphs and device.type == "cuda" else None
        if graphs is not None:
            fns["graphs"] = lambda: run_network(model, x, graphs)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        with torch.inference_mode():
            times = time_interleaved(fns, args.repeats, device)
            out = run_network(model, x, plan)
            quality = psnr(out, reference(x))
        flops = network_flops(model, row["shape"])
        median = statistics.median(times["fast"])
        entry = {**row, "shape": list(row["shape"]), "median_s": median, "min_s": min(times["fast"]), "times": times["fast"],
                 "images_per_s": row["shape"][0] / median, "flops": flops, "floor_s": flops / peak,
                 "of_peak": flops / peak / median, "psnr_db": quality}
        if "float32" in times:
            entry["float32_median_s"] = statistics.median(times["float32"])
        if "graphs" in times:
            entry["graphs_median_s"] = statistics.median(times["graphs"])
        if device.type == "cuda":
            entry["device_peak_mb"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        elif args.memory:
            entry.update(_memory_in_subprocess(row, args))
        results["rows"].append(entry)
    results["loadavg_end"] = loadavg()
    return results


def target_lines(results: dict) -> list[str]:
    rows = {r["label"]: r for r in results["rows"]}
    lines = []
    targets = TARGETS_GPU if results["device"].startswith("cuda") else TARGETS_CPU
    for label, seconds in targets.items():
        row = rows.get(label)
        if row is None:
            continue
        best = min(row["median_s"], row.get("graphs_median_s", float("inf")))
        verdict = "met" if best <= seconds else "NOT met"
        lines.append(f"- {label}: {best * 1000:.1f} ms median (target <= {seconds * 1000:g} ms): {verdict}")
    if results["device"].startswith("cuda"):
        batched = [r for r in results["rows"] if "batch" in r["label"]]
        for row in batched:
            rate = row["images_per_s"]
            verdict = "met" if rate >= TARGET_GPU_BATCH_IMAGES_PER_S else "NOT met"
            lines.append(f"- {row['label']}: {rate:.0f} images/s (target >= {TARGET_GPU_BATCH_IMAGES_PER_S:g}): {verdict}")
    return lines


def format_markdown(results: dict) -> str:
    cuda = results["device"].startswith("cuda")
    lines = [
        f"Device: {results['device']} ({results['device_name']}), torch {results['torch']}, {results['threads']} threads; "
        f"plan: {results['plan']}; load average {results['loadavg_start']} at start, {results['loadavg_end']} at end. "
        f"Measured peak: {results['peak_flops'] / 1e12:.2f} TFLOP/s ({results['peak_dtype']} matrix multiply). "
        f"Times: median (min) of {results['repeats']} runs after a warm-up.",
        "",
        "| workload | median (ms) | min (ms) | images/s | GFLOP | floor (ms) | of peak | PSNR vs float32 (dB) | float32 eager (ms) "
        + ("| CUDA graphs (ms) | device peak (MB) |" if cuda else "| peak RSS (MB) | call adds (MB) |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        f32 = f"{r['float32_median_s'] * 1000:.1f}" if "float32_median_s" in r else "-"
        if cuda:
            extra = (f"{r['graphs_median_s'] * 1000:.2f}" if "graphs_median_s" in r else "-",
                     f"{r['device_peak_mb']:.0f}" if "device_peak_mb" in r else "-")
        elif "peak_rss_mb" in r:
            extra = (f"{r['peak_rss_mb']:.0f}", f"{r['peak_rss_mb'] - r['rss_before_mb']:.0f}")
        else:
            extra = ("-", "-")
        lines.append(f"| {r['label']} | {r['median_s'] * 1000:.1f} | {r['min_s'] * 1000:.1f} | {r['images_per_s']:.1f} | "
                     f"{r['flops'] / 1e9:.1f} | {r['floor_s'] * 1000:.1f} | {r['of_peak'] * 100:.0f}% | {r['psnr_db']:.1f} | "
                     f"{f32} | {extra[0]} | {extra[1]} |")
    targets = target_lines(results)
    if targets:
        lines += ["", "Targets:", *targets]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.inference", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu, cuda... (default: settings.device())")
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="style sizes (default: 256 512 1024; GPU adds 2048)")
    parser.add_argument("--batch", type=int, default=None, help="batched style row (default: 4 on CPU, 64 on GPU)")
    parser.add_argument("--batch-size-px", type=int, default=512, help="image size of the batched row")
    parser.add_argument("--sr-low", type=int, default=256, help="x4 SR input side (x8 uses half)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default: 7 on CPU, 50 on GPU)")
    parser.add_argument("--fit-steps", type=int, default=20, help="Adam steps fitting each network before timing")
    parser.add_argument("--memory", action="store_true", help="CPU: peak RSS per row, each in a fresh subprocess")
    parser.add_argument("--cuda-graphs", action="store_true", help="CUDA: also time the opt-in CUDA-graph plan")
    parser.add_argument("--skip-float32", action="store_true", help="do not time float32 eager")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--memory-shape", type=int, nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    gpu = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    args.sizes = args.sizes or ([256, 512, 1024, 2048] if gpu else [256, 512, 1024])
    args.batch = args.batch if args.batch is not None else (64 if gpu else 4)
    args.repeats = args.repeats or (50 if gpu else 7)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, tuple(args.memory_shape), args.device, args.precision)))
        return 0
    results = measure(args)
    print(format_markdown(results))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
