"""Which runtime runs a network fastest on this machine, chosen by measuring it.

On a CPU the torch plan (:func:`networks.plan.choose_plan`: bfloat16 where the CPU has it, channels-last) and
ONNX Runtime on the exported float32 graph (and, with ``PERCEPTUAL_TORCH_COMPILE=1``, the torch plan under
``torch.compile``, which costs tens of seconds of compiling) are all timed on a probe photo (in the background,
off the request) the first time a model runs at a size (after one warm-up each, the median of a few runs), and
each is checked against the stock float32 eager output (PSNR at least :data:`MIN_PSNR_DB`). The fastest one
that passes wins and is remembered for that model's weights and that size bucket (the nearest of 256, 512 and
1024 px: ONNX Runtime was measured faster for the small networks at 256 px and slower from 512 px up), so the
measurement is paid once per model, bucket and process. On a GPU the torch plan runs (ONNX Runtime's CPU build cannot).
``python -m benchmarks.peer`` prints the same comparison at 256, 512 and 1024 px.
"""
from __future__ import annotations

import copy
import logging
import math
import statistics
import threading
import time
import weakref
from dataclasses import dataclass, replace

import torch
from torch import nn

from perceptual_studio import settings

from .plan import InferencePlan, _weights_signature, run_network

logger = logging.getLogger(__name__)

MIN_PSNR_DB = 40.0
PROBE_SIDE = 256
PROBE_BUCKETS = (256, 512, 1024)
PROBE_REPEATS = 3


@dataclass(frozen=True)
class RuntimeTrial:
    runtime: str
    seconds: float  # median of the probe runs
    psnr_db: float  # against the stock float32 eager output


@dataclass(frozen=True)
class RuntimeChoice:
    plan: InferencePlan
    trials: tuple[RuntimeTrial, ...]

    def describe(self) -> str:
        return ", ".join(f"{t.runtime} {t.seconds * 1e3:.0f} ms ({t.psnr_db:.0f} dB)" for t in self.trials)


_CHOICES: "weakref.WeakKeyDictionary[nn.Module, dict[tuple[InferencePlan, int], tuple[tuple, RuntimeChoice]]]" = (
    weakref.WeakKeyDictionary())
