"""The Gradio interface: one function per tab, components and events only; the work is in :mod:`webapp.handlers`.

Every event function goes through :func:`user_errors`, so any failure reaches the browser (or a
``gradio_client`` script) as ``gr.Error`` with a readable message, never a trace, and the app keeps serving.
GPU-heavy events are wrapped in :func:`webapp.gpu.gpu` (ZeroGPU on a Space, a no-op elsewhere) and share
concurrency pools: ``fast`` (stylize, super-resolution), ``webcam`` (live streams), ``slow`` (the
optimisation baseline, the Explain views) and ``train`` (one training job at a time; the queue shows each
waiting user their position).

Nothing heavy runs at import or build time: models load on the first request that needs them and are cached
by the registry; the loss network resolves when the page first loads (for the banner).
"""
from __future__ import annotations

import functools
import inspect
import logging
import os
from typing import Any, Callable

import gradio as gr

import settings
from webapp import handlers, samples
from webapp.errors import user_message
from webapp.gpu import gpu
from webapp.handlers import models as models_handlers
from webapp.handlers import superres as sr_handlers
from webapp.handlers import training as train_handlers
from webapp.handlers.common import max_side

logger = logging.getLogger(__name__)

TITLE = "Perceptual Studio"
INTRO = (
    "Real-time style transfer and super-resolution with perceptual losses "
    "(Johnson, Alahi & Fei-Fei, ECCV 2016), next to the slow optimisation-based baseline they replace "
    "(Gatys et al. 2016)."
)
NO_STYLE_MODELS = (
    "**No style model yet.** Train one in the **Train a style** tab (the starter preset with an example style "
    "image takes a few minutes on a CPU), or pull one from the Hub in the **Models** tab."
)
QUEUE_SIZE_ENV = "PERCEPTUAL_QUEUE_SIZE"
CONCURRENCY_ENV = "PERCEPTUAL_CONCURRENCY"


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, "") or default))
    except ValueError:
        return default


def fast_concurrency() -> int:
    """How many stylize / super-resolution requests run at once (``PERCEPTUAL_CONCURRENCY``, default 2)."""
    return _env_int(CONCURRENCY_ENV, 2)


