"""Command-line plumbing shared by ``python -m train.style`` and ``python -m train.sr``: the options every trainer
has, a tqdm progress bar fed by the training callback, Ctrl-C as a clean stop, and one-line errors."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Any, Callable, Sequence

from .loop import TrainEvent

_SHOWN_TERMS = ("total", "content", "style", "tv", "pixel")


def add_common_arguments(parser: argparse.ArgumentParser, *, iterations: int) -> None:
    parser.add_argument("--out", required=True,
                        help="model folder to write; a bare name means <models dir>/NAME (listed by the registry)")
    parser.add_argument("--init", metavar="MODEL_ID", help="warm-start from this registry model (fine-tuning)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per step and process (paper: 4)")
    parser.add_argument("--iterations", type=int, default=iterations, help=f"optimiser steps (paper: {iterations})")
    parser.add_argument("--lr", type=float, default=1e-3, dest="learning_rate", help="Adam learning rate (paper: 1e-3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="cuda, cpu, cuda:1... (default: PERCEPTUAL_DEVICE, else cuda if available)")
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                        help="auto: bfloat16 autocast on GPU, float32 on CPU")
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument("--channels-last", dest="channels_last", action="store_true", default=None,
                        help="channels-last memory layout (default: on GPU)")
    layout.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--deterministic", action="store_true", help="deterministic CUDA kernels (slower)")
    renorm = parser.add_mutually_exclusive_group()
    renorm.add_argument("--renorm", dest="renorm_radius", action="store_const", const=0.1,
                        help="Zeiler & Fergus filter renormalisation at RMS radius 0.1")
    renorm.add_argument("--renorm-radius", dest="renorm_radius", type=float, help="... at this radius")
    parser.add_argument("--vgg-weights", help="local VGG-16 safetensors file for the loss network")
    parser.add_argument("--explode-factor", type=float, default=1e3,
                        help="stop when the loss exceeds this multiple of the first step's loss")
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--preview-every", type=int, default=500, help="0: only at the end")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--preview-image", help="fixed validation image for previews (default: first training image)")
    parser.add_argument("--preview-size", type=int, default=256)
    parser.add_argument("--num-workers", type=int, help="data loader processes (default: 4 on GPU, 0 on CPU)")
    parser.add_argument("--run-dir", help="run folder for checkpoints and previews (default: <runs dir>/<model name>)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted run of this command")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder and model folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


COMMON_FIELDS = ("out", "init", "batch_size", "iterations", "learning_rate", "seed", "device", "precision",
                 "channels_last", "deterministic", "renorm_radius", "vgg_weights", "explode_factor",
                 "checkpoint_every", "preview_every", "log_every", "preview_image", "preview_size", "num_workers",
                 "run_dir")


def pick(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names}


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
    from imaging.io import ImageInputError
    from registry import RegistryError

    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .data import DataError
    from .loop import TrainingDivergedError

    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 speaks for the run
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
