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
    # Nor a setting of the server: a hint naming one is dropped, a bare name said in general terms.
    assert user_message(ValueError("the file is over the 512 MiB limit (PERCEPTUAL_MAX_MODEL_MB raises it)")) == (
        "the file is over the 512 MiB limit")
    assert user_message(ValueError("no token: set HF_TOKEN")) == "no token: set a server setting"


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
    assert str(refused.value) == ("In this shared app, training uses the bundled licensed photos, or photos you "
                                  "upload: leave the content field empty.")


def test_a_hub_dataset_is_allowed_only_when_the_owner_says_so_and_within_its_cap(public, tmp_path, monkeypatch) -> None:
    from fakehub import FakeHub, hub_env

    monkeypatch.setenv("PERCEPTUAL_PUBLIC_HUB_CONTENT", "1")
    monkeypatch.setenv("PERCEPTUAL_PUBLIC_MAX_HUB_CONTENT_BYTES", "100kb")
    with FakeHub(tmp_path / "hub") as hub, hub_env(hub.url, cache_dir=tmp_path / "cache"):
        hub.add_file("owner/small", "a.png", b"\x89PNG" + b"\1" * 50_000, repo_type="dataset")
        hub.add_file("owner/small", "notes.txt", b"x" * 200_000, repo_type="dataset")  # not an image: not counted
        hub.add_file("owner/big", "b/c.png", b"\x89PNG" + b"\1" * 200_000, repo_type="dataset")
        assert training.build_config(_request(tmp_path, content_source="owner/small"), "x").content == "owner/small"
        with pytest.raises(ValueError, match=r"holds 0 MiB of images, more than this shared app downloads"):
            training.build_config(_request(tmp_path, content_source="owner/big"), "x")
    with pytest.raises(ValueError, match="cannot be reached"):  # measured before any download, or refused
        training.build_config(_request(tmp_path, content_source="owner/small"), "x")
    with pytest.raises(ValueError, match="dataset id"):
        training.build_config(_request(tmp_path, content_source="/etc"), "x")


def test_the_server_bounds_training_steps_and_style_names(public, tmp_path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="training image size here is 32 to 512 px, not 4096"):
        training.build_config(_request(tmp_path, image_size=4096), "x")
    with pytest.raises(ValueError, match="batch size here is 1 to 8, not 64"):
        training.build_config(_request(tmp_path, batch_size=64), "x")
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


# ------------------------------------------------------------------------------------------------ fair queue


class _Request:
    def __init__(self, host: str, forwarded: str | None = None) -> None:
        self.client = type("Client", (), {"host": host})()
        self.headers = {"x-forwarded-for": forwarded} if forwarded else {}


class _Event:
    def __init__(self, kind: str, host: str) -> None:
        self.concurrency_id, self.request = kind, _Request(host)


def _fake_demo(waiting: list, running: list):
    """What fair_queue reads of a Gradio app: its functions by index and its queue's waiting and running events."""
    from types import SimpleNamespace

    admitted = []

    async def push(body, request, username):
        admitted.append(body.fn_index)
        return True, "event-id", "success"

    queues = {kind: SimpleNamespace(queue=[e for e in waiting if e.concurrency_id == kind]) for kind in
              {e.concurrency_id for e in waiting}}
    fns = {0: SimpleNamespace(concurrency_id="train", name="train_event"),
           1: SimpleNamespace(concurrency_id="fast", name="stylize_event")}
    queue = SimpleNamespace(push=push, event_queue_per_concurrency_id=queues, active_jobs=[running or None, None])
    return SimpleNamespace(_queue=queue, fns=fns), admitted


def _join(demo, fn_index: int, host: str):
    import asyncio
    from types import SimpleNamespace

    return asyncio.run(demo._queue.push(SimpleNamespace(fn_index=fn_index), _Request(host), None))