def user_errors(fn: Callable) -> Callable:
    """Re-raise every failure of ``fn`` (a function or a generator function) as ``gr.Error(user_message)``."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_wrapper(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a readable message
                raise gr.Error(user_message(exc)) from None

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a readable message
            raise gr.Error(user_message(exc)) from None

    return wrapper


def event(gpu_seconds: int | None = None) -> Callable[[Callable], Callable]:
    """``user_errors``, plus ZeroGPU for ``gpu_seconds`` when the event runs networks."""
    def decorate(fn: Callable) -> Callable:
        inner = gpu(duration=gpu_seconds)(fn) if gpu_seconds else fn
        return user_errors(inner)

    return decorate


def _progress_fn(progress: gr.Progress) -> Callable[[float, str], None]:
    return lambda fraction, text: progress(fraction, desc=text)


# ------------------------------------------------------------------------------------------ event functions


@event(gpu_seconds=60)
def stylize_event(content: str | None, model_id: str | None, output_size: float = 512,
                  preserve_colours: bool = False, strength: float = 1.0, style_scale: float = 1.0):
    if content is None:
        raise ValueError("Upload a content image first (or pick an example).")
    out = handlers.stylize(content, model_id, int(output_size), bool(preserve_colours), float(strength), float(style_scale))
    return out.image, out.markdown()


@event(gpu_seconds=30)
def webcam_event(frame, model_id: str | None, size: float = 256):
    return handlers.stylize_frame(frame, model_id, int(size))


@event(gpu_seconds=300)
def compare_event(content: str | None, model_id: str | None, style: str | None = None, iterations: float = 50,
                  max_side: float = 256, progress=gr.Progress()):
    if content is None:
        raise ValueError("Upload a content image first.")
    out = handlers.compare_baseline(content, model_id or None, style, int(iterations), int(max_side),
                                    _progress_fn(progress))
    return out.fast_image, out.baseline_image, out.markdown()


def _sr_views(images: dict, left: str, right: str, crop_x: float, crop_y: float):
    pair = sr_handlers.slider_images(images, left, right)
    crop = sr_handlers.zoom_crop(images, crop_x, crop_y)
    gallery = [(image, name) for name, image in images.items()]
    return pair, gallery, crop


@event(gpu_seconds=120)
def super_resolve_event(image: str | None, mode: str = "original", scale: str = "x4", pixel_model: str | None = None,
                        feature_model: str | None = None, blend: float = 0.5, slider_left: str = "bicubic",
                        slider_right: str = "feature loss", crop_x: float = 0.5, crop_y: float = 0.5,
                        progress=gr.Progress()):
    if image is None:
        raise ValueError("Upload an image first (or pick an example).")
    out = handlers.super_resolve(image, mode, scale, pixel_model or None, feature_model or None, float(blend),
                                 _progress_fn(progress))
    pair, gallery, crop = _sr_views(out.images, slider_left, slider_right, crop_x, crop_y)
    return pair, gallery, crop, out.markdown(), out.images


@user_errors
def sr_views_event(images: dict | None, left: str, right: str, crop_x: float, crop_y: float):
    if not images:
        return gr.skip(), gr.skip(), gr.skip()
    return _sr_views(images, left, right, crop_x, crop_y)


def _optional_number(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


@event(gpu_seconds=600)
def train_event(job_id: str | None, style_image: str | None, style_name: str = "", preset: str = train_handlers.DEFAULT_PRESET,
                init_model: str | None = None, iterations: float = 120, image_size: float = 128, batch_size: float = 2,
                learning_rate: float = 2e-3, width: float = 0.5, content_weight: float | None = None,
                style_weight: float | None = None, tv_weight: float | None = None, content_source: str = "",
                preview_every: float = 10, seed: float = 0, progress=gr.Progress()):
    if style_image is None:
        raise ValueError("Upload a style image first (or pick an example).")
    request = train_handlers.TrainRequest(
        style=style_image, style_name=style_name or None, preset=preset, init_model=init_model or None,
        iterations=int(iterations), image_size=int(image_size), batch_size=int(batch_size),
        learning_rate=float(learning_rate), width=float(width), content_weight=_optional_number(content_weight),
        style_weight=_optional_number(style_weight), tv_weight=_optional_number(tv_weight),
        content_source=content_source or None, preview_every=int(preview_every), seed=int(seed),
    )
    for update in handlers.train_style_job(request, job_id):
        if update.total and not update.done:
            losses = ", ".join(f"{name} {value:.3g}" for name, value in update.losses.items() if value)
            progress((update.step, update.total), desc=f"step {update.step}/{update.total}" +
                     (f" · {losses}" if losses else ""), unit="steps")
        yield (update.status, update.preview, update.plot, update.card or gr.skip(),
               update.model_id if update.model_id else gr.skip())


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
    secret = (token or "").strip() or (oauth_token.token if oauth_token is not None else None)
    message = train_handlers.publish_model(model_id, repo_id, secret, bool(private))
    return message, ""  # the token box is cleared, and never echoed


LOAD_MAX_AGE_S = 10.0  # the events of one page load (and of one chain) share a listing this fresh


def _listing_outputs(listing) -> tuple:
    return models_handlers.table_rows(listing), models_handlers.records(listing), models_handlers.notices_markdown(listing)


@user_errors
def list_models_event():
    return _listing_outputs(handlers.current_listing())


@user_errors
def list_models_recent():
    return _listing_outputs(handlers.current_listing(LOAD_MAX_AGE_S))


@user_errors
def card_choices_event(current: str | None):
    ids = [e.id for e in handlers.current_listing(LOAD_MAX_AGE_S).entries]
    return gr.update(choices=ids, value=current if current in ids else (ids[0] if ids else None))


@user_errors
def model_card_event(model_id: str | None):
    return handlers.model_card(model_id)


@user_errors
def pull_event(repo_id: str):
    return handlers.pull_model(repo_id)


# ------------------------------------------------------------------------------------------ model pickers


def _keep(current: str | None, choices: list[str]) -> str | None:
    return current if current in choices else (choices[0] if choices else None)


def _style_dropdown_choices(listing) -> list[tuple[str, str]]:
    return [(f"{e.label} · {e.id}", e.id) for e in listing.usable("style-transfer")]


def _pickers(listing, scale: str, style_pick: str | None, compare_pick: str | None, pixel_pick: str | None,
             feature_pick: str | None, init_pick: str | None, publish_pick: str | None) -> tuple:
    """Every model picker updated from ``listing``, keeping each user's selection when it still exists."""
    style_choices = _style_dropdown_choices(listing)
    style_ids = [value for _, value in style_choices]
    gallery = models_handlers.style_gallery(listing)
    sr_ids, pixel_default, feature_default = models_handlers.sr_choices(listing, int(str(scale).lstrip("x")))
    local_ids = [e.id for e in listing.entries if e.source == "local" and e.task == "style-transfer" and e.error is None]
    return (
        gallery,
        style_ids,
        gr.update(choices=style_choices, value=_keep(style_pick, style_ids)),
        gr.update(value=NO_STYLE_MODELS, visible=not style_ids),
        gr.update(choices=[("(none: baseline only)", "")] + style_choices,
                  value=compare_pick if compare_pick in style_ids or compare_pick == "" else _keep(None, style_ids)),
        gr.update(choices=[("(none)", "")] + sr_ids, value=pixel_pick if pixel_pick in sr_ids else (pixel_default or "")),
        gr.update(choices=[("(none)", "")] + sr_ids,
                  value=feature_pick if feature_pick in sr_ids else (feature_default or "")),
        gr.update(choices=style_choices, value=_keep(init_pick, style_ids)),
        gr.update(choices=local_ids, value=_keep(publish_pick, local_ids)),
    )


