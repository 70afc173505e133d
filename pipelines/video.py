"""Stylise a video clip frame by frame with a style pipeline, as one library call::

    pipe = StylePipeline.from_pretrained("builtin:starry-night", network="stable")
    result = stylize_video(pipe, "clip.mov", "clip-starry.mp4", size=512)

The clip is checked before any frame is stylised (``imaging.video.probe_video``: readable, a video track FFmpeg
decodes, at least one frame, within ``settings.video_limits()``). Frames are scaled by FFmpeg while decoding,
stylised at the output size (strength and colour preservation as for photos), and written as H.264 MP4 at the
clip's frame rate; the clip's sound is then copied in, cut to the frames written. The output appears at
``destination`` only when complete: a failure leaves nothing behind, and a stop (``should_stop``) keeps the
frames done so far as a shorter clip, with its sound.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from perceptual_studio import settings
from perceptual_studio.imaging.video import (
    VideoInfo,
    VideoInputError,
    VideoWriter,
    add_audio,
    output_size,
    probe_video,
    read_frames,
)
from perceptual_studio.networks.inference import infer

from .flow_blend import FlowGuidedBlend
from .style import StylePipeline, check_controls

# progress(frames done, frames in all, the latest stylised frame or None): called after every frame.
VideoProgress = Callable[[int, int, "np.ndarray | None"], None]

__all__ = ["VideoInfo", "VideoInputError", "VideoResult", "stylise_frame", "stylize_video"]


@dataclass(frozen=True)
class VideoResult:
    """A stylised clip and how it was made."""

    path: Path
    frames: int  # written
    fps: Fraction
    size: tuple[int, int]  # (width, height)
    has_audio: bool
    stopped: bool  # stopped early: ``frames`` of ``source.frames`` were kept
    seconds: float  # decoding, stylising and encoding, end to end
    network_seconds: float  # the network passes alone
    plan: str  # how the network ran
    source: VideoInfo
    steady: float = 0.0  # the previous result's share in each frame (flow_blend.FlowGuidedBlend); 0: off

    @property
    def duration(self) -> float:
        return self.frames / float(self.fps)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def stylize_video(pipe: StylePipeline, source: str | os.PathLike[str], destination: str | os.PathLike[str], *,
                  size: int = 512, strength: float = 1.0, preserve_colours: bool = False,
                  progress: VideoProgress | None = None, should_stop: Callable[[], bool] | None = None,
                  preview_every: int = 0, limits: settings.VideoLimits | None = None,
                  steady: float = 0.0) -> VideoResult:
    """Stylise clip ``source`` into MP4 ``destination`` at ``size`` px (the longer side; never enlarged).

    ``steady`` in [0, 1): mix each frame with the previous result moved along the clip's optical flow, where the
    clip agrees (:class:`~pipelines.flow_blend.FlowGuidedBlend`: less flicker for any network; 0, the default, is
    off).

    ``progress`` is called after every frame, with the frame itself every ``preview_every`` frames (0: never);
    an exception it raises stops the work and nothing is written. ``should_stop`` returning True keeps the
    frames done (the result says ``stopped``). Raises :class:`VideoInputError` for a clip that cannot be used and
    ``ValueError`` for bad controls, before any frame is stylised.
    """
    started = time.perf_counter()
    limits = limits or settings.video_limits()
    size, strength = int(size), float(strength)
    check_controls(size, 1.0)
    if size > limits.output_side:
        raise ValueError(f"video output size must be at most {limits.output_side} px, got {size}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"style strength must be between 0 and 1, got {strength}")
    blend = FlowGuidedBlend(float(steady))  # checks the value before the clip is read
    source, destination = Path(source), Path(destination)
    info = probe_video(source, limits)
    frame_size = output_size(info.width, info.height, size)
    destination.parent.mkdir(parents=True, exist_ok=True)
    silent = destination.with_name(f".{destination.stem}.video.mp4")
    network_seconds, plan, stopped = 0.0, "", False
    try:
        with VideoWriter(silent, frame_size, info.fps) as writer:
            for content in read_frames(source, frame_size, expected=info.frames):
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                frame, run_seconds, plan = stylise_frame(pipe, content, strength, preserve_colours)
                if blend.weight > 0:
                    frame = blend(content, frame)
                network_seconds += run_seconds
                writer.write(frame)
                if progress is not None:
                    show = preview_every > 0 and (writer.frames == 1 or writer.frames % preview_every == 0)
                    progress(writer.frames, info.frames, frame if show else None)
        if writer.frames == 0:
            raise ValueError("Stopped before the first frame: there is nothing to keep.")
        partial = destination.with_name(f".{destination.stem}.partial.mp4")
        has_audio = info.has_audio and add_audio(silent, source, partial, writer.seconds)
        if not info.has_audio:
            os.replace(silent, partial)
        os.replace(partial, destination)
    finally:
        for leftover in (silent, destination.with_name(f".{destination.stem}.partial.mp4")):
            leftover.unlink(missing_ok=True)
    return VideoResult(destination, writer.frames, info.fps, frame_size, has_audio, stopped,
                       time.perf_counter() - started, network_seconds, plan, info, blend.weight)


def stylise_frame(pipe: StylePipeline, content: np.ndarray, strength: float = 1.0,
                  keep_colours: bool = False) -> tuple[np.ndarray, float, str]:
    """One frame (RGB uint8) through the pipeline's network at its own size, blended and colour-kept in
    float32 on the network's device; returns the frame, the network's seconds and its plan."""
    x = torch.from_numpy(content).to(pipe.device).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
    with torch.inference_mode():
        run = infer(pipe.network, x)
        out = run.output.float()
        if out.shape[-2:] != x.shape[-2:]:
            out = torch.nn.functional.interpolate(out, size=x.shape[-2:], mode="bicubic", align_corners=False)
        if strength < 1.0:
            out = torch.lerp(x, out, strength)
        if keep_colours:
            out = _luma_of(out, x)
        frame = out.clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)[0].permute(1, 2, 0).contiguous()
    return frame.cpu().numpy(), run.seconds, run.plan


_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as Pillow's YCbCr


def _luma_of(stylised: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylised frame's luma with the content's chroma (``style.preserve_colours`` on tensors): adding the
    luma difference to each RGB channel keeps the content's Cb and Cr exactly."""
    weights = torch.tensor(_LUMA, device=content.device).view(1, 3, 1, 1)
    difference = (stylised * weights).sum(1, keepdim=True) - (content * weights).sum(1, keepdim=True)
    return content + difference
