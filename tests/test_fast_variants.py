"""Fast variants: distillation into a smaller style network, the teacher's objective as the judge,
the app's choice of network size, and the FLOP counts the peer benchmark prints."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from perceptual_studio.train.config import ConfigError, DistillTrainConfig, StyleTrainConfig


@pytest.fixture(autouse=True)
def _random_loss_network(monkeypatch):
    monkeypatch.setenv("PERCEPTUAL_LOSS_NETWORK", "random")
    monkeypatch.setenv("PERCEPTUAL_DEVICE", "cpu")


def _pattern(seed: int, size: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    f = rng.uniform(3, 9)
    rgb = np.stack([0.5 + 0.4 * np.sin(f * xx + seed), 0.3 + 0.5 * yy, 0.5 + 0.4 * np.cos(f * (xx + yy))], -1)
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    folder.mkdir()
    for i in range(4):
        _pattern(i).save(folder / f"photo{i}.png")
    return folder


@pytest.fixture
def teacher(env, tmp_path: Path, content_dir: Path) -> str:
    """A tiny trained style model in the local models folder (random-weight loss network): ``local:teacher``."""
    from perceptual_studio.train.style import train_style

    yy, xx = np.mgrid[0:48, 0:48]
    style = tmp_path / "checks.png"
    Image.fromarray(((np.stack([(xx // 6) % 2, (yy // 6) % 2, ((xx + yy) // 8) % 2], -1) * 200) + 30)
                    .astype(np.uint8)).save(style)
    train_style(StyleTrainConfig(style=str(style), content=str(content_dir), out="teacher", style_name="checks",
                                 image_size=32, batch_size=2, iterations=4, learning_rate=1e-2, width=0.5,
                                 num_residual=1, style_layers=("relu1_2", "relu2_2"), log_every=1, checkpoint_every=4,
                                 preview_every=0, preview_size=32))
    return "local:teacher"


def tiny_distill(content_dir: Path, teacher: str, out: str = "teacher-fast", **overrides) -> DistillTrainConfig:
    values = dict(teacher=teacher, content=str(content_dir), out=out, image_size=32, batch_size=2, iterations=12,
                  learning_rate=5e-3, width=0.25, num_residual=1, log_every=1, checkpoint_every=6, preview_every=0,
                  preview_size=32)
    values.update(overrides)
    return DistillTrainConfig(**values)


def test_a_distilled_student_learns_the_teachers_output_and_records_its_objective(env, teacher, content_dir):
    from perceptual_studio import settings
    from perceptual_studio.registry import api
    from perceptual_studio.train.distill import train_distilled

    folder = train_distilled(tiny_distill(content_dir, teacher))
    config = json.loads((folder / "config.json").read_text())
    record = config["training"]
    assert config["style"] == "checks" and config["architecture_args"]["width"] == 0.25
    assert record["variant_of"] == teacher and record["loss_network"] == "none (pixel loss)"
    assert record["teacher_loss_network"].startswith("vgg16:random")
    assert record["style_layer_weights"] and record["style_weight"] is not None  # the teacher's objective
    rows = [json.loads(line) for line in (settings.runs_dir() / "teacher-fast" / "loss.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and rows[-1]["pixel"] < rows[0]["pixel"] / 2  # it learns the teacher's output
    student = api.load_model("local:teacher-fast", "cpu")
    assert student.config.training.variant_of == teacher
    assert sum(p.numel() for p in student.network.parameters()) < sum(
        p.numel() for p in api.load_model(teacher, "cpu").network.parameters())
    assert f"Distilled from `{teacher}`" in (folder / "README.md").read_text(encoding="utf-8")


def test_the_distilled_student_trains_on_with_the_teachers_objective_and_stays_its_variant(env, teacher, content_dir):
    """The gallery's second step: ``train.style --init <student> --variant-of <teacher>`` keeps the student's
    size, trains it with a perceptual objective and records it as the teacher's variant (the app finds it)."""
    from perceptual_studio.registry import api
    from perceptual_studio.train.distill import train_distilled
    from perceptual_studio.train.style import train_style

    student = train_distilled(tiny_distill(content_dir, teacher, out="teacher-student"))
    train_style(StyleTrainConfig(style=str(env.parent / "checks.png"), content=str(content_dir), out="teacher-fast",
                                 style_name="checks", init=str(student), variant_of=teacher, image_size=32,
                                 batch_size=2, iterations=2, style_layers=("relu1_2", "relu2_2"), log_every=1,
                                 checkpoint_every=2, preview_every=0, preview_size=32))
    fast = api.load_model("local:teacher-fast", "cpu")
    record = fast.config.training
    assert record.variant_of == teacher and record.loss_network.startswith("vgg16:random")  # trained on the objective
    assert fast.config.architecture_args["width"] == 0.25  # the student's size, taken from --init
    assert api.fast_variant(teacher) == "local:teacher-fast"  # preferred to the pixel-only student
    assert {e.id for e in api.list_models(task="style-transfer", source="local").entries
            if e.variant_of == teacher} == {"local:teacher-fast", "local:teacher-student"}


