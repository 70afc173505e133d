"""train/: style and super-resolution training on tiny generated images, CPU, offline.

Every run uses a quarter-width network with one residual block, 32 px images and a handful of steps, so each
test takes seconds; the loss network is the seeded random VGG-16 (what CI has).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from perceptual_studio.imaging.degrade import degrade
from perceptual_studio.imaging.metrics import psnr_y, rgb_to_y, ssim_y
from perceptual_studio.train import checkpoint as ckpt
from perceptual_studio.train.config import ConfigError, SRTrainConfig, StyleTrainConfig
from perceptual_studio.train.data import DataError, StepBatchSampler, find_images, list_training_images
from perceptual_studio.train.loop import TrainEvent, TrainingDivergedError, renormalize_filters
from perceptual_studio.train.sr import train_sr
from perceptual_studio.train.style import train_style

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _random_loss_network(monkeypatch):
    monkeypatch.setenv("PERCEPTUAL_LOSS_NETWORK", "random")
    monkeypatch.setenv("PERCEPTUAL_DEVICE", "cpu")


def _photo(seed: int, size: tuple[int, int]) -> Image.Image:
    """A smooth image with edges (gradients, a disc and stripes): something for the losses to see."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
    disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2).astype(float)
    f = rng.uniform(4, 12)
    rgb = np.stack([0.5 + 0.4 * np.sin(f * xx + seed), 0.3 + 0.5 * yy, 0.2 + 0.6 * disc], -1)
    rgb += 0.1 * np.sin(f * 3 * (xx + yy))[..., None]
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    (folder / "nested").mkdir(parents=True)
    for i in range(6):
        sub = folder / "nested" if i % 2 else folder
        _photo(i, (40 + 4 * i, 48)).save(sub / f"photo{i}.png")
    return folder


