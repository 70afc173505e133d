"""Video: clips through the library, ``/stylize_video`` and ``perceptual-batch video`` (frames, frame rate,
duration, sound kept), a stop keeping the frames done, each kind of bad clip with its own message and nothing
written, the warping error on known motion, and the temporal loss of stable networks."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("av")
from apptools import STYLE_ID, app_environment, launch_app  # noqa: E402
from videos import _tone, frame, make_clip  # noqa: E402

from perceptual_studio import settings  # noqa: E402
from perceptual_studio.imaging.video import VideoInputError, probe_video, read_frames  # noqa: E402


@pytest.fixture(scope="module")
def app_env(tmp_path_factory):
    with app_environment(tmp_path_factory.mktemp("video")) as env:
        yield env


@pytest.fixture(autouse=True)
def _environment(request, monkeypatch):
    if "app_env" in request.fixturenames:
        for key, value in request.getfixturevalue("app_env").items():
            monkeypatch.setenv(key, value)


def _pipe():
    from perceptual_studio.pipelines.style import StylePipeline

    return StylePipeline.from_pretrained(STYLE_ID, device="cpu")


@pytest.mark.parametrize("suffix, sound", [("mp4", True), ("webm", True), ("avi", True), ("gif", False)])
def test_a_clip_keeps_its_frames_rate_duration_and_sound(app_env, tmp_path, suffix, sound) -> None:
    from perceptual_studio.pipelines.video import stylize_video

    clip = make_clip(tmp_path / f"clip.{suffix}", frames=12, fps=12, size=(96, 64), audio=sound)
    source = probe_video(clip)
    result = stylize_video(_pipe(), clip, tmp_path / "out" / "styled.mp4", size=64)
    out = probe_video(result.path)
    assert (result.frames, out.frames) == (12, 12) and not result.stopped
    assert out.fps == source.fps and out.codec == "h264" and (out.width, out.height) == result.size == (64, 42)
    assert abs(out.seconds - source.seconds) < 0.15
    assert out.has_audio == sound == result.has_audio and (out.audio_codec == "aac" if sound else True)
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["styled.mp4"]  # no scratch files left
    frames = list(read_frames(result.path))
    assert frames[0].shape == (42, 64, 3) and frames[0].std() > 5  # a picture, not a blank


def test_a_stop_keeps_the_frames_done_with_their_sound(app_env, tmp_path) -> None:
    from perceptual_studio.pipelines.video import stylize_video

    clip = make_clip(tmp_path / "clip.mp4", frames=24, fps=12, size=(96, 64))
    seen: list[int] = []
    result = stylize_video(_pipe(), clip, tmp_path / "kept.mp4", size=64,
                           progress=lambda done, total, _: seen.append(done), should_stop=lambda: len(seen) >= 6)
    out = probe_video(result.path)
    assert result.stopped and result.frames == 6 == out.frames and out.has_audio
    assert out.seconds < 1.0  # the sound is cut with the frames (24 frames would be 2 s)


def _truncated(tmp_path: Path) -> Path:
    clip = make_clip(tmp_path / "long.webm", frames=22, size=(96, 64))
    data = clip.read_bytes()
    (tmp_path / "cut.webm").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.webm"


def _sound_only(tmp_path: Path) -> Path:
    import av

    with av.open(str(tmp_path / "sound.m4a"), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=48000)
        stream.layout = "stereo"
        _tone(av, out, stream, 0.3)
    return tmp_path / "sound.m4a"


def _no_frames(tmp_path: Path) -> Path:
    import av

    with av.open(str(tmp_path / "empty.mkv"), "w", format="matroska") as out:
        video = out.add_stream("libx264", rate=12)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        sound = out.add_stream("aac", rate=48000)
        sound.layout = "stereo"
        _tone(av, out, sound, 0.3)
    return tmp_path / "empty.mkv"


def _unknown_codec(tmp_path: Path) -> Path:
    """An AVI whose video FourCC no decoder knows (an MPEG-4 clip with its tags renamed)."""
    data = make_clip(tmp_path / "clip.avi").read_bytes()
    (tmp_path / "alien.avi").write_bytes(data.replace(b"FMP4", b"ZQZQ").replace(b"mp4v", b"zqzq"))
    return tmp_path / "alien.avi"


def _noise(tmp_path: Path) -> Path:
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    return tmp_path / "noise.mp4"


BAD_CLIPS = {
    "cut short": (_truncated, "is cut short"),
    "not a video": (_noise, "could not be read as a video"),
    "sound only": (_sound_only, "has no video track"),
    "no frames": (_no_frames, "has no frames"),
    "unknown codec": (_unknown_codec, "cannot decode"),
    "too long": (lambda p: make_clip(p / "long.mp4", frames=30, fps=10), r"lasts 3\.0 s; the limit is 2 s"),
    "too large": (lambda p: make_clip(p / "wide.mp4", frames=2, size=(320, 240)), "largest frame accepted"),
}


@pytest.mark.parametrize("case", BAD_CLIPS)
def test_each_bad_clip_gets_its_own_message_and_nothing_is_written(app_env, tmp_path, monkeypatch, case) -> None:
    from perceptual_studio.pipelines.video import stylize_video

    monkeypatch.setenv("PERCEPTUAL_VIDEO_MAX_SECONDS", "2")
    monkeypatch.setenv("PERCEPTUAL_VIDEO_MAX_INPUT_PIXELS", str(200 * 200))
    make, message = BAD_CLIPS[case]
    clip = make(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(VideoInputError, match=message):
        stylize_video(_pipe(), clip, out / "styled.mp4", size=64)
    assert not out.exists() or not any(out.iterdir())


def test_the_api_and_the_batch_cli_round_trip_a_clip(app_env, tmp_path, capsys) -> None:
    from gradio_client import Client, handle_file

    from perceptual_studio.webapp import cli

    clip = make_clip(tmp_path / "clip.mp4", frames=12, fps=12, size=(96, 64))
    with launch_app() as url:
        client = Client(url, verbose=False)
        status, _, video = client.predict(handle_file(str(clip)), [STYLE_ID], 64, 1.0, False, "stable",
                                          api_name="/stylize_video")
        out = probe_video(video["video"] if isinstance(video, dict) else video)
        assert (out.frames, out.fps, out.has_audio, out.codec) == (12, Fraction(12), True, "h264")
        assert "12 frames" in status and "with its sound" in status
        with pytest.raises(Exception, match="could not be read as a video"):
            client.predict(handle_file(str(_noise(tmp_path))), [STYLE_ID], 64, 1.0, False, "stable",
                           api_name="/stylize_video")

    assert cli.main(["video", str(clip), str(tmp_path / "cli.mp4"), "--model", STYLE_ID, "--size", "64"]) == 0
    out = probe_video(tmp_path / "cli.mp4")
    assert (out.frames, out.fps, out.has_audio, out.width) == (12, Fraction(12), True, 64)
    assert cli.main(["video", str(_truncated(tmp_path)), str(tmp_path / "bad.mp4"), "--model", STYLE_ID]) == 1
    assert "is cut short" in capsys.readouterr().err and not (tmp_path / "bad.mp4").exists()


def test_the_warping_error_of_a_pan_with_known_flow() -> None:
    """A clip warped exactly along its flow scores ~0; the same frames in the wrong order do not."""
    from perceptual_studio.imaging.motion import affine_flow, camera_path, render_camera, warping_error

    yy, xx = np.mgrid[0:120, 0:200] / 40.0
    still = torch.from_numpy(np.stack([np.sin(xx) * 0.4 + 0.5, np.cos(yy * 1.3) * 0.4 + 0.5,
                                       np.sin(xx + yy) * 0.4 + 0.5])).unsqueeze(0).float()
    maps = camera_path("pan", 6, 96, 64, 200, 120)
    clip = [render_camera(still, m, 64, 96) for m in maps]
    flows = [affine_flow(maps[t - 1], maps[t], 64, 96) for t in range(1, 6)]
    assert flows[0][:, 0].mean() == pytest.approx(-(200 - 96) / 5, rel=1e-4)  # the camera moves right
    assert warping_error(clip, flows) < 1e-4
    assert warping_error([clip[i] for i in (0, 3, 1, 4, 2, 5)], flows) > 50 * max(warping_error(clip, flows), 1e-6)
    still_clip = [clip[0]] * 6
    zero = [torch.zeros_like(f) for f in flows]
    assert warping_error(still_clip, zero) < 1e-12


def test_the_still_noisy_scene_has_exact_flow_and_masks_the_background_its_square_covers() -> None:
    """Without noise the scene warps onto itself exactly (so its flow and masks are right); without the masks the
    strip the square moves over counts; with noise the input's own error is the noise's, 2 sigma squared."""
    from perceptual_studio.imaging.motion import STILL_SCENE_STEP, noisy_still_scene, warping_error

    clean, flows, masks = noisy_still_scene(6, 128, noise=0.0)
    assert len(clean) == 6 and len(flows) == len(masks) == 5 and clean[0].shape == (1, 3, 72, 128)
    assert float(flows[0][:, 0].max()) == STILL_SCENE_STEP and float(flows[0][:, 1].abs().max()) == 0
    assert float(flows[0].count_nonzero()) == float((masks[0] == 0).sum()) / STILL_SCENE_STEP * (72 // 3)
    assert float((masks[0] == 0).sum()) == (72 // 3) * STILL_SCENE_STEP  # just the strip the square covers next
    assert warping_error(clean, flows, masks) < 1e-12
    assert warping_error(clean, flows) > 1e-4 and warping_error(clean, [torch.zeros_like(f) for f in flows], masks) > 1e-4
    noisy, flows, masks = noisy_still_scene(6, 128, noise=0.01)
    assert warping_error(noisy, flows, masks) == pytest.approx(2 * 0.01 ** 2, rel=0.15)


def test_the_temporal_loss_is_zero_for_a_network_that_moves_with_the_picture() -> None:
    from perceptual_studio.losses import LossTerms, TemporalLoss

    x = torch.rand(2, 3, 32, 32)
    zero = torch.tensor(0.0)
    terms = LossTerms(zero, zero, zero, zero, zero)
    steady = TemporalLoss(1.0, noise=0.0).add_to(terms, torch.nn.Identity(), x, x)
    assert float(steady.temporal) < 1e-10 and set(steady.as_floats()) >= {"temporal"}
    pattern = torch.rand(1, 3, 32, 32)  # a texture fixed to the frame, as a flickering network paints

    def painter(image):
        return image + pattern

    moving = TemporalLoss(1.0, noise=0.0).add_to(terms, painter, x, painter(x))
    assert float(moving.temporal) > 1e-3 and float(moving.total) == pytest.approx(float(moving.temporal))
    with pytest.raises(ValueError, match="must be > 0"):
        TemporalLoss(0.0)


def test_the_temporal_loss_flat_pairs_punish_a_network_that_turns_noise_on_flat_areas_into_texture() -> None:
    """With a flat share, each batch gets that share of extra pairs: a photo smoothed flat, with fresh noise in both
    frames (the first run through the network as well). A network that normalises each image's contrast (as
    instance normalisation does) blows the noise on a flat picture up into texture: it pays for it there, while on
    the photos' pairs alone it hardly does; a smoothing network pays about the same either way."""
    import torch.nn.functional as F

    from perceptual_studio.losses import LossTerms, TemporalLoss
    from perceptual_studio.losses.temporal import smoothed_flat

    checker = (torch.arange(64).view(1, 1, 1, 64) + torch.arange(64).view(1, 1, 64, 1)) % 2
    flat = smoothed_flat(checker.float().expand(1, 3, 64, 64))
    assert float(flat.std()) < 1e-3 and float(flat.mean()) == pytest.approx(0.5, abs=1e-3)

    def normalising(image):
        return 0.5 + 0.1 * F.instance_norm(image)

    def smooth(image):
        return F.avg_pool2d(image, 9, stride=1, padding=4, count_include_pad=False)

    calls = []

    def counting(model):
        def run(image):
            calls.append(image.shape[0])
            return model(image)
        return run

    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    zero = torch.tensor(0.0)
    terms = LossTerms(zero, zero, zero, zero, zero)

    def temporal(model, share):
        torch.manual_seed(0)
        calls.clear()
        return float(TemporalLoss(1.0, noise=0.02, flat_share=share).add_to(terms, counting(model), x, model(x)).temporal)

    normalising_flat = temporal(normalising, 1.0)
    assert calls == [4, 8]  # the flat pairs' first frames, then every second frame
    assert normalising_flat > 8 * temporal(normalising, 0.0)
    assert temporal(smooth, 1.0) < 3 * temporal(smooth, 0.0)
    temporal(smooth, 0.5)
    assert calls == [2, 6]
    temporal(smooth, 0.1)
    assert calls == [1, 5]  # a share too small for one pair still gets one
    photos_only = temporal(smooth, 0.0)
    assert calls == [4]
    from perceptual_studio.imaging.motion import random_smooth_flow, warp

    torch.manual_seed(0)  # without flat pairs, the loss is what it always was: its formula written out
    flow = random_smooth_flow(4, 64, 64, shift=0.03, local=0.015)
    moved, visible = warp(x, flow)
    moved = (moved + 0.02 * torch.randn_like(moved)).clamp(0.0, 1.0)
    difference = (smooth(moved) - warp(smooth(x), flow)[0]) ** 2 * visible
    assert photos_only == pytest.approx(float(difference.sum() / (visible.sum() * 3)), rel=1e-6)
    with pytest.raises(ValueError, match="flat share"):
        TemporalLoss(1.0, flat_share=1.5)