def test_distillation_refuses_a_teacher_that_is_missing_or_not_a_style_model(env, content_dir, tmp_path):
    from perceptual_studio.train.distill import train_distilled

    with pytest.raises(ConfigError, match="--teacher local:nothing"):
        train_distilled(tiny_distill(content_dir, "local:nothing"))
    with pytest.raises(ConfigError, match="--teacher"):
        DistillTrainConfig(teacher=" ", content=str(content_dir), out="x")
    with pytest.raises(ConfigError, match="--width"):
        tiny_distill(content_dir, "local:x", width=0)


def test_the_teachers_objective_judges_both_networks_alike(env, teacher, content_dir):
    from perceptual_studio.networks.vgg import LossNetworkWeights, random_vgg16_state
    from perceptual_studio.registry import api
    from perceptual_studio.train.distill import train_distilled
    from perceptual_studio.train.style import load_style_image
    from perceptual_studio.train.shipped.style_eval import held_out_objective

    train_distilled(tiny_distill(content_dir, teacher))
    paper, fast = api.load_model(teacher, "cpu"), api.load_model("local:teacher-fast", "cpu")
    weights = LossNetworkWeights(random_vgg16_state(0), "vgg16:random(seed=0)", "random")
    style = load_style_image(str(env.parent / "checks.png"), 32)
    photos = [(f"p{i}", _pattern(10 + i, 40)) for i in range(2)]
    same = held_out_objective({"a": paper.network, "b": paper.network}, paper.config.training, style, photos, weights)
    assert same.excess("b", "a") == 0 and same.mean("a") > 0
    both = held_out_objective({"paper-size": paper.network, "fast": fast.network}, fast.config.training, style,
                              photos, weights)
    assert both.photos == ("p0", "p1") and set(both.terms["p0"]) == {"paper-size", "fast"}
    assert both.excess("fast", "paper-size") == pytest.approx(both.mean("fast") / both.mean("paper-size") - 1)
    assert "| **mean of 2** | fast |" in both.markdown()


def test_auto_runs_the_fast_variant_on_a_cpu_and_the_user_can_choose(env, teacher, content_dir):
    from perceptual_studio.train.distill import train_distilled
    from perceptual_studio.webapp.handlers import choose_network, stylize

    assert choose_network(teacher, "auto").model_id == teacher  # no fast variant yet: the model itself
    fast_only = choose_network(teacher, "fast")
    assert fast_only.model_id == teacher and "no fast variant" in fast_only.note
    train_distilled(tiny_distill(content_dir, teacher))
    auto = choose_network(teacher, "auto")
    assert auto.model_id == "local:teacher-fast" and "auto: on a CPU" in auto.note
    assert choose_network(teacher, "paper").model_id == teacher
    assert choose_network("local:teacher-fast", "paper").model_id == teacher  # a variant's paper-size network
    assert choose_network(teacher, "FAST").model_id == "local:teacher-fast"
    with pytest.raises(ValueError, match="network must be one of auto, fast, paper"):
        choose_network(teacher, "tiny")
    out = stylize(_pattern(3, 64), teacher, 64)
    assert out.model_id == "local:teacher-fast" and "Fast variant" in out.markdown()
    assert stylize(_pattern(3, 64), teacher, 64, network="paper").model_id == teacher
    gpu = choose_network(teacher, "auto", device=torch.device("cuda"))
    assert gpu.model_id == teacher and "on a GPU" in gpu.note  # there both take milliseconds


def test_pickers_offer_a_fast_variant_through_its_paper_size_model(env, teacher, content_dir):
    from perceptual_studio.registry import api
    from perceptual_studio.train.distill import train_distilled
    from perceptual_studio.webapp.handlers.models import ModelListing

    train_distilled(tiny_distill(content_dir, teacher))
    entries = api.list_models(task="style-transfer", source="local").entries
    assert {e.id: e.variant_of for e in entries} == {teacher: None, "local:teacher-fast": teacher}
    assert ModelListing(entries).style_ids() == [teacher]
    alone = [e for e in entries if e.id == "local:teacher-fast"]  # its teacher gone: the variant is listed
    assert ModelListing(alone).style_ids() == ["local:teacher-fast"]


