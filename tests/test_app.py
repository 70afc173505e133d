"""The web app, launched in-process and driven through gradio_client as a user's script would."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    import os

    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio"))
    os.environ["PERCEPTUAL_LOSS_NETWORK"] = "random"
    from webapp.ui import build_demo

    demo = build_demo()
    demo.queue().launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def client(app_url):
    return gradio_client.Client(app_url, verbose=False)


def _photo(path, size=(48, 40), seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]]
    img = np.stack([xx * 255 / size[0], yy * 255 / size[1], rng.integers(0, 255, (size[1], size[0]))], -1)
    Image.fromarray(img.astype(np.uint8)).save(path)
    return path


def test_baseline_endpoint(client, tmp_path) -> None:
    content = _photo(tmp_path / "content.png")
    style = _photo(tmp_path / "style.png", seed=1)
    image_path, info = client.predict(
        gradio_client.handle_file(str(content)), gradio_client.handle_file(str(style)), 3, 64, api_name="/baseline"
    )
    result = np.asarray(Image.open(image_path).convert("RGB"))
    assert result.shape == (40, 48, 3)
    assert not np.array_equal(result, np.asarray(Image.open(content).convert("RGB")))
    assert "3 L-BFGS iterations" in info and "vgg16:random(seed=0)" in info


def test_baseline_bad_file_gives_clear_error(client, tmp_path) -> None:
    style = _photo(tmp_path / "style.png")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(style.read_bytes()[: len(style.read_bytes()) // 2])
    with pytest.raises(Exception, match="truncated or corrupt"):
        client.predict(gradio_client.handle_file(str(truncated)), gradio_client.handle_file(str(style)), 2, 64, api_name="/baseline")
    bogus = tmp_path / "notes.png"
    bogus.write_text("this is not an image")
    with pytest.raises(Exception):  # Gradio's own upload check refuses it before our handler runs
        client.predict(gradio_client.handle_file(str(bogus)), gradio_client.handle_file(str(style)), 2, 64, api_name="/baseline")
    # and the app keeps serving
    out, _ = client.predict(gradio_client.handle_file(str(style)), gradio_client.handle_file(str(style)), 1, 64, api_name="/baseline")
    assert Image.open(out).size == (48, 40)
