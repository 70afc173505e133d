"""Hostile visitors against the app in public mode: each attack, and what the server did about it.

``python -m benchmarks.abuse [--mix-seconds 60] [--trainings 15]``

Starts ``python app.py`` in a child process as a Space would run it (``SPACE_ID`` set, so each simulated visitor
is told apart by the ``X-Forwarded-For`` address the Space's proxy would add; public mode on; the shipped models
and the Oxford VGG-16; a throw-away data folder; offline) and drives it through the API alone, as ``gradio_client``
users would. It prints one table row per attack (what was sent, what the server answered, what it cost), then the
heaviest mix: a maximum-size super-resolution, a maximum training run and a queue flood from one visitor, while
two other visitors time a light request (``/list_models``) and a 256 px stylize. Targets: the light request's p95
under 2 s, the stylize's under 5 s, and the server's memory back within 10% of its level before the burst once
the heavy visitors have gone (which also shows their work stopped: the server's CPU time after they left).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


from .load import ROOT, _free_port, _memory_mb, _wait_for_app
from .load import _photo as _load_photo

STYLE = "builtin:mosaic"
SR_PIXEL, SR_FEATURE = "builtin:sr-x4-pixel", "builtin:sr-x4-feature"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mix-seconds", type=float, default=60.0, help="how long the heaviest mix is measured")
    parser.add_argument("--trainings", type=int, default=15, help="5-step trainings one visitor sends in a row")
    return parser.parse_args(argv)


@dataclass
class Row:
    attack: str
    outcome: str
    cost: str = ""


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    data: Path
    rows: list[Row] = field(default_factory=list)

    def client(self, address: str) -> Any:
        """A visitor: their own session, behind their own (forwarded) address."""
        from gradio_client import Client

        return Client(self.url, verbose=False, headers={"X-Forwarded-For": address})

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        return _memory_mb(self.process.pid, "VmRSS")

    def disk_mb(self) -> float:
        """The data folder and Gradio's upload cache together."""
        return sum(p.stat().st_size for folder in (self.data, self.data.parent / "gradio") if folder.is_dir()
                   for p in folder.rglob("*") if p.is_file()) / 2**20


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20 if folder.is_dir() else 0.0


def _answer(call: Callable[[], Any]) -> tuple[str, float]:
    """What the server answered (its message on a refusal), and how long it took."""
    started = time.perf_counter()
    try:
        result = call()
        text = "accepted: " + str(result)[:100]
    except Exception as exc:  # noqa: BLE001 - the refusal's message is the result
        text = "refused: " + (str(exc).strip().splitlines() or [type(exc).__name__])[0][:220]
    return text, time.perf_counter() - started


def _photo(path: Path, side: int, seed: int = 0) -> Path:
    """A square test photo (``benchmarks.load``'s gradient with noise)."""
    return _load_photo(path, (side, side), seed)


def _train_args(style: Any, name: str, iterations: int, content: str = "") -> tuple:
    """``/train_style``'s arguments: the default preset (a fine-tune), no preview."""
    return (style, name, "quick_finetune", "", iterations, 128, 2, 2e-3, 0.5, 0, 0, 0, content, 0, 0, [])


# ------------------------------------------------------------------------------------------ the attacks


def attack_requests(server: Server, work: Path) -> None:
    """Oversized and path-naming requests: each refused before any work, with a sentence."""
    from gradio_client import handle_file

    mallory = server.client("198.51.100.1")
    style = handle_file(str(_photo(work / "style.png", 96)))
    cases = [
        ("/train_style, 10^9 iterations", lambda: mallory.predict(*_train_args(style, "x", 10**9), api_name="/train_style")),
        ("/train_style, content_source '/'", lambda: mallory.predict(*_train_args(style, "x", 5, "/"), api_name="/train_style")),
        ("/train_style, content_source '~'", lambda: mallory.predict(*_train_args(style, "x", 5, "~"), api_name="/train_style")),
        ("/train_style, a Hub dataset id", lambda: mallory.predict(*_train_args(style, "x", 5, "someone/photos"), api_name="/train_style")),
        ("/train_style, name <img src=…><a href=…>", lambda: mallory.predict(
            *_train_args(style, '<img src="http://tracker.example/p.png"><a href="http://evil.example">Click</a>', 5),
            api_name="/train_style")),
        ("/stylize, a 5000-character model id", lambda: mallory.predict(style, "A" * 5000, 128, False, 1.0, 1.0, api_name="/stylize")),
        ("/explain, 256 feature maps", lambda: mallory.predict("relu3_3", ",".join(map(str, range(256))), [], api_name="/explain")),
        ("/compare_baseline, 10^6 iterations", lambda: mallory.predict(style, STYLE, None, 10**6, 256, api_name="/compare_baseline")),
        ("/explain_evolution, run '../../etc'", lambda: mallory.predict("../../etc", api_name="/explain_evolution")),
    ]
    big = handle_file(str(_photo(work / "huge.png", 4000)))
    cases.append(("/super_resolve x4, a 4000x4000 original", lambda: mallory.predict(
        big, "original", "x4", SR_PIXEL, SR_FEATURE, 0.5, "bicubic", "feature loss", 0.5, 0.5, False,
        api_name="/super_resolve")))
    for attack, call in cases:
        outcome, seconds = _answer(call)
        server.rows.append(Row(attack, outcome, f"{seconds:.1f} s"))