def test_onnx_conv_flops_match_torchs_count_for_our_network(tmp_path):
    from benchmarks.inference import network_flops
    from benchmarks.peer import onnx_parameters_and_flops
    from perceptual_studio.networks import StyleTransformNet
    from perceptual_studio.networks.onnx_export import INPUT_NAME, export_onnx

    torch.manual_seed(0)
    net = StyleTransformNet(width=0.25, num_residual=1).eval()
    path = export_onnx(net, tmp_path / "net.onnx")
    parameters, flops = onnx_parameters_and_flops(
        str(path), lambda size: {INPUT_NAME: np.zeros((1, 3, size, size), np.float32)})
    # Initializers only: the exporter turns a few norm parameters into constant nodes.
    assert parameters == pytest.approx(sum(p.numel() for p in net.parameters()), rel=0.01)
    # torch counts the convolutions (and nothing else of note in this network): the two must agree.
    assert flops(64) == pytest.approx(network_flops(net, (1, 3, 64, 64)), rel=0.02)
    assert flops(128) == pytest.approx(4 * flops(64), rel=0.02)


def test_the_gpu_figures_script_runs_end_to_end_without_gradio(tmp_path, capsys):
    """The GPU machine has torch but no gradio: the one prepared script must not need it. Here on the CPU at
    toy sizes (its targets are for 1024/512/256 px on a GPU), as a check that it runs to its table."""
    import subprocess
    import sys

    code = ("import sys, benchmarks.gpu_figures as g; "
            "rc = g.main(['--device', 'cpu', '--repeats', '1', '--baseline-iterations', '2', '--train-steps', '1', "
            "'--network-size', '48', '--baseline-size', '48', '--train-size', '32', '--video-size', '64x36', "
            "'--work-dir', sys.argv[1]]); "
            "assert 'gradio' not in sys.modules, 'gradio was imported'; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| style network 48x48" in done.stdout and "| baseline 48x48, 2 iterations" in done.stdout
    assert done.stdout.count("| style network 64x36, a video frame") == 2
    assert done.stdout.count("| training 32x32 batch 4") == 2 and "smoke test" in done.stdout


def test_the_fastest_runtime_is_measured_once_per_model_and_must_match_float32(monkeypatch):
    from perceptual_studio.networks import StyleTransformNet
    from perceptual_studio.networks import runtimes
    from perceptual_studio.networks.inference import infer
    from perceptual_studio.networks.plan import choose_plan, run_network

    torch.manual_seed(0)
    net = StyleTransformNet(width=0.25, num_residual=1).eval()
    plan = choose_plan(net, "cpu")
    choice = runtimes.measure_runtimes(net, plan, side=64, repeats=1)
    assert {t.runtime for t in choice.trials} == {"torch", "onnxruntime"}
    assert all(t.psnr_db >= runtimes.MIN_PSNR_DB for t in choice.trials), choice.describe()
    fastest = min(choice.trials, key=lambda t: t.seconds)
    assert choice.plan.runtime == fastest.runtime
    x = runtimes.probe_image(64)
    with torch.inference_mode():
        onnx = run_network(net, x, replace_runtime(plan, "onnxruntime"))
        assert float((onnx - net(x)).abs().max()) < 1e-4  # float32 graph: the same numbers

    calls = []
    onnx_plan = replace_runtime(plan, "onnxruntime")

    def fake_measure(model, plan, side, repeats):
        calls.append(side)
        return runtimes.RuntimeChoice(onnx_plan, ())

    monkeypatch.setattr(runtimes, "measure_runtimes", fake_measure)
    assert runtimes.fastest_plan(net, plan, 40, wait=True) == onnx_plan
    assert runtimes.fastest_plan(net, plan, 48, wait=True) == onnx_plan
    assert calls == [40]  # once for these weights and this size bucket (probed at most at the input's size)
    runtimes.fastest_plan(net, plan, 700, wait=True)
    assert calls == [40, 512]  # another size bucket
    with torch.no_grad():
        net.tail.conv.bias.add_(0.1)  # new weights: measured again
    runtimes.fastest_plan(net, plan, 40, wait=True)
    assert calls == [40, 512, 40]
    assert [runtimes.probe_side(s) for s in (64, 362, 363, 700, 4000)] == [256, 256, 512, 512, 1024]

    # In the app the measurement stays off the request: the first one runs the torch plan, later ones the winner.
    with torch.no_grad():
        net.tail.conv.bias.add_(0.1)
    first = infer(net, torch.rand(1, 3, 40, 40))
    assert first.plan == plan.describe()
    for _ in range(200):
        if len(calls) == 4 and infer(net, torch.rand(1, 3, 40, 40)).plan == onnx_plan.describe():
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"the background measurement never landed: {calls}")
    from perceptual_studio.networks import SuperResolutionNet

    infer(SuperResolutionNet(8, channels=8, num_residual=1).eval(), torch.rand(1, 3, 40, 40))
    time.sleep(0.2)
    assert len(calls) == 4  # an upscaling network is never probed (its probe would be scale^2 larger)