@user_errors
def refresh_pickers(*picks):
    """On page load: the listing of this page load."""
    return _pickers(handlers.current_listing(LOAD_MAX_AGE_S), *picks)


@user_errors
def refresh_pickers_fresh(*picks):
    """After training, a pull or Refresh: re-read the registry."""
    return _pickers(handlers.current_listing(), *picks)


@user_errors
def sr_scale_event(scale: str):
    listing = handlers.current_listing(LOAD_MAX_AGE_S)
    sr_ids, pixel_default, feature_default = models_handlers.sr_choices(listing, int(str(scale).lstrip("x")))
    return (gr.update(choices=[("(none)", "")] + sr_ids, value=pixel_default or ""),
            gr.update(choices=[("(none)", "")] + sr_ids, value=feature_default or ""))


def pick_from_gallery(ids: list[str] | None, evt: gr.SelectData):
    if not ids or evt.index is None or not 0 <= evt.index < len(ids):
        return gr.skip()
    return ids[evt.index]


# ------------------------------------------------------------------------------------------ tabs


def stylize_tab() -> dict[str, Any]:
    with gr.Tab("Stylize", id="stylize"):
        gr.Markdown("Pick a style model, give a photo, press **Stylize**: one pass through the style network.")
        empty_note = gr.Markdown(NO_STYLE_MODELS, visible=False)
        with gr.Row():
            with gr.Column(scale=4):
                style_gallery = gr.Gallery(label="Style models (click one)", columns=4, height=260, allow_preview=False,
                                           interactive=False, object_fit="cover", fit_columns=False)
                model_input = gr.Dropdown(label="Style model", choices=[], allow_custom_value=True)
                content_input = gr.Image(label="Content image", type="filepath",
                                         sources=["upload", "clipboard", "webcam"], elem_id="stylize-content")
                gr.Examples([[str(p)] for p in samples.example_photos()], inputs=[content_input], label="Example photos")
            with gr.Column(scale=3):
                size_input = gr.Slider(32, max_side(), value=512, step=16, label="Output size (longest side, px)")
                scale_input = gr.Slider(0.25, 2.0, value=1.0, step=0.05, label="Style scale",
                                        info="The size the network sees, relative to the output: lower = bigger brush "
                                             "strokes, independent of the output size.")
                strength_input = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="Style strength")
                colours_input = gr.Checkbox(label="Preserve original colours (luminance-only transfer)")
                stylize_button = gr.Button("Stylize", variant="primary", elem_id="stylize-button")
                stylize_output = gr.Image(label="Result", format="png", interactive=False, elem_id="stylize-output")
                stylize_info = gr.Markdown(elem_id="stylize-info")
        with gr.Accordion("Live webcam: stream your camera through the chosen model", open=False):
            with gr.Row():
                webcam_input = gr.Image(label="Camera", sources=["webcam"], streaming=True, type="numpy")
                webcam_output = gr.Image(label="Stylised", streaming=True, interactive=False, elem_id="webcam-output")
            webcam_size = gr.Slider(96, 512, value=256, step=32, label="Processing size (px): lower is smoother")
        ids_state = gr.State([])  # inside the tab: a component directly under gr.Tabs confuses the tab bar
    stylize_button.click(
        stylize_event, [content_input, model_input, size_input, colours_input, strength_input, scale_input],
        [stylize_output, stylize_info], api_name="stylize", concurrency_limit=fast_concurrency(), concurrency_id="fast",
    )
    webcam_input.stream(
        webcam_event, [webcam_input, model_input, webcam_size], webcam_output, stream_every=0.1, time_limit=120,
        concurrency_limit=2, concurrency_id="webcam", api_visibility="private",
    )
    style_gallery.select(pick_from_gallery, ids_state, model_input, api_visibility="private", queue=False)
    return {"gallery": style_gallery, "ids": ids_state, "model": model_input, "empty": empty_note}