def attack_uploads(server: Server, work: Path) -> None:
    """One upload request of 450 MB, then 40 MB uploads in a row from one visitor (each under the per-file cap)."""
    import httpx

    url = f"{server.url.rstrip('/')}/gradio_api/upload"
    headers = {"X-Forwarded-For": "198.51.100.2"}
    before, started = server.disk_mb(), time.perf_counter()
    outcome = _upload(httpx, url, headers, 450 << 20)
    server.rows.append(Row("one upload request of 450 MB", outcome,
                           f"{time.perf_counter() - started:.1f} s, +{server.disk_mb() - before:.0f} MB on disk"))
    answers = [_upload(httpx, url, headers, 40 << 20) for _ in range(8)]
    server.rows.append(Row("eight 40 MB uploads in a row, one visitor", "; ".join(answers),
                           f"+{server.disk_mb() - before:.0f} MB on disk"))


def _upload(httpx: Any, url: str, headers: dict, size: int) -> str:
    try:
        answer = httpx.post(url, headers=headers, files={"files": ("x.png", b"\0" * size, "image/png")}, timeout=120)
    except httpx.HTTPError as exc:
        return f"connection closed ({type(exc).__name__})"
    if answer.status_code < 400:
        return f"HTTP {answer.status_code}"
    try:
        why = answer.json().get("error") or answer.json().get("detail") or ""
    except ValueError:
        why = answer.text
    return f"HTTP {answer.status_code} {str(why)[:90]}"


def attack_trainings(server: Server, work: Path, count: int) -> None:
    """Trainings in a row from one visitor, names that squat on shipped and zoo models, and another visitor's
    view of them."""
    from gradio_client import handle_file

    eve, bob = server.client("198.51.100.3"), server.client("198.51.100.4")
    style = handle_file(str(_photo(work / "style.png", 96)))
    models = server.data / "models"
    before, started = _folder_mb(models), time.perf_counter()
    for i in range(count):
        eve.predict(*_train_args(style, f"eve-{i}", 5), api_name="/train_style")
    mine = sorted(r["id"] for r in eve.predict(api_name="/list_models")[1] if r["source"] == "local")
    server.rows.append(Row(f"{count} 5-step trainings in a row, one visitor",
                           f"the visitor keeps {len(mine)}: {', '.join(mine)}",
                           f"{time.perf_counter() - started:.0f} s, models folder +{_folder_mb(models) - before:.1f} MB"))
    names = []
    for squat in ("zoo-candy", "stained-glass"):
        status = eve.predict(*_train_args(style, squat, 5), api_name="/train_style")[0]
        names.append(status.split("`")[1] if "`" in status else status[:60])
    server.rows.append(Row("trainings named zoo-candy and stained-glass", "saved as " + ", ".join(names)))
    theirs = {r["id"] for r in bob.predict(api_name="/list_models")[1] if r["source"] == "local"}
    outcome, _ = _answer(lambda: bob.predict(style, mine[-1], 128, False, 1.0, 1.0, api_name="/stylize"))
    server.rows.append(Row("another visitor lists and uses them",
                           f"lists {len(theirs)} of them; /stylize {mine[-1]}: {outcome}"))


