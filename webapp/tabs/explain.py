"""The Explain tab: Zeiler & Fergus's tools on the loss network (``webapp/handlers/explain.py``)."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import gradio as gr

from perceptual_studio import settings
from perceptual_studio.explain.evolution import find_previews
from perceptual_studio.explain.invariance import TRANSFORMS
from perceptual_studio.webapp.components import checked_image
from perceptual_studio.webapp.events import event, progress_callback_kw
from perceptual_studio.webapp.handlers import explain as explain_handlers

logger = logging.getLogger(__name__)


def explain_available() -> bool:
    try:
        import perceptual_studio.webapp.handlers.explain  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - the tab is optional; say why it is missing
        logger.warning("Explain tab left out: webapp.handlers.explain cannot be imported (%s)", exc)
        return False
    return True


@event(gpu_seconds=120, heavy=True)
def top9_event(layer: str, channels: str = "", images: list | None = None, progress=gr.Progress()):
    extra = [item[0] if isinstance(item, (tuple, list)) else item for item in (images or [])]
    return explain_handlers.explain_top9(layer, channels or None, extra, progress_callback_kw(progress))


@event(gpu_seconds=120, heavy=True)
def invariance_event(image: str | None, transform: str = "translate", progress=gr.Progress()):
    return explain_handlers.explain_invariance(image, transform, progress_callback_kw(progress))


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


@dataclass
class _Top9Controls:
    layer: gr.Dropdown
    channels: gr.Textbox
    images: gr.Gallery
    button: gr.Button
    output: gr.Image
    info: gr.Markdown


@dataclass
class _InvarianceControls:
    image: gr.Image
    transform: gr.Radio
    button: gr.Button
    output: gr.Image
    info: gr.Markdown


@dataclass
class _EvolutionControls:
    run: gr.Dropdown
    refresh: gr.Button
    button: gr.Button
    output: gr.Image
    info: gr.Markdown


def _top9_controls() -> _Top9Controls:
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
    return _Top9Controls(layer_input, channels_input, images_input, top9_button, top9_output, top9_info)


def _invariance_controls() -> _InvarianceControls:
    with gr.Row():
        with gr.Column():
            inv_input = checked_image(label="Image (empty = the bundled cat)",
                                      sources=["upload", "clipboard"])
            transform_input = gr.Radio(list(TRANSFORMS), value="translate", label="Transform")
            inv_button = gr.Button("Invariance", variant="primary")
        with gr.Column():
            inv_output = gr.Image(label="Feature distance vs transform", format="png", interactive=False)
            inv_info = gr.Markdown()
    return _InvarianceControls(inv_input, transform_input, inv_button, inv_output, inv_info)


def _evolution_controls() -> _EvolutionControls:
    gr.Markdown("**Training evolution**: a style run's preview images over the iterations "
                "(in the spirit of Zeiler & Fergus's Fig. 4).")
    with gr.Row():
        run_input = gr.Dropdown(runs_with_previews(), label="Training run", allow_custom_value=True)
        runs_refresh = gr.Button("Refresh runs")
        evolution_button = gr.Button("Show evolution", variant="primary")
    evolution_output = gr.Image(label="Output over training", format="png", interactive=False)
    evolution_info = gr.Markdown()
    return _EvolutionControls(run_input, runs_refresh, evolution_button, evolution_output, evolution_info)


def _wire_explain_events(top9: _Top9Controls, inv: _InvarianceControls, evolution: _EvolutionControls) -> None:
    evolution.refresh.click(lambda: gr.update(choices=runs_with_previews()), None, evolution.run,
                            api_visibility="private")
    evolution.button.click(evolution_event, evolution.run, [evolution.output, evolution.info],
                           api_name="explain_evolution", concurrency_limit=1, concurrency_id="slow")
    top9.button.click(top9_event, [top9.layer, top9.channels, top9.images], [top9.output, top9.info],
                      api_name="explain", concurrency_limit=1, concurrency_id="slow")
    inv.button.click(invariance_event, [inv.image, inv.transform], [inv.output, inv.info],
                     api_name="explain_invariance", concurrency_limit=1, concurrency_id="slow")


def explain_tab() -> None:
    with gr.Tab("Explain", id="explain"):
        gr.Markdown("What the loss network sees (Zeiler & Fergus 2014): the strongest activations of a layer, "
                    "projected back to pixels with a deconvnet, and how invariant its features are.")
        top9 = _top9_controls()
        inv = _invariance_controls()
        evolution = _evolution_controls()
    _wire_explain_events(top9, inv, evolution)
