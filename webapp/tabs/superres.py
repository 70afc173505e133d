"""The Super-resolution tab: bicubic, the pixel-loss and the feature-loss networks side by side."""
from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from perceptual_studio.webapp import handlers, samples
from perceptual_studio.webapp.components import checked_image
from perceptual_studio.webapp.events import event, progress_callback, user_errors
from perceptual_studio.webapp.request_context import current_owner
from perceptual_studio.webapp.handlers import models as models_handlers
from perceptual_studio.webapp.handlers import superres as sr_handlers
from perceptual_studio.webapp.tabs.models import LOAD_MAX_AGE_S

logger = logging.getLogger(__name__)


def _sr_views(images: dict, left: str, right: str, crop_x: float, crop_y: float):
    pair = sr_handlers.slider_images(images, left, right)
    crop = sr_handlers.zoom_crop(images, crop_x, crop_y)
    gallery = [(image, name) for name, image in images.items()]
    return pair, gallery, crop


@event(gpu_seconds=120, heavy=True)
def super_resolve_event(image: str | None, mode: str = "original", scale: str = "x4", pixel_model: str | None = None,
                        feature_model: str | None = None, blend: float = 0.5, slider_left: str = "bicubic",
                        slider_right: str = "feature loss", crop_x: float = 0.5, crop_y: float = 0.5,
                        match_histogram: bool = False, progress=gr.Progress()):
    if image is None:
        raise ValueError("Upload an image first (or pick an example).")
    out = handlers.super_resolve(image, mode, scale, pixel_model or None, feature_model or None, float(blend),
                                 progress_callback(progress), histogram_match=bool(match_histogram))
    pair, gallery, crop = _sr_views(out.images, slider_left, slider_right, crop_x, crop_y)
    return pair, gallery, crop, out.markdown(), out.images


@user_errors
def sr_views_event(images: dict | None, left: str, right: str, crop_x: float, crop_y: float):
    if not images:
        return gr.skip(), gr.skip(), gr.skip()
    return _sr_views(images, left, right, crop_x, crop_y)


@user_errors
def sr_scale_event(scale: str):
    listing = handlers.current_listing(LOAD_MAX_AGE_S, owner=current_owner())
    sr_ids, pixel_default, feature_default = models_handlers.sr_choices(listing, int(str(scale).lstrip("x")))
    return (gr.update(choices=[("(none)", "")] + sr_ids, value=pixel_default or ""),
            gr.update(choices=[("(none)", "")] + sr_ids, value=feature_default or ""))


def superres_tab() -> dict[str, Any]:
    methods = list(sr_handlers.METHODS)
    with gr.Tab("Super-resolution", id="superres"):
        gr.Markdown(
            "x4 / x8 super-resolution: bicubic, the pixel-loss network and the feature-loss network (the paper's), "
            "with PSNR/SSIM when you have the original. Large images run in overlapping tiles."
        )
        with gr.Row():
            with gr.Column(scale=2):
                image_input = checked_image(label="Image", sources=["upload", "clipboard"],
                                       elem_id="sr-input")
                gr.Examples([[str(p)] for p in samples.sr_example_photos()], inputs=[image_input],
                            label="Example photos (held out: no model here was trained on them)")
                mode_input = gr.Radio([(label, key) for key, label in sr_handlers.MODES.items()], value="original",
                                      label="What is this image?")
                scale_input = gr.Radio(["x4", "x8"], value="x4", label="Upscaling factor")
                with gr.Row():
                    pixel_input = gr.Dropdown(label="Pixel-loss model", choices=[("(none)", "")], value="",
                                              allow_custom_value=True)
                    feature_input = gr.Dropdown(label="Feature-loss model", choices=[("(none)", "")], value="",
                                                allow_custom_value=True)
                blend_input = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Perception-distortion blend",
                                        info="Network interpolation: 0 = pixel-loss model (higher PSNR), "
                                             "1 = feature-loss model (sharper).")
                match_input = gr.Checkbox(False, label="Histogram-match the networks' outputs to the input (as the paper)",
                                          info="Each colour channel takes the low-resolution input's distribution; "
                                               "the table then also shows the PSNR before matching.")
                sr_button = gr.Button("Upscale", variant="primary", elem_id="sr-button")
            with gr.Column(scale=3):
                slider_output = gr.ImageSlider(label="Compare (drag the handle)", format="png", interactive=False,
                                               elem_id="sr-slider")
                with gr.Row():
                    left_input = gr.Dropdown(methods, value="bicubic", label="Slider left")
                    right_input = gr.Dropdown(methods, value="feature loss", label="Slider right")
                zoom_output = gr.Image(label="Zoomed crop (nearest-neighbour)", format="png", interactive=False)
                with gr.Row():
                    crop_x = gr.Slider(0.0, 1.0, value=0.5, step=0.01, label="Crop centre x")
                    crop_y = gr.Slider(0.0, 1.0, value=0.5, step=0.01, label="Crop centre y")
                sr_info = gr.Markdown(elem_id="sr-info")
                gallery_output = gr.Gallery(label="All results", columns=4, format="png", height=240)
        images_state = gr.State(None, time_to_live=1800)
    sr_button.click(
        super_resolve_event,
        [image_input, mode_input, scale_input, pixel_input, feature_input, blend_input, left_input, right_input,
         crop_x, crop_y, match_input],
        [slider_output, gallery_output, zoom_output, sr_info, images_state],
        # Its own pool: an x8 result of a large photo takes a core for many seconds; stylizes must not wait on it.
        api_name="super_resolve", concurrency_limit=1, concurrency_id="sr",
    )
    for control in (left_input, right_input, crop_x, crop_y):
        control.change(sr_views_event, [images_state, left_input, right_input, crop_x, crop_y],
                       [slider_output, gallery_output, zoom_output], api_visibility="private", show_progress="hidden")
    scale_input.change(sr_scale_event, scale_input, [pixel_input, feature_input], api_visibility="private")
    return {"scale": scale_input, "pixel": pixel_input, "feature": feature_input}