def compare_tab() -> dict[str, Any]:
    with gr.Tab("Compare with the baseline", id="compare"):
        gr.Markdown(
            "The same content image and style through the fast network (one pass) and the optimisation baseline "
            "(L-BFGS on the image itself, Gatys et al.), scored with the same perceptual objective."
        )
        with gr.Row():
            content_input = gr.Image(label="Content image", type="filepath", sources=["upload", "clipboard"])
            style_input = gr.Image(label="Style image (optional: defaults to the model's own)", type="filepath",
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


def superres_tab() -> dict[str, Any]:
    methods = list(sr_handlers.METHODS)
    with gr.Tab("Super-resolution", id="superres"):
        gr.Markdown(
            "x4 / x8 super-resolution: bicubic, the pixel-loss network and the feature-loss network (the paper's), "
            "with PSNR/SSIM when you have the original. Large images run in overlapping tiles."
        )
        with gr.Row():
            with gr.Column(scale=2):
                image_input = gr.Image(label="Image", type="filepath", sources=["upload", "clipboard"],
                                       elem_id="sr-input")
                gr.Examples([[str(p)] for p in samples.example_photos()], inputs=[image_input], label="Example photos")
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
         crop_x, crop_y],
        [slider_output, gallery_output, zoom_output, sr_info, images_state],
        api_name="super_resolve", concurrency_limit=fast_concurrency(), concurrency_id="fast",
    )
    for control in (left_input, right_input, crop_x, crop_y):
        control.change(sr_views_event, [images_state, left_input, right_input, crop_x, crop_y],
                       [slider_output, gallery_output, zoom_output], api_visibility="private", show_progress="hidden")
    scale_input.change(sr_scale_event, scale_input, [pixel_input, feature_input], api_visibility="private")
    return {"scale": scale_input, "pixel": pixel_input, "feature": feature_input}


def _on_space_with_oauth() -> bool:
    return bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))


