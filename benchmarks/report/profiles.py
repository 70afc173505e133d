"""The report's sections and its profiles: every size, iteration count and network width a run uses."""
from __future__ import annotations

from pathlib import Path
from dataclasses import dataclass, fields

SECTIONS = (1, 2, 3, 4, 5, 6)
SECTION_TITLES = {
    1: "1. Speed: the paper's Table 1",
    2: "2. Objective value: fast network vs the L-BFGS baseline",
    3: "3. Super-resolution x4 and x8: the shipped models against bicubic",
    4: "4. Inference speed and memory against the arithmetic floor",
    5: "5. Training throughput and time-to-quality",
    6: "6. The shipped style gallery: objective vs L-BFGS, contact sheets",
}
STYLE_EVAL_PHOTOS = ("astronaut", "coffee", "chelsea")


@dataclass(frozen=True)
class Profile:
    """Sizes and budgets of one report run (printed in the report)."""

    name: str
    # 1. Table 1: square sizes; L-BFGS iterations actually timed (fewer than 500: extrapolated from the median)
    # for SciPy's L-BFGS-B and for the device-resident projected L-BFGS (baseline/lbfgs_device.py).
    table1_sizes: tuple[int, ...]
    table1_iterations: int
    table1_device_iterations: int
    table1_repeats: int
    # 2./5. The style network trained in-process: training size, iterations, width, residual blocks, content crops.
    style_size: int
    style_iterations: int
    style_width: float
    style_residual: int
    style_content_images: int
    # Held-out evaluation: longer sides (the first is the training size), photos, L-BFGS iterations, inits.
    eval_sizes: tuple[int, ...]
    eval_photos: tuple[str, ...]
    lbfgs_iterations: int
    inits: tuple[str, ...]
    # The baseline's optimiser there: "lbfgs" (SciPy L-BFGS-B, the app's default) or "lbfgs-device".
    objective_optimizer: str
    # 3. SR (the shipped models): images per dataset (0 = all), evaluation crop side.
    sr_eval_images: int
    sr_eval_max_side: int
    # 4. Inference: style sizes, repeats, SR x4 input side, batched row, CPU memory subprocesses, the 4K run.
    inference_sizes: tuple[int, ...]
    inference_repeats: int
    sr_low: int
    inference_batch: int
    inference_memory: bool
    large_image: str | None
    # 5. Training throughput: size, timed steps, warm-up steps.
    throughput_size: int
    throughput_steps: int
    throughput_warmup: int
    # Adam steps fitting the benchmark networks of sections 1 and 4 (speed does not depend on weights).
    fit_steps: int
    # 6. The shipped gallery: evaluation longer side, L-BFGS checkpoints (50/100/300, the paper's comparison), styles
    # evaluated (0 = all). Defaults, so results.json files written before section 6 existed still load.
    gallery_side: int = 256
    gallery_lbfgs: tuple[int, ...] = (50, 100, 300)
    gallery_styles: int = 0
    # ... and held-out photos per manifest (0 = all; the paintings' corpus holds out 22, each costs every style
    # its 300 L-BFGS iterations).
    gallery_photos: int = 4
    gallery_manifests: tuple[str, ...] = ()  # file names in train/shipped; empty: all of them
    # 3. Evaluation datasets: "held-out" (the SR manifest's photos, offline) and/or set5, set14, bsd100 or any Hub
    # dataset id (--sr-datasets).
    sr_datasets: tuple[str, ...] = ("held-out",)
    # The image corpus section 3's held-out photos come from (None: <data dir>/corpus, read before the report
    # points the data dir at its work folder).
    corpus: Path | None = None

    @classmethod
    def from_dict(cls, data: dict) -> "Profile":
        """A profile as results.json recorded it; fields of older report versions are dropped."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known})


PROFILES = {
    "smoke": Profile(
        name="smoke", table1_sizes=(64,), table1_iterations=2, table1_device_iterations=2, table1_repeats=2,
        style_size=32, style_iterations=12, style_width=0.25, style_residual=1, style_content_images=8,
        eval_sizes=(32, 48), eval_photos=("astronaut",), lbfgs_iterations=8, inits=("noise",), objective_optimizer="lbfgs",
        sr_eval_images=2, sr_eval_max_side=128,
        inference_sizes=(64,), inference_repeats=2, sr_low=32, inference_batch=2, inference_memory=False,
        large_image=None, throughput_size=64, throughput_steps=1, throughput_warmup=1, fit_steps=3,
        gallery_side=48, gallery_lbfgs=(2, 4, 8), gallery_styles=1, gallery_photos=1,
    ),
    "cpu": Profile(
        name="cpu", table1_sizes=(128, 256), table1_iterations=5, table1_device_iterations=5, table1_repeats=5,
        style_size=64, style_iterations=300, style_width=0.5, style_residual=3, style_content_images=64,
        eval_sizes=(64, 128, 192), eval_photos=("astronaut", "coffee"), lbfgs_iterations=100, inits=("noise",),
        objective_optimizer="lbfgs",
        sr_eval_images=0, sr_eval_max_side=512,
        inference_sizes=(256, 512, 1024), inference_repeats=5, sr_low=256, inference_batch=4, inference_memory=True,
        large_image="3840x2160", throughput_size=256, throughput_steps=2, throughput_warmup=1, fit_steps=20,
    ),
    "gpu": Profile(
        name="gpu", table1_sizes=(256, 512, 1024), table1_iterations=20, table1_device_iterations=500, table1_repeats=20,
        style_size=256, style_iterations=2000, style_width=1.0, style_residual=5, style_content_images=512,
        eval_sizes=(256, 512, 1024), eval_photos=STYLE_EVAL_PHOTOS, lbfgs_iterations=500, inits=("noise",),
        objective_optimizer="lbfgs-device",
        sr_eval_images=0, sr_eval_max_side=512,
        inference_sizes=(256, 512, 1024, 2048), inference_repeats=50, sr_low=256, inference_batch=64,
        inference_memory=False, large_image="3840x2160", throughput_size=256, throughput_steps=50,
        throughput_warmup=10, fit_steps=40,
    ),
}
