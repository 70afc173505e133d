"""Load on the running app: bursts of concurrent mixed requests, as many visitors of a Space would send them.

``python -m benchmarks.load [--requests 50] [--rounds 3] [--workers 50]``

Starts ``python app.py`` in a child process on a free port with a throw-away data folder holding small models
saved through the registry (one style model, x4 pixel- and feature-loss SR models), then sends ``--rounds``
bursts of ``--requests`` requests at once through ``gradio_client``: stylize, super-resolve, list models and
the Explain invariance view, interleaved. It prints a Markdown table per kind (completed, lost, p50 and p95
latency) and the server's resident memory after each burst and at its peak (``VmHWM``): nothing may be lost,
and memory must level off after the first bursts fill the caches.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _photo(path: Path, size: tuple[int, int], seed: int) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    img = np.stack([xx * 255 / size[0], yy * 255 / size[1], rng.integers(0, 255, (size[1], size[0]))], -1)
    Image.fromarray(img.astype(np.uint8)).save(path)
    return path


def _save_models(models: Path, style_image: Path) -> None:
    import torch

    from perceptual_studio.networks import StyleTransformNet, SuperResolutionNet
    from perceptual_studio.registry import save_model

    torch.manual_seed(0)
    save_model(StyleTransformNet(width=0.5, num_residual=2).eval(), models / "load-style", style="load",
               style_image=style_image, training={"loss_network": "vgg16:random(seed=0)"})
    for name, loss in (("load-sr-pixel", "none (pixel loss)"), ("load-sr-feature", "vgg16:random(seed=0)")):
        save_model(SuperResolutionNet(scale=4, channels=16, num_residual=2).eval(), models / name,
                   training={"loss_network": loss})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="requests per burst")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=50, help="client threads (requests in flight at once)")
    return parser.parse_args(argv)


def _server_env(root: Path) -> dict[str, str]:
    """The app's environment (throw-away data and temp folders, offline); this process shares its data folder."""
    env = {**os.environ, "PERCEPTUAL_DATA_DIR": str(root / "data"), "GRADIO_TEMP_DIR": str(root / "gradio"),
           "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.setdefault("PERCEPTUAL_LOSS_NETWORK", "random")  # the caller's choice, else the seeded random VGG-16
    os.environ.update({k: env[k] for k in ("PERCEPTUAL_DATA_DIR", "HF_HUB_OFFLINE")})
    return env


def _wait_for_app(client_type: type, url: str, server: subprocess.Popen) -> None:
    """Poll until a client can connect; exit if the app dies or takes over two minutes."""
    deadline = time.monotonic() + 120
    while True:
        try:
            client_type(url, verbose=False)
            return
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the app did not start")
            time.sleep(0.5)


# The kinds of request, in the order of the report, and the mix each burst cycles through.
_KINDS = ("stylize", "super_resolve", "list_models", "explain_invariance")
_MIX = ["stylize", "super_resolve", "list_models", "stylize", "super_resolve", "list_models",
        "stylize", "super_resolve", "list_models", "explain_invariance"]


@dataclass
class _Visitors:
    """The simulated visitors: each client thread is one visitor with its own Client.

    One client (one session, one event stream) per simulated visitor, as 50 browser tabs would be:
    a single Client shared by 50 threads races its own stream's close against new submissions.
    """

    client_type: type
    handle_file: Callable[[str], object]
    url: str
    photos: list[Path]
    local: threading.local = field(default_factory=threading.local)

    def client(self) -> Any:
        """This thread's visitor's Client, connected on its first request."""
        if not hasattr(self.local, "client"):
            self.local.client = self.client_type(self.url, verbose=False)
        return self.local.client

    def photo(self, i: int) -> object:
        return self.handle_file(str(self.photos[i % 8]))

    def call(self, kind: str, i: int) -> object:
        """Send request ``i`` of the given kind and wait for its answer."""
        if kind == "stylize":
            return self.client().predict(self.photo(i), "local:load-style", 128, False, 1.0, 1.0, api_name="/stylize")
        if kind == "super_resolve":
            return self.client().predict(self.photo(i), "original", "x4", "local:load-sr-pixel",
                                         "local:load-sr-feature", 0.5, "bicubic", "feature loss", 0.5, 0.5,
                                         api_name="/super_resolve")
        if kind == "list_models":
            return self.client().predict(api_name="/list_models")
        return self.client().predict(self.photo(i), "translate", api_name="/explain_invariance")


def _send(visitors: _Visitors, i: int) -> tuple[str, bool, float, str]:
    """Request ``i`` of the mix: its kind, whether it completed, its latency and why it was lost."""
    kind = _MIX[i % len(_MIX)]
    started = time.perf_counter()
    try:
        visitors.call(kind, i)
        return kind, True, time.perf_counter() - started, ""
    except Exception as exc:  # noqa: BLE001 - counted as lost, with why
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        return kind, False, time.perf_counter() - started, why


def _run_bursts(visitors: _Visitors, args: argparse.Namespace, server_pid: int
                ) -> tuple[dict[str, list[tuple[bool, float, str]]], list[float]]:
    """Send the bursts; return each kind's (ok, seconds, error) rows and the server's RSS after each burst."""
    results: dict[str, list[tuple[bool, float, str]]] = {k: [] for k in _KINDS}
    rss_after = []
    with ThreadPoolExecutor(args.workers) as pool:  # the same visitors come back burst after burst
        for _ in range(args.rounds):
            for kind, ok, seconds, error in pool.map(partial(_send, visitors), range(args.requests)):
                results[kind].append((ok, seconds, error))
            rss_after.append(_memory_mb(server_pid, "VmRSS"))
    return results, rss_after


def _print_latency_table(results: dict[str, list[tuple[bool, float, str]]]) -> None:
    print("| request | sent | completed | lost | p50 (s) | p95 (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, rows in results.items():
        times = sorted(s for ok, s, _ in rows if ok)
        p50 = statistics.median(times) if times else float("nan")
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else float("nan")
        print(f"| {kind} | {len(rows)} | {len(times)} | {len(rows) - len(times)} | {p50:.2f} | {p95:.2f} |")


def _print_memory(rss_after: list[float], peak: float) -> None:
    print(f"\nServer RSS after each burst: {', '.join(f'{r:.0f} MB' for r in rss_after)}; peak {peak:.0f} MB")
    half = len(rss_after) // 2
    if half:
        print(f"Level-off: {rss_after[-1] - rss_after[half]:+.0f} MB over the last {len(rss_after) - half} bursts "
              f"(first burst to middle: {rss_after[half] - rss_after[0]:+.0f} MB)")


def _report(args: argparse.Namespace, results: dict[str, list[tuple[bool, float, str]]], rss_after: list[float],
            peak: float) -> int:
    """Print the tables and the lost requests' errors; the exit status is 1 if any request was lost."""
    total = sum(len(v) for v in results.values())
    lost = sum(not ok for v in results.values() for ok, _, _ in v)
    print(f"{args.rounds} bursts of {args.requests} concurrent requests ({total} in all) against app.py on "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} at the end\n")
    _print_latency_table(results)
    _print_memory(rss_after, peak)
    errors = sorted({e for rows in results.values() for ok, _, e in rows if not ok})
    for error in errors:
        print(f"- lost: {error}")
    print(f"\nlost: {lost} of {total}")
    return 1 if lost else 0


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        root = Path(tmp)
        env = _server_env(root)
        _save_models(root / "data" / "models", _photo(root / "style.png", (64, 64), 3))
        photos = [_photo(root / f"p{i}.png", (96 + 4 * (i % 8), 72), i) for i in range(8)]
        port = _free_port()
        env["GRADIO_SERVER_PORT"] = str(port)
        server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_for_app(Client, url, server)
            results, rss_after = _run_bursts(_Visitors(Client, handle_file, url, photos), args, server.pid)
            peak = _memory_mb(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait(30)
    return _report(args, results, rss_after, peak)


if __name__ == "__main__":
    raise SystemExit(main())
