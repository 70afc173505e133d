"""Start the web app (``perceptual-studio``, or ``python app.py`` in a checkout and on a Space).

Configuration is by environment variables (``perceptual_studio/settings.py``); nothing heavy happens before the
first request. ``GRADIO_SERVER_NAME=0.0.0.0`` serves on the network (a Space sets it).
"""
from __future__ import annotations

import logging
import os

from perceptual_studio import settings
from perceptual_studio.webapp import visitor_models
from perceptual_studio.webapp.malloc_arenas import limit_malloc_arenas, start_releasing
from perceptual_studio.webapp.ui import build_demo, launch_kwargs


def main() -> None:
    """Configure logging, build the app and serve it until interrupted."""
    logging.basicConfig(level=settings.log_level(), format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    limit_malloc_arenas()  # before Gradio starts its worker threads
    demo = build_demo()
    start_releasing()  # freed request memory goes back to the system, so the server returns to its size
    if settings.public_mode():  # visitors' models past their time go, whether or not anyone trains
        visitor_models.start_sweeping()
    demo.launch(server_name=settings.server_name(), **launch_kwargs())


if __name__ == "__main__":
    main()
