"""The Stylize and Compare tabs: a style model (or a blend of several) on a photo or the webcam, and the network
against the optimisation baseline."""
from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from perceptual_studio import settings
from perceptual_studio.pipelines.flow_blend import FlowGuidedBlend
from perceptual_studio.webapp import handlers, samples
from perceptual_studio.webapp.components import checked_image
from perceptual_studio.webapp.events import event, progress_callback, user_errors
from perceptual_studio.webapp.request_context import check_model_access
from perceptual_studio.webapp.handlers.common import max_side

logger = logging.getLogger(__name__)

MAX_BLEND_MODELS = 4  # one weight slider each; sliders are never hidden or re-ranged (gradio#12995 freezes the page)
NO_STYLE_MODELS = (
    "**No style model yet.** Train one in the **Train a style** tab (the starter preset with an example style "
    "image takes a few minutes on a CPU), pull one from the Hub or import the classic styles in the **Models** tab."
)


@event(gpu_seconds=60)
def stylize_event(content: str | None, model_id: str | None, output_size: float = 512,
                  preserve_colours: bool = False, strength: float = 1.0, style_scale: float = 1.0,
                  network: str = "auto"):
    if content is None:
        raise ValueError("Upload a content image first (or pick an example).")
    check_model_access(model_id)
    out = handlers.stylize(content, model_id, int(output_size), bool(preserve_colours), float(strength), float(style_scale),
                           network)
    return out.image, out.markdown()


@event(gpu_seconds=60)
def stylize_blend_event(content: str | None, model_ids: list[str] | None, weight_1: float = 0.5, weight_2: float = 0.5,
                        weight_3: float = 0.5, weight_4: float = 0.5, output_size: float = 512,
                        preserve_colours: bool = False, strength: float = 1.0, style_scale: float = 1.0):
    """Weight *n* belongs to the *n*-th model; weights past the last model are ignored (the page has four
    sliders, so ``/stylize_blend`` callers give four numbers, as the page does)."""
    if content is None:
        raise ValueError("Upload a content image first (or pick an example).")
    ids = [model_id for model_id in (model_ids or []) if model_id]
    if len(ids) > MAX_BLEND_MODELS:
        raise ValueError(f"The page blends up to {MAX_BLEND_MODELS} models; the command line "
                         "(`python -m webapp.cli stylize`) takes any number.")
    check_model_access(*ids)
    weights = [weight_1, weight_2, weight_3, weight_4][: len(ids)]
    out = handlers.stylize_blend(content, ids, weights, int(output_size), bool(preserve_colours), float(strength),
                                 float(style_scale))
    return out.image, out.markdown()


@user_errors
def blend_summary_event(model_ids: list[str] | None, *weights: float) -> str:
    return handlers.blend_summary([model_id for model_id in (model_ids or []) if model_id], weights)


@event(gpu_seconds=30)
def webcam_event(frame, model_id: str | None, size: float = 256, network: str = "auto", stable: bool = True,
                 steady: bool = False, blend: FlowGuidedBlend | None = None):
    """``stable``: the model's stable variant (less flicker), where it has one, instead of ``network``'s choice;
    ``steady``: each frame mixed with the last along the motion, by the stream's own ``blend`` (its state)."""
    check_model_access(model_id)
    if steady and blend is None:
        blend = FlowGuidedBlend()
    shown = handlers.stylize_frame(frame, model_id, int(size), "stable" if stable else network,
                                   blend if steady else None)
    return shown, (blend if steady else None)


@event(gpu_seconds=300, heavy=True)
def compare_event(content: str | None, model_id: str | None, style: str | None = None, iterations: float = 50,
                  max_side: float = 256, progress=gr.Progress()):
    if content is None:
        raise ValueError("Upload a content image first.")
    check_model_access(model_id)
    out = handlers.compare_baseline(content, model_id or None, style, int(iterations), int(max_side),
                                    progress_callback(progress))
    return out.fast_image, out.baseline_image, out.markdown()


def pick_from_gallery(ids: list[str] | None, evt: gr.SelectData):
    if not ids or evt.index is None or not 0 <= evt.index < len(ids):
        return gr.skip()
    return ids[evt.index]


