"""The Train tab: a new style model from an uploaded style image, watched as it learns, then published."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr

from perceptual_studio import settings
from perceptual_studio.webapp import handlers, samples
from perceptual_studio.webapp.components import checked_image
from perceptual_studio.webapp.events import event, on_space_with_oauth, user_errors, visitor_token
from perceptual_studio.webapp.request_context import client_gone_check, current_owner
from perceptual_studio.webapp.handlers import training as train_handlers

logger = logging.getLogger(__name__)


def _optional_number(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


@event(gpu_seconds=600, heavy=True)
def train_event(job_id: str | None, style_image: str | None, style_name: str = "", preset: str = train_handlers.DEFAULT_PRESET,
                init_model: str | None = None, iterations: float = 120, image_size: float = 128, batch_size: float = 2,
                learning_rate: float = 2e-3, width: float = 0.5, content_weight: float | None = None,
                style_weight: float | None = None, tv_weight: float | None = None, content_source: str = "",
                preview_every: float = 10, seed: float = 0, content_images: list[str] | None = None,
                progress=gr.Progress()):
    if style_image is None:
        raise ValueError("Upload a style image first (or pick an example).")
    request = train_handlers.TrainRequest(
        style=style_image, style_name=style_name or None, preset=preset, init_model=init_model or None,
        iterations=int(iterations), image_size=int(image_size), batch_size=int(batch_size),
        learning_rate=float(learning_rate), width=float(width), content_weight=_optional_number(content_weight),
        style_weight=_optional_number(style_weight), tv_weight=_optional_number(tv_weight),
        content_source=content_source or None, preview_every=int(preview_every), seed=int(seed),
        content_images=tuple(str(path) for path in (content_images or [])),
    )
    for update in handlers.train_style_job(request, job_id, current_owner(), client_gone_check()):
        if update.total and not update.done:
            losses = ", ".join(f"{name} {value:.3g}" for name, value in update.losses.items() if value)
            progress((update.step, update.total), desc=f"step {update.step}/{update.total}" +
                     (f" · {losses}" if losses else ""), unit="steps")
        yield (update.status, update.preview, update.plot if update.plot is not None else gr.skip(), update.card or gr.skip(),
               update.model_id if update.model_id else gr.skip(), update.curve)


def curve_frame(rows: list[dict] | None):
    """The live loss plot's data: one row per (step, term)."""
    import pandas as pd  # Gradio's own dependency; imported here, where the plot needs it

    return pd.DataFrame(rows or [], columns=["step", "term", "log10 loss"])


def _new_job() -> str:
    return train_handlers.new_job_id()


def cancel_event(job_id: str | None) -> str:
    return train_handlers.cancel_job(job_id)


def preset_event(preset: str):
    values = train_handlers.preset_values(preset)
    return (values.iterations, values.image_size, values.batch_size, values.learning_rate, values.width,
            values.preview_every)


@user_errors
def publish_event(model_id: str | None, repo_id: str, token: str, private: bool,
                  oauth_token: gr.OAuthToken | None = None):
    secret = (token or "").strip() or visitor_token(oauth_token)
    message = train_handlers.publish_model(model_id, repo_id, secret, bool(private), current_owner())
    return message, ""  # the token box is cleared, and never echoed


@dataclass
class _AdvancedOptions:
    """The "Advanced options" accordion: the preset's numbers, the loss weights, the content source, the seed."""

    iterations: gr.Number
    size: gr.Slider
    batch: gr.Slider
    learning_rate: gr.Number
    width: gr.Slider
    content_weight: gr.Number
    style_weight: gr.Number
    tv_weight: gr.Number
    content: gr.Textbox
    content_images: gr.File
    preview_every: gr.Number
    seed: gr.Number

    def preset_numbers(self) -> list[gr.components.Component]:
        """The boxes a preset fills in, in :func:`preset_event`'s order."""
        return [self.iterations, self.size, self.batch, self.learning_rate, self.width, self.preview_every]