def attack_cheap_x8(server: Server, work: Path, count: int = 12) -> None:
    """Cheap x8 super-resolutions, each from a new session: the server's memory must not keep growing."""
    from gradio_client import handle_file

    photo = handle_file(str(_photo(work / "x8.png", 384, seed=8)))
    call = ("original", "x8", "builtin:sr-x8-pixel", "builtin:sr-x8-feature", 0.5, "bicubic", "feature loss",
            0.5, 0.5, False)
    server.client("198.51.100.20").predict(photo, *call, api_name="/super_resolve")  # its models loaded once
    time.sleep(16)  # one pass of the app's memory release
    before, started = server.rss_mb(), time.perf_counter()
    for i in range(count):
        server.client(f"198.51.100.{21 + i}").predict(photo, *call, api_name="/super_resolve")
    time.sleep(16)
    after = server.rss_mb()
    server.rows.append(Row(f"{count} x8 SR requests (384 px), each from a new session",
                           f"RSS {before:.0f} MB before, {after:.0f} MB after ({after - before:+.0f} MB)",
                           f"{time.perf_counter() - started - 16:.0f} s"))


# ------------------------------------------------------------------------------------------ the heaviest mix


@dataclass
class Timings:
    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def row(self) -> str:
        times = sorted(self.seconds)
        if not times:
            return f"0 completed, {len(self.failures)} failed"
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        return (f"{len(times)} completed, {len(self.failures)} failed; p50 {statistics.median(times):.2f} s, "
                f"p95 {p95:.2f} s, max {times[-1]:.2f} s")


def _repeat(call: Callable[[], Any], until: float, into: Timings, pause: float) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            call()
            into.seconds.append(time.perf_counter() - started)
        except Exception as exc:  # noqa: BLE001 - counted, with why
            into.failures.append(str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__)
        time.sleep(pause)


def _flood(server: Server, photo: Path, joins: int, outcome: list[str]) -> None:
    """Queue joins for 1024 px stylizes from one address, each with a made-up session, as a hostile script
    sent them (straight to ``/queue/join``, as no client library would)."""
    import httpx

    base, headers = server.url.rstrip("/"), {"X-Forwarded-For": "198.51.100.9"}
    with photo.open("rb") as handle:
        path = httpx.post(f"{base}/gradio_api/upload", files={"files": (photo.name, handle, "image/png")},
                          headers=headers, timeout=60).json()[0]
    image = {"path": path, "orig_name": photo.name, "meta": {"_type": "gradio.FileData"}}
    fn_index, admitted, refused, message = _fn_index(server, "stylize"), 0, 0, ""
    for _ in range(joins):
        body = {"data": [image, STYLE, 1024, False, 1.0, 1.0, "auto"], "fn_index": fn_index, "trigger_id": None,
                "session_hash": uuid.uuid4().hex[:11], "event_data": None}
        answer = httpx.post(f"{base}/gradio_api/queue/join", json=body, headers=headers, timeout=30)
        if answer.status_code == 200:
            admitted += 1
        else:
            refused += 1
            detail = answer.json().get("detail", "")
            message = str(detail[0].get("message", "") if isinstance(detail, list) and detail else detail)[:100]
    outcome.append(f"{admitted} joins admitted, {refused} refused ({message})")


