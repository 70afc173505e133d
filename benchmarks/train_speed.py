"""Training benchmarks for train/ (benchmarks, not timed tests); prints Markdown tables.

1. Throughput: images/s of ``train_style`` at the paper's 256x256, batch 4, full-size network, through the
   real loop (data loading, loss network, optimiser), per precision/layout. CPU: float32 and bfloat16
   autocast. GPU (``--device cuda``): bfloat16 + channels-last (the default there) and float32.
2. Quality against the objective itself (Johnson et al. 2016, Sec. 4.1 / Fig. 5): train a style network, then
   on held-out content images compare the objective value of its output with that of the optimisation
   baseline (Gatys et al., L-BFGS) after 50 / 100 / 300 iterations, same loss network and weights.
   Defaults are small so it runs on a CPU (sizes printed with the table).
3. ``--paper-recipe`` (GPU): the full 40k-iteration recipe on two styles, timed; then a warm-started
   fine-tune from the first style's model to the second style, timed until its style loss reaches the loss
   the full recipe reached (targets on one H100: <= 10 min and <= 60 s). One stage per command, so each
   fits a 10-minute slot; results accumulate in ``<work-dir>/recipe.json``.

Images: photos bundled with scikit-image (``skimage.data``; no download). Training content is random crops of
``rocket`` (SpaceX, public domain), ``hubble_deep_field`` (NASA, public domain), ``immunohistochemistry`` (no
known copyright restrictions) and ``retina`` (CC0); held-out images are ``astronaut`` (NASA, public domain),
``chelsea`` and ``coffee`` (CC0). Style images are generated procedurally here.

    python -m benchmarks.train_speed                       # CPU throughput + small quality table
    python -m benchmarks.train_speed --skip-quality --throughput-sizes 128 256 --networks paper-size fast \
        --precisions bfloat16                              # CPU steps/s of the paper-size and fast networks
    python -m benchmarks.train_speed --device cuda --skip-quality                      # GPU throughput
    python -m benchmarks.train_speed --device cuda --skip-throughput --skip-quality --work-dir W --paper-recipe waves
    python -m benchmarks.train_speed --device cuda --skip-throughput --skip-quality --work-dir W --paper-recipe cells
    python -m benchmarks.train_speed --device cuda --skip-throughput --skip-quality --work-dir W --paper-recipe finetune
    python -m benchmarks.train_speed --device cuda --skip-throughput --work-dir W --quality-run W/runs/full-cells
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import device_name, read_history, skimage_photo

ROOT = Path(__file__).resolve().parents[1]

TRAIN_PHOTOS = ("rocket", "hubble_deep_field", "immunohistochemistry", "retina")
HELD_OUT_PHOTOS = ("astronaut", "chelsea", "coffee")


def make_content_folder(folder: Path, count: int, size: int, seed: int = 0) -> Path:
    """``count`` random square crops (at random scales) of the training photos, saved as JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = [skimage_photo(name) for name in TRAIN_PHOTOS]
    for i in range(count):
        photo = photos[i % len(photos)]
        side = int(rng.integers(min(photo.size) // 3, min(photo.size) + 1))
        left = int(rng.integers(0, photo.width - side + 1))
        top = int(rng.integers(0, photo.height - side + 1))
        crop = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)
        crop.save(folder / f"crop_{i:04d}.jpg", quality=92)
    return folder


def make_style_image(path: Path, kind: str, size: int = 512) -> Path:
    """Procedural styles: "waves" (bold coloured bands) or "cells" (a Voronoi mosaic with dark borders)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    if kind == "waves":
        phase = 9 * xx + 4 * np.sin(7 * yy) + 2 * np.sin(13 * xx * yy)
        rgb = np.stack([0.5 + 0.5 * np.sin(phase), 0.5 + 0.5 * np.sin(phase + 2.1), 0.5 + 0.5 * np.sin(phase + 4.2)], -1)
    else:
        rng = np.random.default_rng(1)
        seeds = rng.random((60, 2))
        colours = rng.random((60, 3)) * 0.8 + 0.2
        d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
        order = np.sort(d, axis=-1)
        rgb = colours[np.argmin(d, axis=-1)]
        rgb *= (np.sqrt(order[..., 1]) - np.sqrt(order[..., 0]) > 0.01)[..., None]
    Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


# ------------------------------------------------------------------------------------------ 1. throughput


PAPER_SIZE = (1.0, 5)  # johnson-style width and residual blocks of the paper


def throughput(work: Path, device: str, steps: int, warmup: int, image_size: int | tuple[int, ...], batch: int,
               networks: dict[str, tuple[float, int]] | None = None, precisions: tuple[str, ...] | None = None) -> list[dict]:
    """Steps/s of ``train_style`` through the real loop (data, loss network, optimiser) for each network
    (name -> (width, residual blocks); default: the paper-size one), image size and precision."""
    from perceptual_studio.train import StyleTrainConfig, train_style

    sizes = (image_size,) if isinstance(image_size, int) else tuple(image_size)
    networks = networks or {"paper-size": PAPER_SIZE}
    content = make_content_folder(work / "content-tp", 32, max(sizes) + 64)
    style = make_style_image(work / "waves.png", "waves")
    if precisions is not None:
        variants = [(p, device.startswith("cuda")) for p in precisions]
    elif device.startswith("cuda"):
        variants = [("bfloat16", True), ("float32", False)]
    else:
        variants = [("float32", False), ("bfloat16", False)]
    rows = []
    for network, (width, blocks) in networks.items():
        for size in sizes:
            for precision, channels_last in variants:
                name = f"tp-{network}-{size}-{precision}-{'cl' if channels_last else 'nchw'}"
                config = StyleTrainConfig(style=str(style), content=str(content), out=str(work / "models" / name),
                                          run_dir=str(work / "runs" / name), image_size=size, batch_size=batch,
                                          iterations=warmup + steps, device=device, precision=precision,
                                          channels_last=channels_last, log_every=1, preview_every=0,
                                          checkpoint_every=10**9, width=width, num_residual=blocks)
                train_style(config, overwrite=True)
                hist = read_history(work / "runs" / name)
                timed = hist[warmup:]
                seconds = timed[-1]["elapsed_s"] - hist[warmup - 1]["elapsed_s"] if warmup else timed[-1]["elapsed_s"]
                per_step = seconds / len(timed)
                rows.append({"device": device, "network": network, "width": width, "num_residual": blocks,
                             "image_size": size, "precision": precision, "channels_last": channels_last,
                             "images_per_s": batch / per_step, "steps_per_s": 1 / per_step, "s_per_step": per_step,
                             "paper_recipe_hours": per_step * 40_000 / 3600})
    return rows


def _duration(hours: float) -> str:
    return f"{hours * 60:.1f} min" if hours < 1 else (f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days")


def fast_architecture() -> tuple[float, int]:
    """The shipped fast variants' width and residual blocks (``train/shipped/gallery.toml``, table ``[fast]``)."""
    from perceptual_studio.train.shipped.gallery import read_manifest

    fast = read_manifest().fast
    if fast is None:  # a manifest without fast variants: the authors' released fast models' size
        return 0.5, 5
    return float(fast.options.get("width", 0.5)), int(fast.options.get("num-residual", 5))


def named_networks() -> dict[str, tuple[float, int]]:
    """``paper-size`` and ``fast``: the two sizes the gallery ships."""
    return {"paper-size": PAPER_SIZE, "fast": fast_architecture()}


def parse_networks(specs: list[str]) -> dict[str, tuple[float, int]]:
    """``paper-size``, ``fast`` or ``NAME=WIDTHxBLOCKS`` -> {name: (width, residual blocks)}."""
    networks = {}
    named = named_networks()
    for spec in specs:
        name, _, arch = spec.partition("=")
        if not arch:
            if name not in named:
                raise SystemExit(f"--networks: unknown {name!r}; use {', '.join(named)} or NAME=WIDTHxBLOCKS")
            networks[name] = named[name]
            continue
        try:
            width, blocks = arch.lower().split("x")
            networks[name] = (float(width), int(blocks))
        except ValueError:
            raise SystemExit(f"--networks: {spec!r} is not NAME=WIDTHxBLOCKS, e.g. fast=0.5x3") from None
    return networks


def throughput_table(rows: list[dict], device_name: str, image_size: int | tuple[int, ...], batch: int, steps: int) -> str:
    lines = [f"Training throughput of `johnson-style` networks (paper loss layers), batch {batch}, {steps} timed steps "
             f"through the real `train_style` loop, on {device_name}:", "",
             "| network | size | precision | layout | steps/s | images/s | s/iteration | 40k iterations |",
             "|---|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        network = r.get("network", "paper-size")
        arch = f"{network} (width {r.get('width', 1.0):g}, {r.get('num_residual', 5)} blocks)"
        lines.append(f"| {arch} | {r.get('image_size', image_size)} | {r['precision']} | "
                     f"{'channels-last' if r['channels_last'] else 'NCHW'} | {1 / r['s_per_step']:.2f} | "
                     f"{r['images_per_s']:.2f} | {r['s_per_step']:.3f} | {_duration(r['paper_recipe_hours'])} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ 2. quality


def quality(work: Path, device: str, image_size: int, iterations: int, width: float, num_residual: int,
            eval_size: int, lbfgs: tuple[int, ...], inits: tuple[str, ...], run_dir: Path | None = None) -> tuple[list[dict], dict]:
    """Train (or, with ``run_dir``, reuse a finished run's model) and score it against the L-BFGS baseline."""
    import torch

    from perceptual_studio.baseline.gatys import run_baseline
    from perceptual_studio.imaging.io import image_to_tensor, load_image, resize_to_max_side
    from perceptual_studio.losses import PerceptualLoss
    from perceptual_studio.registry import load_model_folder
    from perceptual_studio.train import StyleTrainConfig, train_style
    from perceptual_studio.train.export import model_folder_for
    from perceptual_studio.train.run import loss_network_weights
    from perceptual_studio.train.style import load_style_image, loss_config_for

    if run_dir is None:
        content = make_content_folder(work / "content-q", 256, image_size + image_size // 4)
        style = make_style_image(work / "cells.png", "cells")
        config = StyleTrainConfig(style=str(style), content=str(content), out=str(work / "models" / "quality"),
                                  run_dir=str(work / "runs" / "quality"), image_size=image_size, iterations=iterations,
                                  width=width, num_residual=num_residual, device=device, log_every=10, preview_every=0,
                                  checkpoint_every=10**9)
        train_style(config, overwrite=True)
        run_dir = work / "runs" / "quality"
    config = StyleTrainConfig.load(run_dir / "config.json")
    history = read_history(run_dir)
    model = load_model_folder(model_folder_for(config.out), device)
    weights = loss_network_weights(config.vgg_weights)
    loss = PerceptualLoss(loss_config_for(config, weights), weights=weights).to(device)
    style_tensor = load_style_image(config.style, config.style_size or config.image_size).to(device)
    loss.set_style(style_tensor)
    rows = []
    for name in HELD_OUT_PHOTOS:
        content_tensor = image_to_tensor(resize_to_max_side(load_image(skimage_photo(name)), eval_size)).to(device)
        with torch.no_grad():
            t0 = time.perf_counter()
            output = model(content_tensor)
            net_seconds = time.perf_counter() - t0
            net_value = float(loss(output, content_tensor).total)
        for init in inits:
            result = run_baseline(content_tensor, style_tensor, loss, iterations=max(lbfgs), init=init, device=device)
            curve = result.objective
            at = {n: curve[min(n, len(curve) - 1)] for n in lbfgs}
            match = next((i for i, v in enumerate(curve) if v <= net_value), None)
            rows.append({"image": name, "size": "x".join(map(str, content_tensor.shape[-1:-3:-1])), "init": init,
                         "network": net_value, "network_s": net_seconds, "lbfgs": at, "lbfgs_s": result.seconds,
                         "lbfgs_iterations": result.iterations, "match": match})
    args = model.config.architecture_args
    setup = {"image_size": config.image_size, "iterations": history[-1]["step"], "width": args.get("width"),
             "num_residual": args.get("num_residual"), "eval_size": eval_size,
             "train_seconds": history[-1]["elapsed_s"], "loss_network": weights.identity, "final": history[-1]}
    return rows, setup


def quality_table(rows: list[dict], setup: dict, lbfgs: tuple[int, ...], device_name: str) -> str:
    head = " | ".join(f"L-BFGS {n}" for n in lbfgs)
    lines = [
        f"Objective value (lower is better) on held-out images, {device_name}. Network: `johnson-style` width "
        f"{setup['width']}, {setup['num_residual']} residual blocks, trained {setup['iterations']} iterations at "
        f"{setup['image_size']}x{setup['image_size']}, batch 4 ({setup['train_seconds']:.0f} s); evaluated at longer side "
        f"{setup['eval_size']} px. Loss network `{setup['loss_network']}`, the same objective (weights, layers, style "
        f"targets) for both methods. Baseline: L-BFGS-B in [0, 1] (baseline/gatys.py).", "",
        f"| image | size | baseline init | network | {head} | L-BFGS iterations to match the network |",
        "|---|---|---|---:|" + "---:|" * len(lbfgs) + "---:|",
    ]
    for r in rows:
        values = " | ".join(f"{r['lbfgs'][n]:.4g}" for n in lbfgs)
        match = str(r["match"]) if r["match"] is not None else f"> {r['lbfgs_iterations']}"
        lines.append(f"| {r['image']} | {r['size']} | {r['init']} | {r['network']:.4g} | {values} | {match} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ 3. paper recipe


RECIPE_STAGES = ("waves", "cells", "finetune", "all")


def _recipe_inputs(work: Path, image_size: int, content_count: int) -> tuple[Path, dict[str, Path]]:
    """The recipe's content crops and its two style images, made unless an earlier stage left them."""
    content = work / "content-recipe"
    if not content.is_dir():
        make_content_folder(content, content_count, image_size + image_size // 4)
    styles = {"waves": work / "waves.png", "cells": work / "cells.png"}
    for kind, path in styles.items():
        if not path.is_file():
            make_style_image(path, kind)
    return content, styles


def _full_recipe_run(work: Path, device: str, name: str, style: Path, content: Path, iterations: int,
                     image_size: int) -> dict:
    """Train the full recipe on one style; its times and its final losses (mean of the last 2% of the log)."""
    from perceptual_studio.train import StyleTrainConfig, train_style

    config = StyleTrainConfig(style=str(style), content=str(content), out=str(work / "models" / f"full-{name}"),
                              run_dir=str(work / "runs" / f"full-{name}"), image_size=image_size,
                              iterations=iterations, device=device, preview_every=max(1, iterations // 8),
                              checkpoint_every=max(1, iterations // 4))
    started = time.perf_counter()
    train_style(config, overwrite=True)
    seconds = time.perf_counter() - started
    hist = read_history(work / "runs" / f"full-{name}")
    tail = hist[-max(1, len(hist) // 50):]
    return {"seconds": seconds, "train_seconds": hist[-1]["elapsed_s"], "iterations": iterations,
            "style": sum(r["style"] for r in tail) / len(tail),
            "total": sum(r["total"] for r in tail) / len(tail)}


@dataclass
class _FinetuneWatch:
    """Follows the fine-tune's style loss; it stops once the mean of 20 steps reaches the target, or at the limit."""

    target: float
    limit_s: float
    started: float = field(default_factory=time.perf_counter)
    reached: tuple[int, float, float] | None = None  # (step, wall seconds, training seconds)
    recent: list[float] = field(default_factory=list)

    def watch(self, event) -> None:
        if event.losses:
            self.recent = (self.recent + [event.losses["style"]])[-20:]
            mean = sum(self.recent) / len(self.recent)
            if self.reached is None and len(self.recent) == 20 and mean <= self.target:
                self.reached = (event.step, time.perf_counter() - self.started, event.elapsed_s)

    def stop(self) -> bool:
        return self.reached is not None or time.perf_counter() - self.started > self.limit_s


def _finetune(work: Path, device: str, style: Path, content: Path, iterations: int, image_size: int, target: float,
              limit_s: float) -> dict:
    """Warm-start from the full "waves" model and train on ``style`` until the style loss reaches ``target``."""
    from perceptual_studio.train import StyleTrainConfig, train_style

    clock = _FinetuneWatch(target, limit_s)
    tune = StyleTrainConfig(style=str(style), content=str(content), out=str(work / "models" / "tuned-cells"),
                            run_dir=str(work / "runs" / "tuned-cells"), image_size=image_size, iterations=iterations,
                            init=str(work / "models" / "full-waves"), device=device, log_every=1, preview_every=0,
                            checkpoint_every=10**9)
    train_style(tune, clock.watch, clock.stop, overwrite=True)
    hist = read_history(work / "runs" / "tuned-cells")
    return {"target_style": target, "reached": clock.reached,
            "wall_s": time.perf_counter() - clock.started, "last": hist[-1]}


def _recipe_table(results: dict, device: str, content_count: int) -> str:
    """The Markdown table of whichever recipe stages have results so far."""
    lines = [f"Paper recipe (256x256 by default, batch 4, Adam 1e-3, paper layers) on {_device_name(device)}, "
             f"{content_count} content crops:", "",
             "| run | iterations | wall time | training time | final style loss | final total loss |",
             "|---|---:|---:|---:|---:|---:|"]
    for name in ("waves", "cells"):
        r = results.get(f"full-{name}")
        if r:
            lines.append(f"| full recipe, style {name} | {r['iterations']} | {r['seconds']:.0f} s | {r['train_seconds']:.0f} s | "
                         f"{r['style']:.4g} | {r['total']:.4g} |")
    tuned = results.get("finetune")
    if tuned:
        last = tuned["last"]
        if tuned["reached"]:
            step, wall, train_s = tuned["reached"]
            lines.append(f"| fine-tune waves -> cells (warm start) | {step} | {wall:.1f} s | {train_s:.1f} s | "
                         f"reached {tuned['target_style']:.4g} | {last['total']:.4g} |")
        else:
            lines.append(f"| fine-tune waves -> cells (warm start) | {last['step']} | {tuned['wall_s']:.0f} s (limit) | "
                         f"{last['elapsed_s']:.0f} s | did not reach {tuned['target_style']:.4g} (last {last['style']:.4g}) | "
                         f"{last['total']:.4g} |")
    return "\n".join(lines)


def paper_recipe(work: Path, device: str, stage: str, iterations: int, image_size: int, content_count: int,
                 finetune_limit_s: float) -> str:
    """Full recipe on two styles ("waves", "cells"), then a warm-started fine-tune waves -> cells against the
    clock ("finetune"), until its style loss (mean of 20 steps) reaches the full "cells" run's final style loss.
    Stages keep their results in ``<work>/recipe.json`` so each fits in one short GPU command."""
    state_file = work / "recipe.json"
    results = json.loads(state_file.read_text()) if state_file.is_file() else {}
    content, styles = _recipe_inputs(work, image_size, content_count)

    for name in ("waves", "cells"):
        if stage not in (name, "all"):
            continue
        results[f"full-{name}"] = _full_recipe_run(work, device, name, styles[name], content, iterations, image_size)
        state_file.write_text(json.dumps(results, indent=2))

    if stage in ("finetune", "all"):
        missing = [k for k in ("full-waves", "full-cells") if k not in results]
        if missing:
            raise SystemExit(f"run the {', '.join(m[5:] for m in missing)} stage(s) first (same --work-dir)")
        results["finetune"] = _finetune(work, device, styles["cells"], content, iterations, image_size,
                                        results["full-cells"]["style"], finetune_limit_s)
        state_file.write_text(json.dumps(results, indent=2))

    return _recipe_table(results, device, content_count)


# ------------------------------------------------------------------------------------------ main


def _device_name(device: str) -> str:
    import torch

    name = device_name(device)
    return name if device.startswith("cuda") else f"{name} ({torch.get_num_threads()} threads)"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, help="timed throughput steps (default: 4 on CPU, 50 on GPU)")
    parser.add_argument("--warmup", type=int, help="untimed first steps (default: 1 on CPU, 10 on GPU)")
    parser.add_argument("--image-size", type=int, default=256, help="quality and recipe runs' training size")
    parser.add_argument("--throughput-sizes", type=int, nargs="+", default=None,
                        help="throughput at these sizes (default: --image-size)")
    parser.add_argument("--networks", nargs="+", default=["paper-size"], metavar="NAME[=WIDTHxBLOCKS]",
                        help="throughput networks: paper-size (1x5), fast (0.5x5) or NAME=WIDTHxBLOCKS")
    parser.add_argument("--precisions", nargs="+", choices=("float32", "bfloat16"), default=None,
                        help="throughput precisions (default: float32 and bfloat16)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--quality-size", type=int, help="training size for the quality run (default: 64 CPU, 256 GPU)")
    parser.add_argument("--quality-iterations", type=int, help="default: 400 on CPU, 40000 on GPU")
    parser.add_argument("--quality-width", type=float, help="default: 0.5 on CPU, 1.0 on GPU")
    parser.add_argument("--quality-residual", type=int, help="default: 3 on CPU, 5 on GPU")
    parser.add_argument("--eval-size", type=int, help="held-out images' longer side (default: 96 CPU, 256 GPU)")
    parser.add_argument("--lbfgs", type=int, nargs="+", default=[50, 100, 300])
    parser.add_argument("--inits", nargs="+", default=["noise", "content"], choices=("noise", "content"))
    parser.add_argument("--quality-run", help="score this finished run's model instead of training one")
    parser.add_argument("--paper-recipe", choices=RECIPE_STAGES,
                        help="GPU: a full-recipe run (waves, cells), the warm-started fine-tune, or all three")
    parser.add_argument("--recipe-iterations", type=int, default=40_000)
    parser.add_argument("--recipe-content", type=int, default=2000, help="content crops for the recipe runs")
    parser.add_argument("--finetune-limit", type=float, default=300.0, help="seconds before the fine-tune gives up")
    parser.add_argument("--work-dir", help="keep images, runs and models here (default: a temporary folder)")
    parser.add_argument("--json", help="also write the raw numbers here")
    return parser.parse_args(argv)


def _run_throughput(args: argparse.Namespace, work: Path, name: str, gpu: bool) -> list[dict]:
    """Benchmark 1 with the command line's settings (CPU or GPU defaults); prints its table."""
    steps = args.steps or (50 if gpu else 4)
    warmup = args.warmup if args.warmup is not None else (10 if gpu else 1)
    sizes = tuple(args.throughput_sizes or (args.image_size,))
    rows = throughput(work, args.device, steps, warmup, sizes, args.batch_size, parse_networks(args.networks),
                      tuple(args.precisions) if args.precisions else None)
    print(throughput_table(rows, name, sizes, args.batch_size, steps) + "\n", flush=True)
    return rows


def _run_quality(args: argparse.Namespace, work: Path, name: str, gpu: bool) -> dict:
    """Benchmark 2 with the command line's settings (CPU or GPU defaults); prints its table."""
    lbfgs = tuple(sorted(args.lbfgs))
    rows, setup = quality(work, args.device, args.quality_size or (256 if gpu else 64),
                          args.quality_iterations or (40_000 if gpu else 400), args.quality_width or (1.0 if gpu else 0.5),
                          args.quality_residual or (5 if gpu else 3), args.eval_size or (256 if gpu else 96), lbfgs,
                          tuple(args.inits), Path(args.quality_run) if args.quality_run else None)
    print(quality_table(rows, setup, lbfgs, name) + "\n", flush=True)
    return {"rows": rows, "setup": setup}


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)

    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    gpu = args.device.startswith("cuda")
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="train-bench-"))
    os.environ.setdefault("PERCEPTUAL_DATA_DIR", str(work / "data"))
    name = _device_name(args.device)
    raw: dict = {"device": name}
    print(f"# Training benchmarks ({name}; work dir {work})\n")
    if not args.skip_throughput:
        raw["throughput"] = _run_throughput(args, work, name, gpu)
    if not args.skip_quality:
        raw["quality"] = _run_quality(args, work, name, gpu)
    if args.paper_recipe:
        table = paper_recipe(work, args.device, args.paper_recipe, args.recipe_iterations, args.image_size,
                             args.recipe_content, args.finetune_limit)
        raw["paper_recipe"] = table
        print(table + "\n", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
