"""Runs the chosen sections, merges their results into ``results.json`` and writes ``report.md`` from it."""
from __future__ import annotations

import json
import math
import sys
import time
import traceback
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.common import device_name, loadavg

from .helpers import loss_network_info
from .gallery import markdown_gallery, section_gallery
from .inference import markdown_inference, section_inference
from .objective import markdown_objective, section_objective, train_style_network
from .profiles import SECTION_TITLES, SECTIONS, Profile
from .superres import markdown_sr, section_sr
from .table1 import markdown_table1, section_table1
from .training import markdown_training, section_training


def build_markdown(results: dict) -> str:
    profile = Profile.from_dict(results["profile"])
    meta = results["meta"]
    loss = meta["loss_network"]
    lines = [
        "# Reproduction report: Johnson, Alahi & Fei-Fei (ECCV 2016), perceptual losses",
        "",
        "- Command" + ("s" if len(commands := _commands(results)) > 1 else "") + ": "
        + "; ".join(f"`{c}`" for c in commands),
        f"- Written: {meta['written']}; profile `{profile.name}`"
        + (" (sizes, iterations and network widths scaled down for this device; each section says how)"
           if profile.name != "gpu" else " (paper sizes where feasible; each section says what differs)"),
        f"- Device: {meta['device']} ({meta['device_name']}), torch {meta['torch']}, {meta['threads']} threads; "
        f"load average {meta['loadavg']} when the last section finished",
        f"- Loss network: `{loss['identity']}` ({loss['kind']}; source: {loss['source']}). Every objective, style "
        f"loss and feature loss below comes from this network.",
        "",
    ]
    for number in SECTIONS:
        key = str(number)
        lines += [f"## {SECTION_TITLES[number]}", ""]
        section = results["sections"].get(key)
        if section is None:
            lines += ["Not run (see `--sections`).", ""]
            continue
        if "error" in section:
            lines += [f"Failed: `{section['error']}`", ""]
            continue
        if "meta" in section and section["meta"]["device"] != meta["device"]:
            lines += [f"(Measured in an earlier run on {section['meta']['device_name']}.)", ""]
        used = Profile.from_dict({**results["profile"], **section.get("profile", {})})  # the sizes this section ran with
        render = {1: lambda d: markdown_table1(d, used), 2: lambda d: markdown_objective(d, used),
                  3: lambda d: markdown_sr(d, used), 4: lambda d: markdown_inference(d, used),
                  5: lambda d: markdown_training(d, used, meta["device_name"]),
                  6: lambda d: markdown_gallery(d, used)}[number]
        lines += render(section["data"]) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _commands(results: dict) -> list[str]:
    """The distinct commands that produced the report's sections, in section order."""
    commands = []
    for number in SECTIONS:
        section = results["sections"].get(str(number), {})
        command = section.get("meta", {}).get("command", results["meta"]["command"])
        if "error" not in section and section and command not in commands:
            commands.append(command)
    return commands or [results["meta"]["command"]]


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def run_report(out: Path, device: str, profile: Profile, sections: tuple[int, ...], work: Path,
               command: str) -> tuple[Path, list[str]]:
    """Run ``sections`` and (re)write ``out/report.md`` from everything ``out/results.json`` holds."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    store = out / "results.json"
    results = json.loads(store.read_text()) if store.is_file() else {"sections": {}}
    if results.get("profile", {}).get("name", profile.name) != profile.name:
        results = {"sections": {}}  # another profile's numbers would not belong in this report
    results["profile"] = asdict(profile)
    torch_device = torch.device(device)
    meta = {"device": device, "device_name": device_name(torch_device), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "command": command, "loss_network": loss_network_info()}
    failures: list[str] = []
    trained = objective = None
    for number in sections:
        started = time.perf_counter()
        print(f"[report] section {SECTION_TITLES[number]} ...", file=sys.stderr, flush=True)
        try:
            if number == 1:
                data = section_table1(profile, device, work, out)
            elif number == 2:
                trained = trained or train_style_network(profile, device, work)
                data = objective = section_objective(profile, device, work, out, trained)
            elif number == 3:
                data = section_sr(profile, device, work, out)
            elif number == 4:
                data = section_inference(profile, device, work, out)
            elif number == 5:
                data = section_training(profile, device, work, out, trained, objective)
            else:
                data = section_gallery(profile, device, work, out)
            results["sections"][str(number)] = {"data": _jsonable(data), "seconds": time.perf_counter() - started,
                                                "meta": {k: meta[k] for k in ("device", "device_name", "command")},
                                                "profile": asdict(profile)}
        except Exception as exc:  # noqa: BLE001 - one failing section must not lose the others
            traceback.print_exc()
            failures.append(f"section {number}: {type(exc).__name__}: {exc}")
            results["sections"][str(number)] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"[report] section {number} done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    meta["loadavg"] = loadavg()
    meta["written"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["meta"] = meta
    store.write_text(json.dumps(_jsonable(results), indent=1))
    report = out / "report.md"
    report.write_text(build_markdown(json.loads(store.read_text())))
    return report, failures

