"""How close 8-bit storage (registry/int8_weights.py) keeps a style network's outputs to its float weights.

    python -m benchmarks.int8_fidelity registry/builtin/styles/starry-night [FOLDER ...] [--side 512]

For each model folder stored in float16 or float32: its outputs on held-out photos (astronaut, chelsea) at
``--side`` px with its own weights and with the weights quantized as the shipped gallery stores them, and the
PSNR-Y between the two. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import sys

import torch


def fidelity(folder: str, side: int) -> list[tuple[str, float]]:
    from perceptual_studio.imaging.io import image_to_tensor, resize_to_max_side
    from perceptual_studio.imaging.metrics import psnr_y
    from perceptual_studio.imaging.sample_photos import load_sample_photo
    from perceptual_studio.registry import load_model_folder
    from perceptual_studio.registry.int8_weights import dequantize, quantize

    network = load_model_folder(folder, "cpu").network
    state = {name: tensor.clone() for name, tensor in network.state_dict().items()}  # not views of the live weights
    rows = []
    for photo in ("astronaut", "chelsea"):
        x = image_to_tensor(resize_to_max_side(load_sample_photo(photo), side))
        with torch.no_grad():
            network.load_state_dict(state)
            reference = network(x).clamp(0, 1)
            network.load_state_dict(dequantize(*quantize(state), folder))
            stored = network(x).clamp(0, 1)
        rows.append((photo, psnr_y(stored, reference)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.int8_fidelity", description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--side", type=int, default=512)
    args = parser.parse_args(argv)
    sys.stdout.write("| model | photo | PSNR-Y, int8 against its float weights |\n|---|---|---:|\n")
    for folder in args.folders:
        for photo, psnr in fidelity(folder, args.side):
            sys.stdout.write(f"| {folder.rstrip('/').rsplit('/', 1)[-1]} | {photo} | {psnr:.1f} dB |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
