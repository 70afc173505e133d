"""Public mode (``PERCEPTUAL_PUBLIC``): an app others reach bounds every request on the server, never lets a
visitor name a server folder, and never names one in a message; a card or name written by someone else renders
inert. A local, single-user run keeps its behaviour."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from perceptual_studio import settings
from perceptual_studio.webapp.errors import user_message
from perceptual_studio.webapp.handlers import training
from perceptual_studio.webapp.handlers.models import safe_markdown


@pytest.fixture
def public(monkeypatch):
    monkeypatch.setenv("PERCEPTUAL_PUBLIC", "on")


def test_public_mode_is_on_where_others_reach_the_app(monkeypatch) -> None:
    for name in ("PERCEPTUAL_PUBLIC", "SPACE_ID", "GRADIO_SERVER_NAME", "GRADIO_SHARE"):
        monkeypatch.delenv(name, raising=False)
    assert not settings.public_mode()  # a local run on loopback
    for name, value in (("SPACE_ID", "owner/space"), ("GRADIO_SERVER_NAME", "0.0.0.0"), ("GRADIO_SHARE", "true")):
        monkeypatch.setenv(name, value)
        assert settings.public_mode(), name
        monkeypatch.delenv(name)
    monkeypatch.setenv("PERCEPTUAL_PUBLIC", "on")
    assert settings.public_mode()
    monkeypatch.setenv("PERCEPTUAL_PUBLIC", "off")
    monkeypatch.setenv("SPACE_ID", "owner/space")
    assert not settings.public_mode()  # the owner's explicit choice wins


def test_public_messages_name_no_server_path_and_stay_short(public) -> None:
    long_id = OSError(36, "File name too long", "/srv/app/data/models/" + "A" * 5000)
    assert user_message(long_id) == "Something went wrong (OSError). The app is still running; please try again."
    said = user_message(ValueError("the content folder /srv/app/data/runs/x contains no image files"))
    assert "/srv" not in said and said.endswith("…/x contains no image files")
    assert "~/" not in user_message(ValueError("no model in ~/private/models"))
    kept = "Model hub:alice/mosaic cannot be used: http://127.0.0.1:1/api/models failed"
    assert user_message(ValueError(kept)) == kept  # ids and URLs are not paths
    assert len(user_message(ValueError("x" * 5000))) <= 400


def test_local_messages_keep_their_detail(monkeypatch) -> None:
    monkeypatch.setenv("PERCEPTUAL_PUBLIC", "off")
    assert "/srv/app/x" in user_message(ValueError("the content folder /srv/app/x contains no image files"))


def _request(tmp_path, **fields) -> training.TrainRequest:
    style = tmp_path / "style.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(style)
    return training.TrainRequest(style=str(style), preset="starter", **fields)


@pytest.mark.parametrize("source", ["/", "/no/such/folder", "~", "data/models", "owner/dataset"])
def test_a_visitor_cannot_name_training_content_and_learns_nothing_about_the_disk(public, tmp_path, source) -> None:
    with pytest.raises(ValueError) as refused:
        training.build_config(_request(tmp_path, content_source=source), "x")
    assert str(refused.value) == ("In this shared app, training uses the bundled licensed photos: leave the content "
                                  "field empty.")


def test_a_hub_dataset_is_allowed_only_when_the_owner_says_so(public, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PERCEPTUAL_PUBLIC_HUB_CONTENT", "1")
    assert training.build_config(_request(tmp_path, content_source="owner/dataset"), "x").content == "owner/dataset"
    with pytest.raises(ValueError, match="dataset id"):
        training.build_config(_request(tmp_path, content_source="/etc"), "x")


def test_the_server_bounds_training_steps_and_style_names(public, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PERCEPTUAL_PUBLIC_MAX_ITERATIONS", "500")
    with pytest.raises(ValueError, match="at most 500"):
        training.build_config(_request(tmp_path, iterations=10**9), "x")
    with pytest.raises(ValueError, match="up to 60 letters"):
        training.build_config(_request(tmp_path, style_name='<img src="http://x/p.gif"><a href="http://x">Click</a>'),
                              "x")
    assert training.build_config(_request(tmp_path, style_name="Café d'Arles - nuit", iterations=500), "x").iterations == 500


def test_cards_and_names_written_by_others_render_inert() -> None:
    hostile = '# Wave\n<img src="http://tracker/p.gif"><a href="http://phish">Click here</a>\n![x](http://tracker/q.png)'
    safe = safe_markdown(hostile)
    assert "<img" not in safe and "<a " not in safe and "](http://tracker" not in safe
    assert "&lt;img" in safe and "[image: x]" in safe
    assert safe_markdown("> [!WARNING]\n> careful") == "> [!WARNING]\n> careful"  # a card's quotes stay quotes


def test_heavy_requests_are_bounded_on_the_server(public, monkeypatch) -> None:
    from perceptual_studio.webapp.handlers.explain import explain_top9
    from perceptual_studio.webapp.handlers.style import blended_network

    monkeypatch.delenv("PERCEPTUAL_MAX_OUTPUT_PIXELS", raising=False)
    assert settings.max_output_pixels() == 2048 * 2048  # the public cap under the app's own 4096 x 4096
    monkeypatch.setenv("PERCEPTUAL_PUBLIC", "off")
    assert settings.max_output_pixels() == 4096 * 4096
    monkeypatch.setenv("PERCEPTUAL_PUBLIC", "on")
    with pytest.raises(ValueError, match="at most 8"):
        explain_top9("relu1_2", channels=list(range(256)))
    with pytest.raises(ValueError, match="at most 4 style models"):
        blended_network([f"m{i}" for i in range(5)], [1] * 5)


def test_a_huge_super_resolution_original_is_refused_before_any_network_runs(public, monkeypatch) -> None:
    from perceptual_studio.pipelines import superres
    from perceptual_studio.webapp.handlers.superres import super_resolve

    monkeypatch.setattr(superres, "infer", lambda *a, **k: pytest.fail("a network ran"))
    huge = Image.new("RGB", (4000, 4000), (90, 120, 150))  # a 2 KB PNG as an upload
    with pytest.raises(Exception, match="above this app's limit of 4.2 megapixels"):
        super_resolve(huge, "original", 4)
