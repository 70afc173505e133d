"""Section 1: the paper's Table 1, the L-BFGS baseline at 100/300/500 iterations vs the feed-forward network."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

from .helpers import fmt_s
from .profiles import Profile

OPTIMIZER_LABELS = {"lbfgs": "SciPy L-BFGS-B", "lbfgs-device": "device L-BFGS"}
TARGET_GPU_BASELINE_512_S = 5.0  # the project's target: one H100, 512x512, 500 L-BFGS iterations


def section_table1(profile: Profile, device: str, work: Path, out: Path) -> dict:
    from benchmarks import speed

    args = SimpleNamespace(sizes=list(profile.table1_sizes), iterations=profile.table1_iterations,
                           repeats=profile.table1_repeats, device=device, precision="auto", compile=False,
                           levers=False, fit_steps=profile.fit_steps)
    import torch

    from perceptual_studio.losses.perceptual import PerceptualLoss, PerceptualLossConfig
    from perceptual_studio.networks.vgg import default_vgg16_weights

    results = speed.measure(args)
    weights = default_vgg16_weights()
    loss = PerceptualLoss(PerceptualLossConfig.for_weights(weights), weights=weights)
    baselines: dict[str, dict] = {}
    for size, row in results["sizes"].items():
        per_optimizer = {"lbfgs": row["baseline_iteration_times"]}
        per_optimizer["lbfgs-device"], _ = speed.baseline_seconds_per_iteration(
            speed.photo("astronaut", int(size)), speed.photo("coffee", int(size)), loss, profile.table1_device_iterations,
            torch.device(results["device"]), "lbfgs-device")
        for optimizer, times in per_optimizer.items():
            entry = baselines.setdefault(size, {}).setdefault(optimizer, {"iterations_timed": len(times)})
            median = sorted(times)[len(times) // 2]
            # Real cumulative times where that many iterations ran; else the median per iteration times the count.
            for count in speed.ITERATION_COUNTS:
                measured = len(times) >= count
                entry[str(count)] = sum(times[:count]) if measured else count * median
                entry[f"{count}_measured"] = measured
            entry["speedup_vs_500"] = entry["500"] / row["fast_s"]
    _plot_speedups(results, baselines, out / "table1_speedup.png")
    return {"speed": results, "baselines": baselines, "plot": "table1_speedup.png"}


def _plot_speedups(results: dict, baselines: dict, path: Path) -> None:
    from benchmarks.speed import PAPER_TABLE1
    from perceptual_studio.imaging.figures import line_plot

    sizes = sorted({*map(int, results["sizes"]), *PAPER_TABLE1})
    series = {}
    for optimizer, label in OPTIMIZER_LABELS.items():
        series[label] = [baselines[str(s)][optimizer]["speedup_vs_500"] if str(s) in baselines else math.nan for s in sizes]
    series["paper"] = [PAPER_TABLE1[s][2] / PAPER_TABLE1[s][3] if s in PAPER_TABLE1 else math.nan for s in sizes]
    line_plot(sizes, series, title="Speed-up of the network over 500 L-BFGS iterations",
              xlabel="image size (px)", ylabel="speed-up (x)").save(path)


def markdown_table1(data: dict, profile: Profile) -> list[str]:
    from benchmarks.speed import ITERATION_COUNTS, PAPER_TABLE1

    results, baselines = data["speed"], data["baselines"]

    def how(optimizer: str) -> str:
        timed = {e[optimizer]["iterations_timed"] for e in baselines.values()}
        if all(e[optimizer]["500_measured"] for e in baselines.values()):
            return "500 iterations run, times read at 100/300/500"
        return (f"{'/'.join(map(str, sorted(timed)))} iterations timed after one warm-up, the median per-iteration time "
                f"times 100/300/500, extrapolated")

    lines = [
        f"Scale: sizes {', '.join(f'{s}x{s}' for s in profile.table1_sizes)} (paper: 256/512/1024). Baselines "
        f"(baseline/gatys.py, the same perceptual objective): SciPy's L-BFGS-B, the app's default ({how('lbfgs')}); "
        f"the device-resident projected L-BFGS, baseline/lbfgs_device.py ({how('lbfgs-device')}).",
        f"Network: {results['network']}; fast plan: {results['plan']}; median of {results['repeats']} runs.",
        f"Device: {results['device']} ({results['device_name']}), {results['threads']} threads; load average "
        f"{results['loadavg_start']} at start, {results['loadavg_end']} at end.",
        f"Loss network of the baseline: `{results['loss_network']['identity']}`.",
        "",
        "| size | source | baseline 100 it | 300 it | 500 it | network | speed-up vs 500 it | network PSNR vs float32 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sorted({*map(int, results["sizes"]), *PAPER_TABLE1}):
        row = results["sizes"].get(str(size))
        if row is not None:
            for optimizer, label in OPTIMIZER_LABELS.items():
                entry = baselines[str(size)][optimizer]
                base = " | ".join(fmt_s(entry[str(c)]) for c in ITERATION_COUNTS)
                lines.append(f"| {size}x{size} | this run, {results['device']}, {label} | {base} | {fmt_s(row['fast_s'])} | "
                             f"{entry['speedup_vs_500']:.0f}x | {row['psnr_fast_db']:.1f} dB |")
        if size in PAPER_TABLE1:
            p100, p300, p500, net = PAPER_TABLE1[size]
            lines.append(f"| {size}x{size} | paper, GTX Titan X | {p100} s | {p300} s | {p500} s | {net} s | {p500 / net:.0f}x | - |")
    if results["device"].startswith("cuda") and "512" in baselines:
        best = min(e["500"] for e in baselines["512"].values())
        verdict = "met" if best <= TARGET_GPU_BASELINE_512_S else "NOT met"
        lines += ["", f"Target (one H100): the baseline at 512x512 for 500 L-BFGS iterations in <= "
                      f"{TARGET_GPU_BASELINE_512_S:g} s: {best:.2f} s, {verdict}."]
    lines += ["", f"![speed-ups]({data['plot']})"]
    return lines

