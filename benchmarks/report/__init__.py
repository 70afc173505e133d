"""The reproduction report: Johnson, Alahi & Fei-Fei (ECCV 2016) measured on the device at hand, as Markdown + plots.

    python -m benchmarks.report [--out DIR] [--device cpu|cuda] [--profile smoke|cpu|gpu] [--sections 1 2 ...]

Writes ``DIR/report.md`` (default ``reports/<profile>-<device>``), its plots (PNG, imaging/figures.py) and
``DIR/results.json``. Sections, each scaled to the device (every size, iteration count and network width
used is printed in the report):

1. The paper's Table 1: the L-BFGS baseline at 100/300/500 iterations vs the feed-forward network, per
   size, and the speed-ups, beside the paper's figures (benchmarks/speed.py).
2. Objective value: a style network trained here in-process vs the baseline's objective over L-BFGS
   iterations, on held-out photos at several resolutions including larger than training (the paper's
   Sec. 4.1/Fig. 5 comparison).
3. Super-resolution x4 and x8: the shipped pixel-loss and feature-loss models (registry/builtin/sr) against
   bicubic on photos they never saw (``--sr-datasets``: the manifest's held-out photos offline; set5, set14,
   bsd100 from the Hub): PSNR/SSIM on Y, relu2_2 distance, detail and cross-hatch measures, with and without
   histogram matching, per image and mean, beside the paper's finding; a crop grid of the outputs.
4. Inference speed and memory per size against the arithmetic floor (benchmarks/inference.py) and a
   3840x2160 stylization, whole and tiled (benchmarks/tiling.py).
5. Training throughput (benchmarks/train_speed.py) and time-to-quality: the training time until the
   network's objective on a held-out photo matches the baseline's after 50 and 100 L-BFGS iterations.
6. The shipped style gallery against the baseline (objective vs 50/100/300 L-BFGS iterations, contact sheets).

Profiles: ``smoke`` (CI: about a minute on 2 CPU cores; numbers meaningless, the plumbing checked),
``cpu`` (the default on a CPU: minutes), ``gpu`` (the default on CUDA: paper sizes, real 500-iteration
baselines, longer training). Each run merges its sections into ``results.json`` in DIR, so the GPU report
can be produced in several shorter commands (``--sections``) into one folder. Which loss network produced
the numbers (ImageNet-pretrained VGG-16, or the random-weight fallback) is stated at the top and per section.
All images are scikit-image's bundled photos (public domain / CC0) or generated here.

Layout: this package's ``__init__`` is the command line; ``build.py`` runs sections and writes the report;
one module per section (``table1``, ``objective``, ``superres``, ``inference``, ``training``), each measuring
its numbers, drawing its plot and rendering its Markdown; ``profiles.py`` holds the sizes, ``helpers.py``
what sections share.
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from .build import build_markdown, run_report
from .profiles import PROFILES, SECTION_TITLES, SECTIONS, Profile

ROOT = Path(__file__).resolve().parents[2]

__all__ = ["PROFILES", "SECTIONS", "SECTION_TITLES", "Profile", "build_markdown", "main", "parse_args", "run_report"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="report folder (default: reports/<profile>-<device>)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1... (default: settings.device())")
    parser.add_argument("--profile", choices=sorted(PROFILES), help="default: gpu on CUDA, cpu otherwise")
    parser.add_argument("--smoke", action="store_true", help="same as --profile smoke (CI: about a minute)")
    parser.add_argument("--sections", type=int, nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--sr-datasets", nargs="+", metavar="NAME",
                        help="section 3's evaluation sets: held-out (offline), set5, set14, bsd100 or a Hub dataset id "
                             "(default: held-out)")
    parser.add_argument("--corpus", type=Path, help="the image corpus folder (default: <data dir>/corpus)")
    parser.add_argument("--gallery-photos", type=int, metavar="N",
                        help="section 6: held-out photos per gallery manifest (0: all; default: the profile's)")
    parser.add_argument("--gallery-lbfgs", type=int, nargs="+", metavar="ITERATIONS",
                        help="section 6: the L-BFGS checkpoints (default: the profile's, 50 100 300)")
    parser.add_argument("--gallery-manifests", nargs="+", metavar="FILE",
                        help="section 6: score only these manifests of train/shipped (paintings.toml, gallery.toml)")
    parser.add_argument("--work-dir", type=Path, help="training data, runs and models (default: a temporary folder)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from perceptual_studio import settings

    device = args.device or str(settings.device())
    name = "smoke" if args.smoke else args.profile or ("gpu" if device.startswith("cuda") else "cpu")
    profile = PROFILES[name]
    if args.sr_datasets:
        profile = replace(profile, sr_datasets=tuple(args.sr_datasets))
    if args.gallery_photos is not None:
        profile = replace(profile, gallery_photos=args.gallery_photos)
    if args.gallery_lbfgs:
        profile = replace(profile, gallery_lbfgs=tuple(sorted(args.gallery_lbfgs)))
    if args.gallery_manifests:
        profile = replace(profile, gallery_manifests=tuple(args.gallery_manifests))
    out = args.out or ROOT / "reports" / f"{name}-{device.replace(':', '')}"
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="report-"))
    from perceptual_studio.imaging.corpus.manifest import default_corpus_dir

    profile = replace(profile, corpus=args.corpus or default_corpus_dir())  # before the data dir moves below
    os.environ.setdefault("PERCEPTUAL_DATA_DIR", str(work / "data"))  # never the developer's models folder
    command = "python -m benchmarks.report " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    sections = tuple(sorted(set(args.sections)))
    if 5 in sections and 2 not in sections:
        print("note: time-to-quality needs section 2 in the same run; section 5 will report throughput only",
              file=sys.stderr)
    started = time.perf_counter()
    report, failures = run_report(out, device, profile, sections, work, command.strip())
    print(f"wrote {report} ({time.perf_counter() - started:.0f} s)")
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0
