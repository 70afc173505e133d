"""Speed of the style network against the optimisation baseline, as in Johnson et al. 2016, Table 1.

``python -m benchmarks.speed [--sizes 256 512] [--iterations 5] [--device cpu] [--json PATH]``

Everything is measured in one run on one device: the style network in plain float32 eager and under the
plan :func:`networks.inference.choose_plan` picks (median of ``--repeats`` timed runs after a warm-up,
the two interleaved so that background load hits both alike), the PSNR of the fast output against the
float32 one, and the L-BFGS baseline (:func:`baseline.gatys.run_baseline`, same perceptual objective,
same loss network as ``default_vgg16_weights()``) as seconds per iteration over ``--iterations``
iterations after one warm-up, extrapolated to 100/300/500 iterations like the paper's table.

Deviation: no trained model is needed. A randomly initialised network gives a near-constant output,
which would make any PSNR meaningless, so the network is first fitted for a few Adam steps to a fixed
recolouring of the test photo; speed does not depend on the weights.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

# device_name and psnr moved to benchmarks/common.py; tests and other benchmarks still import them from here.
from benchmarks.common import device_name, loadavg, psnr, sync, write_json
from perceptual_studio.imaging.io import image_to_tensor
from perceptual_studio.imaging.sample_photos import load_sample_photo

# The paper's Table 1 (GTX Titan X, Torch + cuDNN): size -> (Gatys 100, 300, 500 iterations, network), seconds.
PAPER_TABLE1: dict[int, tuple[float, float, float, float]] = {
    256: (3.17, 9.52, 15.86, 0.015),
    512: (10.97, 32.91, 54.85, 0.05),
    1024: (42.89, 128.66, 214.44, 0.21),
}
ITERATION_COUNTS = (100, 300, 500)
TARGET_SECONDS_512 = 0.15
TARGET_SPEEDUP_256 = 1000.0


def photo(name: str, size: int) -> torch.Tensor:
    """A public-domain photo bundled with scikit-image, centre-cropped and resized to (1, 3, size, size)."""
    image = image_to_tensor(load_sample_photo(name))
    h, w = image.shape[-2:]
    side = min(h, w)
    image = image[..., (h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
    return F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def recolour(x: torch.Tensor) -> torch.Tensor:
    """A fixed, non-trivial image-to-image map (channel remap, a sine curve, dark edges) to fit networks to."""
    grey = x.mean(1, keepdim=True)
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device).view(1, 1, 3, 3)
    edges = (F.conv2d(grey, sobel, padding=1) ** 2 + F.conv2d(grey, sobel.transpose(-1, -2), padding=1) ** 2).sqrt()
    colours = torch.stack([0.5 + 0.5 * torch.sin(6 * x[:, 1] + 1), x[:, 2].sqrt(), 1 - x[:, 0]], 1)
    return (colours - 1.5 * edges).clamp(0, 1)


def fit_network(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, steps: int, lr: float = 2e-3) -> nn.Module:
    """A few Adam steps of an MSE fit, so the network's outputs look like a trained one's (span [0, 1])."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.mse_loss(model(inputs), targets).backward()
        opt.step()
    return model.eval()


def fitted_style_network(size: int = 96, steps: int = 40, seed: int = 0) -> nn.Module:
    from perceptual_studio.networks import StyleTransformNet

    torch.manual_seed(seed)
    content = photo("astronaut", size)
    return fit_network(StyleTransformNet(), content, recolour(content), steps)