@pytest.fixture
def style_path(tmp_path: Path) -> Path:
    yy, xx = np.mgrid[0:48, 0:48]
    rgb = np.stack([(xx // 6) % 2, (yy // 6) % 2, ((xx + yy) // 8) % 2], -1) * 200 + 30
    path = tmp_path / "checks.png"
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    return path


def tiny_style(style_path: Path, content_dir: Path, out: str = "tiny", **overrides) -> StyleTrainConfig:
    values = dict(style=str(style_path), content=str(content_dir), out=out, image_size=32, batch_size=2,
                  iterations=6, learning_rate=1e-2, width=0.25, num_residual=1, style_layers=("relu1_2", "relu2_2"),
                  log_every=1, checkpoint_every=2, preview_every=3, preview_size=32)
    values.update(overrides)
    return StyleTrainConfig(**values)


def tiny_sr(data_dir: Path, out: str = "sr", **overrides) -> SRTrainConfig:
    values = dict(data=str(data_dir), out=out, scale=4, patch_size=32, batch_size=2, iterations=30, learning_rate=1e-2,
                  channels=8, num_residual=1, holdout=1, log_every=1, checkpoint_every=10, preview_every=10,
                  preview_size=48, eval_max_side=64)
    values.update(overrides)
    return SRTrainConfig(**values)


def _losses(folder_or_run: Path) -> list[float]:
    rows = [json.loads(line) for line in (folder_or_run / "loss.jsonl").read_text().splitlines()]
    return [row["total"] for row in rows]


def _models_dir() -> Path:
    from perceptual_studio import settings

    return settings.models_dir()


def _runs_dir() -> Path:
    from perceptual_studio import settings

    return settings.runs_dir()


# ------------------------------------------------------------------------------------------ config


def test_configs_round_trip_through_json(tmp_path, style_path, content_dir):
    style = tiny_style(style_path, content_dir, renorm_radius=0.1, tv_weight=1e-3)
    assert StyleTrainConfig.from_json(style.to_json()) == style
    sr = tiny_sr(tmp_path, eval_border=2)
    path = sr.save(tmp_path / "sr.json")
    assert SRTrainConfig.load(path) == sr
    with pytest.raises(ConfigError, match="unknown StyleTrainConfig field"):
        StyleTrainConfig.from_dict({**style.to_dict(), "colour": "blue"})


def test_paper_defaults():
    config = StyleTrainConfig(style="s.jpg", content="coco", out="x")
    assert (config.image_size, config.batch_size, config.iterations, config.learning_rate) == (256, 4, 40_000, 1e-3)
    assert config.content_layers == ("relu2_2",)
    assert config.style_layers == ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    sr = SRTrainConfig(data="coco", out="x")
    assert (sr.patch_size, sr.blur_sigma, sr.loss, sr.content_layers) == (288, 1.0, "feature", ("relu2_2",))


@pytest.mark.parametrize("make, message", [
    (lambda: StyleTrainConfig(style="s", content="c", out="o", image_size=8), "too small for the network"),
    (lambda: StyleTrainConfig(style="s", content="c", out="o", style_layers=("relu9_9",)), "unknown VGG-16 layer"),
    (lambda: StyleTrainConfig(style="s", content="c", out="o", learning_rate=0), "--lr must be positive"),
    (lambda: SRTrainConfig(data="d", out="o", scale=4, patch_size=30), "multiple of --scale"),
    (lambda: SRTrainConfig(data="d", out="o", scale=8, patch_size=32), "too small for x8"),
    (lambda: SRTrainConfig(data="d", out="o", scale=3), "--scale must be one of"),
    (lambda: StyleTrainConfig(style="s", content="c", out="o", temporal_flat_share=0.25), "needs --temporal-weight"),
    (lambda: StyleTrainConfig(style="s", content="c", out="o", temporal_weight=1e7, temporal_flat_share=2),
     "--temporal-flat-share must be in"),
])
def test_config_rejects_bad_values(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


# ------------------------------------------------------------------------------------------ data


def test_find_images_recursive_and_skips_hidden(content_dir):
    (content_dir / ".hidden").mkdir()
    _photo(9, (32, 32)).save(content_dir / ".hidden" / "x.png")
    (content_dir / "notes.txt").write_text("not an image")
    found = find_images(content_dir)
    assert len(found) == 6 and all(p.suffix == ".png" for p in found)
    assert found == sorted(found)


def test_sampler_is_a_function_of_the_step_and_shards_are_disjoint():
    full = StepBatchSampler(10, 2, 0, 10, seed=3)
    resumed = StepBatchSampler(10, 2, 4, 10, seed=3)
    assert list(full)[4:] == list(resumed)
    rank0 = [i for b in StepBatchSampler(10, 1, 0, 5, seed=1, rank=0, world_size=2) for i, _ in b]
    rank1 = [i for b in StepBatchSampler(10, 1, 0, 5, seed=1, rank=1, world_size=2) for i, _ in b]
    assert sorted(rank0 + rank1) == list(range(10))  # one epoch, split between the ranks
    assert list(StepBatchSampler(10, 2, 0, 3, seed=1)) != list(StepBatchSampler(10, 2, 0, 3, seed=2))


def test_augmented_patches_are_the_8_square_symmetries_seeded_by_position(content_dir):
    from perceptual_studio.train.data import ImageFolderDataset, square_symmetry

    patch = torch.arange(2 * 3 * 3, dtype=torch.float32).reshape(2, 3, 3)
    variants = [square_symmetry(patch, k) for k in range(8)]
    assert len({tuple(v.flatten().tolist()) for v in variants}) == 8  # all distinct, none lost
    assert all(sorted(v.flatten().tolist()) == sorted(patch.flatten().tolist()) for v in variants)
    paths = find_images(content_dir)
    plain = ImageFolderDataset(paths, 16, crop="random", seed=1)
    augmented = ImageFolderDataset(paths, 16, crop="random", seed=1, augment=True)
    samples = [augmented[(0, g)] for g in range(12)]
    assert all(torch.equal(a, augmented[(0, g)]) for g, a in enumerate(samples))  # a function of the position
    assert any(not torch.equal(a, plain[(0, g)]) for g, a in enumerate(samples))
    assert all(any(torch.equal(a, square_symmetry(plain[(0, g)], k)) for k in range(8)) for g, a in enumerate(samples))


def test_cosine_schedule_falls_from_the_rate_to_zero_as_a_function_of_the_step(style_path, content_dir):
    from perceptual_studio.train.loop import learning_rate_at

    constant = tiny_style(style_path, content_dir, out="c", learning_rate=2e-3)
    cosine = tiny_style(style_path, content_dir, out="c", learning_rate=2e-3, lr_schedule="cosine", iterations=100)
    assert {learning_rate_at(constant, s) for s in (0, 3, 5)} == {2e-3}
    rates = [learning_rate_at(cosine, s) for s in range(100)]
    assert rates[0] == 2e-3 and rates[50] == pytest.approx(1e-3) and 0 < rates[-1] < 1e-5
    assert all(a > b for a, b in zip(rates, rates[1:]))
    with pytest.raises(ConfigError, match="--lr-schedule"):
        tiny_style(style_path, content_dir, out="c", lr_schedule="linear")


def test_degrade_blurs_then_downsamples_to_8bit_levels():
    hr = torch.rand(2, 3, 32, 32)
    lr = degrade(hr, 4, 1.0)
    assert lr.shape == (2, 3, 8, 8)
    assert torch.equal(lr, (lr * 255).round() / 255)
    flat = torch.full((1, 3, 16, 16), 153 / 255)  # a flat image stays flat, on the same 8-bit level
    assert torch.allclose(degrade(flat, 4, 1.0), flat[..., :4, :4])
    with pytest.raises(ValueError, match="multiple of the scale"):
        degrade(torch.rand(1, 3, 30, 32), 4)


def test_hub_dataset_id_offline_fails_fast_with_a_clear_message(monkeypatch, tmp_path):
    from perceptual_studio import hub_probe

    monkeypatch.setattr(hub_probe, "probe_hub", lambda *a, **k: (False, "test: offline"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"not in the HF cache and the Hub cannot be reached \(test: offline\)"):
        list_training_images("someone/some-images")


def test_hub_dataset_id_downloads_image_files(monkeypatch, content_dir):
    import huggingface_hub

    from perceptual_studio import hub_probe

    calls = {}

    def fake_snapshot_download(repo_id, **kwargs):
        calls.update(kwargs, repo_id=repo_id)
        return str(content_dir)

    monkeypatch.setattr(hub_probe, "probe_hub", lambda *a, **k: (True, "ok"))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    paths, label = list_training_images("someone/some-images")
    assert len(paths) == 6 and label == "hf-dataset:someone/some-images"
    assert calls["repo_type"] == "dataset" and "*.jpg" in calls["allow_patterns"]


# ------------------------------------------------------------------------------------------ metrics


def test_y_channel_and_metrics():
    white = np.full((16, 16, 3), 255, np.uint8)
    black = np.zeros((16, 16, 3), np.uint8)
    assert np.allclose(rgb_to_y(white), 235.0) and np.allclose(rgb_to_y(black), 16.0)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert psnr_y(image, image) == math.inf
    assert ssim_y(image, image) == pytest.approx(1.0)
    grey = np.full((32, 32, 3), 100, np.uint8)
    brighter = grey + 10  # Y differs by 10 * (65.481 + 128.553 + 24.966) / 255 everywhere
    diff = 10 * (65.481 + 128.553 + 24.966) / 255
    assert psnr_y(brighter, grey, border=4) == pytest.approx(20 * math.log10(255 / diff))
    noisy = np.clip(image.astype(int) + rng.integers(-20, 21, image.shape), 0, 255).astype(np.uint8)
    assert 0 < ssim_y(noisy, image) < 1


def test_renormalize_filters_clips_rms_to_the_radius():
    conv = torch.nn.Conv2d(3, 4, 3)
    with torch.no_grad():
        conv.weight.mul_(0)
        conv.weight[0].fill_(1.0)  # RMS 1: clipped
        conv.weight[1].fill_(0.05)  # RMS 0.05: kept
    renormalize_filters(torch.nn.Sequential(conv), 0.1)
    rms = conv.weight.pow(2).mean(dim=(1, 2, 3)).sqrt()
    assert rms[0].item() == pytest.approx(0.1) and rms[1].item() == pytest.approx(0.05)


# ------------------------------------------------------------------------------------------ style training


def test_style_training_writes_a_loadable_registry_model(style_path, content_dir):
    from perceptual_studio.registry import list_models, load_model

    events: list[TrainEvent] = []
    config = tiny_style(style_path, content_dir, iterations=16, preview_every=8, renorm_radius=1.0)
    folder = train_style(config, progress=events.append)

    assert folder == _models_dir() / "tiny"
    for name in ("config.json", "model.safetensors", "README.md", "style.jpg", "preview.jpg", "loss_curve.png", "evolution.jpg"):
        assert (folder / name).is_file(), name
    losses = _losses(_runs_dir() / "tiny")
    assert len(losses) == 16 and all(math.isfinite(v) for v in losses)
    assert np.mean(losses[-4:]) < np.mean(losses[:4])
    steps = [e.step for e in events if e.losses]
    assert steps[:16] == list(range(1, 17))
    assert events[-1].done and events[-1].model_folder == folder
    assert [e.step for e in events if e.preview is not None][:3] == [0, 8, 16]
    assert sorted(p.name for p in (_runs_dir() / "tiny" / "previews").iterdir()) == [
        "step_00000000.jpg", "step_00000008.jpg", "step_00000016.jpg"]

    record = json.loads((folder / "config.json").read_text())
    assert record["style"] == "checks" and record["architecture"] == "johnson-style"
    training = record["training"]
    assert training["loss_network"] == "vgg16:random(seed=0)"
    assert training["style_layers"] == ["relu1_2", "relu2_2"] and training["iterations"] == 16
    assert training["train_config"]["content"] == "content"  # local paths reduced to their name
    assert training["renorm_radius"] == 1.0 and training["completed"] is True
    assert "RANDOM-weight loss network" in (folder / "README.md").read_text()

    entry = list_models(source="local").get("local:tiny")
    assert entry is not None and entry.error is None and entry.task == "style-transfer"
    model = load_model("local:tiny", device="cpu")
    out = model(torch.rand(1, 3, 37, 29))
    assert out.shape == (1, 3, 37, 29) and torch.isfinite(out).all()


def test_cli_trains_a_model_listed_by_the_registry(style_path, content_dir, capsys):
    from perceptual_studio.registry.__main__ import main as registry_main
    from perceptual_studio.train.style import main

    rc = main(["--style", str(style_path), "--content", str(content_dir), "--out", "cli-style", "--image-size", "32",
               "--batch-size", "2", "--iterations", "3", "--width", "0.25", "--num-residual", "1",
               "--style-layers", "relu1_2", "relu2_2", "--quiet"])
    assert rc == 0
    assert str(_models_dir() / "cli-style") in capsys.readouterr().out
    assert registry_main(["list", "--source", "local"]) == 0
    assert "cli-style" in capsys.readouterr().out


def test_cli_max_minutes_stops_writes_the_model_and_resume_goes_on(style_path, content_dir, capsys):
    """--max-minutes trains as far as a fixed time budget allows, writes the model as Ctrl-C does, and the same
    command with --resume goes on; a budget that is not above 0 is refused."""
    from perceptual_studio.train.style import main

    command = ["--style", str(style_path), "--content", str(content_dir), "--out", "timed", "--image-size", "32",
               "--batch-size", "2", "--iterations", "100000", "--width", "0.25", "--num-residual", "1",
               "--style-layers", "relu1_2", "--checkpoint-every", "1000", "--quiet"]
    for bad in ("0", "-1", "soon"):
        with pytest.raises(SystemExit):
            main(command + ["--max-minutes", bad])
        assert "above 0" in capsys.readouterr().err
    assert main(command + ["--max-minutes", "0.05"]) == 0
    record = json.loads((_models_dir() / "timed" / "config.json").read_text())["training"]
    assert 0 < record["iterations"] < 100000 and record["completed"] is False
    stopped = record["iterations"]
    assert main(command + ["--max-minutes", "0.05", "--resume"]) == 0  # the same command again goes on
    record = json.loads((_models_dir() / "timed" / "config.json").read_text())["training"]
    assert stopped < record["iterations"] < 100000


def test_fine_tune_from_a_registry_model(style_path, content_dir):
    from perceptual_studio.networks import StyleTransformNet
    from perceptual_studio.registry import load_model, save_model

    torch.manual_seed(1)
    save_model(StyleTransformNet(width=0.25, num_residual=1), "base", style="base",
               training={"loss_network": "vgg16:random(seed=0)"})
    # Architecture options differ on purpose: the init model's are used.
    folder = train_style(tiny_style(style_path, content_dir, out="tuned", init="base", iterations=3, width=1.0,
                                    num_residual=5))
    record = json.loads((folder / "config.json").read_text())
    assert record["architecture_args"]["width"] == 0.25 and record["training"]["init"] == "base"
    assert load_model("local:tuned", device="cpu") is not None
    assert "init" in (folder / "README.md").read_text()
    # A model folder path works as --init too.
    again = train_style(tiny_style(style_path, content_dir, out="tuned-again", init=str(folder), iterations=1))
    assert json.loads((again / "config.json").read_text())["architecture_args"]["width"] == 0.25
    with pytest.raises(ConfigError, match="--init nothing-here"):
        train_style(tiny_style(style_path, content_dir, out="tuned-never", init="nothing-here", iterations=1))
    assert not (_runs_dir() / "tuned-never").exists()  # a bad input leaves no run folder behind


def test_resume_reaches_the_same_final_weights(style_path, content_dir):
    straight = train_style(tiny_style(style_path, content_dir, out="straight"))

    class Crash(Exception):
        pass

    def crash_at_step_5(event: TrainEvent) -> None:
        if event.step == 5 and event.losses:
            raise Crash

    config = tiny_style(style_path, content_dir, out="interrupted")
    with pytest.raises(Crash):
        train_style(config, progress=crash_at_step_5)
    assert ckpt.latest_checkpoint(_runs_dir() / "interrupted").step == 4
    assert not (_models_dir() / "interrupted").exists()

    with pytest.raises(ConfigError, match="--resume to continue"):
        train_style(config)
    with pytest.raises(ConfigError, match="options differ"):
        train_style(tiny_style(style_path, content_dir, out="interrupted", learning_rate=5e-3), resume=True)

    resumed = train_style(config, resume=True)
    a, b = load_file(straight / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (_runs_dir() / "interrupted" / "loss.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))
    assert json.loads((resumed / "config.json").read_text())["training"]["iterations"] == 6

    # A finished run continues to a larger count: the same weights as a straight run of that count.
    longer = train_style(tiny_style(style_path, content_dir, out="straight-8", iterations=8))
    extended = train_style(tiny_style(style_path, content_dir, out="interrupted", iterations=8), resume=True)
    a, b = load_file(longer / "model.safetensors"), load_file(extended / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((extended / "config.json").read_text())["training"]["iterations"] == 8


def test_cancellation_stops_cleanly_and_writes_a_usable_model(style_path, content_dir):
    from perceptual_studio.registry import load_model

    stop = threading.Event()
    events: list[TrainEvent] = []

    def progress(event: TrainEvent) -> None:
        events.append(event)
        if event.step == 2:
            stop.set()

    folder = train_style(tiny_style(style_path, content_dir, out="cancelled", iterations=50), progress, stop)
    assert events[-1].cancelled and not events[-1].done and "stopped at step 2 of 50" in events[-1].message
    training = json.loads((folder / "config.json").read_text())["training"]
    assert training["iterations"] == 2 and training["completed"] is False and training["target_iterations"] == 50
    assert "stopped early, at step 2 of 50" in (folder / "README.md").read_text()
    assert load_model("local:cancelled", device="cpu")(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    assert ckpt.latest_checkpoint(_runs_dir() / "cancelled").step == 2


@pytest.mark.parametrize("poison, message", [(float("nan"), "became non-finite"), (1e9, "exploded to")])
def test_diverging_loss_stops_and_keeps_the_last_good_checkpoint(style_path, content_dir, monkeypatch, poison, message):
    from perceptual_studio.train import loop

    real = loop.compute_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] >= 4:  # step 4
            terms.total = terms.total * poison
        return terms

    monkeypatch.setattr(loop, "compute_loss", poisoned)
    config = tiny_style(style_path, content_dir, out="diverged", checkpoint_every=2)
    with pytest.raises(TrainingDivergedError, match=message) as info:
        train_style(config)
    assert "step 4" in str(info.value) and "last good checkpoint (step 2)" in str(info.value)
    latest = ckpt.latest_checkpoint(_runs_dir() / "diverged")
    assert latest.step == 2
    weights = ckpt.load_weights(latest)
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())
    assert not (_models_dir() / "diverged").exists()


@pytest.mark.parametrize("case, message", [
    ("bad-style", "is not a recognised image"),
    ("missing-content", "does not exist"),
    ("empty-content", "contains no image files"),
    ("unreadable-content", "none of the 2 image files"),
    ("tiny-size", "too small for the network"),
    ("thin-style", "too small for the loss network"),
])
def test_bad_inputs_give_clear_messages(tmp_path, style_path, content_dir, capsys, case, message):
    from perceptual_studio.train.style import main

    style, content, size = style_path, content_dir, "32"
    if case == "bad-style":
        style = tmp_path / "style.png"
        style.write_bytes(b"this is not a picture")
    elif case == "missing-content":
        content = tmp_path / "nowhere"
    elif case == "empty-content":
        content = tmp_path / "empty"
        content.mkdir()
    elif case == "unreadable-content":
        content = tmp_path / "broken"
        content.mkdir()
        (content / "a.jpg").write_bytes(b"garbage")
        (content / "b.png").write_bytes(b"")
    elif case == "tiny-size":
        size = "8"
    elif case == "thin-style":
        style = tmp_path / "thin.png"
        Image.new("RGB", (400, 10), "red").save(style)
    rc = main(["--style", str(style), "--content", str(content), "--out", "bad", "--image-size", size,
               "--iterations", "2", "--width", "0.25", "--num-residual", "1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert message in err and "Traceback" not in err
    assert not (_models_dir() / "bad").exists() and not (_runs_dir() / "bad").exists()


def test_existing_model_folder_is_not_overwritten_by_accident(style_path, content_dir):
    (_models_dir() / "taken").mkdir(parents=True)
    with pytest.raises(ConfigError, match="already exists"):
        train_style(tiny_style(style_path, content_dir, out="taken"))


# ------------------------------------------------------------------------------------------ super-resolution


@pytest.fixture
def sr_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "sr-data"
    folder.mkdir()
    for i in range(4):
        _photo(10 + i, (64, 72)).save(folder / f"img{i}.png")
    return folder


@pytest.mark.parametrize("loss", ["pixel", "feature"])
def test_sr_training_evaluates_and_writes_a_model(sr_dir, loss):
    from perceptual_studio.registry import load_model

    folder = train_sr(tiny_sr(sr_dir, out=f"sr-{loss}", loss=loss))
    losses = _losses(_runs_dir() / f"sr-{loss}")
    assert len(losses) == 30 and np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])
    record = json.loads((folder / "config.json").read_text())
    assert record["task"] == "super-resolution" and record["scale"] == 4
    figures = record["training"]["evaluation"]
    assert figures["eval_images"] == 1
    for key in ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y"):
        assert math.isfinite(figures[key])
    assert record["training"]["loss_network"] == ("none (pixel loss)" if loss == "pixel" else "vgg16:random(seed=0)")
    card = (folder / "README.md").read_text()
    assert "| img3.png | bicubic |" in card and f"| img3.png | {loss} loss |" in card  # the held-out image, by name
    model = load_model(f"local:sr-{loss}", device="cpu")
    assert model(torch.rand(1, 3, 10, 12)).shape == (1, 3, 40, 48)


def test_sr_bad_inputs(sr_dir, tmp_path, capsys):
    from perceptual_studio.train.sr import main

    rc = main(["--data", str(sr_dir), "--out", "x", "--patch-size", "16", "--quiet"])
    assert rc == 1 and "too small for x4" in capsys.readouterr().err
    rc = main(["--data", str(sr_dir), "--out", "x", "--patch-size", "32", "--holdout", "4", "--quiet"])
    assert rc == 1 and "not enough to hold out 4" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ distributed


def test_two_process_gloo_run_completes(style_path, content_dir, tmp_path):
    from perceptual_studio import settings

    env = {**os.environ, "PERCEPTUAL_DATA_DIR": str(settings.data_dir()), "PERCEPTUAL_LOSS_NETWORK": "random",
           "PERCEPTUAL_DEVICE": "cpu", "HF_HUB_DISABLE_TELEMETRY": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "perceptual_studio.train.style", "--style", str(style_path), "--content", str(content_dir), "--out", "ddp",
               "--image-size", "32", "--batch-size", "2", "--iterations", "4", "--width", "0.25",
               "--num-residual", "1", "--style-layers", "relu1_2", "relu2_2", "--checkpoint-every", "2", "--quiet"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count(str(_models_dir() / "ddp")) == 1  # only rank 0 reports (and writes)
    details = json.loads((_runs_dir() / "ddp" / "run.json").read_text())
    assert details["world_size"] == 2
    training = json.loads((_models_dir() / "ddp" / "config.json").read_text())["training"]
    assert training["batch_size"] == 4 and training["world_size"] == 2 and training["iterations"] == 4

    from perceptual_studio.registry import load_model

    assert load_model("local:ddp", device="cpu")(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_a_run_resumes_on_other_numerics_and_auto_trains_in_bfloat16_only_where_the_cpu_is_faster_so(
        style_path, content_dir, monkeypatch):
    """Precision, like the device, changes how a run computes, not what: one begun under bfloat16 autocast resumes
    in float32 (another machine's best). ``auto`` picks bfloat16 on a CPU only with AMX matrix units."""
    from perceptual_studio.train import loop

    class Crash(Exception):
        pass

    def crash_at_step_3(event: TrainEvent) -> None:
        if event.step == 3 and event.losses:
            raise Crash

    with pytest.raises(Crash):
        train_style(tiny_style(style_path, content_dir, out="moved", precision="bfloat16"), progress=crash_at_step_3)
    assert ckpt.latest_checkpoint(_runs_dir() / "moved").step == 2
    resumed = train_style(tiny_style(style_path, content_dir, out="moved", precision="float32"), resume=True)
    record = json.loads((resumed / "config.json").read_text())["training"]
    assert record["iterations"] == 6 and record["numerics"] == "float32"  # the numerics of the last stretch
    steps = [json.loads(line)["step"] for line in (_runs_dir() / "moved" / "loss.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))  # steps 1-2 kept from the bfloat16 stretch: resumed, not started again

    auto, cpu = tiny_style(style_path, content_dir, out="x", precision="auto"), torch.device("cpu")
    for amx, expected in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda amx=amx: {"avx512_bf16": True, "amx_bf16": amx})
        assert loop.resolve_numerics(auto, cpu).autocast_dtype is expected
    assert loop.resolve_numerics(tiny_style(style_path, content_dir, out="x", precision="bfloat16"),
                                 cpu).autocast_dtype is torch.bfloat16
