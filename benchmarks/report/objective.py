"""Section 2: the objective a style network trained here reaches vs the L-BFGS baseline's (paper Sec. 4.1, Fig. 5)."""
from __future__ import annotations

import math
import time
from pathlib import Path

from benchmarks.common import read_history, skimage_photo

from .helpers import Quiet, save_photos
from .profiles import Profile
from .table1 import OPTIMIZER_LABELS

PAPER_OBJECTIVE_FINDING = (
    "Paper (Sec. 4.1, Fig. 5): the trained network reaches an objective comparable to roughly 50-100 L-BFGS "
    "iterations of the baseline, also at resolutions larger than it was trained on (it is trained at 256x256)."
)


def train_style_network(profile: Profile, device: str, work: Path) -> dict:
    """Train the section-2 network, keeping the previews of a held-out photo (for time-to-quality)."""
    from benchmarks.train_speed import make_content_folder, make_style_image
    from perceptual_studio.train import StyleTrainConfig, train_style

    content = make_content_folder(work / "style-content", profile.style_content_images,
                                  profile.style_size + profile.style_size // 4)
    style = make_style_image(work / "cells.png", "cells")
    probe = save_photos(work / "style-eval", profile.eval_photos[:1]) / f"{profile.eval_photos[0]}.png"
    every = max(1, profile.style_iterations // 12)
    config = StyleTrainConfig(style=str(style), content=str(content), out=str(work / "models" / "style"),
                              run_dir=str(work / "runs" / "style"), image_size=profile.style_size,
                              iterations=profile.style_iterations, width=profile.style_width,
                              num_residual=profile.style_residual, device=device, log_every=max(1, every // 4),
                              preview_every=every, preview_image=str(probe), preview_size=profile.style_size,
                              checkpoint_every=10**9)
    previews: list[dict] = []

    def keep(event) -> None:
        if event.preview is not None:
            previews.append({"step": event.step, "elapsed_s": event.elapsed_s, "image": event.preview})

    started = time.perf_counter()
    with Quiet():
        folder = train_style(config, keep, overwrite=True)
    return {"config": config, "folder": folder, "previews": previews, "probe": probe,
            "wall_s": time.perf_counter() - started, "history": read_history(work / "runs" / "style", missing_ok=True)}


def section_objective(profile: Profile, device: str, work: Path, out: Path, trained: dict) -> dict:
    import torch

    from perceptual_studio.baseline.gatys import run_baseline
    from perceptual_studio.imaging.io import image_to_tensor, resize_to_max_side
    from perceptual_studio.losses import PerceptualLoss
    from perceptual_studio.registry import load_model_folder
    from perceptual_studio.train.run import loss_network_weights
    from perceptual_studio.train.style import load_style_image, loss_config_for

    config = trained["config"]
    model = load_model_folder(trained["folder"], device)
    with Quiet():
        weights = loss_network_weights(config.vgg_weights)
    loss = PerceptualLoss(loss_config_for(config, weights), weights=weights).to(device)
    style = load_style_image(config.style, config.style_size or config.image_size)
    loss.set_style(style.to(device))
    rows = []
    for size in profile.eval_sizes:
        for name in profile.eval_photos:
            content = image_to_tensor(resize_to_max_side(skimage_photo(name), size)).to(device)
            with torch.no_grad():
                network_value = float(loss(model(content).float(), content).total)
            for init in profile.inits:
                result = run_baseline(content, style, loss, iterations=profile.lbfgs_iterations, init=init, device=device,
                                      optimizer=profile.objective_optimizer)
                curve = result.objective
                match = next((i for i, v in enumerate(curve) if v <= network_value), None)
                rows.append({"photo": name, "size": f"{content.shape[-1]}x{content.shape[-2]}", "longer_side": size,
                             "init": init, "network": network_value, "curve": curve, "match": match,
                             "lbfgs_s": result.seconds, "iterations": result.iterations,
                             "trained_size": size == profile.style_size})
    history = trained["history"]
    data = {"rows": rows, "loss_network": weights.identity, "train_seconds": history[-1]["elapsed_s"] if history else None,
            "train_wall_s": trained["wall_s"], "plot": "objective.png"}
    _plot_objective(rows, out / "objective.png")
    return data


def _plot_objective(rows: list[dict], path: Path) -> None:
    from perceptual_studio.imaging.figures import line_plot

    length = max(len(r["curve"]) for r in rows)
    x = list(range(length))
    several_inits = len({r["init"] for r in rows}) > 1
    series = {}
    for r in rows:
        label = f"{r['photo']} {r['longer_side']}" + (f" {r['init'][0]}" if several_inits else "")
        series[label] = [math.log10(max(r["curve"][i], 1e-12) / r["network"]) if i < len(r["curve"]) else math.nan
                         for i in x]
    series["network"] = [0.0] * length
    line_plot(x, series, title="Baseline objective relative to the fast network's (legend: photo, longer side)",
              xlabel="L-BFGS iteration", ylabel="log10(baseline / network objective)", dashed=("network",),
              size=(820, 440)).save(path)


def markdown_objective(data: dict, profile: Profile) -> list[str]:
    checkpoints = [n for n in (10, 50, 100, 300, 500) if n <= profile.lbfgs_iterations] or [profile.lbfgs_iterations]
    head = " | ".join(f"L-BFGS {n}" for n in checkpoints)
    lines = [
        f"Scale: `johnson-style` width {profile.style_width}, {profile.style_residual} residual blocks, trained here for "
        f"{profile.style_iterations} iterations at {profile.style_size}x{profile.style_size}, batch 4, Adam 1e-3, on "
        f"{profile.style_content_images} crops of scikit-image photos (paper: 40k iterations on 80k COCO images at "
        f"256x256) with a procedural \"cells\" style; training took {data['train_seconds'] or 0:.0f} s. Held-out photos at "
        f"longer sides {', '.join(map(str, profile.eval_sizes))} px (the first is the training size, the others larger); "
        f"baseline: {profile.lbfgs_iterations} iterations of {OPTIMIZER_LABELS[profile.objective_optimizer]} from "
        f"{' / '.join(profile.inits)} (baseline/gatys.py).",
        f"Loss network: `{data['loss_network']}`; the same objective (layers, weights, style targets) for both methods.",
        "",
        f"| photo | size | init | network objective | {head} | L-BFGS iterations to match |",
        "|---|---|---|---:|" + "---:|" * len(checkpoints) + "---:|",
    ]
    for r in data["rows"]:
        values = " | ".join(f"{r['curve'][min(n, len(r['curve']) - 1)]:.4g}" for n in checkpoints)
        match = str(r["match"]) if r["match"] is not None else f"> {r['iterations']}"
        size = r["size"] + (" (training size)" if r["trained_size"] else "")
        lines.append(f"| {r['photo']} | {size} | {r['init']} | {r['network']:.4g} | {values} | {match} |")
    matches = [r["match"] for r in data["rows"] if r["match"] is not None]
    summary = (f"This run: the network's objective equals the baseline's after {min(matches)}-{max(matches)} L-BFGS "
               f"iterations ({len(matches)} of {len(data['rows'])} cases matched within {profile.lbfgs_iterations})"
               if matches else f"This run: the baseline never reached the network's objective within {profile.lbfgs_iterations} iterations")
    larger = [r for r in data["rows"] if not r["trained_size"] and r["match"] is not None]
    if larger:
        summary += f"; at sizes larger than training: {min(r['match'] for r in larger)}-{max(r['match'] for r in larger)}"
    lines += ["", PAPER_OBJECTIVE_FINDING, "", summary + ".", "", f"![objective]({data['plot']})"]
    return lines

