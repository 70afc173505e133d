"""The Gradio interface: components and events only; the work happens in :mod:`webapp.handlers`.

Nothing heavy runs at import or build time: the loss network loads on the first request (and for the
banner, when the page loads) and is cached for the process.
"""
from __future__ import annotations

import gradio as gr

from webapp import handlers
from webapp.errors import user_message

TITLE = "Perceptual Studio"
INTRO = (
    "Real-time style transfer and super-resolution with perceptual losses "
    "(Johnson, Alahi & Fei-Fei, ECCV 2016), and the slow optimisation-based baseline they replace "
    "(Gatys et al. 2016)."
)


def _gradio_progress(progress: gr.Progress):
    return lambda fraction, text: progress(fraction, desc=text)


def baseline_event(content, style, iterations, max_side, progress=gr.Progress()):
    try:
        out = handlers.run_baseline(content, style, iterations, max_side, _gradio_progress(progress))
    except Exception as exc:  # noqa: BLE001 - every failure becomes a readable message
        raise gr.Error(user_message(exc)) from None
    return out.image, out.markdown()


def build_demo() -> gr.Blocks:
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        banner = gr.Markdown("Loss network: resolving…")
        with gr.Tab("Optimisation baseline"):
            gr.Markdown(
                "Optimises the image itself against the perceptual objective with L-BFGS. "
                "Slow by design: this is what the fast networks replace."
            )
            with gr.Row():
                content_input = gr.Image(label="Content image", type="filepath", sources=["upload", "clipboard"])
                style_input = gr.Image(label="Style image", type="filepath", sources=["upload", "clipboard"])
            with gr.Row():
                iterations_input = gr.Slider(1, 500, value=50, step=1, label="L-BFGS iterations")
                size_input = gr.Slider(64, 1024, value=256, step=32, label="Longest side (px)")
            baseline_button = gr.Button("Run the baseline", variant="primary")
            with gr.Row():
                baseline_output = gr.Image(label="Result", format="png", interactive=False)
                baseline_info = gr.Markdown()
            baseline_button.click(
                baseline_event,
                [content_input, style_input, iterations_input, size_input],
                [baseline_output, baseline_info],
                api_name="baseline",
                concurrency_limit=1,
                concurrency_id="gpu",
            )
        demo.load(handlers.loss_network_banner, None, banner, api_visibility="private")
    return demo
