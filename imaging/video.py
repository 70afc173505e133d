"""Video in and out: the one place a user's clip is opened, checked and decoded, and an MP4 that browsers play is
written.

PyAV (FFmpeg inside its wheels, no system ``ffmpeg``) reads MP4, WebM, MOV, AVI, MKV and animated GIF. A clip is
checked before any frame is stylised (:func:`probe_video`): it must open, have a video track whose codec FFmpeg
decodes, hold at least one frame and stay within :class:`settings.VideoLimits`; each failure is a
:class:`VideoInputError` with its own sentence. The output (:class:`VideoWriter`) is H.264 in ``yuv420p`` (the
pixel format every browser plays) with the moov atom first (``+faststart``), so it starts playing while it loads;
:func:`add_audio` then copies the clip's sound into it (AAC is copied, anything else re-encoded as AAC), cut to
the frames written.
"""
from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from perceptual_studio import settings

logger = logging.getLogger(__name__)

FORMATS = ("MP4", "WebM", "MOV", "AVI", "MKV", "animated GIF")  # what users are told
_DEFAULT_FPS = Fraction(25)  # a clip that states no frame rate (rare: some GIFs)
_MAX_FPS = Fraction(120)
# How far the decoded frames may fall short of the header's count (or duration x rate) before the clip counts as
# cut short: variable-rate phone clips and GIFs' rounded delays miss by a few per cent.
_FRAME_COUNT_SLACK = 0.05


class VideoInputError(ValueError):
    """A clip that cannot be used, with a one-line message naming it and what to do."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` found in a clip."""

    width: int
    height: int
    fps: Fraction  # the average frame rate: the output's
    frames: int  # as the container states it, else estimated from the duration
    seconds: float
    codec: str
    audio_codec: str | None  # None: no sound

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - a runtime dependency; a broken install
        raise VideoInputError(f"Video needs the PyAV package (pip install av): {exc}") from None
    av.logging.set_level(av.logging.PANIC)  # FFmpeg's own console noise; failures reach the user as sentences
    return av


def _label(path: Path) -> str:
    return path.name or "the clip"


