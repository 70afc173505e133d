"""The library's pipelines (``perceptual_studio.StylePipeline``, ``SuperResolutionPipeline``, ``train_style``):
what the Stylize, Super-resolution and Train tabs do, as calls, with the same results as the web handlers."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from perceptual_studio import StylePipeline, SuperResolutionPipeline
from perceptual_studio.imaging.sample_photos import load_sample_photo
from perceptual_studio.pipelines.style import StyleResult

SHIPPED = Path(__file__).resolve().parents[1] / "registry" / "builtin"


@pytest.fixture
def shipped(monkeypatch):
    monkeypatch.setenv("PERCEPTUAL_BUILTIN_MODELS_DIR", str(SHIPPED))


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return load_sample_photo("chelsea").resize((150, 100))


def test_importing_the_pipelines_loads_no_trainer_baseline_or_gradio() -> None:
    code = ("import sys\nfrom perceptual_studio import StylePipeline, SuperResolutionPipeline\n"
            "import perceptual_studio.pipelines.style, perceptual_studio.pipelines.superres\n"
            "print([m for m in sys.modules if m.split('.')[:2] in (['perceptual_studio', 'train'],"
            " ['perceptual_studio', 'baseline']) or m.split('.')[0] in ('gradio', 'train', 'baseline')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_style_pipeline_gives_an_image_and_a_typed_result(shipped, photo) -> None:
    pipe = StylePipeline.from_pretrained("builtin:stained-glass", device="cpu", network="paper")
    image = pipe(photo, size=96)
    assert isinstance(image, Image.Image) and image.size == (96, 64)
    result = pipe(photo, size=96, return_result=True)
    assert isinstance(result, StyleResult) and np.array_equal(np.asarray(result.image), np.asarray(image))
    assert result.model_id == "builtin:stained-glass" and result.loss_network == "vgg16:imagenet-caffe"
    assert result.device == "cpu" and result.plan and result.seconds > 0 and result.network_size == (96, 64)


def test_style_pipeline_matches_the_stylize_handler(shipped, photo) -> None:
    from perceptual_studio.webapp.handlers import stylize

    pipe = StylePipeline.from_pretrained("builtin:mosaic", device="cpu")
    ours = pipe(photo, size=80, strength=0.7, preserve_colours=True, style_scale=0.75, return_result=True)
    theirs = stylize(photo, "builtin:mosaic", 80, True, 0.7, 0.75)
    assert np.array_equal(np.asarray(ours.image), np.asarray(theirs.image))
    assert ours.model_id == theirs.model_id == "builtin:mosaic-fast"  # auto on a CPU: the fast variant


def test_strength_zero_is_the_content_and_preserved_colours_keep_its_chroma(shipped, photo) -> None:
    pipe = StylePipeline.from_pretrained("builtin:stained-glass", device="cpu")
    content = np.asarray(photo.resize((96, 64), Image.Resampling.LANCZOS), dtype=np.int16)
    unchanged = np.asarray(pipe(photo, size=96, strength=0.0), dtype=np.int16)
    assert np.abs(unchanged - content).max() <= 1
    kept = pipe(photo, size=96, preserve_colours=True).convert("YCbCr")
    chroma = np.asarray(photo.resize((96, 64), Image.Resampling.LANCZOS).convert("YCbCr"), dtype=np.int16)[..., 1:]
    assert np.abs(np.asarray(kept, dtype=np.int16)[..., 1:] - chroma).mean() < 2


def test_the_network_size_is_chosen_from_configs(shipped, monkeypatch) -> None:
    from perceptual_studio.registry import model_format

    loaded = []
    real = model_format.load_model_folder

    def counting(folder, *args, **kwargs):
        loaded.append(Path(folder).name)
        return real(folder, *args, **kwargs)

    monkeypatch.setattr("perceptual_studio.registry.api.load_model_folder", counting)
    fast = StylePipeline.from_pretrained("builtin:stripes", device="cpu")
    assert fast.parts[0].model_id == "builtin:stripes-fast" and loaded == ["stripes-fast"]  # paper size never read
    paper = StylePipeline.from_pretrained("builtin:stripes-fast", device="cpu", network="paper")
    assert paper.parts[0].model_id == "builtin:stripes"


def test_a_model_folder_and_save_pretrained_round_trip(shipped, photo, tmp_path) -> None:
    pipe = StylePipeline.from_pretrained("builtin:ink-waves", device="cpu", network="paper")
    folder = pipe.save_pretrained(tmp_path / "copy")
    again = StylePipeline.from_pretrained(folder, device="cpu")
    assert again.parts[0].model_id == "ink-waves" and again.model.folder == folder
    assert np.array_equal(np.asarray(again(photo, size=64)), np.asarray(pipe(photo, size=64)))
    with pytest.raises(FileExistsError):
        pipe.save_pretrained(folder)


def test_a_blend_is_one_network_with_normalised_shares(shipped, photo) -> None:
    pipe = StylePipeline.blend({"builtin:mosaic": 3, "builtin:stained-glass": 1}, device="cpu")
    assert [round(p.weight, 2) for p in pipe.parts] == [0.75, 0.25] and pipe.model is None
    assert pipe(photo, size=64).size == (64, 43)
    with pytest.raises(ValueError, match="twice"):
        StylePipeline.blend([("builtin:mosaic", 1), ("mosaic", 1)], device="cpu")
    with pytest.raises(ValueError, match="two or more"):
        StylePipeline.blend({"builtin:mosaic": 1}, device="cpu")


def test_bad_models_get_one_sentence(shipped) -> None:
    with pytest.raises(ValueError, match="super-resolution model, not a style transfer one"):
        StylePipeline.from_pretrained("builtin:sr-x4-pixel", device="cpu")
    with pytest.raises(ValueError, match="cannot be used"):
        StylePipeline.from_pretrained("builtin:no-such-style", device="cpu")
    with pytest.raises(ValueError, match="network must be one of"):
        StylePipeline.from_pretrained("builtin:mosaic", network="huge")


def test_super_resolution_pipeline_one_model_and_the_comparison(shipped, photo) -> None:
    one = SuperResolutionPipeline.from_pretrained("builtin:sr-x4-pixel", device="cpu")
    assert one.scale == 4 and one(photo.resize((40, 28))).size == (160, 112)
    pair = SuperResolutionPipeline.from_pretrained(pixel="builtin:sr-x4-pixel", feature="builtin:sr-x4-feature",
                                                   device="cpu")
    result = pair(photo, original=True, return_result=True)
    assert list(result.images) == ["original", "bicubic", "pixel loss", "feature loss", "blend"]
    assert set(result.metrics) == {"bicubic", "pixel loss", "feature loss", "blend"}
    assert result.metrics["pixel loss"][0] > result.metrics["bicubic"][0]  # the pixel-loss model's PSNR lead
    assert result.image is result.images["feature loss"]


def test_super_resolution_pipeline_matches_the_handler(shipped, photo) -> None:
    from perceptual_studio.webapp.handlers.superres import super_resolve

    pair = SuperResolutionPipeline.from_pretrained(pixel="builtin:sr-x8-pixel", feature="builtin:sr-x8-feature",
                                                   device="cpu")
    ours = pair(photo, original=True, histogram_match=True, return_result=True)
    theirs = super_resolve(photo, "original", 8, "builtin:sr-x8-pixel", "builtin:sr-x8-feature", histogram_match=True)
    assert ours.metrics == theirs.metrics and ours.psnr_unmatched == theirs.psnr_unmatched


def test_super_resolution_scales_are_checked(shipped) -> None:
    with pytest.raises(ValueError, match="x4 model"):
        SuperResolutionPipeline.from_pretrained("builtin:sr-x4-pixel", scale=8, device="cpu")
    with pytest.raises(ValueError, match="give the scale"):
        SuperResolutionPipeline.from_pretrained(device="cpu")
    assert SuperResolutionPipeline.from_pretrained(scale="x8", device="cpu").models == {}


def test_train_style_in_one_call(tmp_path, monkeypatch) -> None:
    from perceptual_studio import train_style

    monkeypatch.setenv("PERCEPTUAL_LOSS_NETWORK", "random")  # seconds, not the Oxford VGG-16's minutes
    content = tmp_path / "content"
    content.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(content / f"{i}.png")
    style = tmp_path / "dots.png"
    Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(style)
    pipe = train_style(style, content=content, name="dots", recipe="starter", iterations=2, image_size=32, batch_size=1, width=0.25,
                       num_residual=1, style_layers=("relu1_2",), preview_size=32, device="cpu")
    assert pipe.parts[0].style == "dots" and pipe.model.folder.name == "dots"
    assert pipe.parts[0].loss_network == "vgg16:random(seed=0)"
    assert pipe(Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)), size=40).size == (40, 40)


def test_the_webcam_stream_resolves_its_model_on_the_first_frame_only(shipped, monkeypatch) -> None:
    import os

    from perceptual_studio.webapp.handlers import style

    style.forget_stream_pipelines()
    frame = np.asarray(load_sample_photo("astronaut").resize((64, 64)))
    first = style.stylize_frame(frame, "builtin:stained-glass", 48)
    touched = []
    with pytest.MonkeyPatch.context() as watch:
        for owner, name in ((os, "scandir"), (os, "listdir"), (os, "stat"), (Path, "iterdir"), (Path, "glob"),
                            (Path, "stat")):
            real = getattr(owner, name)
            watch.setattr(owner, name, lambda *a, _real=real, _name=name, **k: touched.append(_name) or _real(*a, **k))
        later = [style.stylize_frame(frame, "builtin:stained-glass", 48) for _ in range(3)]
    assert touched == [] and all(np.array_equal(f, first) for f in later)
    style.forget_stream_pipelines()