def test_the_steady_blend_cuts_flicker_where_the_picture_is_still_and_leaves_new_things_alone() -> None:
    """Flow-guided blending (the Steady switch): on a still, noisy scene that a network repaints differently every
    frame, the warping error falls to under half; where something new appears, the new frame shows as it is."""
    from perceptual_studio.imaging.motion import warping_error
    from perceptual_studio.pipelines.flow_blend import FlowGuidedBlend

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:72, 0:128]
    scene = np.stack([xx * 2, yy * 3, 128 + 60 * np.sin(xx / 9.0)], -1).astype(np.float32)
    contents = [np.clip(scene + rng.normal(0, 2, scene.shape), 0, 255).astype(np.uint8) for _ in range(8)]
    painted = [np.clip(c.astype(np.float32) * 0.5 + rng.normal(0, 25, c.shape), 0, 255).astype(np.uint8)
               for c in contents]  # strokes re-decided every frame
    blend = FlowGuidedBlend(0.5)
    shown = [blend(c, p) for c, p in zip(contents, painted)]
    assert np.array_equal(shown[0], painted[0])  # nothing to blend with yet

    def tensors(frames):
        return [torch.from_numpy(f).permute(2, 0, 1).unsqueeze(0).float() / 255 for f in frames]

    still = [torch.zeros(1, 2, 72, 128)] * 7
    assert warping_error(tensors(shown), still) < 0.5 * warping_error(tensors(painted), still)
    square = contents[-1].copy()
    square[20:50, 40:80] = (250, 240, 30)  # something new in the picture
    new_paint = painted[-1].copy()
    new_paint[20:50, 40:80] = (10, 200, 10)
    out = blend(square, new_paint)
    assert np.abs(out[25:45, 45:75].astype(int) - new_paint[25:45, 45:75]).max() <= 1
    with pytest.raises(ValueError, match="below 1"):
        FlowGuidedBlend(1.0)
    with pytest.raises(ValueError, match="differ in size"):
        blend(square, new_paint[:10])


def test_a_steady_clip_round_trips_through_the_library_and_the_cli(app_env, tmp_path, capsys) -> None:
    from perceptual_studio.pipelines.video import stylize_video
    from perceptual_studio.webapp import cli

    clip = make_clip(tmp_path / "clip.mp4", frames=12, fps=12, size=(96, 64))
    result = stylize_video(_pipe(), clip, tmp_path / "steady.mp4", size=64, steady=0.5)
    assert result.steady == 0.5 and result.frames == 12 == probe_video(result.path).frames
    with pytest.raises(ValueError, match="steadiness"):
        stylize_video(_pipe(), clip, tmp_path / "never.mp4", size=64, steady=1.5)
    assert not (tmp_path / "never.mp4").exists()
    assert cli.main(["video", str(clip), str(tmp_path / "cli.mp4"), "--model", STYLE_ID, "--size", "64",
                     "--steady"]) == 0
    assert "12 frames" in capsys.readouterr().out
    assert cli.main(["video", str(clip), str(tmp_path / "bad.mp4"), "--model", STYLE_ID, "--steady", "2"]) == 1
    assert "steadiness must be at least 0 and below 1" in capsys.readouterr().err