def train_tab() -> dict[str, Any]:
    default = train_handlers.PRESETS[train_handlers.DEFAULT_PRESET]
    with gr.Tab("Train a style", id="train"):
        gr.Markdown(
            "Train a fast style network for your style image (Johnson et al. 2016, Sec. 4). One job runs at a "
            "time; others wait in the queue with their position shown. Content images: "
            + ("`$PERCEPTUAL_TRAIN_CONTENT`" if os.environ.get(samples.TRAIN_CONTENT_ENV) else
               "a small bundled set of public-domain photos (set `PERCEPTUAL_TRAIN_CONTENT` to a folder or a Hub "
               "dataset id for more)") + "."
        )
        with gr.Row():
            with gr.Column(scale=2):
                style_input = gr.Image(label="Style image", type="filepath", sources=["upload", "clipboard"])
                gr.Examples([[str(p)] for p in samples.example_styles()], inputs=[style_input],
                            label="Example styles (generated)")
                name_input = gr.Textbox(label="Style name", placeholder="defaults to the file name")
                preset_input = gr.Radio([(p.label, key) for key, p in train_handlers.PRESETS.items()],
                                        value=train_handlers.DEFAULT_PRESET, label="Preset")
                init_input = gr.Dropdown(label="Start from (fine-tune preset)", choices=[], allow_custom_value=True)
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
                                               placeholder="empty = PERCEPTUAL_TRAIN_CONTENT or the bundled photos")
                    preview_input = gr.Number(default.preview_every, label="Preview every N steps", precision=0,
                                              minimum=0)
                    seed_input = gr.Number(0, label="Seed", precision=0)
                with gr.Row():
                    train_button = gr.Button("Train", variant="primary")
                    cancel_button = gr.Button("Cancel", variant="stop")
                cancel_info = gr.Markdown()
            with gr.Column(scale=3):
                status_output = gr.Markdown("Not started.")
                with gr.Row():
                    preview_output = gr.Image(label="Preview (fixed validation image)", format="png", interactive=False)
                    plot_output = gr.Image(label="Loss", format="png", interactive=False)
                with gr.Accordion("Model card", open=False):
                    card_output = gr.Markdown()
                with gr.Group():
                    gr.Markdown("**Publish to the Hugging Face Hub** (uploads the model folder with its card)")
                    publish_model_input = gr.Dropdown(label="Local model", choices=[], allow_custom_value=True)
                    repo_input = gr.Textbox(label="Repo id", placeholder="your-name/my-style")
                    token_input = gr.Textbox(label="Hugging Face token (write access; never stored or shown)",
                                             type="password", placeholder="empty = HF_TOKEN, your login, or Sign in")
                    if _on_space_with_oauth():
                        gr.LoginButton()
                    private_input = gr.Checkbox(label="Private repo")
                    publish_button = gr.Button("Publish")
                    publish_info = gr.Markdown()
        job_state = gr.State(None)
    numbers = [iterations_input, size_input, batch_input, lr_input, width_input, preview_input]
    preset_input.change(preset_event, preset_input, numbers, api_visibility="private", queue=False)
    train = train_button.click(
        _new_job, None, job_state, api_visibility="private", queue=False,
    ).then(
        train_event,
        [job_state, style_input, name_input, preset_input, init_input, *numbers[:5], content_weight_input,
         style_weight_input, tv_weight_input, content_input, preview_input, seed_input],
        [status_output, preview_output, plot_output, card_output, publish_model_input],
        api_name="train_style", concurrency_limit=1, concurrency_id="train",
    )
    cancel_button.click(cancel_event, job_state, cancel_info, api_visibility="private", queue=False)
    publish_button.click(publish_event, [publish_model_input, repo_input, token_input, private_input],
                         [publish_info, token_input], api_visibility="undocumented", concurrency_limit=1)
    return {"init": init_input, "publish": publish_model_input, "train": train}