def test_torch_compile_is_timed_too_when_the_setting_allows_it(monkeypatch):
    """``PERCEPTUAL_TORCH_COMPILE=1`` adds the torch plan under torch.compile to the measured runtimes (off by
    default: compiling costs tens of seconds); the winner is the fastest trial that matches float32."""
    from perceptual_studio.networks import StyleTransformNet
    from perceptual_studio.networks import runtimes
    from perceptual_studio.networks.plan import choose_plan

    torch.manual_seed(0)
    net = StyleTransformNet(width=0.25, num_residual=1).eval()
    plan = choose_plan(net, "cpu")
    assert "torch.compile" not in {t.runtime for t in runtimes.measure_runtimes(net, plan, side=48, repeats=1).trials}
    monkeypatch.setenv("PERCEPTUAL_TORCH_COMPILE", "1")
    choice = runtimes.measure_runtimes(net, plan, side=48, repeats=1)
    trials = {t.runtime: t for t in choice.trials}
    assert set(trials) == {"torch", "onnxruntime", "torch.compile"}, choice.describe()
    assert trials["torch.compile"].psnr_db >= runtimes.MIN_PSNR_DB
    fastest = min(choice.trials, key=lambda t: t.seconds)
    assert choice.plan.compile == (fastest.runtime == "torch.compile"), choice.describe()


def test_a_process_that_ends_during_a_background_measurement_exits_cleanly():
    """A CLI run ends right after its result: the measurement it started in the background must not abort the
    interpreter on the way out (a daemon thread killed inside a torch kernel did: exit status 134)."""
    import subprocess
    import sys

    script = ("import torch\nfrom networks import StyleTransformNet\nfrom networks.inference import infer\n"
              "torch.manual_seed(0)\nnet = StyleTransformNet().eval()\n"
              "print(infer(net, torch.rand(1, 3, 256, 256)).output.shape)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0 and "terminate called" not in done.stderr, done.stderr[-2000:]


def test_a_runtime_that_drifts_from_float32_is_never_chosen(monkeypatch):
    from perceptual_studio.networks import StyleTransformNet
    from perceptual_studio.networks import runtimes
    from perceptual_studio.networks.plan import choose_plan

    real = runtimes.run_network

    def drifting(model, x, plan):
        out = real(model, x, plan)
        return (out + 0.05).clamp(0, 1) if plan.runtime == "onnxruntime" else out

    monkeypatch.setattr(runtimes, "run_network", drifting)
    net = StyleTransformNet(width=0.25, num_residual=1).eval()
    choice = runtimes.measure_runtimes(net, choose_plan(net, "cpu"), side=64, repeats=1)
    assert choice.plan.runtime == "torch"
    assert next(t for t in choice.trials if t.runtime == "onnxruntime").psnr_db < runtimes.MIN_PSNR_DB


def replace_runtime(plan, runtime: str):
    from dataclasses import replace

    return replace(plan, runtime=runtime)


def test_a_stable_variant_runs_for_video_and_never_stands_in_for_photos(env, teacher, content_dir):
    """A variant trained with the temporal loss is the model's stable variant ("stable": video, the webcam);
    "auto" keeps running the fast variant; without a stable variant "stable" says so and runs auto's choice."""
    from perceptual_studio import settings
    from perceptual_studio.train.distill import train_distilled
    from perceptual_studio.train.style import train_style
    from perceptual_studio.webapp.handlers import choose_network

    train_distilled(tiny_distill(content_dir, teacher))
    none_yet = choose_network(teacher, "stable")
    assert none_yet.model_id == "local:teacher-fast" and "no stable variant yet" in none_yet.note
    train_style(StyleTrainConfig(style=str(content_dir / "photo0.png"), content=str(content_dir), out="teacher-stable",
                                 style_name="checks", init="local:teacher-fast", variant_of=teacher,
                                 temporal_weight=10.0, image_size=32, batch_size=2, iterations=3, learning_rate=1e-3,
                                 style_layers=("relu1_2", "relu2_2"), log_every=1, checkpoint_every=3, preview_every=0,
                                 preview_size=32))
    record = json.loads((env / "teacher-stable" / "config.json").read_text())["training"]
    assert record["temporal_weight"] == 10.0 and record["variant_of"] == teacher
    rows = [json.loads(line) for line in (settings.runs_dir() / "teacher-stable" / "loss.jsonl").read_text().splitlines()]
    assert all(row["temporal"] > 0 for row in rows)
    assert choose_network(teacher, "stable").model_id == "local:teacher-stable"
    assert choose_network("local:teacher-fast", "stable").model_id == "local:teacher-stable"  # through its teacher
    assert choose_network(teacher, "auto").model_id == "local:teacher-fast"  # photos keep the fast variant
    with pytest.raises(ConfigError, match="temporal-weight must be > 0"):
        StyleTrainConfig(style="s.png", content="c", out="x", temporal_weight=0.0)
