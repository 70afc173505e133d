"""Faults, as figures: a training job killed mid-run and resumed; broken models dropped into the models folder.

``python -m benchmarks.faults [--iterations 40] [--kill-after 20]``

1. **Kill and resume.** ``python -m train.style`` (tiny network, random-weight loss network, 64 px) runs once
   straight through and once killed with SIGKILL (no chance to clean up) as soon as its checkpoint at
   ``--kill-after`` is on disk, then rerun with ``--resume``. Prints the step it resumed from, the steps redone,
   and the largest difference between the resumed and the straight run's final weights.
2. **Broken models.** Beside one good style model, the models folder gets a corrupt ``model.safetensors``
   (random bytes), a pickled checkpoint (``pytorch_model.bin`` only), a weights file over the size limit (sparse,
   so it costs no disk) and a folder whose ``config.json`` is not JSON. Prints what the registry lists for each
   (with its reason) and whether the good model still stylizes through the app's handler.
"""
from __future__ import annotations

import argparse
import os
import pickle
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from perceptual_studio.registry.schema import CONFIG_FILE, WEIGHTS_FILE

ROOT = Path(__file__).resolve().parents[1]


def _image(path: Path, seed: int, size: int = 96) -> Path:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    pixels = np.stack([xx * 255 / size, yy * 255 / size, rng.integers(0, 255, (size, size))], -1)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def _train_command(root: Path, name: str, iterations: int, *, resume: bool = False) -> list[str]:
    command = [sys.executable, "-m", "perceptual_studio.train.style", "--style", str(root / "style.png"), "--content",
               str(root / "content"), "--out", str(root / "models" / name), "--run-dir", str(root / "runs" / name),
               "--iterations", str(iterations), "--image-size", "64", "--batch-size", "2", "--width", "0.25",
               "--num-residual", "1", "--checkpoint-every", "5", "--preview-every", "0", "--log-every", "5",
               "--seed", "3", "--quiet"]
    return command + (["--resume"] if resume else [])


def _latest_checkpoint_step(run_dir: Path) -> int:
    # Checkpoints are written under a temporary name and renamed into place: a step_* folder is complete.
    return max((int(p.name.split("_")[1]) for p in (run_dir / "checkpoints").glob("step_*")), default=0)


def kill_and_resume(root: Path, iterations: int, kill_after: int, env: dict[str, str]) -> dict[str, float]:
    from safetensors.torch import load_file

    (root / "content").mkdir(parents=True, exist_ok=True)
    for i in range(6):
        _image(root / "content" / f"c{i}.png", i)
    _image(root / "style.png", 99)
    started = time.perf_counter()
    subprocess.run(_train_command(root, "straight", iterations), cwd=ROOT, env=env, check=True)
    straight_s = time.perf_counter() - started

    started = time.perf_counter()
    job = subprocess.Popen(_train_command(root, "killed", iterations), cwd=ROOT, env=env)
    while _latest_checkpoint_step(root / "runs" / "killed") < kill_after:
        if job.poll() is not None:
            raise SystemExit("the job ended before it could be killed: raise --iterations")
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    killed_at = _latest_checkpoint_step(root / "runs" / "killed")
    resumed = subprocess.run(_train_command(root, "killed", iterations, resume=True), cwd=ROOT, env=env,
                             capture_output=True, text=True)
    total_s = time.perf_counter() - started
    if resumed.returncode != 0:
        raise SystemExit(f"resume failed:\n{resumed.stderr}")
    found = re.search(r"resuming .* at step (\d+) of", resumed.stderr)
    resumed_from = int(found.group(1)) if found else -1
    a = load_file(root / "models" / "straight" / WEIGHTS_FILE)
    b = load_file(root / "models" / "killed" / WEIGHTS_FILE)
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    return {"iterations": iterations, "killed_after_checkpoint": killed_at, "resumed_from": resumed_from,
            "max_weight_diff": diff, "straight_s": straight_s, "killed_plus_resumed_s": total_s,
            "killed_rc": job.returncode}


def broken_models(root: Path) -> tuple[list[tuple[str, str]], str]:
    import torch

    from perceptual_studio import settings
    from perceptual_studio.networks import StyleTransformNet
    from perceptual_studio.registry import list_models, save_model
    from perceptual_studio.webapp.handlers import stylize

    models = settings.models_dir()
    torch.manual_seed(0)
    save_model(StyleTransformNet(width=0.25, num_residual=1).eval(), models / "good", style="good",
               training={"loss_network": "vgg16:random(seed=0)"})
    for name in ("corrupt", "too-large", "bad-config"):
        save_model(StyleTransformNet(width=0.25, num_residual=1).eval(), models / name, style=name,
                   training={"loss_network": "vgg16:random(seed=0)"})
    (models / "corrupt" / WEIGHTS_FILE).write_bytes(os.urandom(4096))
    with open(models / "too-large" / WEIGHTS_FILE, "r+b") as handle:
        handle.truncate(600 * 1024 * 1024)  # sparse: over the 512 MiB default limit, no disk used
    (models / "bad-config" / CONFIG_FILE).write_text("{not json", encoding="utf-8")
    (models / "pickled").mkdir()
    with open(models / "pickled" / "pytorch_model.bin", "wb") as handle:
        pickle.dump({"weight": [0.0] * 16}, handle)
    listing = list_models(source="local")
    rows = [(entry.id, entry.error or "ok") for entry in listing.entries]
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    result = stylize(photo, "local:good", 128)
    return rows, f"stylized {result.image.size[0]}x{result.image.size[1]} with local:good"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--kill-after", type=int, default=20, help="kill once this checkpoint step is on disk")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "PERCEPTUAL_DATA_DIR": str(root / "data"), "PERCEPTUAL_LOSS_NETWORK": "random",
               "PERCEPTUAL_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"}
        os.environ.update({k: env[k] for k in ("PERCEPTUAL_DATA_DIR", "PERCEPTUAL_LOSS_NETWORK", "HF_HUB_OFFLINE")})
        os.environ["PERCEPTUAL_MODELS_DIR"] = str(root / "data" / "models")
        figures = kill_and_resume(root, args.iterations, args.kill_after, env)
        print("## Kill a training job mid-run (SIGKILL) and resume it\n")
        print("| iterations | killed once checkpoint on disk | resumed at step | steps run after resume | max weight diff vs "
              "uninterrupted | uninterrupted (s) | killed + resumed (s) |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {figures['iterations']} | {figures['killed_after_checkpoint']} | {figures['resumed_from']} | "
              f"{figures['iterations'] - figures['resumed_from']} | {figures['max_weight_diff']:.2e} | "
              f"{figures['straight_s']:.1f} | {figures['killed_plus_resumed_s']:.1f} |")
        rows, stylized = broken_models(root)
        print("\n## Broken models in the models folder\n")
        print("| model | listed as |")
        print("|---|---|")
        for model_id, status in rows:
            print(f"| `{model_id}` | {status.replace('|', '/')} |")
        print(f"\nThe good model still works: {stylized}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
