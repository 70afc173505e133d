"""Command-line plumbing shared by ``python -m train.style`` and ``python -m train.sr``: the options every trainer
has, a tqdm progress bar fed by the training callback, Ctrl-C as a clean stop, and one-line errors."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading
import types
import typing
from typing import Any, Callable, Sequence

from perceptual_studio import settings

from .loop import TrainEvent

_SHOWN_TERMS = ("total", "content", "style", "tv", "pixel")


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> int, ``tuple[str, ...]`` -> tuple."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        return _base_type(args[0])
    return typing.get_origin(annotation) or annotation


def add_config_arguments(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One option per field of the config dataclass, named, typed, defaulted and documented by the field
    (``train.config.option``)."""
    hints = typing.get_type_hints(config_class)
    for item in dataclasses.fields(config_class):
        meta = item.metadata
        flag = meta.get("flag") or "--" + item.name.replace("_", "-")
        kind = _base_type(hints[item.name])
        required = item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        default = None if required else (item.default if item.default is not dataclasses.MISSING
                                         else item.default_factory())
        common = {"dest": item.name, "help": meta.get("help")}
        if kind is bool and meta.get("negatable"):
            pair = parser.add_mutually_exclusive_group()
            pair.add_argument(flag, action="store_true", default=default, **common)
            pair.add_argument("--no-" + flag[2:], dest=item.name, action="store_false")
        elif kind is bool:
            parser.add_argument(flag, action="store_true", default=default, **common)
        elif meta.get("shorthand"):
            short, value, short_help = meta["shorthand"]
            pair = parser.add_mutually_exclusive_group()
            pair.add_argument(short, dest=item.name, action="store_const", const=value, help=short_help)
            pair.add_argument(flag, type=float if kind is float else kind, default=default, **common)
        elif kind is tuple:
            parser.add_argument(flag, nargs="+", default=list(default) if default else default, **common)
        else:
            parser.add_argument(flag, type=kind, default=default, required=required, choices=meta.get("choices"),
                                metavar=meta.get("metavar"), **common)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """What a command does with its run, beside the config: resume, overwrite, output."""
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run of this command")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder and model folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--max-minutes", type=_positive_minutes, default=None,
                        help="stop after this much wall-clock time (setup included) and write the model, as Ctrl-C "
                             "does (the run goes on with --resume): train as far as a fixed time budget allows")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def _positive_minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of minutes above 0, got {text!r}")
    return value


def build_parser(config_class: type, prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_config_arguments(parser, config_class)
    add_run_arguments(parser)
    return parser


def config_from_args(args: argparse.Namespace, config_class: type):
    """The config the parsed options describe (lists become tuples, as the dataclass stores them)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class)}
    return config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


class ProgressBar:
    """A tqdm bar showing the step, the loss terms and images/s; messages print above it."""

    def __init__(self, total: int, *, enabled: bool = True):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="step", dynamic_ncols=True, disable=not enabled, file=sys.stderr)

    def __call__(self, event: TrainEvent) -> None:
        if event.message:
            self.bar.write(event.message, file=sys.stderr)
        if event.done or event.cancelled:
            self.bar.close()
            return
        if event.step > self.bar.n:
            self.bar.update(event.step - self.bar.n)
        if event.losses:
            terms = " ".join(f"{k}={event.losses[k]:.4g}" for k in _SHOWN_TERMS if event.losses.get(k))
            self.bar.set_postfix_str(f"{terms} {event.images_per_s:.1f} img/s", refresh=False)

    def close(self) -> None:
        self.bar.close()


class CtrlC:
    """First Ctrl-C: ask the run to stop cleanly (it still writes a model); second: abort."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: Any = None

    def __enter__(self) -> threading.Event:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self.event

    def _handle(self, signum: int, frame: Any) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()
        print("\nstopping after this step and writing the model (Ctrl-C again to abort)", file=sys.stderr)

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run_cli(train: Callable[[threading.Event], Any], *, debug: bool) -> int:
    """Run ``train`` with Ctrl-C handling; user-fixable errors print one line and return 1."""
    from perceptual_studio.imaging.io import ImageInputError
    from perceptual_studio.registry import RegistryError

    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data import DataError
    from .loop import TrainingDivergedError

    main_process = settings.torchrun_rank() == 0  # under torchrun, rank 0 speaks for the run
    level = logging.DEBUG if debug else (logging.INFO if main_process else logging.ERROR)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    expected = (ConfigError, DataError, ImageInputError, RegistryError, TrainingDivergedError, CheckpointError,
                FileExistsError)
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        with CtrlC() as stop, logging_redirect_tqdm():  # log lines print above the progress bar
            result = train(stop)
    except expected as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    if result is not None and main_process:
        print(result)
    return 0


def trainer_main(argv: Sequence[str] | None, config_class: type, prog: str, description: str,
                 train: Callable[..., Any]) -> int:
    """The whole ``main`` of a trainer CLI (``train.style``, ``train.sr``, ``train.distill``): parse ``argv``
    into ``config_class``, show a progress bar on the main process, and run ``train(config, bar, stop,
    resume=..., overwrite=...)`` under :func:`run_cli`."""
    args = build_parser(config_class, prog, description).parse_args(argv)

    def run(stop):
        config = config_from_args(args, config_class)
        bar = ProgressBar(config.iterations, enabled=not args.quiet and settings.torchrun_rank() == 0)
        timer = threading.Timer(args.max_minutes * 60, stop.set) if args.max_minutes else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            return train(config, bar, stop, resume=args.resume, overwrite=args.overwrite)
        finally:
            bar.close()
            if timer is not None:
                timer.cancel()

    return run_cli(run, debug=args.debug)