def _open(path: Path):
    """The clip's container, or a :class:`VideoInputError` saying it is not a readable video."""
    av = _av()
    label = _label(path)
    if not path.is_file():
        raise VideoInputError(f"{label} was not found.")
    if path.stat().st_size == 0:
        raise VideoInputError(f"{label} is empty (0 bytes).")
    try:
        return av.open(str(path), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        raise VideoInputError(f"{label} could not be read as a video: it is damaged, cut short or not a video file "
                              f"({', '.join(FORMATS)} are supported).") from None


def probe_video(path: str | os.PathLike[str], limits: settings.VideoLimits | None = None) -> VideoInfo:
    """Open ``path``, check it against ``limits`` (:func:`settings.video_limits` when None) and decode its first
    frame; raises :class:`VideoInputError` for every clip that cannot be stylised, before any work is done."""
    av = _av()
    path = Path(path)
    limits = limits or settings.video_limits()
    label = _label(path)
    if path.is_file() and path.stat().st_size > limits.file_bytes:
        raise VideoInputError(f"{label} is {path.stat().st_size / 2**20:.0f} MB; the limit is "
                              f"{limits.file_bytes / 2**20:.0f} MB.")
    with _open(path) as container:
        if not container.streams.video:
            what = "sound only" if container.streams.audio else "no video track"
            raise VideoInputError(f"{label} has no video track ({what}): upload a video clip.")
        stream = container.streams.video[0]
        codec = _codec_name(stream)
        if codec is None:
            raise VideoInputError(f"The video of {label} is encoded in a format this app cannot decode; re-encode it as "
                                  "H.264 MP4 or WebM.")
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > limits.input_pixels:
            raise VideoInputError(f"{label} is {width} x {height}; the largest frame accepted is "
                                  f"{limits.input_pixels / 1e6:.1f} megapixels (e.g. 3840 x 2160).")
        fps = _frame_rate(stream)
        seconds = _duration(container, stream)
        frames = int(stream.frames or 0) or round(seconds * fps)
        if seconds > limits.seconds + 0.5 / float(fps):
            raise VideoInputError(f"{label} lasts {seconds:.1f} s; the limit is {limits.seconds:g} s: trim it first.")
        if frames > limits.frames:
            raise VideoInputError(f"{label} has {frames} frames; the limit is {limits.frames}.")
        first = _first_frame(container, stream, label, codec)
        if first is None:
            raise VideoInputError(f"{label} has no frames: its video track is empty.")
        width, height = first.width, first.height  # the decoded size, when the header disagrees
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_codec = _codec_name(audio) if audio is not None else None
    return VideoInfo(width, height, fps, max(frames, 1), seconds, codec, audio_codec)


def _codec_name(stream) -> str | None:
    context = getattr(stream, "codec_context", None)
    name = getattr(context, "name", None) if context is not None else None
    if not name or name == "none":
        return None
    try:
        context.codec  # noqa: B018 - raises when FFmpeg has no decoder for it
    except Exception:  # noqa: BLE001 - PyAV raises several kinds here
        return None
    return name


def _frame_rate(stream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 0 < rate <= _MAX_FPS:
            return Fraction(rate).limit_denominator(1001)
    return _DEFAULT_FPS


def _duration(container, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # FFmpeg's AV_TIME_BASE
    if stream.frames:
        return stream.frames / float(_frame_rate(stream))
    return 0.0


def _first_frame(container, stream, label: str, codec: str):
    av = _av()
    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError:
        raise VideoInputError(f"The video of {label} ({codec}) could not be decoded: the file is damaged or cut "
                              "short.") from None
    return None


def read_frames(path: str | os.PathLike[str], size: tuple[int, int] | None = None, max_frames: int | None = None,
                expected: int | None = None) -> Iterator[np.ndarray]:
    """The clip's frames as RGB ``uint8`` arrays (H, W, 3), scaled to ``size`` (width, height) by FFmpeg's
    area filter when given; at most ``max_frames``. A clip damaged part-way, or ending well before the
    ``expected`` frames its header states (:attr:`VideoInfo.frames`: a file cut short, whose decoder just stops),
    raises :class:`VideoInputError`, so a caller never mistakes a cut-short clip for a complete one."""
    av = _av()
    path = Path(path)
    count = 0
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # FFmpeg's frame threads: decoding keeps pace with the network
        try:
            for frame in container.decode(stream):
                if size is not None and (frame.width, frame.height) != tuple(size):
                    yield frame.to_ndarray(width=size[0], height=size[1], format="rgb24", interpolation="AREA")
                else:
                    yield frame.to_ndarray(format="rgb24")
                count += 1
                if max_frames is not None and count >= max_frames:
                    return
        except av.FFmpegError:
            raise VideoInputError(f"{_label(path)} is damaged or cut short after frame {count}.") from None
    if expected is not None and count < expected * (1 - _FRAME_COUNT_SLACK) - 2:
        raise VideoInputError(f"{_label(path)} is cut short: its header states {expected} frames, but only {count} "
                              "could be decoded.")


def output_size(width: int, height: int, side: int) -> tuple[int, int]:
    """(width, height) with the longer side ``side`` (never enlarging), both even (H.264 in yuv420p needs it)."""
    scale = min(1.0, side / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class VideoWriter:
    """Write RGB frames as a browser-playable H.264 MP4; removed again unless :meth:`close` succeeds.

    ``quality`` is x264's CRF (18 looks lossless for stylised frames, 23 is its default); ``preset`` trades speed
    for size: ``veryfast`` keeps encoding a few ms a frame at 512 px on two cores.
    """

    def __init__(self, path: str | os.PathLike[str], size: tuple[int, int], fps: Fraction, *, quality: int = 20,
                 preset: str = "veryfast") -> None:
        av = _av()
        self.path = Path(path)
        self.frames = 0
        self.fps = Fraction(fps)
        self._container = av.open(str(self.path), mode="w", format="mp4", options={"movflags": "+faststart"})
        stream = self._container.add_stream("libx264", rate=self.fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(quality), "preset": preset}
        self._stream = stream
        self._closed = False

    def write(self, rgb: np.ndarray) -> None:
        av = _av()
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames  # in the encoder's time base, 1 / fps
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    @property
    def seconds(self) -> float:
        return self.frames / float(self.fps)

    def close(self) -> Path:
        """Flush the encoder and finish the file; returns its path."""
        if not self._closed:
            self._closed = True
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        return self.path

    def abort(self) -> None:
        """Stop and remove the file (nothing half-written stays)."""
        if not self._closed:
            self._closed = True
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - the file goes anyway
                pass
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind, *_) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def add_audio(video: str | os.PathLike[str], source: str | os.PathLike[str], destination: str | os.PathLike[str],
              seconds: float | None = None) -> bool:
    """Write ``destination``: ``video``'s H.264 track (copied) with ``source``'s first sound track, cut at
    ``seconds`` (the video's length). AAC is copied as it is; other codecs (Opus, Vorbis, MP3, PCM) are re-encoded
    as AAC, which every browser plays in MP4. Returns False, copying the video alone, when ``source`` has no sound
    or its sound cannot be read."""
    av = _av()
    video, source, destination = Path(video), Path(source), Path(destination)
    try:
        with av.open(str(source)) as audio_in:
            if not audio_in.streams.audio:
                shutil.copyfile(video, destination)
                return False
            _mux(av, video, audio_in, audio_in.streams.audio[0], destination, seconds)
        return True
    except (av.FFmpegError, OSError, ValueError) as exc:
        logger.warning("the sound of %s could not be kept (%s): the video is written without it", source.name, exc)
        shutil.copyfile(video, destination)
        return False


def _mux(av, video: Path, audio_in, audio_stream, destination: Path, seconds: float | None) -> None:
    limit = seconds if seconds is not None else float("inf")
    with av.open(str(video)) as video_in, \
            av.open(str(destination), mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        video_out = out.add_stream_from_template(video_in.streams.video[0])
        copy = audio_stream.codec_context.name == "aac"
        if copy:
            audio_out = out.add_stream_from_template(audio_stream)
        else:
            rate = audio_stream.codec_context.sample_rate or 48000
            audio_out = out.add_stream("aac", rate=rate)
            audio_out.layout = "stereo" if (audio_stream.codec_context.channels or 2) >= 2 else "mono"
            resampler = av.AudioResampler(format="fltp", layout=audio_out.layout.name, rate=rate)
        for packet in video_in.demux(video_in.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = video_out
            out.mux(packet)
        if copy:
            for packet in audio_in.demux(audio_stream):
                if packet.dts is None or packet.pts is None:
                    continue
                if float(packet.pts * packet.time_base) >= limit:
                    break
                packet.stream = audio_out
                out.mux(packet)
            return
        for frame in audio_in.decode(audio_stream):
            if frame.pts is not None and frame.time_base and float(frame.pts * frame.time_base) >= limit:
                break
            for resampled in resampler.resample(frame):
                resampled.pts = None
                for packet in audio_out.encode(resampled):
                    out.mux(packet)
        for resampled in resampler.resample(None):
            resampled.pts = None
            for packet in audio_out.encode(resampled):
                out.mux(packet)
        for packet in audio_out.encode(None):
            out.mux(packet)
