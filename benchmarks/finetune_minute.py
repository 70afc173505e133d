"""A new style in about a minute: the Train tab's default job, timed as a user sees it (a benchmark, not a test).

    python -m benchmarks.finetune_minute [--style neon] [--budget 90] [--out reports/finetune-minute]

Runs the Train tab's own job (``webapp.handlers.training.train_style_job`` with the default preset: a
fine-tune from the shipped style closest to the new one, ``pipelines.closest_style``) on a style image none of
the shipped models has (the generated "neon" by default, or ``--style FILE``, e.g. a corpus painting the gallery
does not ship), in this process on this machine. Then, for comparison, the same fine-tune from the gallery's
root model (``builtin:stained-glass``, the default before the closest style was chosen; skipped when it is the
closest) and the "from scratch" starter preset for the same wall-clock budget (cancelled there, as the Cancel
button does). It prints style loss against wall-clock time for every run, when each first reaches the style loss
the root-model fine-tune ends with (a recognisable result), the moments a new preview reached the page, and
whether the default job finished within ``--budget`` seconds; it saves

* ``loss_vs_time.png``: style loss (log scale) against seconds since Train was pressed, every run;
* ``previews.jpg``: the previews the Train tab showed while the fine-tune ran, labelled with their time;
* ``result.jpg``: the style image | the starting model | each run's model, on a held-out photo;
* ``results.json``: every number above.

The clock starts when the job starts (what pressing Train does) and includes loading the loss network and
the starting model and preparing the style targets; the loss network's one-off conversion is not included
(run the app or any benchmark once before). Models go to a temporary folder; nothing is kept.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common import loadavg

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_PHOTO = "chelsea"  # never in the gallery's training content (train/shipped/gallery.toml)
TIME_MARKS = (10, 20, 30, 45, 60, 75, 90)


def run_job(request, budget_s: float | None) -> dict:
    """Run one Train-tab job; record (seconds, step, losses) per update and each new preview with its time.
    With ``budget_s`` the job is cancelled once that much time has passed (it then saves what it has)."""
    from perceptual_studio.webapp.handlers import training

    job_id = training.new_job_id()
    timer = threading.Timer(budget_s, training.cancel_job, [job_id]) if budget_s else None
    rows, previews, last_preview = [], [], None
    started = time.perf_counter()
    if timer:
        timer.start()
    try:
        for update in training.train_style_job(request, job_id):
            now = time.perf_counter() - started
            if update.losses and update.step:
                rows.append({"seconds": now, "step": update.step, **update.losses})
            if update.preview is not None and update.preview is not last_preview:
                previews.append((now, update.step, update.preview))
                last_preview = update.preview
            final = update
    finally:
        if timer:
            timer.cancel()
    seconds = time.perf_counter() - started
    first_step = rows[0]["seconds"] if rows else None
    from perceptual_studio.registry.api import read_config

    start = read_config(final.model_id)[1].training.extra.get("init") if final.model_id else None
    return {"seconds": seconds, "prepare_seconds": first_step, "rows": rows, "previews": previews,
            "model_id": final.model_id, "start": start, "steps": final.step, "total": final.total,
            "cancelled": final.cancelled}


def loss_at(rows: list[dict], seconds: float, term: str = "style") -> float | None:
    """The mean ``term`` of the last five updates at or before ``seconds`` (one update is one noisy batch)."""
    seen = [r[term] for r in rows if r["seconds"] <= seconds and term in r]
    return sum(seen[-5:]) / len(seen[-5:]) if seen else None


def seconds_to_reach(rows: list[dict], level: float, term: str = "style") -> float | None:
    """When the five-update mean of ``term`` first falls to ``level`` or below; None if it never does."""
    for row in rows:
        value = loss_at(rows, row["seconds"], term)
        if value is not None and value <= level:
            return row["seconds"]
    return None


def time_table(runs: dict[str, dict], marks: tuple[int, ...]) -> str:
    names = list(runs)
    lines = ["| seconds since Train | " + " | ".join(f"{n}: step · style · content loss" for n in names) + " |",
             "|---:|" + "---:|" * len(names)]
    for mark in marks:
        cells = []
        for name in names:
            rows = [r for r in runs[name]["rows"] if r["seconds"] <= mark]
            value = loss_at(runs[name]["rows"], mark)
            content = loss_at(runs[name]["rows"], mark, "content")
            cells.append(f"{rows[-1]['step']} · {value:.3g} · {content:.3g}" if rows and value is not None
                         else "preparing")
        lines.append(f"| {mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save_figures(runs: dict[str, dict], style_path: Path, base: str, out: Path) -> None:
    from PIL import Image, ImageDraw, ImageFont

    from perceptual_studio.imaging.figures import evenly, line_plot
    from perceptual_studio.imaging.sample_photos import load_sample_photo
    from perceptual_studio.webapp.handlers import stylize

    series_x = sorted({round(r["seconds"], 1) for run in runs.values() for r in run["rows"]})
    series = {}
    for name, run in runs.items():
        by_time = {round(r["seconds"], 1): r["style"] for r in run["rows"]}
        series[f"{name} (style loss)"] = [by_time.get(x, float("nan")) for x in series_x]
    line_plot(series_x, series, title="Style loss against wall-clock time (2 CPU cores)" if os.cpu_count() == 2 else
              "Style loss against wall-clock time", xlabel="seconds since Train was pressed",
              ylabel="style loss (log scale)", log_y=True, markers=False).save(out / "loss_vs_time.png")

    font = ImageFont.load_default(size=13)

    def strip(tiles: list[tuple[Image.Image, str]], height: int = 192) -> Image.Image:
        scaled = [(t.resize((round(t.width * height / t.height), height), Image.Resampling.LANCZOS), label)
                  for t, label in tiles]
        canvas = Image.new("RGB", (sum(t.width for t, _ in scaled) + 6 * (len(scaled) + 1), height + 30), "white")
        x = 6
        for tile, label in scaled:
            canvas.paste(tile, (x, 6))
            ImageDraw.Draw(canvas).text((x + tile.width / 2, height + 10), label, fill=(20, 20, 20), font=font,
                                        anchor="mt")
            x += tile.width + 6
        return canvas

    tuned = runs["fine-tune (default)"]
    strip([(image, f"{seconds:.0f} s · step {step}") for seconds, step, image in evenly(tuned["previews"], 6)]
          ).save(out / "previews.jpg", quality=92)
    photo = load_sample_photo(HELD_OUT_PHOTO)
    tiles = [(Image.open(style_path).convert("RGB"), "style image"),
             (stylize(photo, base, 384).image, f"start: {base}")]
    for name, run in runs.items():
        tiles.append((stylize(photo, run["model_id"], 384).image, f"{name}, {run['seconds']:.0f} s"))
    strip(tiles, height=256).save(out / "result.jpg", quality=92)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.finetune_minute", description=__doc__.split("\n")[0])
    parser.add_argument("--style", default="neon", help="a generated style's name or an image file (default: neon)")
    parser.add_argument("--budget", type=float, default=90.0, help="seconds the default job must finish in")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "finetune-minute")
    parser.add_argument("--skip-scratch", action="store_true", help="only the default fine-tune")
    return parser


def _style_path(parser: argparse.ArgumentParser, style: str, out: Path) -> Path:
    """``--style`` as an image file: the file itself, or the generated style drawn into ``out``."""
    from perceptual_studio.imaging.generated_styles import GENERATED_STYLES

    if Path(style).is_file():
        return Path(style)
    if style in GENERATED_STYLES:
        style_path = out / f"{style}.png"
        GENERATED_STYLES[style]().save(style_path)
        return style_path
    parser.error(f"--style: no such file, and not a generated style ({', '.join(GENERATED_STYLES)})")


ROOT_RUN = "fine-tune from the gallery's root model"


def _run_jobs(style_path: Path, root: str, budget_s: float, skip_scratch: bool) -> dict[str, dict]:
    """The default fine-tune (the Train tab's own choice of start), the same from the gallery's ``root`` model
    (unless that is the choice), then (unless skipped) the from-scratch starter cancelled at the budget."""
    from perceptual_studio.webapp.handlers import training

    default = training.with_preset(training.TrainRequest(style=str(style_path), style_name="new-finetune",
                                                        preset=training.DEFAULT_PRESET))
    runs = {"fine-tune (default)": run_job(default, None)}
    if runs["fine-tune (default)"]["start"] != root:
        runs[ROOT_RUN] = run_job(replace(default, style_name="new-from-root", init_model=root), None)
    if not skip_scratch:
        scratch = training.with_preset(training.TrainRequest(style=str(style_path), style_name="new-scratch",
                                                            preset="starter"))
        scratch = replace(scratch, iterations=10**6)  # stopped by the clock, not by its length
        runs["from scratch (starter)"] = run_job(scratch, budget_s)
    return runs


def _print_report(runs: dict[str, dict], style_path: Path, base: str, budget_s: float, out: Path,
                  load_before: str) -> None:
    """The Markdown report: the setup, the loss-against-time table and the verdict on the budget."""
    from perceptual_studio import settings
    from perceptual_studio.networks.devices import device_name
    from perceptual_studio.webapp.handlers import training

    tuned = runs["fine-tune (default)"]
    preset = training.PRESETS[training.DEFAULT_PRESET]
    start_style = tuned["rows"][0]["style"] if tuned["rows"] else float("nan")
    end_style = loss_at(tuned["rows"], tuned["seconds"])
    print(f"# A new style in about a minute ({device_name(settings.device())}, {os.cpu_count()} CPU threads; load average "
          f"{load_before} before, {loadavg()} after)\n")
    print(f"Style image: `{style_path.name}`. Default Train-tab job: preset `{training.DEFAULT_PRESET}` "
          f"({preset.iterations} steps, {preset.image_size} px, batch {preset.batch_size}, lr {preset.learning_rate:g}), "
          f"fine-tuning `{base}` (the shipped style closest to it); content: the gallery's training crops.\n")
    print(time_table(runs, TIME_MARKS))
    verdict = "within" if tuned["seconds"] <= budget_s else "OVER"
    print(f"\nDefault job: {tuned['steps']} steps in {tuned['seconds']:.1f} s ({verdict} the {budget_s:.0f}-s target); "
          f"first step after {tuned['prepare_seconds']:.1f} s of preparation; style loss {start_style:.4g} at the "
          f"first step -> {end_style:.4g} at the end ({end_style / start_style:.0%}).")
    print("Previews shown while it trained (s): " + ", ".join(f"{s:.0f}" for s, _, _ in tuned["previews"]))
    if ROOT_RUN in runs and runs[ROOT_RUN]["rows"] and tuned["rows"]:
        # a recognisable result: the style loss the fine-tune from the root model ends with
        root_run = runs[ROOT_RUN]
        level = loss_at(root_run["rows"], root_run["seconds"])
        reached = seconds_to_reach(tuned["rows"], level)
        print(f"\nFrom `{root_run['start']}` instead: {root_run['steps']} steps in {root_run['seconds']:.1f} s, style "
              f"loss {loss_at(root_run['rows'], 1e9):.4g} and content loss {loss_at(root_run['rows'], 1e9, 'content'):.4g} "
              f"at the end (from `{base}`: {end_style:.4g} and {loss_at(tuned['rows'], 1e9, 'content'):.4g}). "
              f"From `{base}` that style loss was reached after "
              + (f"{reached:.1f} s" if reached is not None else "never (within the job)")
              + f"; from `{root_run['start']}` after {root_run['seconds']:.1f} s.")
    if "from scratch (starter)" in runs:
        scratch_run = runs["from scratch (starter)"]
        print(f"From scratch, same budget: {scratch_run['steps']} steps, style loss "
              f"{loss_at(scratch_run['rows'], scratch_run['seconds']):.4g} at {scratch_run['seconds']:.0f} s.")
    print(f"\nFigures: {out / 'loss_vs_time.png'}, {out / 'previews.jpg'}, {out / 'result.jpg'}")


def _write_results(runs: dict[str, dict], style_path: Path, base: str, budget_s: float, out: Path) -> None:
    """``results.json``: every number of both runs (the previews by their times only)."""
    from perceptual_studio import settings
    from perceptual_studio.networks.devices import device_name

    summary = {name: {k: v for k, v in run.items() if k != "previews"} | {
        "preview_seconds": [s for s, _, _ in run["previews"]]} for name, run in runs.items()}
    (out / "results.json").write_text(json.dumps({"budget_s": budget_s, "base": base, "style": style_path.name,
                                                  "device": device_name(settings.device()), "runs": summary}, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)

    from perceptual_studio import settings

    cache = settings.cache_dir()  # keep the converted loss network; everything else goes to a temporary folder
    work = Path(tempfile.mkdtemp(prefix="finetune-minute-"))
    os.environ.update({settings.DATA_DIR.name: str(work), settings.CACHE_DIR.name: str(cache),
                       settings.HF_HUB_OFFLINE.name: "1"})
    from perceptual_studio.pipelines.training import ensure_default_content, root_base_model
    from perceptual_studio.webapp import samples
    from perceptual_studio.webapp.handlers import training

    args.out.mkdir(parents=True, exist_ok=True)
    style_path = _style_path(parser, args.style, args.out)
    root = root_base_model()
    if root is None:
        sys.stderr.write(f"error: {training.DEFAULT_BASE_MODEL} is not in this registry (a fresh clone ships it in "
                         f"registry/builtin)\n")
        return 1
    ensure_default_content()  # written once per machine; not part of a job's time
    samples.example_photos()
    load_before = loadavg()
    runs = _run_jobs(style_path, root, args.budget, args.skip_scratch)
    base = runs["fine-tune (default)"]["start"]
    save_figures(runs, style_path, base, args.out)

    _print_report(runs, style_path, base, args.budget, args.out, load_before)
    _write_results(runs, style_path, base, args.budget, args.out)
    return 0 if runs["fine-tune (default)"]["seconds"] <= args.budget else 1


if __name__ == "__main__":
    raise SystemExit(main())
