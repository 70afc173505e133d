"""Section 5: training throughput, and the time until the network matches the baseline's objective."""
from __future__ import annotations

from pathlib import Path

from .helpers import Quiet
from .profiles import Profile


def section_training(profile: Profile, device: str, work: Path, out: Path, trained: dict | None,
                     objective: dict | None) -> dict:
    from benchmarks.train_speed import throughput

    with Quiet():
        rows = throughput(work / "throughput", device, profile.throughput_steps, profile.throughput_warmup,
                          profile.throughput_size, 4)
    data: dict = {"throughput": rows, "size": profile.throughput_size, "steps": profile.throughput_steps}
    if trained is not None and objective is not None:
        data["quality"] = _time_to_quality(profile, device, trained, objective)
        _plot_time_to_quality(data["quality"], out / "time_to_quality.png")
        data["plot"] = "time_to_quality.png"
    return data


def _time_to_quality(profile: Profile, device: str, trained: dict, objective: dict) -> dict:
    """The held-out photo's objective at each training preview, against the baseline's after 50/100 iterations."""
    import torch

    from perceptual_studio.imaging.io import image_to_tensor
    from perceptual_studio.losses import PerceptualLoss
    from perceptual_studio.train.run import loss_network_weights
    from perceptual_studio.train.style import load_preview_input, load_style_image, loss_config_for

    config = trained["config"]
    with Quiet():
        weights = loss_network_weights(config.vgg_weights)
    loss = PerceptualLoss(loss_config_for(config, weights), weights=weights).to(device)
    loss.set_style(load_style_image(config.style, config.style_size or config.image_size).to(device))
    content = load_preview_input(trained["probe"], profile.style_size).to(device)
    points = []
    with torch.no_grad():
        for p in trained["previews"]:
            output = image_to_tensor(p["image"]).to(device)
            points.append({"step": p["step"], "elapsed_s": p["elapsed_s"], "objective": float(loss(output, content).total)})
    photo = profile.eval_photos[0]
    baseline = next((r for r in objective["rows"] if r["photo"] == photo and r["longer_side"] == profile.style_size), None)
    levels = {}
    if baseline is not None:
        for n in (50, 100):
            if n < len(baseline["curve"]):
                level = baseline["curve"][n]
                reached = next((p for p in points if p["objective"] <= level), None)
                levels[str(n)] = {"objective": level, "reached": reached}
    return {"points": points, "levels": levels, "photo": photo, "size": profile.style_size,
            "init": baseline["init"] if baseline else None, "loss_network": weights.identity}


def _plot_time_to_quality(quality: dict, path: Path) -> None:
    from perceptual_studio.imaging.figures import line_plot

    points = quality["points"]
    if len(points) < 2:
        return
    x = [p["elapsed_s"] for p in points]
    series = {"network": [p["objective"] for p in points]}
    if "100" in quality["levels"]:
        series["L-BFGS 100 it"] = [quality["levels"]["100"]["objective"]] * len(points)
    line_plot(x, series, title=f"Objective on held-out {quality['photo']} during training", xlabel="training time (s)",
              ylabel="objective", dashed=("L-BFGS 100 it",)).save(path)


def markdown_training(data: dict, profile: Profile, device_name: str) -> list[str]:
    from benchmarks.train_speed import throughput_table

    lines = [f"Scale: throughput of the full-size network at {data['size']}x{data['size']}, batch 4, "
             f"{profile.throughput_warmup} warm-up + {data['steps']} timed steps through the real `train_style` loop "
             f"(paper: 256x256, batch 4).", "",
             throughput_table(data["throughput"], device_name, data["size"], 4, data["steps"])]
    quality = data.get("quality")
    if quality:
        lines += ["", f"Time-to-quality: the section-2 network's objective on the held-out photo {quality['photo']} "
                      f"({quality['size']} px, rendered at each training preview, 8-bit) against the baseline's objective "
                      f"on the same photo after 50 and 100 L-BFGS iterations ({quality['init']} init). Loss network: "
                      f"`{quality['loss_network']}`.", "",
                  "| target | baseline objective | reached at step | training time |", "|---|---:|---:|---:|"]
        for n, level in quality["levels"].items():
            reached = level["reached"]
            where = (f"{reached['step']} | {reached['elapsed_s']:.1f} s" if reached
                     else f"not within {profile.style_iterations} | -")
            lines.append(f"| L-BFGS {n} iterations | {level['objective']:.4g} | {where} |")
        points = quality["points"]
        if points:
            best = min(points, key=lambda p: p["objective"])
            lines += ["", f"The network's objective on this photo went from {points[0]['objective']:.4g} (step "
                          f"{points[0]['step']}) to {points[-1]['objective']:.4g} (step {points[-1]['step']}, "
                          f"{points[-1]['elapsed_s']:.0f} s of training); best {best['objective']:.4g} at step {best['step']}."]
        if "plot" in data:
            lines += ["", f"![time to quality]({data['plot']})"]
    return lines

