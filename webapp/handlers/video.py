"""The Video journey: :func:`pipelines.video.stylize_video` behind the Video tab, ``/stylize_video`` and
``perceptual-batch video``, with the page's words around it.

The clip is stylised in a worker thread (``webapp.jobs.run_in_background``); :func:`stylize_video_job` streams
:class:`VideoUpdate`s (frames done, time left, a preview frame now and then) and ends with the finished MP4.
Cancelling sets the job's stop flag: the frames done so far are kept as a shorter clip, with its sound. Finished
clips are written to the system's temporary folder (Gradio copies each into its own cache) and removed an hour
later.
"""
from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from perceptual_studio import settings
from perceptual_studio.pipelines.style import StylePipeline
from perceptual_studio.pipelines.flow_blend import DEFAULT_STEADY
from perceptual_studio.pipelines.video import VideoResult, stylize_video

from ..jobs import Finished, JobBoard, run_in_background
from .style import MAX_BLEND_PARTS, blended_network
from .common import identity_note

logger = logging.getLogger(__name__)

JOBS = JobBoard()
PREVIEW_EVERY = 12  # frames between two preview frames on the page (half a second of a 24 fps clip)
KEEP_OUTPUTS_S = 3600.0


@dataclass(frozen=True)
class VideoRequest:
    """What the Video tab (or ``/stylize_video``) asks for."""

    video: str
    model_ids: tuple[str, ...]  # one model, or two to four blended with ``weights``
    weights: tuple[float, ...] = ()
    size: int = 512
    strength: float = 1.0
    preserve_colours: bool = False
    network: str = "stable"  # the model's stable variant where it has one (pipelines.style.choose_network)
    steady: float = 0.0  # pipelines.flow_blend: the previous result's share along the motion; 0: off


@dataclass(frozen=True)
class VideoUpdate:
    """One step of a video job as the page shows it."""

    done: int
    total: int
    status: str  # Markdown
    preview: np.ndarray | None = None
    video: Path | None = None  # the finished (or stopped) clip


def pipeline_for(request: VideoRequest) -> StylePipeline:
    """The style pipeline of a request: one model (through ``choose_network``) or a blend."""
    ids = tuple(str(model_id).strip() for model_id in request.model_ids if str(model_id or "").strip())
    if not ids:
        raise ValueError("Choose a style model first (none is selected).")
    if len(ids) == 1:
        return StylePipeline.from_pretrained(ids[0], device=settings.device(), network=request.network)
    if len(ids) > MAX_BLEND_PARTS:
        raise ValueError(f"A blend mixes at most {MAX_BLEND_PARTS} style models, got {len(ids)}.")
    return blended_network(ids, request.weights or (1.0,) * len(ids))


def stylize_video_job(request: VideoRequest, job_id: str | None = None,
                      abandoned: Callable[[], bool] | None = None) -> Iterator[VideoUpdate]:
    """Stylise ``request.video``; yields progress and, last, the clip (also after a Cancel: the frames done)."""
    if not request.video:
        raise ValueError("Upload a video clip first (MP4, WebM, MOV, AVI or an animated GIF).")
    pipe = pipeline_for(request)  # a wrong model id fails here, before the clip is read
    stop = JOBS.stop_flag(job_id)
    destination = _output_folder() / f"{Path(request.video).stem[:60] or 'video'}-{JOBS.new_id()[:8]}.mp4"
    started = time.perf_counter()

    def work(report, stop_flag) -> VideoResult:
        def progress(done: int, total: int, frame: np.ndarray | None) -> None:
            report((done, total, frame))

        def should_stop() -> bool:
            return stop_flag.is_set() or (abandoned is not None and abandoned())

        return stylize_video(pipe, request.video, destination, size=request.size, strength=request.strength,
                             preserve_colours=request.preserve_colours, progress=progress, should_stop=should_stop,
                             steady=request.steady,
                             preview_every=PREVIEW_EVERY)

    try:
        for batch in run_in_background(work, stop, name="stylize-video"):
            if isinstance(batch, Finished):
                if batch.error is not None:
                    raise batch.error
                yield _finished(batch.result, pipe)
                return
            done, total, _ = batch[-1]
            preview = next((frame for _, _, frame in reversed(batch) if frame is not None), None)
            yield VideoUpdate(done, total, _progress_text(done, total, time.perf_counter() - started), preview)
    finally:
        JOBS.forget(job_id)