def test_one_client_cannot_fill_the_queue_or_hold_two_heavy_jobs(public, monkeypatch) -> None:
    from perceptual_studio.webapp import fair_queue

    monkeypatch.delenv("SPACE_ID", raising=False)
    # A flood of stylizes from one address (each with a made-up session): the fifth is refused, another
    # visitor still joins.
    demo, admitted = _fake_demo([_Event("fast", "10.0.0.1") for _ in range(4)], [])
    fair_queue.install(demo)
    ok, detail, state = _join(demo, 1, "10.0.0.1")
    # Answered as Gradio's validation refusal (HTTP 422), which the page and gradio_client both show as written.
    assert (ok, state) == (False, "validator_error") and detail[0]["is_valid"] is False
    assert "You already have 4 requests waiting" in detail[0]["message"]
    assert _join(demo, 1, "10.0.0.2")[0] and admitted == [1]
    # A second heavy job while the first trains: refused; a light one from the same visitor is not.
    demo, admitted = _fake_demo([], [_Event("train", "10.0.0.1")])
    fair_queue.install(demo)
    ok, detail, _ = _join(demo, 0, "10.0.0.1")
    assert not ok and "already have a heavy job" in detail[0]["message"]
    assert _join(demo, 1, "10.0.0.1")[0] and _join(demo, 0, "10.0.0.3")[0]
    # Heavy jobs of one kind, each from another address, stop at PERCEPTUAL_PUBLIC_HEAVY_WAITING.
    monkeypatch.setenv("PERCEPTUAL_PUBLIC_HEAVY_WAITING", "3")
    demo, _ = _fake_demo([_Event("train", f"10.1.0.{i}") for i in range(3)], [])
    fair_queue.install(demo)
    assert "Too many jobs of this kind" in _join(demo, 0, "10.2.0.1")[1][0]["message"] and _join(demo, 1, "10.2.0.1")[0]


def test_waiting_requests_take_turns_by_client(public, monkeypatch) -> None:
    from perceptual_studio.webapp.fair_queue import interleave

    monkeypatch.delenv("SPACE_ID", raising=False)
    flood = [_Event("fast", "10.0.0.1") for _ in range(4)]
    late = _Event("fast", "10.0.0.2")
    assert interleave(flood + [late]) == [flood[0], late, *flood[1:]]  # the newcomer runs second, not fifth


def test_on_a_space_the_client_is_the_forwarded_address(monkeypatch) -> None:
    from perceptual_studio.webapp.fair_queue import client_of

    monkeypatch.setenv("SPACE_ID", "owner/space")
    assert client_of(_Request("10.9.9.9", "203.0.113.7, 10.9.9.9")) == "203.0.113.7"
    monkeypatch.delenv("SPACE_ID")
    assert client_of(_Request("10.9.9.9", "203.0.113.7")) == "10.9.9.9"  # elsewhere the header is anyone's


def test_the_public_app_installs_the_fair_queue_and_light_requests_skip_the_queue(public, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PERCEPTUAL_DATA_DIR", str(tmp_path))
    from perceptual_studio.webapp.ui import build_demo

    demo = build_demo()
    assert demo._queue.push.__name__ == "fair_push"
    by_name = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    assert by_name["list_models"].queue is False
    assert by_name["super_resolve"].concurrency_id == "sr" and by_name["stylize"].concurrency_id == "fast"
    monkeypatch.setenv("PERCEPTUAL_PUBLIC", "off")
    assert build_demo()._queue.push.__name__ != "fair_push"  # a local run keeps Gradio's own queue


def test_a_public_training_stops_at_its_time_limit_and_keeps_the_model(public, tmp_path, monkeypatch) -> None:
    content = tmp_path / "content"
    content.mkdir()
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 40, 3), np.uint8)).save(content / f"{i}.png")
    monkeypatch.setenv("PERCEPTUAL_TRAIN_CONTENT", str(content))
    monkeypatch.setenv("PERCEPTUAL_LOSS_NETWORK", "random")
    monkeypatch.setenv("PERCEPTUAL_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("PERCEPTUAL_PUBLIC_MAX_TRAIN_SECONDS", "2")
    request = training.TrainRequest(style=str(_request(tmp_path).style), style_name="slow", preset="starter",
                                    iterations=2000, image_size=32, batch_size=1, width=0.25, preview_every=0)
    update = None
    for update in training.train_style_job(request, training.new_job_id()):
        if update.done:
            break
    assert update.done and update.cancelled and 0 < update.step < 2000
    assert "this shared app gives one training 2 s" in update.status and update.model_id == "local:slow"

    # It kept its model and dropped its run folder; beyond the cap the oldest visitor model goes, never the owner's.
    models, runs = tmp_path / "models", settings.runs_dir()
    assert (models / "slow" / "model.safetensors").is_file() and not (runs / "slow").exists()
    monkeypatch.setenv("PERCEPTUAL_PUBLIC_MAX_VISITOR_MODELS", "1")
    (models / "owners-own").mkdir()
    (models / "owners-own" / "config.json").write_text("{}")
    request = training.TrainRequest(**{**request.__dict__, "style_name": "next", "iterations": 2})
    assert training.run_training(request).model_id == "local:next"
    assert sorted(p.name for p in models.iterdir()) == ["next", "owners-own"]