@dataclass
class _TrainInputs:
    """The left column: the style, the job's options and the Train / Cancel buttons."""

    style: gr.Image
    name: gr.Textbox
    preset: gr.Radio
    init: gr.Dropdown
    advanced: _AdvancedOptions
    train_button: gr.Button
    cancel_button: gr.Button
    cancel_info: gr.Markdown


@dataclass
class _PublishControls:
    """The "Publish to the Hugging Face Hub" group."""

    model: gr.Dropdown
    repo: gr.Textbox
    token: gr.Textbox
    private: gr.Checkbox
    button: gr.Button
    info: gr.Markdown


@dataclass
class _TrainOutputs:
    """The right column: status, previews, the loss plots, the model card and publishing."""

    status: gr.Markdown
    preview: gr.Image
    curve_plot: gr.LinePlot
    plot: gr.Image
    card: gr.Markdown
    publish: _PublishControls


def _intro_text() -> str:
    head = ("Train a fast style network for your style image (Johnson et al. 2016, Sec. 4). One job runs at a "
            "time; others wait in the queue with their position shown. Content images: ")
    if settings.public_mode():  # a shared app names no server setting, and says whose the model is
        hours = settings.public_visitor_model_hours()
        return (head + "the bundled licensed photos, or photos you upload under *Advanced options*. The model is "
                f"yours alone: listed for you only, kept {hours:g} h unless you publish it to the Hub.")
    return head + ("`$PERCEPTUAL_TRAIN_CONTENT`" if settings.train_content() else
                   "crops of the shipped gallery's licensed colour photos (set `PERCEPTUAL_TRAIN_CONTENT` to a "
                   "folder or a Hub dataset id for more), or photos you upload under *Advanced options*") + "."


def _advanced_options(default: train_handlers.Preset) -> _AdvancedOptions:
    with gr.Accordion("Advanced options", open=False):
        iterations_input = gr.Number(default.iterations, label="Iterations", precision=0, minimum=1)
        size_input = gr.Slider(32, 512, value=default.image_size, step=16, label="Training image size (px)")
        batch_input = gr.Slider(1, 8, value=default.batch_size, step=1, label="Batch size")
        lr_input = gr.Number(default.learning_rate, label="Learning rate (Adam)")
        width_input = gr.Slider(0.25, 1.0, value=default.width, step=0.25,
                                label="Network width (ignored when fine-tuning)")
        content_weight_input = gr.Number(0, label="Content weight (0 = default for the loss network)")
        style_weight_input = gr.Number(0, label="Style weight (0 = default)")
        tv_weight_input = gr.Number(0, label="TV weight (0 = default)")
        content_input = gr.Textbox(label="Content images: a folder or a Hub dataset id",
                                   placeholder="empty = PERCEPTUAL_TRAIN_CONTENT or the bundled photos",
                                   visible=not settings.public_mode())  # a shared app never reads a server path
        content_files = gr.File(label="Or upload content photos (optional; they are used instead)",
                                file_count="multiple", file_types=["image"], type="filepath")
        preview_input = gr.Number(default.preview_every, label="Preview every N steps", precision=0,
                                  minimum=0)
        seed_input = gr.Number(0, label="Seed", precision=0)
    return _AdvancedOptions(iterations_input, size_input, batch_input, lr_input, width_input, content_weight_input,
                            style_weight_input, tv_weight_input, content_input, content_files, preview_input,
                            seed_input)


def _train_inputs(default: train_handlers.Preset) -> _TrainInputs:
    style_input = checked_image(label="Style image", sources=["upload", "clipboard"], elem_id="train-style")
    gr.Examples([[str(p)] for p in samples.example_styles()], inputs=[style_input],
                label="Example styles (generated)")
    name_input = gr.Textbox(label="Style name", placeholder="defaults to the file name")
    preset_input = gr.Radio([(p.label, key) for key, p in train_handlers.PRESETS.items()],
                            value=train_handlers.DEFAULT_PRESET, label="Preset")
    init_input = gr.Dropdown(label="Start from (fine-tune preset)", choices=[], allow_custom_value=True)
    advanced = _advanced_options(default)
    with gr.Row():
        train_button = gr.Button("Train", variant="primary")
        cancel_button = gr.Button("Cancel", variant="stop")
    cancel_info = gr.Markdown()
    return _TrainInputs(style_input, name_input, preset_input, init_input, advanced, train_button, cancel_button,
                        cancel_info)


