"""Shared by the app tests (gradio_client, browser, load): tiny real models saved through the registry, the
environment the launched app reads, and an in-process launch."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

STYLE_ID = "local:tiny-style"
STYLE_B_ID = "local:tiny-style-b"  # STYLE_ID's architecture, other weights: the two blend
STYLE_WIDE_ID = "local:tiny-style-wide"  # another width: it cannot blend with STYLE_ID
PIXEL_ID = "local:sr-x4-pixel"
FEATURE_ID = "local:sr-x4-feature"
WIDE_ID = "local:sr-x4-wide"


def photo(path: Path, size: tuple[int, int] = (48, 40), seed: int = 0) -> Path:
    """A smooth gradient with noise: enough structure for every network, any size."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    img = np.stack([xx * 255 / size[0], yy * 255 / size[1], rng.integers(0, 255, (size[1], size[0]))], -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img.astype(np.uint8)).save(path)
    return path


def save_test_models(models_dir: Path, style_image: Path) -> None:
    """Three style models (two that blend, one of another width) and three x4 SR models (pixel, feature, and one
    of another width) via the registry."""
    from perceptual_studio.networks import StyleTransformNet, SuperResolutionNet
    from perceptual_studio.registry import save_model

    for name, style, seed, width in (("tiny-style", "tiny", 0, 0.25), ("tiny-style-b", "tiny-b", 4, 0.25),
                                     ("tiny-style-wide", "tiny-wide", 5, 0.5)):
        torch.manual_seed(seed)
        style_net = StyleTransformNet(width=width, num_residual=1)
        save_model(style_net, models_dir / name, style=style, style_image=style_image,
                   training={"loss_network": "vgg16:random(seed=0)", "content_layers": ["relu2_2"]})
    for name, seed, channels, training in (
        ("sr-x4-pixel", 1, 8, {"loss_network": "none (pixel loss)", "pixel_weight": 1.0, "content_layers": []}),
        ("sr-x4-feature", 2, 8, {"loss_network": "vgg16:random(seed=0)", "content_layers": ["relu2_2"],
                                 "content_weight": 1.0, "pixel_weight": 0.0}),
        ("sr-x4-wide", 3, 12, {"loss_network": "vgg16:random(seed=0)", "content_layers": ["relu2_2"]}),
    ):
        torch.manual_seed(seed)
        net = SuperResolutionNet(scale=4, channels=channels, num_residual=1)
        with torch.no_grad():  # batch-norm statistics that are not the identity
            net.train()
            net(torch.rand(2, 3, 16, 16))
        save_model(net.eval(), models_dir / name, training=training)


def app_env_values(root: Path) -> dict[str, str]:
    return {
        "GRADIO_TEMP_DIR": str(root / "gradio"),
        "PERCEPTUAL_DATA_DIR": str(root / "data"),
        "PERCEPTUAL_MODELS_DIR": str(root / "data" / "models"),
        "PERCEPTUAL_BUILTIN_MODELS_DIR": str(root / "no-builtin-models"),
        "PERCEPTUAL_LOSS_NETWORK": "random",
        "PERCEPTUAL_TRAIN_CONTENT": str(root / "content"),
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(root / "hf-cache"),
    }


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[dict[str, str]]:
    """Set these environment variables, restored afterwards (for fixtures wider than a test's monkeypatch)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def app_environment(root: Path, *, models: bool = True) -> Iterator[dict[str, str]]:
    """Set the app's environment (restored afterwards), with training content and, optionally, the test models."""
    with environment(app_env_values(root)) as env:
        for i in range(2):
            photo(Path(env["PERCEPTUAL_TRAIN_CONTENT"]) / f"c{i}.png", (40, 36), seed=10 + i)
        if models:
            save_test_models(Path(env["PERCEPTUAL_MODELS_DIR"]), photo(root / "style.png", (40, 40), seed=3))
        yield env


@contextlib.contextmanager
def launch_app() -> Iterator[str]:
    """Build and launch the app in this process (the environment must be set); yields its URL."""
    from perceptual_studio.webapp.ui import build_demo, launch_kwargs

    demo = build_demo()
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, **launch_kwargs())
    try:
        yield demo.local_url
    finally:
        demo.close()
