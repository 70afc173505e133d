"""Batch command line for files and folders, sharing the web app's handlers.

    python -m webapp.cli stylize --model ID INPUT... --out DIR [--size 512] [--strength 1] [--style-scale 1]
                                 [--preserve-colours] [--network auto|fast|paper]
    python -m webapp.cli stylize --model A --weight 0.7 --model B --weight 0.3 INPUT... --out DIR [...]
    python -m webapp.cli upscale [--model ID] [--scale 4] [--match-histogram] INPUT... --out DIR
    python -m webapp.cli video IN OUT --model ID [--model B --weight ...] [--size 512] [--strength 1]
                               [--preserve-colours] [--network stable|auto|fast|paper]
    python -m webapp.cli models [--task style-transfer|super-resolution]

INPUT is an image file or a folder (searched recursively for images). ``upscale`` without ``--model`` uses the
registry's feature-loss model for the scale (the paper's), else its pixel-loss model, else bicubic; say
``--model bicubic`` to force bicubic. ``stylize`` with ``--model`` given two or more times blends the style
models (one architecture; network interpolation), the n-th ``--weight`` belonging to the n-th ``--model`` (any
non-negative numbers, normalised to sum to 1; no ``--weight`` at all: equal weights). A file that fails is
reported on stderr and skipped; the exit status is 1 if any failed, 2 for a usage error. ``video`` stylises one
clip into an MP4 (H.264, the clip's frame rate and sound) with the model's stable variant unless ``--network``
says otherwise; Ctrl-C keeps the frames done; a clip that cannot be used exits with 1 and writes nothing.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def find_inputs(items: Iterable[str]) -> list[Path]:
    """Image files named directly or found (recursively, sorted) in named folders."""
    found: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                            and not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    if not found:
        raise FileNotFoundError("no image files found in the given inputs")
    return found


def _output_path(out: Path, source: Path, suffix: str, taken: set[Path]) -> Path:
    """``out/<stem>_<suffix>.png``, numbered if two inputs share a stem."""
    stem = f"{source.stem}_{suffix}"
    path, n = out / f"{stem}.png", 1
    while path in taken:
        n += 1
        path = out / f"{stem}-{n}.png"
    taken.add(path)
    return path


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in text).strip("-") or "out"


def default_sr_model(scale: int) -> str | None:
    """The feature-loss model for ``scale`` if the registry has one, else the pixel-loss one, else None."""
    from perceptual_studio.webapp.handlers.models import current_listing, sr_choices

    ids, pixel, feature = sr_choices(current_listing(), scale)
    return feature or pixel or (ids[0] if ids else None)


def _run_each(inputs: list[Path], out: Path, work, suffix_for) -> int:
    from perceptual_studio.webapp.errors import user_message

    out.mkdir(parents=True, exist_ok=True)
    taken: set[Path] = set()
    failures = 0
    for source in inputs:
        try:
            image, seconds, label = work(source)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch
            failures += 1
            print(f"skipped {source}: {user_message(exc)}", file=sys.stderr)
            continue
        target = _output_path(out, source, suffix_for(label), taken)
        image.save(target)
        print(f"{source} -> {target} ({image.width}x{image.height}, {seconds:.2f} s, {label})")
    print(f"{len(inputs) - failures} of {len(inputs)} done", file=sys.stderr)
    return 1 if failures else 0


def stylize_command(args: argparse.Namespace) -> int:
    from perceptual_studio.webapp.handlers.style import choose_network, stylize

    if len(args.model) > 1:
        return _blend_command(args)
    if args.weight:
        raise ValueError("--weight is for blends: give --model two or more times, one --weight each.")
    model_id = args.model[0]
    choice = choose_network(model_id, args.network)  # a wrong id fails once, before any file
    if choice.note:
        print(choice.note, file=sys.stderr)

    def work(source: Path):
        result = stylize(source, model_id, args.size, args.preserve_colours, args.strength, args.style_scale,
                         args.network)
        return result.image, result.seconds, result.style or result.model_id

    return _run_each(find_inputs(args.inputs), Path(args.out), work, _safe)


def _blend_command(args: argparse.Namespace) -> int:
    """``stylize`` with several ``--model``: the blend is checked (and built) once, before any file."""
    from perceptual_studio.webapp.handlers.style import blended_network, stylize_blend

    weights = args.weight or [1.0] * len(args.model)
    parts = blended_network(args.model, weights).parts
    label = " + ".join(f"{part.style or part.model_id} {part.weight:.0%}" for part in parts)
    suffix = "-".join(f"{_safe(part.style or part.model_id)}{round(100 * part.weight)}" for part in parts)

    def work(source: Path):
        result = stylize_blend(source, args.model, weights, args.size, args.preserve_colours, args.strength,
                               args.style_scale)
        return result.image, result.seconds, label

    return _run_each(find_inputs(args.inputs), Path(args.out), work, lambda _: suffix)


def upscale_command(args: argparse.Namespace) -> int:
    from perceptual_studio.webapp.handlers.superres import upscale

    model = args.model
    if model is None:
        model = default_sr_model(args.scale)
        if model is None:
            print(f"no x{args.scale} super-resolution model found: using bicubic", file=sys.stderr)
    elif model == "bicubic":
        model = None
    if model is not None:
        from perceptual_studio.webapp.handlers.common import load_registry_model

        load_registry_model(model, "super-resolution")

    def work(source: Path):
        return upscale(source, model, args.scale, histogram_match=args.match_histogram)

    return _run_each(find_inputs(args.inputs), Path(args.out), work,
                     lambda label: f"x{args.scale}" + ("_bicubic" if label == "bicubic" else ""))


def video_command(args: argparse.Namespace) -> int:
    import threading
    import time

    from perceptual_studio.pipelines.video import stylize_video
    from perceptual_studio.webapp.errors import user_message
    from perceptual_studio.webapp.handlers import video as video_handlers

    if args.weight and len(args.weight) != len(args.model):
        raise ValueError("--weight is for blends: one --weight per --model.")
    request = video_handlers.video_request(args.input, args.model, args.size, args.strength, args.preserve_colours,
                                           args.network, args.weight or (), steady=args.steady)
    pipe = video_handlers.pipeline_for(request)  # a wrong model fails here, before the clip is read
    if pipe.note:
        print(pipe.note, file=sys.stderr)
    stop = threading.Event()
    reported = [0.0]

    def progress(done: int, total: int, _frame) -> None:
        if done == total or reported[0] + 2.0 < time.monotonic():
            reported[0] = time.monotonic()
            print(f"frame {done} of {total}", file=sys.stderr)

    try:
        result = _interruptible(lambda: stylize_video(
            pipe, args.input, args.output, size=request.size, strength=request.strength,
            preserve_colours=request.preserve_colours, progress=progress, should_stop=stop.is_set,
            steady=request.steady), stop)
    except (ValueError, OSError) as exc:
        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 1
    width, height = result.size
    kept = f" (stopped: {result.frames} of {result.source.frames} frames kept)" if result.stopped else ""
    print(f"{args.input} -> {result.path} ({result.frames} frames, {width}x{height}, {float(result.fps):.3g} fps, "
          f"{'with' if result.has_audio else 'no'} sound, {result.seconds:.1f} s, "
          f"{result.frames_per_second:.1f} frames/s){kept}")
    return 0


def _interruptible(work, stop):
    """Run ``work`` in a thread so that Ctrl-C sets ``stop`` (the frames done are kept) instead of killing it."""
    import threading

    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="video", daemon=True)
    worker.start()
    while worker.is_alive():
        try:
            worker.join(0.2)
        except KeyboardInterrupt:
            print("stopping after the current frame; the frames done are kept", file=sys.stderr)
            stop.set()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def models_command(args: argparse.Namespace) -> int:
    from perceptual_studio.webapp.handlers.models import current_listing, table_rows

    listing = current_listing()
    for notice in listing.notices:
        print(notice, file=sys.stderr)
    rows = [r for r, e in zip(table_rows(listing), listing.entries) if args.task is None or e.task == args.task]
    for row in rows:
        print("\t".join(row))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m webapp.cli", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    style = sub.add_parser("stylize", help="stylise images with a style model")
    style.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    style.add_argument("--model", required=True, action="append",
                       help="registry model id (local:NAME, owner/name, NAME); twice or more to blend the models")
    style.add_argument("--weight", type=float, action="append",
                       help="a blend's weight for the model of the same position (default: equal weights)")
    style.add_argument("--out", required=True, help="output folder")
    style.add_argument("--size", type=int, default=512, help="output longest side in px (default 512)")
    style.add_argument("--strength", type=float, default=1.0, help="style strength 0..1 (default 1)")
    style.add_argument("--style-scale", type=float, default=1.0, help="network input size / output size, 0.25..2")
    style.add_argument("--preserve-colours", "--preserve-colors", action="store_true",
                       help="keep the content's colours (luminance-only transfer)")
    style.add_argument("--network", choices=("auto", "fast", "paper"), default="auto",
                       help="auto (default): a model's fast variant on a CPU, the paper-size network on a GPU")
    style.set_defaults(run=stylize_command)
    up = sub.add_parser("upscale", help="super-resolve images x4 or x8")
    up.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    up.add_argument("--out", required=True, help="output folder")
    up.add_argument("--scale", type=int, choices=(4, 8), default=4)
    up.add_argument("--model", help="super-resolution model id, or 'bicubic' (default: the feature-loss model)")
    up.add_argument("--match-histogram", action="store_true",
                    help="match each result's colour histograms to its input (the paper's display; not for bicubic)")
    up.set_defaults(run=upscale_command)
    from perceptual_studio.pipelines.flow_blend import DEFAULT_STEADY

    clip = sub.add_parser("video", help="stylise a video clip into an MP4 with its sound")
    clip.add_argument("input", metavar="IN", help="the clip (MP4, WebM, MOV, AVI, MKV, animated GIF)")
    clip.add_argument("output", metavar="OUT", help="the MP4 to write")
    clip.add_argument("--model", required=True, action="append",
                      help="style model id; twice or more to blend the models")
    clip.add_argument("--weight", type=float, action="append", help="a blend's weight per --model (default: equal)")
    clip.add_argument("--size", type=int, default=512, help="output longest side in px (default 512; never enlarged)")
    clip.add_argument("--strength", type=float, default=1.0, help="style strength 0..1 (default 1)")
    clip.add_argument("--preserve-colours", "--preserve-colors", action="store_true",
                      help="keep the content's colours (luminance-only transfer)")
    clip.add_argument("--network", choices=("stable", "auto", "fast", "paper"), default="stable",
                      help="stable (default): the model's stable variant where it has one, else as auto")
    clip.add_argument("--steady", type=float, nargs="?", const=DEFAULT_STEADY, default=0.0, metavar="SHARE",
                      help=f"mix each frame with the last one along the motion (SHARE of the last, default "
                           f"{DEFAULT_STEADY:g} when given alone; 0: off, the default): less flicker, softer strokes")
    clip.set_defaults(run=video_command)
    listing = sub.add_parser("models", help="list the registry's models")
    listing.add_argument("--task", choices=("style-transfer", "super-resolution"))
    listing.set_defaults(run=models_command)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except Exception as exc:  # noqa: BLE001 - usage errors (missing inputs, bad model) as one line
        if args.debug:
            raise
        from perceptual_studio.webapp.errors import user_message

        print(f"error: {user_message(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