def cancel_job(job_id: str | None) -> str:
    if not job_id:
        return "Nothing to cancel."
    JOBS.cancel(job_id)
    return "Stopping after the current frame: the frames done so far will be kept."


def _progress_text(done: int, total: int, elapsed: float) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    left = (total - done) / rate if rate > 0 else None
    eta = f", about {_seconds(left)} left" if left is not None and done < total else ""
    return f"Frame {done} of {total} ({rate:.1f} frames/s{eta})."


def _seconds(value: float) -> str:
    value = max(0.0, value)
    return f"{value:.0f} s" if value < 90 else f"{value / 60:.1f} min"


def _finished(result: VideoResult, pipe: StylePipeline) -> VideoUpdate:
    width, height = result.size
    sound = "with its sound" if result.has_audio else ("without sound (the clip's could not be read)"
                                                        if result.source.has_audio else "(the clip has no sound)")
    head = (f"Stopped: the first **{result.frames} of {result.source.frames} frames** are kept"
            if result.stopped else f"**{result.frames} frames**")
    models = ", ".join(f"`{part.model_id}`" + (f" {part.weight:.0%}" if len(pipe.parts) > 1 else "")
                       for part in pipe.parts)
    text = (f"{head}, {width} x {height} px at {float(result.fps):.3g} frames/s ({result.duration:.1f} s), "
            f"{sound}.  \n"
            f"{result.seconds:.1f} s in all ({result.frames_per_second:.1f} frames/s: decoding, the network and "
            f"encoding); the network {1000 * result.network_seconds / max(1, result.frames):.0f} ms a frame on "
            f"`{pipe.device}` ({result.plan})"
            + (f"; each frame mixed {result.steady:.0%} with the last along the motion" if result.steady else "")
            + ".  \n"
            f"Model {models}, {identity_note(pipe.parts[0].loss_network)}."
            + (f"  \n{pipe.note}" if pipe.note else ""))
    return VideoUpdate(result.frames, result.source.frames, text, None, result.path)


def _output_folder() -> Path:
    # In the system's temporary folder: Gradio serves a result only from there or its working directory, never
    # from the data folder (which also holds the models and runs, and must stay out of its allowed paths).
    folder = Path(tempfile.gettempdir()) / "perceptual-studio-videos"
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in folder.glob("*.mp4"):  # Gradio has its own copy of each: these only wait to be swept
        try:
            if now - old.stat().st_mtime > KEEP_OUTPUTS_S:
                old.unlink()
        except OSError:
            pass
    return folder


def run_video(request: VideoRequest) -> VideoUpdate:
    """The whole job at once (``/stylize_video`` callers that want only the clip, the batch CLI): the last
    update."""
    last = None
    for last in stylize_video_job(request):
        pass
    if last is None or last.video is None:  # stylize_video_job always ends with the clip or raises
        raise RuntimeError("the video job ended without a clip")
    return last


def video_request(video: str | None, model_ids: Sequence[str] | str | None, size: float = 512,
                  strength: float = 1.0, preserve_colours: bool = False, network: str = "stable",
                  weights: Sequence[float] = (), steady: bool | float = False) -> VideoRequest:
    """A :class:`VideoRequest` from the page's plain values (one id or a list of ids; ``steady`` a switch, True
    for :data:`~pipelines.flow_blend.DEFAULT_STEADY`, or the share itself)."""
    ids = (model_ids,) if isinstance(model_ids, str) else tuple(model_ids or ())
    share = DEFAULT_STEADY if steady is True else float(steady or 0.0)
    return VideoRequest(video or "", ids, tuple(float(w) for w in weights), int(size), float(strength),
                        bool(preserve_colours), str(network or "stable"), share)