_PENDING: "weakref.WeakKeyDictionary[nn.Module, dict[tuple[InferencePlan, int], tuple]]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def probe_image(side: int = PROBE_SIDE) -> torch.Tensor:
    """The probe: a real photo (scikit-image's astronaut, public domain), centre-cropped to ``side`` px. A style
    network turns flat synthetic gradients into texture that tiny rounding differences move about, so only a
    photo tells whether a runtime's output matches float32."""
    from perceptual_studio.imaging.io import image_to_tensor
    from perceptual_studio.imaging.sample_photos import load_sample_photo

    photo = load_sample_photo("astronaut")
    shorter = min(photo.size)
    left, top = (photo.width - shorter) // 2, (photo.height - shorter) // 2
    photo = photo.crop((left, top, left + shorter, top + shorter)).resize((side, side))
    return image_to_tensor(photo)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float().cpu().clamp(0, 1) - b.float().cpu().clamp(0, 1)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def measure_runtimes(model: nn.Module, plan: InferencePlan, *, side: int = PROBE_SIDE,
                     repeats: int = PROBE_REPEATS) -> RuntimeChoice:
    """Time ``plan`` under each runtime this machine offers on a ``side`` px probe; the fastest that keeps
    PSNR >= 40 dB against float32 eager wins (the torch plan when none else qualifies)."""
    x = probe_image(side).to(plan.device)
    with torch.inference_mode():
        reference = copy.deepcopy(model).float().eval()(x)
    candidates = [replace(plan, runtime="torch")]
    if plan.device.type == "cpu" and onnxruntime_available() and not plan.compile:
        candidates.append(replace(plan, runtime="onnxruntime"))
    if plan.device.type == "cpu" and not plan.compile and settings.torch_compile_runtime():
        candidates.append(replace(plan, runtime="torch", compile=True))
    trials, usable = [], []
    for candidate in candidates:
        try:
            out = run_network(model, x, candidate)  # the warm-up builds the runtime's copy or session
            if candidate.compile:  # a second shape (both sides changed) builds the dynamic-shape graph now, not
                run_network(model, x[..., : side * 3 // 4 + 1, : side * 5 // 8 + 1], candidate)  # on a request
        except Exception as exc:  # noqa: BLE001 - e.g. an op the exporter cannot trace: that runtime is out
            logger.warning("runtime %s cannot run %s (%s: %s)", candidate.runtime, type(model).__name__,
                           type(exc).__name__, exc)
            continue
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run_network(model, x, candidate)
            if candidate.device.type == "cuda":
                torch.cuda.synchronize(candidate.device)
            times.append(time.perf_counter() - started)
        quality = _psnr(out, reference)
        label = "torch.compile" if candidate.compile else candidate.runtime
        trials.append(RuntimeTrial(label, statistics.median(times), quality))
        if quality >= MIN_PSNR_DB:
            usable.append((statistics.median(times), candidate))
    best = min(usable, key=lambda item: item[0])[1] if usable else candidates[0]
    return RuntimeChoice(best, tuple(trials))


def probe_side(side: int) -> int:
    """The size bucket an input of longest side ``side`` is measured at."""
    return min(PROBE_BUCKETS, key=lambda bucket: abs(math.log2(max(side, 1) / bucket)))


def fastest_plan(model: nn.Module, plan: InferencePlan, side: int = PROBE_SIDE, *,
                 wait: bool = False) -> InferencePlan:
    """``plan`` with the runtime measured fastest for ``model`` on inputs of longest side about ``side`` px.
    Only a CPU has a choice to make.

    The measurement (seconds for a large network: an ONNX export and a few timed runs) stays off the request
    that triggers it: it runs in a background thread and, until it is done, requests run the torch plan;
    afterwards the winner is remembered for these weights and that size bucket. ``wait=True`` measures in the
    caller instead (tests, benchmarks)."""
    # A super-resolution network's output is scale^2 times its input: a probe as large as the buckets would
    # need gigabytes (x8 from 1024 px), so those keep the torch plan, as do runs in tiles.
    upscales = int(getattr(model, "scale", 1) or 1) > 1
    if plan.device.type != "cpu" or plan.runtime != "torch" or upscales or not onnxruntime_available():
        return plan
    bucket = probe_side(side)
    signature = _weights_signature(model)
    key = (plan, bucket)
    with _LOCK:
        cached = _CHOICES.get(model, {}).get(key)
        if cached is not None and cached[0] == signature:
            return cached[1].plan
        pending = _PENDING.setdefault(model, {})
        if not wait and key in pending:
            return plan  # being measured
        pending[key] = signature
    # Large probes are costly: one timed run after the warm-up is enough to tell runtimes 20% apart.
    probe = min(bucket, max(side, 16))  # never larger than the input that asked

    def measure() -> RuntimeChoice:
        try:
            choice = measure_runtimes(model, plan, side=probe, repeats=PROBE_REPEATS if bucket <= 512 else 1)
            logger.info("%s on %s at %d px: %s; using %s", type(model).__name__, plan.device, bucket,
                        choice.describe(), choice.plan.runtime)
        except Exception as exc:  # noqa: BLE001 - a failed measurement leaves the torch plan in place
            logger.warning("could not measure runtimes for %s (%s: %s)", type(model).__name__, type(exc).__name__, exc)
            choice = RuntimeChoice(plan, ())
        with _LOCK:
            _CHOICES.setdefault(model, {})[key] = (signature, choice)
            _PENDING.get(model, {}).pop(key, None)
        return choice

    if wait:
        return measure().plan
    # Not a daemon: one killed at interpreter exit inside a torch kernel aborted the process ("terminate called
    # without an active exception", after a CLI run had written its result); an ending process waits for it.
    threading.Thread(target=measure, name="runtime-probe", daemon=False).start()
    return plan