def models_tab() -> dict[str, Any]:
    with gr.Tab("Models", id="models"):
        gr.Markdown("Every model the registry sees: the local models folder, the Hub (when reachable) and the HF cache.")
        refresh_button = gr.Button("Refresh")
        notices_output = gr.Markdown()
        table_output = gr.Dataframe(headers=models_handlers.TABLE_HEADERS, interactive=False, wrap=True)
        with gr.Accordion("As JSON", open=False):
            json_output = gr.JSON()
        with gr.Row():
            with gr.Column(scale=3):
                card_input = gr.Dropdown(label="Model card", choices=[], allow_custom_value=True)
                card_output = gr.Markdown()
            card_thumb = gr.Image(label="Thumbnail", interactive=False, scale=1)
        with gr.Row():
            pull_input = gr.Textbox(label="Pull from the Hub by repo id", placeholder="owner/name")
            pull_button = gr.Button("Pull")
        pull_info = gr.Markdown()
    listing_outputs = [table_output, json_output, notices_output]
    refresh = refresh_button.click(list_models_event, None, listing_outputs, api_name="list_models",
                                   concurrency_limit=None)
    card_input.change(model_card_event, card_input, [card_output, card_thumb], api_visibility="private")
    pull = pull_button.click(pull_event, pull_input, pull_info, api_name="pull_model", concurrency_limit=1)

    def show_listing(trigger) -> None:
        trigger(list_models_recent, None, listing_outputs, api_visibility="private").then(
            card_choices_event, card_input, card_input, api_visibility="private")

    refresh.then(card_choices_event, card_input, card_input, api_visibility="private")
    return {"refresh": refresh, "pull": pull, "show_listing": show_listing}


def explain_available() -> bool:
    try:
        import explain.handlers  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - the tab is optional; say why it is missing
        logger.warning("Explain tab left out: explain.handlers cannot be imported (%s)", exc)
        return False
    return True


def explain_tab() -> None:
    from explain import handlers as explain_handlers
    from explain.evolution import find_previews
    from explain.invariance import TRANSFORMS

    @event(gpu_seconds=120)
    def top9_event(layer: str, channels: str = "", images: list | None = None, progress=gr.Progress()):
        extra = [item[0] if isinstance(item, (tuple, list)) else item for item in (images or [])]
        return explain_handlers.explain_top9(layer, channels or None, extra, _progress_fn_kw(progress))

    @event(gpu_seconds=120)
    def invariance_event(image: str | None, transform: str = "translate", progress=gr.Progress()):
        return explain_handlers.explain_invariance(image, transform, _progress_fn_kw(progress))

    def runs_with_previews() -> list[str]:
        runs = settings.runs_dir()
        if not runs.is_dir():
            return []
        return sorted(d.name for d in runs.iterdir() if d.is_dir() and find_previews(d))

    @event()
    def evolution_event(run_name: str | None):
        if not run_name:
            raise ValueError("Pick a training run (train a style in the Train tab first).")
        folder = settings.runs_dir() / run_name
        if folder.parent != settings.runs_dir() or not folder.is_dir():
            raise ValueError(f"No training run named {run_name!r} in {settings.runs_dir()}.")
        return explain_handlers.explain_evolution(folder)

    with gr.Tab("Explain", id="explain"):
        gr.Markdown("What the loss network sees (Zeiler & Fergus 2014): the strongest activations of a layer, "
                    "projected back to pixels with a deconvnet, and how invariant its features are.")
        with gr.Row():
            with gr.Column():
                layer_input = gr.Dropdown(list(explain_handlers.EXPLAIN_LAYERS), value=explain_handlers.DEFAULT_TOP9_LAYER,
                                          label="Layer")
                channels_input = gr.Textbox(label="Feature maps (e.g. 3, 17; empty = the 4 strongest)")
                images_input = gr.Gallery(label="Extra images (optional)", type="filepath", interactive=True,
                                          columns=4, height=160)
                top9_button = gr.Button("Top 9", variant="primary")
            with gr.Column():
                top9_output = gr.Image(label="Top-9 activations and their projections", format="png",
                                       interactive=False)
                top9_info = gr.Markdown()
        with gr.Row():
            with gr.Column():
                inv_input = gr.Image(label="Image (empty = the bundled cat)", type="filepath",
                                     sources=["upload", "clipboard"])
                transform_input = gr.Radio(list(TRANSFORMS), value="translate", label="Transform")
                inv_button = gr.Button("Invariance", variant="primary")
            with gr.Column():
                inv_output = gr.Image(label="Feature distance vs transform", format="png", interactive=False)
                inv_info = gr.Markdown()
        gr.Markdown("**Training evolution**: a style run's preview images over the iterations "
                    "(in the spirit of Zeiler & Fergus's Fig. 4).")
        with gr.Row():
            run_input = gr.Dropdown(runs_with_previews(), label="Training run", allow_custom_value=True)
            runs_refresh = gr.Button("Refresh runs")
            evolution_button = gr.Button("Show evolution", variant="primary")
        evolution_output = gr.Image(label="Output over training", format="png", interactive=False)
        evolution_info = gr.Markdown()
    runs_refresh.click(lambda: gr.update(choices=runs_with_previews()), None, run_input, api_visibility="private")
    evolution_button.click(evolution_event, run_input, [evolution_output, evolution_info],
                           api_name="explain_evolution", concurrency_limit=1, concurrency_id="slow")
    top9_button.click(top9_event, [layer_input, channels_input, images_input], [top9_output, top9_info],
                      api_name="explain", concurrency_limit=1, concurrency_id="slow")
    inv_button.click(invariance_event, [inv_input, transform_input], [inv_output, inv_info],
                     api_name="explain_invariance", concurrency_limit=1, concurrency_id="slow")


