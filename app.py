"""Perceptual Studio: start the web app (``python app.py``), locally or as a Hugging Face Space.

Configuration is by environment variables (``settings.py``, ``docs/app.md``); nothing heavy happens before the
first request. ``GRADIO_SERVER_NAME=0.0.0.0`` serves on the network (a Space sets it).
"""
from __future__ import annotations

import logging
import os

from webapp.malloc_arenas import limit_malloc_arenas
from webapp.ui import build_demo, launch_kwargs

if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("PERCEPTUAL_LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    limit_malloc_arenas()  # before Gradio starts its worker threads
    demo = build_demo()
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), **launch_kwargs())
