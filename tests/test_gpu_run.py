"""The prepared GPU run (train/shipped/gpu_run.py): what travels, what it trains from its bundle, what comes back.
Here on the CPU at toy sizes and seconds of training; on a GPU it is the same code with minutes."""
from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from perceptual_studio.networks import vgg
from perceptual_studio.train.shipped import gpu_run


def test_a_truncated_loss_network_file_keeps_its_identity_and_refuses_deeper_layers(tmp_path) -> None:
    weights = vgg.LossNetworkWeights(vgg.random_vgg16_state(0), "vgg16:random(seed=0)", "random")
    path = vgg.write_truncated(weights, tmp_path / "vgg.safetensors")
    assert path.stat().st_size < 16 * 2**20  # through relu4_3, float16: a quarter of the whole network's bytes
    loaded = vgg._from_safetensors_file(path)
    assert loaded.identity == weights.identity and loaded.convention == weights.convention
    x = torch.rand(1, 3, 64, 64)
    full, short = vgg.LossNetwork(weights=weights)(x), vgg.LossNetwork(weights=loaded)(x)
    for layer in vgg.STYLE_LAYERS:
        assert float((full[layer] - short[layer]).abs().max() / full[layer].abs().max()) < 2e-3
    with pytest.raises(ValueError, match="stop before layer relu5_1"):
        vgg.LossNetwork(("relu1_2", "relu5_1"), weights=loaded)


def _git_repo(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    for command in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(command, cwd=root, check=True)


def test_making_room_moves_aside_only_what_the_run_does_not_read_and_restore_puts_it_back(tmp_path, monkeypatch):
    files = {
        ".gitignore": b".gpu/\n.gpu-aside/\n", "networks/layers.py": b"code", "train/shipped/paintings.toml": b"manifest",
        "registry/builtin/styles/great-wave/config.json": b"{}",
        "registry/builtin/styles/great-wave/model.safetensors": b"w" * 100,
        "registry/builtin/styles/great-wave/preview.jpg": b"p" * 50,
        "registry/builtin/styles/mosaic/model.safetensors": b"m" * 100,
        "registry/builtin/styles/great-wave-fast/model.safetensors": b"f" * 10,
        "registry/builtin/sr/sr-x4-pixel/model.safetensors": b"s" * 20,
        "registry/builtin/sr/sr-x4-pixel/loss_curve.png": b"c" * 5,
        "docs/sr-report/crops.png": b"d" * 70, "tests/data/held-out/lemur.png": b"l" * 30,
    }
    _git_repo(tmp_path, files)
    monkeypatch.setattr(gpu_run, "REPO", tmp_path)
    monkeypatch.setattr(gpu_run, "ASIDE", tmp_path / ".gpu-aside")
    monkeypatch.setattr(gpu_run, "_paintings_manifest_names", lambda: ["great-wave"])
    moved = gpu_run.make_room()
    travelling = {p.relative_to(tmp_path).as_posix() for p in gpu_run.travelling_files()}
    assert travelling == {".gitignore", "networks/layers.py", "train/shipped/paintings.toml",
                          "registry/builtin/styles/great-wave/config.json",
                          "registry/builtin/styles/great-wave/model.safetensors",
                          "registry/builtin/sr/sr-x4-pixel/model.safetensors", "tests/data/held-out/lemur.png"}
    assert moved == 50 + 100 + 10 + 5 + 70
    assert gpu_run.restore() == 5
    assert not (tmp_path / ".gpu-aside").exists()
    for name, data in files.items():
        assert (tmp_path / name).read_bytes() == data
    (tmp_path / ".gitignore").write_text("")
    with pytest.raises(SystemExit, match="ignore"):  # what is moved aside must never travel after all
        gpu_run.make_room()


def _tiny_bundle(bundle: Path) -> None:
    rng = np.random.default_rng(0)
    weights = vgg.LossNetworkWeights(vgg.random_vgg16_state(0), "vgg16:random(seed=0)", "random")
    vgg.write_truncated(weights, bundle / gpu_run.VGG_FILE)
    for folder, count, side in (("content", 4, 64), ("sr", 2, 96)):
        (bundle / folder).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(bundle / folder / f"{i}.jpg", quality=95)
    (bundle / "styles").mkdir()
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(bundle / "styles" / "great-wave.jpg")
    (bundle / gpu_run.BUNDLE_FILE).write_text(json.dumps({"vgg_file": gpu_run.VGG_FILE, "loss_network": weights.identity}))


def test_the_run_trains_from_its_bundle_and_brings_back_float16_models_in_few_small_files(tmp_path) -> None:
    """A painting (from its shipped network, the paper's recipe) and an SR model train at once from the bundle
    alone (one step each here: a time limit would make the test depend on this machine's speed), and come back in
    at most 8 files of at most 16 MiB, in float16, loadable, naming the bundle's loss network."""
    from perceptual_studio.registry import load_model_folder

    bundle, out, work = tmp_path / "bundle", tmp_path / "out", tmp_path / "work"
    _tiny_bundle(bundle)
    code = gpu_run.main(["run", "--bundle", str(bundle), "--out", str(out), "--work-dir", str(work), "--device", "cpu",
                         "--train-minutes", "5", "--iterations", "1", "--only", "great-wave", "sr-x4-pixel", "--no-figures"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["trainings"] == {"great-wave": 0, "sr-x4-pixel": 0}, (out / "run.log").read_text()[-3000:]
    returned = sorted(p.name for p in out.iterdir())
    assert len(returned) <= 8 and all((out / n).stat().st_size <= 16 * 2**20 for n in returned)
    assert {"results.json", "run.log", "runs.tar", "models-1.tar"} <= set(returned)
    unpacked = tmp_path / "unpacked"
    with tarfile.open(out / "models-1.tar") as tar:
        tar.extractall(unpacked, filter="data")
    style = load_model_folder(unpacked / "styles" / "great-wave")
    assert style.config.training.loss_network == "vgg16:random(seed=0)"
    assert "great-wave" in str(style.config.training.extra.get("init"))  # from the shipped painting network
    assert style.config.training.iterations == 1  # it trained, from the shipped painting network
    from safetensors import safe_open

    with safe_open(str(unpacked / "styles" / "great-wave" / "model.safetensors"), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert load_model_folder(unpacked / "sr" / "sr-x4-pixel").config.scale == 4
    with tarfile.open(out / "runs.tar") as tar:
        assert any(name.endswith("loss.jsonl") for name in tar.getnames())
