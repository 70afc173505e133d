"""A shared app's visitors (public mode): a visitor's model is theirs alone (listed, served, published), it expires
unless published, quotas per visitor and in all; training content comes from the visitor's uploads; uploads are
bounded per request, per client and in all; abandoned or overlong work stops at its next step."""
from __future__ import annotations

import os
import time
from types import SimpleNamespace

import pytest

gradio_client = pytest.importorskip("gradio_client")
from apptools import STYLE_ID, app_environment, environment, launch_app, photo  # noqa: E402
from gradio_client import handle_file  # noqa: E402

from perceptual_studio import settings  # noqa: E402
from perceptual_studio.webapp import visitor_models  # noqa: E402

PUBLIC_ENV = {"PERCEPTUAL_PUBLIC": "on", "PERCEPTUAL_PUBLIC_MAX_UPLOAD_REQUEST": "1mb"}


@pytest.fixture(scope="module")
def public_env(tmp_path_factory) -> dict[str, str]:
    with environment(PUBLIC_ENV), app_environment(tmp_path_factory.mktemp("public")) as env:
        yield {**env, **PUBLIC_ENV}


@pytest.fixture(autouse=True)
def _public_environment(request, monkeypatch) -> None:
    if "public_env" in request.fixturenames:
        for key, value in request.getfixturevalue("public_env").items():
            monkeypatch.setenv(key, value)


@pytest.fixture(scope="module")
def public_url(public_env):
    with launch_app() as url:
        yield url


def _train(client, style, name: str, content: list | None = None) -> str:
    job = client.submit(handle_file(str(style)), name, "starter", "", 2, 32, 1, 1e-3, 0.25, 0, 0, 0, "", 0, 0,
                        content or [], api_name="/train_style")
    return job.result(timeout=300)[0]


def _ids(client) -> set[str]:
    _, records, _ = client.predict(api_name="/list_models")
    return {r["id"] for r in records}


def test_a_visitors_model_is_theirs_alone(public_url, public_env, tmp_path) -> None:
    alice = gradio_client.Client(public_url, verbose=False)
    bob = gradio_client.Client(public_url, verbose=False)
    style = photo(tmp_path / "style.png", (40, 40), seed=5)
    content = [handle_file(str(photo(tmp_path / f"mine{i}.png", (48, 40), seed=20 + i))) for i in range(2)]
    status = _train(alice, style, "alices", content)
    assert "Done: `local:alices`" in status

    # Listed for Alice alone; the owner's own models for both.
    assert {"local:alices", STYLE_ID} <= _ids(alice)
    assert "local:alices" not in _ids(bob) and STYLE_ID in _ids(bob)
    # Served to Alice alone: to Bob it does not exist, by any spelling of its id, for any use.
    image, _ = alice.predict(handle_file(str(style)), "local:alices", 40, False, 1.0, 1.0, api_name="/stylize")
    assert os.path.isfile(image)
    for model_id in ("local:alices", "alices"):
        with pytest.raises(Exception, match="no model named 'alices'"):
            bob.predict(handle_file(str(style)), model_id, 40, False, 1.0, 1.0, api_name="/stylize")
    with pytest.raises(Exception, match="no model named 'alices'"):
        bob.predict(handle_file(str(style)), [STYLE_ID, "local:alices"], 0.5, 0.5, 0.5, 0.5, 40, False, 1.0, 1.0,
                    api_name="/stylize_blend")

    # The record names the owner by a hash, never by the session itself.
    record = (settings.data_dir() / visitor_models.RECORD_FILE).read_text()
    assert '"alices"' in record and alice.session_hash not in record
    # The upload was decoded into a scratch folder that is gone, and the run folder too.
    assert not any((settings.data_dir() / "scratch").iterdir())
    assert not (settings.runs_dir() / "alices").exists()


