"""Perceptual Studio: start the web app (``python app.py``), locally or as a Hugging Face Space."""
from __future__ import annotations

import logging
import os

from webapp.ui import build_demo

if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("PERCEPTUAL_LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    demo = build_demo()
    demo.queue(max_size=32).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        max_file_size="50mb",
    )
