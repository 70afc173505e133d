"""Short generated clips for the video tests: moving shapes over a gradient, optionally with a tone as sound, in
any container PyAV writes (MP4 H.264/AAC, WebM VP9/Opus, AVI MPEG-4/MP3, animated GIF)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

CODECS = {  # container format: (video codec, pixel format, audio codec or None)
    "mp4": ("libx264", "yuv420p", "aac"),
    "webm": ("libvpx-vp9", "yuv420p", "libopus"),
    "avi": ("mpeg4", "yuv420p", "mp3"),
    "mov": ("libx264", "yuv420p", "aac"),
    "gif": ("gif", "rgb8", None),
}


def frame(index: int, width: int, height: int) -> np.ndarray:
    """A gradient with a square that moves 3 px a frame: stylisable, and its motion is visible."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1),
                      np.full_like(x, 96)], axis=-1).astype(np.uint8)
    side = max(4, min(width, height) // 4)
    left = (index * 3) % max(1, width - side)
    top = height // 3
    image[top:top + side, left:left + side] = (250, 240, 40)
    return image


def make_clip(path: Path, *, frames: int = 12, fps: int = 12, size: tuple[int, int] = (96, 64),
              audio: bool = True) -> Path:
    import av

    suffix = path.suffix.lstrip(".").lower()
    video_codec, pix_fmt, audio_codec = CODECS[suffix]
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(video_codec, rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        sound = out.add_stream(audio_codec, rate=48000) if audio and audio_codec else None
        if sound is not None:
            sound.layout = "stereo"
        for index in range(frames):
            picture = av.VideoFrame.from_ndarray(frame(index, *size), format="rgb24")
            picture.pts = None
            for packet in stream.encode(picture if pix_fmt == "rgb24" else picture.reformat(format=pix_fmt)):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if sound is not None:
            _tone(av, out, sound, frames / fps)
    return path


def _tone(av, out, stream, seconds: float) -> None:
    rate, chunk = 48000, 960
    total = int(seconds * rate)
    resampler = av.AudioResampler(format=stream.format.name, layout="stereo", rate=rate)
    for start in range(0, total, chunk):
        t = np.arange(start, min(total, start + chunk)) / rate
        wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        samples = np.ascontiguousarray(np.stack([wave, wave], axis=1).reshape(1, -1))  # packed: L R L R ...
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="stereo")
        frame.sample_rate = rate
        for piece in resampler.resample(frame):
            piece.pts = None
            for packet in stream.encode(piece):
                out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