def heaviest_mix(server: Server, work: Path, seconds: float) -> None:
    from gradio_client import handle_file

    light, stylist = server.client("203.0.113.3"), server.client("203.0.113.4")
    photo = handle_file(str(_photo(work / "photo.png", 256, seed=3)))
    big = handle_file(str(_photo(work / "big.png", 2048, seed=4)))
    # One request of each kind first: the models and loss networks the mix uses are loaded once and kept (the
    # model cache, the baseline's objective, the convolutions' per-size kernels: the first 1024 px stylize, which
    # the flood sends, keeps ~100 MB), so "before" is the level a used app settles at.
    light.predict(api_name="/list_models")
    light.predict(photo, STYLE, 256, False, 1.0, 1.0, api_name="/stylize")
    light.predict(photo, STYLE, 1024, False, 1.0, 1.0, api_name="/stylize")
    warm = server.client("203.0.113.6")
    warm.predict(*_train_args(photo, "warm-up", 5), api_name="/train_style")
    warm.predict(big, "original", "x4", SR_PIXEL, SR_FEATURE, 0.5, "bicubic", "feature loss", 0.5, 0.5, False,
                 api_name="/super_resolve")
    warm.predict(big, STYLE, None, 5, 512, api_name="/compare_baseline")
    time.sleep(3)
    rss_before, cpu_before = server.rss_mb(), server.cpu_seconds()
    heavy = [  # each heavy visitor in a process of its own, so that leaving closes its connections as a tab would
        _visitor_process(server, "203.0.113.1", "/super_resolve", (big, "original", "x4", SR_PIXEL, SR_FEATURE, 0.5,
                                                                   "bicubic", "feature loss", 0.5, 0.5, False)),
        _visitor_process(server, "203.0.113.2", "/train_style",
                         _train_args(handle_file(str(_photo(work / "s2.png", 256, seed=5))), "max-run", 2000)),
        _visitor_process(server, "203.0.113.5", "/compare_baseline", (big, STYLE, None, 300, 512)),
    ]
    until = time.monotonic() + seconds
    flood: list[str] = []
    list_times, stylize_times = Timings(), Timings()
    threads = [threading.Thread(target=_flood, args=(server, work / "photo.png", 64, flood)),
               threading.Thread(target=_repeat, args=(lambda: light.predict(api_name="/list_models"), until, list_times, 0.2)),
               threading.Thread(target=_repeat, args=(lambda: stylist.predict(photo, STYLE, 256, False, 1.0, 1.0,
                                                                              api_name="/stylize"), until, stylize_times, 0.5))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    peak = _memory_mb(server.process.pid, "VmHWM")
    done = ", ".join(f"{what} {'still running' if job.is_alive() else 'finished'}"
                     for what, job in zip(("SR", "training", "baseline"), heavy))
    for job in heavy:  # the heavy visitors leave: their work must stop
        job.terminate()
        job.join()
    time.sleep(10)
    cpu_left = server.cpu_seconds()
    time.sleep(10)
    cpu_idle = server.cpu_seconds() - cpu_left
    time.sleep(10)
    rss_after = server.rss_mb()
    server.rows += [
        Row("mix: queue flood, one address, 64 made-up sessions", flood[0] if flood else "did not run"),
        Row("mix: /list_models (another visitor)", list_times.row(), "target p95 < 2 s"),
        Row("mix: 256 px /stylize (another visitor)", stylize_times.row(), "target p95 < 5 s"),
        Row("mix: x4 SR of a 2048 px original, training 2000 steps, baseline 300 iterations at 512 px",
            f"{done} at the end of the mix; the three visitors then left",
            f"server CPU {cpu_left - cpu_before:.0f} s during the mix, {cpu_idle:.1f} s in the 10 s from 10 s after "
            f"they left"),
        Row("mix: server memory", f"RSS {rss_before:.0f} MB before (after one request of each kind), peak {peak:.0f} MB, {rss_after:.0f} MB 30 s "
                                  f"after ({(rss_after - rss_before) / rss_before:+.0%})", "target within +10%"),
    ]


def _visitor_process(server: Server, address: str, api_name: str, args: tuple) -> Any:
    import multiprocessing

    process = multiprocessing.get_context("fork").Process(target=_call, args=(server, address, api_name, args),
                                                          daemon=True)
    process.start()
    return process


def _call(server: Server, address: str, api_name: str, args: tuple) -> None:
    try:
        server.client(address).predict(*args, api_name=api_name)
    except Exception:  # noqa: BLE001 - the parent only times the others while this runs
        pass


def _fn_index(server: Server, api_name: str) -> int:
    import httpx

    config = httpx.get(f"{server.url.rstrip('/')}/config", timeout=30).json()
    for index, dependency in enumerate(config["dependencies"]):
        if dependency.get("api_name") == api_name:
            return dependency.get("id", index)
    raise SystemExit(f"the app has no /{api_name}")


# ------------------------------------------------------------------------------------------ the run


def _start(root: Path) -> Server:
    port = _free_port()
    env = {**os.environ, "PERCEPTUAL_DATA_DIR": str(root / "data"), "GRADIO_TEMP_DIR": str(root / "gradio"),
           "PERCEPTUAL_PUBLIC": "on", "SPACE_ID": "perceptual-studio/abuse-benchmark", "GRADIO_SERVER_PORT": str(port),
           "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("OAUTH_CLIENT_ID", None)
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, cwd=root, stdout=subprocess.DEVNULL,
                               stderr=open(root / "server.log", "w"))
    from gradio_client import Client

    url = f"http://127.0.0.1:{port}/"
    _wait_for_app(Client, url, process)
    return Server(url, process, root / "data")


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="abuse-"))
    server = _start(root)
    try:
        attack_requests(server, root)
        attack_uploads(server, root)
        attack_trainings(server, root, args.trainings)
        attack_cheap_x8(server, root)
        heaviest_mix(server, root, args.mix_seconds)
    finally:
        server.process.terminate()
        server.process.wait(timeout=60)
    print(f"Public mode, app.py as a Space (SPACE_ID set, offline) on {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.2f} at the end\n")
    print("| attack | what the server did | cost |")
    print("|---|---|---|")
    for row in server.rows:
        print(f"| {row.attack} | {row.outcome.replace('|', '/')} | {row.cost} |")
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
