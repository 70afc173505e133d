"""Section 4: inference speed and memory against the arithmetic floor, and a 3840x2160 image whole and tiled."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from .profiles import Profile


def section_inference(profile: Profile, device: str, work: Path, out: Path) -> dict:
    from benchmarks import inference, tiling

    args = SimpleNamespace(device=device, precision="auto", sizes=list(profile.inference_sizes), batch=profile.inference_batch,
                           batch_size_px=512 if profile.name != "smoke" else 64, sr_low=profile.sr_low,
                           repeats=profile.inference_repeats, fit_steps=profile.fit_steps, memory=profile.inference_memory,
                           cuda_graphs=device.startswith("cuda"), skip_float32=False)
    data: dict = {"inference": inference.measure(args), "plot": "inference.png"}
    if profile.large_image:
        width, height = (int(v) for v in profile.large_image.split("x"))
        targs = SimpleNamespace(width=width, height=height, tiles=[512 if not device.startswith("cuda") else 2048],
                                naive_tiles=[], skip_whole=False, device=device, precision="auto", repeats=1)
        data["large"] = tiling.measure(targs)
    _plot_inference(data["inference"], out / "inference.png")
    return data


def _plot_inference(results: dict, path: Path) -> None:
    from perceptual_studio.imaging.figures import line_plot

    rows = [r for r in results["rows"] if r["label"].startswith("style") and "batch" not in r["label"]]
    if len(rows) < 1:
        return
    sizes = [r["shape"][-1] for r in rows]
    line_plot(sizes, {"measured": [r["median_s"] * 1000 for r in rows],
                      "floor": [r["floor_s"] * 1000 for r in rows]},
              title=f"Style network, median time vs arithmetic floor ({results['device_name']})",
              xlabel="image size (px)", ylabel="milliseconds", dashed=("floor",)).save(path)


def markdown_inference(data: dict, profile: Profile) -> list[str]:
    from benchmarks import inference, tiling

    lines = [
        f"Scale: style sizes {', '.join(map(str, profile.inference_sizes))} px, a batch of {profile.inference_batch}, "
        f"SR x4 from {profile.sr_low} px and x8 from {profile.sr_low // 2} px; networks at the paper's widths, fitted "
        f"{profile.fit_steps} Adam steps (speed does not depend on the weights). Floor = FLOPs / the measured peak of "
        f"a large matrix multiply in the plan's dtype; no loss network is involved.",
        "",
        inference.format_markdown(data["inference"]),
    ]
    if "large" in data:
        lines += ["", "Large image (tiles with whole-image instance-norm statistics, networks/tiling.py):", "",
                  tiling.format_markdown(data["large"])]
    lines += ["", f"![inference]({data['plot']})"]
    return lines