def _train_and_leave(url: str, style: str) -> None:
    gradio_client.Client(url, verbose=False).predict(handle_file(style), "gone", "starter", "", 2000, 32, 1, 1e-3,
                                                     0.25, 0, 0, 0, "", 0, 0, [], api_name="/train_style")


def test_a_visitor_who_leaves_mid_training_frees_the_app_and_keeps_their_model_private(public_url, tmp_path) -> None:
    import multiprocessing

    style = str(photo(tmp_path / "style.png", (40, 40), seed=6))
    leaver = multiprocessing.get_context("fork").Process(target=_train_and_leave, args=(public_url, style))
    leaver.start()
    deadline = time.monotonic() + 60
    while not (settings.runs_dir() / "gone").is_dir():  # training has started
        assert time.monotonic() < deadline and leaver.is_alive()
        time.sleep(0.2)
    time.sleep(2)
    leaver.terminate()  # the tab closes: its connections go
    leaver.join()
    bob, refusals = gradio_client.Client(public_url, verbose=False), []
    while True:  # the same address: refused while the abandoned job winds down, with the sentence
        try:
            status = _train(bob, photo(tmp_path / "b.png", (40, 40), seed=7), "bobs")
            break
        except Exception as exc:  # noqa: BLE001
            refusals.append(str(exc))
            assert time.monotonic() < deadline + 30, refusals[-1]
            time.sleep(0.5)
    assert "Done: `local:bobs`" in status
    assert all("already have a heavy job" in r for r in refusals), refusals
    # What the leaver trained so far is kept, theirs alone: recorded, not listed for Bob; its run folder is gone.
    assert (settings.models_dir() / "gone").is_dir() and "gone" in visitor_models.hidden_names("bob")
    assert "local:gone" not in _ids(bob) and not (settings.runs_dir() / "gone").exists()


def test_an_upload_over_the_request_limit_is_refused_with_a_sentence(public_url) -> None:
    import httpx

    files = {"files": ("big.png", b"\0" * (2 << 20), "image/png")}
    answer = httpx.post(f"{public_url.rstrip('/')}/gradio_api/upload", files=files, timeout=30)
    assert answer.status_code == 413
    assert "takes at most 1 MiB in one upload" in answer.json()["error"]


def test_the_upload_ledger_bounds_each_client_and_everyone() -> None:
    from perceptual_studio.webapp.upload_quota import UploadLedger, UploadLimits

    ledger, limits = UploadLedger(), UploadLimits(per_request=10, per_client_hour=25, total_hour=35)
    assert ledger.admit("a", None, limits, now=0) == "An upload here must say its size (Content-Length)."
    assert "at most" in ledger.admit("a", 11, limits, now=0)
    assert ledger.admit("a", 10, limits, now=0) is None and ledger.admit("a", 10, limits, now=1) is None
    assert "from one visitor in an hour" in ledger.admit("a", 10, limits, now=2)
    assert ledger.admit("b", 10, limits, now=3) is None
    assert "as many uploads as it can this hour" in ledger.admit("c", 10, limits, now=4)
    assert ledger.admit("a", 10, limits, now=3601) is None  # an hour later the first no longer counts


def _visitor_model(name: str) -> None:
    folder = settings.models_dir() / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")


def test_quotas_per_visitor_and_in_all_and_expiry_unless_published(monkeypatch) -> None:
    monkeypatch.setenv("PERCEPTUAL_PUBLIC", "on")
    monkeypatch.setenv("PERCEPTUAL_PUBLIC_MODELS_PER_VISITOR", "2")
    monkeypatch.setenv("PERCEPTUAL_PUBLIC_MAX_VISITOR_MODELS", "4")
    alice, bob, carol = (visitor_models.owner_key(f"session:{who}") for who in ("alice", "bob", "carol"))
    _visitor_model("owners-own")  # installed by the owner: never touched
    for name, owner in (("a1", alice), ("b1", bob), ("a2", alice)):
        _visitor_model(name)
        assert visitor_models.after_training(name, owner) == []
    _visitor_model("a3")
    assert visitor_models.after_training("a3", alice) == ["a1"]  # Alice's oldest, not Bob's
    for name in ("c1", "c2"):
        _visitor_model(name)
        removed = visitor_models.after_training(name, carol)
    assert removed == ["b1"]  # beyond 4 in all: the oldest of anyone's
    assert visitor_models.hidden_names(alice) == {"c1", "c2"} and visitor_models.owned_names(alice) == ["a3", "a2"]

    visitor_models.mark_published("a2")
    assert visitor_models.sweep(now=time.time() + 25 * 3600) == ["a3", "c1", "c2"]  # a day later; a2 is published
    names = sorted(p.name for p in settings.models_dir().iterdir())
    assert names == ["a2", "owners-own"]