def stylize_tab() -> dict[str, Any]:
    with gr.Tab("Stylize", id="stylize"):
        gr.Markdown("Pick a style model, give a photo, press **Stylize**: one pass through the style network.")
        empty_note = gr.Markdown(NO_STYLE_MODELS, visible=False)
        with gr.Row():
            with gr.Column(scale=4):
                style_gallery = gr.Gallery(label="Style models (click one)", columns=4, height=260, allow_preview=False,
                                           interactive=False, object_fit="cover", fit_columns=False)
                model_input = gr.Dropdown(label="Style model", choices=[], allow_custom_value=True)
                blend = _blend_controls()
                content_input = checked_image(label="Content image",
                                         sources=["upload", "clipboard", "webcam"], elem_id="stylize-content")
                gr.Examples([[str(p)] for p in samples.example_photos()], inputs=[content_input], label="Example photos")
            with gr.Column(scale=3):
                size_input = gr.Slider(32, max_side(), value=512, step=16, label="Output size (longest side, px)")
                scale_input = gr.Slider(0.25, 2.0, value=1.0, step=0.05, label="Style scale",
                                        info="The size the network sees, relative to the output: lower = bigger brush "
                                             "strokes, independent of the output size.")
                strength_input = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Style strength")
                colours_input = gr.Checkbox(label="Preserve original colours (luminance-only transfer)")
                network_input = gr.Radio([(label, value) for value, label in handlers.NETWORK_CHOICES.items()],
                                         value="auto", label="Network", elem_id="stylize-network",
                                         info="Fast variants give the same style with a quarter of the computation.")
                stylize_button = gr.Button("Stylize", variant="primary", elem_id="stylize-button")
                stylize_output = gr.Image(label="Result", format="png", interactive=False, elem_id="stylize-output")
                stylize_info = gr.Markdown(elem_id="stylize-info")
        with gr.Accordion("Live webcam: stream your camera through the chosen model", open=False):
            with gr.Row():
                webcam_input = gr.Image(label="Camera", sources=["webcam"], streaming=True, type="numpy")
                webcam_output = gr.Image(label="Stylised", streaming=True, interactive=False, elem_id="webcam-output")
            with gr.Row():
                webcam_size = gr.Slider(96, 512, value=256, step=32, label="Processing size (px): lower is smoother")
                webcam_stable = gr.Checkbox(value=True, label="Stable network (less flicker, where the style has one)")
                webcam_steady = gr.Checkbox(value=False, label="Steady: mix each frame with the last one along the motion "
                                                               "(less flicker, softer strokes)")
            webcam_blend = gr.State(None)  # the stream's FlowGuidedBlend: its previous frame
        ids_state = gr.State([])  # inside the tab: a component directly under gr.Tabs confuses the tab bar
    stylize_button.click(
        stylize_event, [content_input, model_input, size_input, colours_input, strength_input, scale_input,
                        network_input],
        [stylize_output, stylize_info], api_name="stylize", concurrency_limit=settings.concurrency(), concurrency_id="fast",
    )
    webcam_input.stream(
        webcam_event, [webcam_input, model_input, webcam_size, network_input, webcam_stable, webcam_steady,
                       webcam_blend], [webcam_output, webcam_blend],
        stream_every=0.1, time_limit=120,
        concurrency_limit=2, concurrency_id="webcam", api_visibility="private",
    )
    style_gallery.select(pick_from_gallery, ids_state, model_input, api_visibility="private", queue=False)
    blend_inputs = [blend["models"], *blend["weights"]]
    for control in blend_inputs:
        control.change(blend_summary_event, blend_inputs, blend["summary"], api_visibility="private", queue=False)
    blend["button"].click(
        stylize_blend_event, [content_input, *blend_inputs, size_input, colours_input, strength_input, scale_input],
        [stylize_output, stylize_info], api_name="stylize_blend", concurrency_limit=settings.concurrency(),
        concurrency_id="fast",
    )
    return {"gallery": style_gallery, "ids": ids_state, "model": model_input, "empty": empty_note,
            "blend": blend["models"]}


def _blend_controls() -> dict[str, Any]:
    """The "Blend styles" accordion: which models, a weight slider per position, the live mix, the button.

    The content image, sizes, strength and colours are Stylize's own, and the result lands in Stylize's output.
    """
    with gr.Accordion("Blend styles: mix two to four style models of one architecture", open=False):
        models_input = gr.Dropdown(label="Style models to blend", choices=[], multiselect=True,
                                   max_choices=MAX_BLEND_MODELS, allow_custom_value=True, elem_id="blend-models")
        with gr.Row():
            weights = [gr.Slider(0.0, 1.0, value=0.5, step=0.05, label=f"Weight {n}", info=f"model {n} in the list",
                                 min_width=120, elem_id=f"blend-weight-{n}") for n in range(1, MAX_BLEND_MODELS + 1)]
        summary = gr.Markdown(handlers.blend_summary([], []), elem_id="blend-summary")
        button = gr.Button("Stylize with the blend", elem_id="blend-button")
    return {"models": models_input, "weights": weights, "summary": summary, "button": button}


def compare_tab() -> dict[str, Any]:
    with gr.Tab("Compare with the baseline", id="compare"):
        gr.Markdown(
            "The same content image and style through the fast network (one pass) and the optimisation baseline "
            "(L-BFGS on the image itself, Gatys et al.), scored with the same perceptual objective."
        )
        with gr.Row():
            content_input = checked_image(label="Content image", sources=["upload", "clipboard"])
            style_input = checked_image(label="Style image (optional: defaults to the model's own)",
                                   sources=["upload", "clipboard"])
        gr.Examples([[str(p)] for p in samples.example_photos()], inputs=[content_input], label="Example photos")
        with gr.Row():
            model_input = gr.Dropdown(label="Style model", choices=[("(none: baseline only)", "")], value=None,
                                      allow_custom_value=True)
            iterations_input = gr.Slider(1, 500, value=50, step=1, label="L-BFGS iterations")
            size_input = gr.Slider(32, 1024, value=256, step=16, label="Longest side (px)")
        compare_button = gr.Button("Compare", variant="primary")
        with gr.Row():
            fast_output = gr.Image(label="Fast network", format="png", interactive=False)
            baseline_output = gr.Image(label="Optimisation baseline", format="png", interactive=False)
        compare_info = gr.Markdown()
    compare_button.click(
        compare_event, [content_input, model_input, style_input, iterations_input, size_input],
        [fast_output, baseline_output, compare_info], api_name="compare_baseline", concurrency_limit=1,
        concurrency_id="slow",
    )
    return {"model": model_input}
