"""The Video tab: a clip through a style model (or a blend) frame by frame, with its sound, as a playable MP4;
frames done, time left and a preview frame as it goes, and Cancel keeping the frames done."""
from __future__ import annotations

from typing import Any

import gradio as gr

from perceptual_studio import settings
from perceptual_studio.imaging.video import FORMATS
from perceptual_studio.webapp.events import event, progress_callback, user_errors
from perceptual_studio.webapp.handlers import video as video_handlers
from perceptual_studio.webapp.request_context import RequestStopped, check_model_access, client_gone_check
from perceptual_studio.webapp.tabs.stylize import MAX_BLEND_MODELS

NETWORKS = {
    "stable": "Stable: trained to flicker less (the fast network where a style has no stable one yet)",
    "auto": "Fast on a CPU, paper-size on a GPU: each frame stylised alone",
    "paper": "Paper-size network (slow on a CPU)",
}
STEADY_LABEL = ("Steady: mix each frame with the last one along the motion (less flicker where the picture is still, "
                "softer strokes; new things are shown as they come)")
STEADY_BY_DEFAULT = False  # it softens the strokes (pipelines/flow_blend.py): the user's choice


def _new_job() -> str:
    return video_handlers.JOBS.new_id()


@event(gpu_seconds=300, heavy=True)
def stylize_video_event(job_id: str | None, video: str | None, model_ids: list[str] | str | None,
                        size: float = 512, strength: float = 1.0, preserve_colours: bool = False,
                        network: str = "stable", steady: bool = False, progress=gr.Progress()):
    """Yields (status, preview frame, video): the preview and status while it runs, the clip last."""
    ids = [model_ids] if isinstance(model_ids, str) else [i for i in (model_ids or []) if i]
    check_model_access(*ids)
    request = video_handlers.video_request(video, ids, size, strength, preserve_colours, network, steady=bool(steady))
    report = progress_callback(progress)
    job_id = job_id or video_handlers.JOBS.new_id()  # an API call has no page state: its own id, to stop it by
    for update in video_handlers.stylize_video_job(request, job_id, client_gone_check()):
        if update.video is not None:
            yield update.status, gr.skip(), str(update.video)
            return
        try:
            report(update.done / max(1, update.total), update.status)
        except RequestStopped:  # public mode's time limit (or the client left): keep the frames done, as Cancel does
            video_handlers.cancel_job(job_id)
        yield update.status, update.preview if update.preview is not None else gr.skip(), gr.skip()


@user_errors
def cancel_event(job_id: str | None) -> str:
    return video_handlers.cancel_job(job_id)


def video_tab() -> dict[str, Any]:
    limits = settings.video_limits()
    with gr.Tab("Video", id="video"):
        gr.Markdown(
            f"Stylise a clip ({', '.join(FORMATS)}; up to {limits.seconds:g} s) frame by frame. The result is an MP4 "
            "at the clip's frame rate, with its sound. Stable networks were trained to move their brush strokes "
            "with the picture, so the result flickers less than frames stylised one by one."
        )
        with gr.Row():
            with gr.Column(scale=4):
                video_input = gr.Video(label="Clip", sources=["upload"], elem_id="video-input")
                models_input = gr.Dropdown(label="Style model (two to four: an equal blend)", choices=[],
                                           multiselect=True, max_choices=MAX_BLEND_MODELS, allow_custom_value=True,
                                           elem_id="video-models")
                size_input = gr.Slider(64, limits.output_side, value=min(512, limits.output_side), step=16,
                                       label="Output size (longest side, px)")
                strength_input = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Style strength")
                colours_input = gr.Checkbox(label="Preserve original colours (luminance-only transfer)")
                network_input = gr.Radio([(label, value) for value, label in NETWORKS.items()], value="stable",
                                         label="Network", elem_id="video-network")
                steady_input = gr.Checkbox(value=STEADY_BY_DEFAULT, label=STEADY_LABEL, elem_id="video-steady")
                with gr.Row():
                    start_button = gr.Button("Stylize the clip", variant="primary", elem_id="video-button")
                    cancel_button = gr.Button("Cancel (keep the frames done)", variant="stop")
                cancel_info = gr.Markdown()
            with gr.Column(scale=5):
                status_output = gr.Markdown("Not started.", elem_id="video-status")
                preview_output = gr.Image(label="Latest frame", interactive=False, height=240, format="jpeg")
                video_output = gr.Video(label="Result", interactive=False, elem_id="video-output")
        job_state = gr.State(None)
    start_button.click(_new_job, None, job_state, api_visibility="private", queue=False).then(
        stylize_video_event,
        [job_state, video_input, models_input, size_input, strength_input, colours_input, network_input,
         steady_input],
        [status_output, preview_output, video_output], api_name="stylize_video", concurrency_limit=1,
        concurrency_id="video",
    )
    cancel_button.click(cancel_event, job_state, cancel_info, api_visibility="private", queue=False)
    return {"models": models_input}