def time_interleaved(fns: dict[str, Callable[[], object]], repeats: int, device: torch.device) -> dict[str, list[float]]:
    """Seconds per call for each function, after one warm-up call each, timed round-robin."""
    for fn in fns.values():
        fn()
    sync(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def baseline_seconds_per_iteration(
    content: torch.Tensor, style: torch.Tensor, loss: nn.Module, iterations: int, device: torch.device,
    optimizer: str = "lbfgs",
) -> tuple[list[float], int]:
    """Per-iteration seconds of the L-BFGS baseline over ``iterations`` iterations after one warm-up,
    and how many times the objective was evaluated in the whole run."""
    from perceptual_studio.baseline.gatys import run_baseline

    stamps: list[float] = []
    evaluations = 0

    def progress(step: int, total: int, objective: float) -> None:
        sync(device)
        stamps.append(time.perf_counter())

    def count(module: nn.Module, inputs: tuple, output: object) -> None:
        nonlocal evaluations
        evaluations += 1

    hook = loss.register_forward_hook(count)
    try:
        result = run_baseline(content, style, loss, iterations=iterations + 1, optimizer=optimizer, device=device, progress=progress)
    finally:
        hook.remove()
    durations = [b - a for a, b in zip(stamps, stamps[1:])]
    return durations or [result.seconds / max(result.iterations, 1)], evaluations


@contextmanager
def _threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def lever_variants(model: nn.Module, x: torch.Tensor, device: torch.device) -> dict[str, Callable[[], torch.Tensor]]:
    """The alternatives that were measured to choose the plan (``--levers``), each returning a float32 image."""
    import copy

    from perceptual_studio.networks.inference import choose_plan, run_network

    auto = choose_plan(model, device)
    fp32 = copy.deepcopy(model).to(device).eval()
    fp32_cl = copy.deepcopy(fp32).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    variants: dict[str, Callable[[], torch.Tensor]] = {
        "float32, contiguous (stock model)": lambda: fp32(x),
        "float32, channels-last (stock model)": lambda: fp32_cl(x_cl),
        "float32, channels-last, prepared copy": lambda: run_network(model, x, replace(auto, dtype=None)),
    }
    for dtype in (torch.bfloat16, torch.float16):
        name = str(dtype).removeprefix("torch.")

        def autocast(net: nn.Module, inp: torch.Tensor, dtype: torch.dtype = dtype) -> torch.Tensor:
            with torch.autocast(device.type, dtype):
                return net(inp).float()

        variants[f"{name} autocast, contiguous (stock model)"] = lambda f=autocast: f(fp32, x)
        if dtype == torch.bfloat16:
            cast = copy.deepcopy(fp32).to(dtype)
            cast_cl = copy.deepcopy(cast).to(memory_format=torch.channels_last)
            x_low, x_low_cl = x.to(dtype), x_cl.to(dtype)
            variants |= {
                f"{name} autocast, channels-last (stock model)": lambda f=autocast: f(fp32_cl, x_cl),
                f"{name} cast, contiguous (stock model)": lambda: cast(x_low).float(),
                f"{name} cast, channels-last (stock model)": lambda: cast_cl(x_low_cl).float(),
                f"{name} cast, contiguous, prepared copy": lambda p=replace(auto, dtype=dtype, channels_last=False): run_network(model, x, p),
            }
        prepared_cl = replace(auto, dtype=dtype, channels_last=True)
        variants[f"{name} cast, channels-last, prepared copy"] = lambda p=prepared_cl: run_network(model, x, p)
    if device.type == "cpu":
        def one_thread() -> torch.Tensor:
            with _threads(1):
                return run_network(model, x, auto)

        variants[f"auto plan ({auto.describe()}), 1 thread"] = one_thread
        if hasattr(torch.backends.mkldnn, "conv") and hasattr(torch.backends.mkldnn.conv, "fp32_precision"):
            def bf16_convs() -> torch.Tensor:
                old = torch.backends.mkldnn.conv.fp32_precision
                torch.backends.mkldnn.conv.fp32_precision = "bf16"
                try:
                    return run_network(model, x, replace(auto, dtype=None))
                finally:
                    torch.backends.mkldnn.conv.fp32_precision = old

            variants["float32, channels-last, prepared copy, oneDNN convs in bf16"] = bf16_convs
    return variants


def _baseline_optimizer(args: argparse.Namespace) -> str:
    return getattr(args, "baseline_optimizer", "lbfgs")


def _run_header(args: argparse.Namespace, device: torch.device, plan_description: str, weights: object,
                fit_seconds: float) -> dict:
    """The run's settings and environment, with an empty ``sizes`` to fill and the paper's Table 1."""
    return {
        "device": str(device),
        "device_name": device_name(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "plan": plan_description,
        "loss_network": {"identity": weights.identity, "source": weights.source},
        "network": f"johnson-style (StyleTransformNet defaults), fitted {args.fit_steps} Adam steps in {fit_seconds:.1f} s",
        "repeats": args.repeats,
        "baseline_iterations_timed": args.iterations,
        "baseline_optimizer": _baseline_optimizer(args),
        "loadavg_start": loadavg(),
        "sizes": {},
        "paper_table1_titan_x": {str(k): dict(zip(("gatys_100", "gatys_300", "gatys_500", "network"), v)) for k, v in PAPER_TABLE1.items()},
    }


def _time_network(model: nn.Module, reference_net: nn.Module, content: torch.Tensor, plan: object,
                  compiled_plan: object | None, repeats: int, device: torch.device) -> dict:
    """One size's row: float32 eager, fast plan (and compiled plan) times and PSNR against float32."""
    from perceptual_studio.networks.inference import run_network

    row: dict = {}
    if compiled_plan is not None:
        start = time.perf_counter()
        run_network(model, content, compiled_plan)
        sync(device)
        row["compiled_first_call_s"] = time.perf_counter() - start
    fns = {
        "float32": lambda: reference_net(content),
        "fast": lambda: run_network(model, content, plan),
    }
    if compiled_plan is not None:
        fns["compiled"] = lambda: run_network(model, content, compiled_plan)
    times = time_interleaved(fns, repeats, device)
    reference = reference_net(content)
    row["float32_s"] = statistics.median(times["float32"])
    row["fast_s"] = statistics.median(times["fast"])
    row["times"] = times
    row["psnr_fast_db"] = psnr(run_network(model, content, plan), reference)
    if compiled_plan is not None:
        row["compiled_s"] = statistics.median(times["compiled"])
        row["psnr_compiled_db"] = psnr(run_network(model, content, compiled_plan), reference)
    return row


def _time_levers(model: nn.Module, reference_net: nn.Module, size: int, repeats: int, device: torch.device) -> dict:
    """Times and PSNR of every :func:`lever_variants` alternative at one size."""
    content = photo("astronaut", size).to(device)
    reference = reference_net(content)
    variants = lever_variants(model, content, device)
    times = time_interleaved(variants, repeats, device)
    return {
        "size": size,
        "rows": [
            {"variant": name, "median_s": statistics.median(times[name]), "min_s": min(times[name]), "max_s": max(times[name]),
             "psnr_db": psnr(fn(), reference)}
            for name, fn in variants.items()
        ],
    }


def _add_baseline(row: dict, size: int, loss: nn.Module, iterations: int, device: torch.device, optimizer: str) -> None:
    """Time the optimisation baseline at one size and add its numbers (and the speed-up) to that size's row."""
    content = photo("astronaut", size)
    style = photo("coffee", size)
    per_iteration, evaluations = baseline_seconds_per_iteration(content, style, loss, iterations, device, optimizer)
    row["baseline_objective_evaluations"] = evaluations
    row["baseline_s_per_iteration"] = statistics.median(per_iteration)
    row["baseline_iteration_times"] = per_iteration
    for count in ITERATION_COUNTS:
        row[f"baseline_{count}_s"] = count * row["baseline_s_per_iteration"]
    row["speedup_vs_500"] = row["baseline_500_s"] / row["fast_s"]


def measure(args: argparse.Namespace) -> dict:
    from perceptual_studio.losses.perceptual import PerceptualLoss, PerceptualLossConfig
    from perceptual_studio.networks.inference import choose_plan
    from perceptual_studio.networks.vgg import default_vgg16_weights

    device = torch.device(args.device) if args.device else None
    started = time.perf_counter()
    model = fitted_style_network(steps=args.fit_steps)
    fit_seconds = time.perf_counter() - started
    plan = choose_plan(model, device, args.precision)
    device = plan.device
    reference_net = model.to(device).eval()
    weights = default_vgg16_weights()
    loss = PerceptualLoss(PerceptualLossConfig.for_weights(weights), weights=weights)
    compiled_plan = replace(plan, compile=True) if args.compile else None

    results = _run_header(args, device, plan.describe(), weights, fit_seconds)
    with torch.inference_mode():
        for size in args.sizes:
            content = photo("astronaut", size).to(device)
            results["sizes"][str(size)] = _time_network(model, reference_net, content, plan, compiled_plan,
                                                        args.repeats, device)
        if args.levers:
            results["levers"] = _time_levers(model, reference_net, max(args.sizes), args.repeats, device)
    for size in args.sizes:
        _add_baseline(results["sizes"][str(size)], size, loss, args.iterations, device, _baseline_optimizer(args))
    results["loadavg_end"] = loadavg()
    return results


def _seconds(value: float) -> str:
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}"


def _markdown_header(results: dict) -> list[str]:
    """The section title, the run's settings and the main table's heading."""
    return [
        "## Style transfer speed: feed-forward network vs optimisation baseline (Johnson et al. 2016, Table 1)",
        "",
        f"- device: {results['device']} ({results['device_name']}), torch {results['torch']}, {results['threads']} threads; "
        f"load average {results['loadavg_start']} at start, {results['loadavg_end']} at end",
        f"- fast plan: {results['plan']}",
        f"- loss network of the baseline: {results['loss_network']['identity']} (from {results['loss_network']['source']})",
        f"- network: {results['network']}",
        f"- network times: median of {results['repeats']} interleaved runs; baseline "
        f"({results.get('baseline_optimizer', 'lbfgs')}): L-BFGS seconds per iteration, "
        f"median of {results['baseline_iterations_timed']} iterations after 1 warm-up, times 100/300/500",
        "",
        "| Image size | Source | Gatys 100 it (s) | 300 it (s) | 500 it (s) | Network, median (s) | Network, min (s) "
        "| Speed-up vs 500 it | PSNR vs float32 (dB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]


def _markdown_table_rows(results: dict) -> list[str]:
    """The main table's rows: this run's variants and the paper's times, size by size."""
    lines = []
    device = results["device"]
    sizes = sorted({*map(int, results["sizes"]), *PAPER_TABLE1})
    for size in sizes:
        label = f"{size}x{size}"
        row = results["sizes"].get(str(size))
        if row is not None:
            base = " | ".join(_seconds(row[f"baseline_{c}_s"]) for c in ITERATION_COUNTS)
            for key, source, quality in (
                ("fast", "fast plan", f"{row['psnr_fast_db']:.1f}"),
                ("float32", "float32 eager", "reference"),
                ("compiled", "fast plan + torch.compile", f"{row.get('psnr_compiled_db', 0):.1f}"),
            ):
                if key not in row["times"]:
                    continue
                median = statistics.median(row["times"][key])
                lines.append(f"| {label} | this run, {device}, {source} | {base} | {_seconds(median)} | "
                             f"{_seconds(min(row['times'][key]))} | {row['baseline_500_s'] / median:.0f}x | {quality} |")
        if size in PAPER_TABLE1:
            p100, p300, p500, net = PAPER_TABLE1[size]
            lines.append(f"| {label} | paper, GTX Titan X (published times) | {p100} | {p300} | {p500} | {net} | - | {p500 / net:.0f}x | - |")
    return lines


def _markdown_spread_notes(results: dict) -> list[str]:
    """One line per size: the min-max spread of each timing and the baseline's objective evaluations."""
    lines = []
    for size, row in results["sizes"].items():
        times = row["times"]
        note = (f"- {size}px spread (min-max s): float32 {_spread(times['float32'])}, fast {_spread(times['fast'])}, "
                f"baseline per iteration {_spread(row['baseline_iteration_times'])} "
                f"({row['baseline_objective_evaluations']} objective evaluations for {results['baseline_iterations_timed'] + 1} iterations, "
                f"counting one before and one after)")
        if "compiled_first_call_s" in row:
            note += f"; torch.compile: first call at this size {row['compiled_first_call_s']:.1f} s (compiles on the first size only), then {_spread(times['compiled'])}"
        lines.append(note)
    return lines


def _markdown_targets(results: dict) -> list[str]:
    """Whether the 512px time and 256px speed-up targets were met, for the sizes measured."""
    lines = []
    if "512" in results["sizes"]:
        fast = results["sizes"]["512"]["fast_s"]
        lines.append(f"- 512x512 network, fast plan: {fast:.3f} s (target <= {TARGET_SECONDS_512} s): "
                     f"{'met' if fast <= TARGET_SECONDS_512 else 'NOT met'}")
    if "256" in results["sizes"]:
        speedup = results["sizes"]["256"]["speedup_vs_500"]
        lines.append(f"- 256x256 speed-up over the 500-iteration baseline: {speedup:.0f}x (target >= {TARGET_SPEEDUP_256:.0f}x): "
                     f"{'met' if speedup >= TARGET_SPEEDUP_256 else 'NOT met'}")
    return lines


def _markdown_levers(levers: dict) -> list[str]:
    lines = ["", f"### Levers measured at {levers['size']}x{levers['size']} (median/min/max s, PSNR vs float32 eager)", "",
             "| Variant | Median (s) | Min (s) | Max (s) | PSNR (dB) |", "|---|---:|---:|---:|---:|"]
    for r in levers["rows"]:
        lines.append(f"| {r['variant']} | {r['median_s']:.3f} | {r['min_s']:.3f} | {r['max_s']:.3f} | {r['psnr_db']:.1f} |")
    return lines


def format_markdown(results: dict) -> str:
    lines = _markdown_header(results) + _markdown_table_rows(results)
    lines += ["", "Paper rows: the times of its Table 1 (Torch, GTX Titan X); their speed-up is computed here from those times.", ""]
    lines += _markdown_spread_notes(results)
    lines += ["", "Targets:"]
    lines += _markdown_targets(results)
    if "levers" in results:
        lines += _markdown_levers(results["levers"])
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="square image sizes in pixels")
    parser.add_argument("--iterations", type=int, default=5, help="baseline L-BFGS iterations timed (after 1 warm-up)")
    parser.add_argument("--repeats", type=int, default=7, help="timed network runs per variant (median reported)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1... (default: settings.device())")
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    parser.add_argument("--compile", action="store_true", help="also time the plan under torch.compile (slow to compile)")
    parser.add_argument("--levers", action="store_true", help="also time the alternatives the plan was chosen from")
    parser.add_argument("--fit-steps", type=int, default=40, help="Adam steps fitting the network before timing")
    parser.add_argument("--baseline-optimizer", default="lbfgs", choices=("lbfgs", "lbfgs-device"),
                        help="SciPy's L-BFGS-B (the app's default) or the device-resident projected L-BFGS")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="write all numbers to this JSON file")
    args = parser.parse_args(argv)
    if any(s < 16 for s in args.sizes) or args.iterations < 1 or args.repeats < 1 or (args.threads or 1) < 1:
        parser.error("sizes must be >= 16, iterations, repeats and threads >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = measure(args)
    print(format_markdown(results))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
