"""Gradio components that let the project's own checks see every upload first.

``gr.Image`` opens an uploaded file with PIL in its own preprocessing, before any handler runs: an empty
file, a text or pickle file named ``.png`` or a PNG whose header declares 60000x60000 then fails inside Gradio
with its generic "Error". ``CheckedImage`` hands the handler the uploaded file's path undecoded instead, so
``imaging.load_image`` (format sniffing, header size limits, truncation, odd modes, EXIF) refuses it with its
one-line message, shown in the UI, returned to API clients and never a stack trace.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from gradio.events import Dependency

class CheckedImage(gr.Image):
    """An image input (``type="filepath"`` only) whose uploads reach the handler undecoded."""

    # Gradio's way to mark a thin subclass: the browser then draws it with the parent's (gr.Image's) Svelte
    # component; without it the page looks for a "checkedimage" component and never finishes loading.
    is_template = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("type", "filepath")
        if kwargs["type"] != "filepath":
            raise ValueError("CheckedImage passes file paths: the handler decodes them with imaging.load_image")
        super().__init__(*args, **kwargs)

    def preprocess(self, payload: Any) -> str | None:
        if payload is None:
            return None
        url = getattr(payload, "url", None) or ""
        if getattr(payload, "path", None) and not url.startswith("data:"):
            return str(payload.path)  # decoded later, by imaging.load_image, with the project's checks
        return super().preprocess(payload)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component  # pasted data URLs: Gradio writes them to a file first