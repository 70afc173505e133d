"""Command line for the model registry.

    python -m registry list [--task TASK] [--source local|hub|cache] [--json]
    python -m registry show ID [--json]
    python -m registry pull ID
    python -m registry publish FOLDER REPO_ID [--private] [--token TOKEN] [--message TEXT]
    python -m registry import-legacy FILE.pth [--name NAME] [--style STYLE] [--style-image IMAGE] [--overwrite]
    python -m registry import-onnx FILE.onnx [--name NAME] [--style STYLE] [--overwrite]
    python -m registry import-zoo [STYLE ...] [--overwrite]
    python -m registry plugins
    python -m registry export-onnx ID OUT.onnx [--opset N] [--no-check]

Errors print one line to stderr and exit with 1 (2 for a malformed or ambiguous id or bad arguments;
``import-zoo`` exits with 1 when any style failed, after reporting each);
``--debug`` shows the traceback instead. Notices (e.g. an unreachable Hub) go to stderr too.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

TASK_CHOICES = ("style-transfer", "super-resolution")
# registry.onnx_zoo.ZOO_STYLES's keys, spelled out so that --help needs no import of torch.
ZOO_STYLE_NAMES = ("candy", "mosaic", "pointilism", "rain-princess", "udnie")
SOURCE_CHOICES = ("local", "hub", "cache")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m registry", description="Find, load and share Perceptual Studio models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("list", help="list local, Hub and cached models")
    listing.add_argument("--task", choices=TASK_CHOICES)
    listing.add_argument("--source", choices=SOURCE_CHOICES)
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    show = commands.add_parser("show", help="show one model's entry and config.json")
    show.add_argument("id", help="local:NAME, hub:OWNER/NAME, cache:OWNER/NAME, OWNER/NAME or NAME")
    show.add_argument("--json", action="store_true")

    pull = commands.add_parser("pull", help="download a Hub model into the HF cache")
    pull.add_argument("id", help="OWNER/NAME or hub:OWNER/NAME")

    publish = commands.add_parser("publish", help="upload a model folder to the Hub")
    publish.add_argument("folder", help="a model folder, or local:NAME")
    publish.add_argument("repo_id", help="OWNER/NAME on the Hub")
    publish.add_argument("--private", action="store_true", help="create the repo as private")
    publish.add_argument("--token", help="Hub token (default: HF_TOKEN, then the cached `hf auth login`)")
    publish.add_argument("--message", help="commit message")

    legacy = commands.add_parser("import-legacy", help="convert a pytorch/examples fast_neural_style .pth")
    legacy.add_argument("checkpoint", type=Path)
    legacy.add_argument("--name", help="folder name in the models folder (default: the file name's stem)")
    legacy.add_argument("--style", help="style name (default: the file name's stem)")
    legacy.add_argument("--style-image", type=Path, help="the style image, stored as style.jpg")
    legacy.add_argument("--overwrite", action="store_true")

    onnx_import = commands.add_parser("import-onnx",
                                      help="convert a pytorch/examples fast_neural_style network exported to ONNX")
    onnx_import.add_argument("file", type=Path)
    onnx_import.add_argument("--name", help="folder name in the models folder (default: the file name's stem)")
    onnx_import.add_argument("--style", help="style name (default: the file name's stem)")
    onnx_import.add_argument("--overwrite", action="store_true")

    zoo = commands.add_parser("import-zoo", help="download and convert the ONNX model zoo's classic styles (Hub)")
    zoo.add_argument("styles", nargs="*", metavar="STYLE",
                     help=f"any of {', '.join(ZOO_STYLE_NAMES)} (default: all five)")
    zoo.add_argument("--overwrite", action="store_true", help="re-import styles that are already in the models folder")

    commands.add_parser("plugins", help="list installed architectures and plugin problems")

    onnx = commands.add_parser("export-onnx", help="export a model to ONNX (dynamic batch/height/width)")
    onnx.add_argument("id", help="local:NAME, hub:OWNER/NAME, cache:OWNER/NAME, OWNER/NAME or NAME")
    onnx.add_argument("out", type=Path, help="the .onnx file to write")
    onnx.add_argument("--opset", type=int, default=17, help="ONNX opset version (default: 17)")
    onnx.add_argument("--no-check", action="store_true",
                      help="skip running the graph in onnxruntime against PyTorch (done when onnxruntime is installed)")
    return parser


def _note(text: str) -> None:
    print(f"notice: {text}", file=sys.stderr)


def _entry_dict(entry: Any) -> dict:
    data = asdict(entry)
    return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def cmd_list(args: argparse.Namespace) -> int:
    from perceptual_studio import settings
    from perceptual_studio.registry.api import list_models

    listing = list_models(task=args.task, source=args.source)
    for notice in listing.notices:
        _note(notice)
    if args.json:
        print(json.dumps({"models": [_entry_dict(e) for e in listing], "notices": listing.notices}, indent=2))
        return 0
    if not listing.entries:
        print(f"No models found (models folder: {settings.models_dir()}).")
        return 0
    rows = [["ID", "TASK", "STYLE/SCALE", "OFFLINE", "LOSS NETWORK", "STATUS"]]
    for e in listing:
        rows.append([e.id, e.task or "?", e.label, "yes" if e.ready_offline else "no", e.loss_network or "?",
                     "BROKEN (see below)" if e.error else "ok"])
    print(_table(rows))
    broken = [e for e in listing if e.error]
    if broken:
        print("\nBroken models (the others are unaffected):")
        for e in broken:
            print(f"  - {e.error}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from perceptual_studio.registry.api import describe

    entry, config = describe(args.id)
    if args.json:
        print(json.dumps({"entry": _entry_dict(entry), "config": config}, indent=2))
        return 0
    for key, value in _entry_dict(entry).items():
        if value not in (None, ""):
            print(f"{key + ':':15} {value}")
    if entry.random_loss_network:
        print("WARNING:        trained with a RANDOM-weight loss network, not pretrained VGG-16")
    if config is not None:
        print("config.json:")
        print(json.dumps(config, indent=2))
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from perceptual_studio.registry.api import pull

    print(pull(args.id))
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from perceptual_studio.registry.api import publish

    result = publish(args.folder, args.repo_id, token=args.token, private=True if args.private else None,
                     commit_message=args.message)
    print(f"published {result.repo_id} ({'private' if result.private else 'default visibility'}): {result.url}")
    return 0


def cmd_import_legacy(args: argparse.Namespace) -> int:
    from perceptual_studio.registry.legacy import import_legacy_checkpoint

    folder = import_legacy_checkpoint(args.checkpoint, args.name, style=args.style, style_image=args.style_image,
                                      overwrite=args.overwrite)
    print(f"imported {args.checkpoint.name} -> {folder} (id local:{folder.name})")
    return 0


def cmd_import_onnx(args: argparse.Namespace) -> int:
    from perceptual_studio.registry.onnx_zoo import import_onnx_model

    folder = import_onnx_model(args.file, args.name, style=args.style, overwrite=args.overwrite)
    print(f"imported {args.file.name} -> {folder} (id local:{folder.name})")
    return 0


def cmd_import_zoo(args: argparse.Namespace) -> int:
    from perceptual_studio.registry.onnx_zoo import import_zoo_styles, zoo_style

    try:
        for style in args.styles:
            zoo_style(style)
    except ValueError as exc:  # a bad argument: exit 2, like argparse
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = import_zoo_styles(args.styles or None, overwrite=args.overwrite)
    for result in results:
        line = f"{result.style}: {result.status}: {result.message}"
        if result.status == "skipped":
            line += " (--overwrite re-imports it)"
        print(line, file=sys.stderr if result.status == "failed" else sys.stdout)
    return 1 if any(r.status == "failed" for r in results) else 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from perceptual_studio.networks.architectures import list_architectures
    from perceptual_studio.registry.plugins import ENTRY_POINT_GROUP, load_plugins

    report = load_plugins(strict=False)
    rows = [["ARCHITECTURE", "TASK", "PROVIDER"]] + [[a.name, a.task, a.provider] for a in list_architectures()]
    print(_table(rows))
    print(f"\nentry-point group: {ENTRY_POINT_GROUP}")
    for line in report.errors:
        _note(f"plugin problem: {line}")
    return 0


def cmd_export_onnx(args: argparse.Namespace) -> int:
    import importlib.util

    from perceptual_studio.networks.onnx_export import check_onnx, export_onnx
    from perceptual_studio.registry.api import load_model

    model = load_model(args.id, "cpu")
    config = model.config
    metadata = {"model_id": model.model_id, "architecture": config.architecture, "task": config.task,
                "style": config.style, "architecture_args": json.dumps(config.architecture_args, sort_keys=True),
                "loss_network": config.training.loss_network}
    path = export_onnx(model.network, args.out, opset=args.opset, metadata=metadata)
    print(f"exported {model.model_id} -> {path} ({path.stat().st_size / 2**20:.1f} MB; input 'image' (B, 3, H, W) "
          f"in [0, 1], dynamic batch/height/width)")
    if args.no_check:
        return 0
    if importlib.util.find_spec("onnxruntime") is None:
        _note("onnxruntime is not installed: the graph was not checked (pip install onnxruntime)")
        return 0
    difference = check_onnx(model.network, path)
    print(f"onnxruntime vs PyTorch (float32, two odd-sized batches): max abs difference {difference:.2e}")
    return 0


COMMANDS = {"list": cmd_list, "show": cmd_show, "pull": cmd_pull, "publish": cmd_publish,
            "import-legacy": cmd_import_legacy, "import-onnx": cmd_import_onnx, "import-zoo": cmd_import_zoo,
            "plugins": cmd_plugins, "export-onnx": cmd_export_onnx}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # before huggingface_hub is imported
    from perceptual_studio.registry.errors import (
        AmbiguousModelIdError,
        InvalidModelIdError,
        RegistryError,
    )

    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback, unless --debug
        if args.debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not isinstance(exc, (RegistryError, OSError, ValueError)):
            message = f"{type(exc).__name__}: {message}"
        print(f"error: {message}", file=sys.stderr)
        return 2 if isinstance(exc, (InvalidModelIdError, AmbiguousModelIdError)) else 1


if __name__ == "__main__":
    sys.exit(main())
