"""Gradio image inputs that let the project's own checks see every upload first.

``gr.Image`` opens an uploaded file with PIL in its own preprocessing, before any handler runs: an empty
file, a text or pickle file named ``.png`` or a PNG whose header declares 60000x60000 then fails inside Gradio
with its generic "Error". ``checked_image`` builds a plain ``gr.Image`` (so the browser draws Gradio's own
component) whose preprocessing hands the handler the uploaded file's path undecoded, so
``imaging.load_image`` (format sniffing, header size limits, truncation, odd modes, EXIF) refuses it with its
one-line message, shown in the UI, returned to API clients and never a stack trace.
"""
from __future__ import annotations

import types
from typing import Any

import gradio as gr


def _undecoded_path(self: gr.Image, payload: Any) -> str | None:
    if payload is None:
        return None
    url = getattr(payload, "url", None) or ""
    if getattr(payload, "path", None) and not url.startswith("data:"):
        return str(payload.path)  # decoded later, by imaging.load_image, with the project's checks
    return gr.Image.preprocess(self, payload)  # a pasted data URL: Gradio writes it to a file first


def checked_image(**kwargs: Any) -> gr.Image:
    """A ``gr.Image(type="filepath")`` whose uploads reach the handler undecoded.

    The override is on the instance, not a subclass: a subclass would need its own browser component."""
    if kwargs.setdefault("type", "filepath") != "filepath":
        raise ValueError("checked_image passes file paths: the handler decodes them with imaging.load_image")
    image = gr.Image(**kwargs)
    image.preprocess = types.MethodType(_undecoded_path, image)  # type: ignore[method-assign]
    return image