def _publish_controls() -> _PublishControls:
    with gr.Group():
        gr.Markdown("**Publish to the Hugging Face Hub** (uploads the model folder with its card)")
        publish_model_input = gr.Dropdown(label="Local model", choices=[], allow_custom_value=True)
        repo_input = gr.Textbox(label="Repo id", placeholder="your-name/my-style")
        token_input = gr.Textbox(label="Hugging Face token (write access; never stored or shown)",
                                 type="password", placeholder="empty = HF_TOKEN, your login, or Sign in")
        if on_space_with_oauth():
            gr.LoginButton()
        private_input = gr.Checkbox(label="Private repo")
        publish_button = gr.Button("Publish")
        publish_info = gr.Markdown()
    return _PublishControls(publish_model_input, repo_input, token_input, private_input, publish_button,
                            publish_info)


def _train_outputs() -> _TrainOutputs:
    status_output = gr.Markdown("Not started.", elem_id="train-status")
    preview_output = gr.Image(label="Preview (fixed validation image)", format="png", interactive=False,
                              height=300)
    with gr.Row():
        curve_plot = gr.LinePlot(x="step", y="log10 loss", color="term", label="Loss (live)",
                                 x_title="step", y_title="log10 loss", elem_id="train-curve")
        # The card's loss plot (matplotlib), for API clients; the page shows the live plot above.
        plot_output = gr.Image(label="Loss", format="png", interactive=False, visible=False)
    with gr.Accordion("Model card", open=False):
        card_output = gr.Markdown()
    publish = _publish_controls()
    return _TrainOutputs(status_output, preview_output, curve_plot, plot_output, card_output, publish)


def _wire_train_events(inputs: _TrainInputs, outputs: _TrainOutputs, job_state: gr.State,
                       curve_state: gr.State):
    """Connect the tab's events; returns the ``/train_style`` event (the app refreshes its pickers after it)."""
    options, publish = inputs.advanced, outputs.publish
    numbers = options.preset_numbers()
    inputs.preset.change(preset_event, inputs.preset, numbers, api_visibility="private", queue=False)
    train = inputs.train_button.click(
        _new_job, None, job_state, api_visibility="private", queue=False,
    ).then(
        train_event,
        [job_state, inputs.style, inputs.name, inputs.preset, inputs.init, *numbers[:5], options.content_weight,
         options.style_weight, options.tv_weight, options.content, options.preview_every, options.seed,
         options.content_images],
        [outputs.status, outputs.preview, outputs.plot, outputs.card, publish.model, curve_state],
        api_name="train_style", concurrency_limit=1, concurrency_id="train",
    )
    curve_state.change(curve_frame, curve_state, outputs.curve_plot, api_visibility="private", queue=False)
    inputs.cancel_button.click(cancel_event, job_state, inputs.cancel_info, api_visibility="private", queue=False)
    publish.button.click(publish_event, [publish.model, publish.repo, publish.token, publish.private],
                         [publish.info, publish.token], api_visibility="undocumented", concurrency_limit=1)
    return train


def train_tab() -> dict[str, Any]:
    default = train_handlers.PRESETS[train_handlers.DEFAULT_PRESET]
    with gr.Tab("Train a style", id="train"):
        gr.Markdown(_intro_text())
        with gr.Row():
            with gr.Column(scale=2):
                inputs = _train_inputs(default)
            with gr.Column(scale=3):
                outputs = _train_outputs()
        job_state = gr.State(None)
        curve_state = gr.State([])  # not part of the /train_style API: it feeds the live plot only
    train = _wire_train_events(inputs, outputs, job_state, curve_state)
    return {"init": inputs.init, "publish": outputs.publish.model, "train": train}