def _progress_fn_kw(progress: gr.Progress) -> Callable[..., None]:
    """explain's handlers call ``progress(fraction, desc=...)``, as gr.Progress itself does."""
    return lambda fraction, desc=None, **_: progress(fraction, desc=desc)


# ------------------------------------------------------------------------------------------ the app


def build_demo() -> gr.Blocks:
    """The whole app, with its queue configured (``PERCEPTUAL_QUEUE_SIZE``, ``PERCEPTUAL_CONCURRENCY``)."""
    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        banner = gr.Markdown("Loss network: resolving…", elem_id="loss-network-banner")
        with gr.Tabs():
            stylize = stylize_tab()
            compare = compare_tab()
            superres = superres_tab()
            train = train_tab()
            models = models_tab()
            if explain_available():
                explain_tab()
        picker_inputs = [superres["scale"], stylize["model"], compare["model"], superres["pixel"], superres["feature"],
                         train["init"], train["publish"]]
        picker_outputs = [stylize["gallery"], stylize["ids"], stylize["model"], stylize["empty"], compare["model"],
                          superres["pixel"], superres["feature"], train["init"], train["publish"]]
        demo.load(handlers.loss_network_banner, None, banner, api_visibility="private")
        demo.load(refresh_pickers, picker_inputs, picker_outputs, api_visibility="private")
        models["show_listing"](demo.load)
        # After a change, one fresh listing first, then the Models table from it (in that order).
        for changed in (train["train"], models["pull"]):
            models["show_listing"](changed.then(refresh_pickers_fresh, picker_inputs, picker_outputs,
                                                api_visibility="private").then)
        models["refresh"].then(refresh_pickers, picker_inputs, picker_outputs, api_visibility="private")
    demo.queue(max_size=_env_int(QUEUE_SIZE_ENV, 64), default_concurrency_limit=2)
    return demo


def launch_kwargs() -> dict[str, Any]:
    """What ``app.py`` and the tests pass to ``launch``: the upload cap, and the examples folder as the only
    extra folder Gradio may serve from (the data folder also holds models and runs, which it must not)."""
    return {"max_file_size": os.environ.get("PERCEPTUAL_MAX_UPLOAD", "50mb"),
            "allowed_paths": [str(samples.examples_dir())]}