def test_a_local_app_keeps_every_model_for_its_one_user(monkeypatch) -> None:
    monkeypatch.setenv("PERCEPTUAL_PUBLIC", "off")
    _visitor_model("mine")
    assert visitor_models.after_training("mine", "someone") == []
    assert visitor_models.hidden_names("anyone-else") == frozenset()
    visitor_models.check_access("local:mine", "anyone-else")  # no error


def test_abandoned_or_overlong_work_stops_at_its_next_step(monkeypatch) -> None:
    from gradio.context import LocalContext

    from perceptual_studio.webapp.request_context import RequestStopped, request_guard

    monkeypatch.setenv("PERCEPTUAL_PUBLIC", "on")
    running = SimpleNamespace(_id="event-1", alive=True)
    blocks = SimpleNamespace(_queue=SimpleNamespace(active_jobs=[None, [running]]))
    tokens = LocalContext.blocks.set(blocks), LocalContext.event_id.set("event-1")
    try:
        _check_the_guard(request_guard, RequestStopped, running, monkeypatch)
    finally:  # Gradio's own context, as it was: later tests launch apps in this thread
        LocalContext.blocks.reset(tokens[0])
        LocalContext.event_id.reset(tokens[1])


def _check_the_guard(request_guard, RequestStopped, running, monkeypatch) -> None:
    check = request_guard()
    check()  # the client is there and time is left
    running.alive = False  # Gradio's queue marks the event when its client disconnects
    with pytest.raises(RequestStopped, match="is gone"):
        check()

    running.alive = True
    monkeypatch.setenv("PERCEPTUAL_PUBLIC_MAX_REQUEST_SECONDS", "1")
    check = request_guard()
    time.sleep(1.05)
    with pytest.raises(RequestStopped, match="Stopped after 1 s"):
        check()
    monkeypatch.setenv("PERCEPTUAL_PUBLIC", "off")
    request_guard()()  # a local app's work is never stopped for it


@pytest.mark.parametrize("as_generator", [False, True])
def test_stopped_work_is_freed_when_its_message_is_raised(as_generator) -> None:
    """The message a visitor sees must not keep the stopped work's frames alive: Gradio holds the error it reports
    in a reference cycle, so whatever the error references stays until a full garbage collection."""
    import gc
    import weakref

    import gradio as gr

    from perceptual_studio.webapp.events import user_errors
    from perceptual_studio.webapp.request_context import RequestStopped

    class Work:  # stands for a stopped job's buffers (the baseline's L-BFGS history)
        pass

    alive: list[weakref.ref] = []

    def stopped_job():
        buffers = Work()
        alive.append(weakref.ref(buffers))
        raise RequestStopped("Stopped: the page or client that asked for this is gone.")

    def stopped_generator():
        yield stopped_job()

    wrapped = user_errors(stopped_generator if as_generator else stopped_job)
    gc.disable()
    try:
        with pytest.raises(gr.Error, match="is gone") as caught:
            list(wrapped()) if as_generator else wrapped()
        assert caught.value.__context__ is None and caught.value.__cause__ is None
        assert alive[0]() is None, "the stopped job's buffers outlive its message"
    finally:
        gc.enable()
