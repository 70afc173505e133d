"""How the registry behaves against the real Hub's rules (taught to the stand-in Hub): tokens checked on every
request (401 for an invalid one, 403 for a repo it cannot write), a Space that never acts as its owner,
republishing without stale files, organisation default visibility, downloads pinned to the checked commit,
and an endpoint with a trailing slash. Each test failed before its fix."""
from __future__ import annotations

import sys

import pytest
import torch
from fakehub import FakeHub

from perceptual_studio import hub_probe
from perceptual_studio import networks
from perceptual_studio.registry import api
from perceptual_studio.registry import hub as hub_mod
from perceptual_studio.registry.errors import PrivateModelError, PublishError

OWNER_TOKEN = "hf_owner_secret_0001"
VISITOR_TOKEN = "hf_visitor_secret_0002"


def _hub(tmp_path, monkeypatch, **kwargs) -> FakeHub:
    server = FakeHub(tmp_path / "hub", tokens={OWNER_TOKEN: ("owner", "acme"), VISITOR_TOKEN: ("visitor",)},
                     **kwargs).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    return server


def _model(name: str, preview: bool = False) -> str:
    torch.manual_seed(0)
    folder = api.save_model(networks.StyleTransformNet(width=0.25, num_residual=1).eval(), name, style="waves",
                            training={"loss_network": "vgg16:random(seed=0)"})
    if preview:
        (folder / "preview.jpg").write_bytes(b"\xff\xd8\xff\xe0 old preview")
    return f"local:{name}"


def test_a_space_never_publishes_with_the_owners_token(env, tmp_path, monkeypatch):
    server = _hub(tmp_path, monkeypatch)
    try:
        model = _model("mine")
        monkeypatch.setenv("HF_TOKEN", OWNER_TOKEN)
        monkeypatch.setenv("SPACE_ID", "owner/perceptual-studio")
        with pytest.raises(PublishError, match="never publishes with its owner's token"):
            api.publish(model, "owner/stolen")
        assert "owner/stolen" not in server.repos
        # The visitor's own token (typed or from the OAuth sign-in) works, for the visitor's own namespace...
        assert api.publish(model, "visitor/mine", token=VISITOR_TOKEN).repo_id == "visitor/mine"
        # ...and cannot write the owner's (403), with a message that never shows the token.
        with pytest.raises(PublishError) as refused:
            api.publish(model, "owner/other", token=VISITOR_TOKEN)
        assert "403" in str(refused.value) or "rights" in str(refused.value)
        assert VISITOR_TOKEN not in str(refused.value)
        # Off a Space, the owner's HF_TOKEN is the publisher's own, as before.
        monkeypatch.delenv("SPACE_ID")
        assert api.publish(model, "owner/mine").repo_id == "owner/mine"
    finally:
        server.stop()


def test_a_space_lists_and_pulls_anonymously_unless_the_visitor_signed_in(env, tmp_path, monkeypatch):
    from perceptual_studio.webapp.handlers import models as models_handlers

    server = _hub(tmp_path, monkeypatch)
    try:
        model = _model("secret")
        api.publish(model, "owner/private-one", token=OWNER_TOKEN, private=True)
        api.publish(_model("shared"), "visitor/public-one", token=VISITOR_TOKEN)
        monkeypatch.setenv("PERCEPTUAL_HUB_MODELS", "owner/private-one")
        monkeypatch.setenv("HF_TOKEN", OWNER_TOKEN)
        api.clear_memory_cache()
        assert "hub:owner/private-one" in {e.id for e in api.list_models().entries}  # the owner, locally
        monkeypatch.setenv("SPACE_ID", "owner/perceptual-studio")
        api.clear_memory_cache()
        assert "hub:owner/private-one" not in {e.id for e in api.list_models().entries}  # an anonymous visitor
        with pytest.raises(Exception, match="not found|private"):
            api.pull("hub:owner/private-one")
        # A visitor signed in as the owner sees the private model in the listing, under their own token...
        assert "hub:owner/private-one" in {e.id for e in api.list_models(token=OWNER_TOKEN).entries}
        assert any(path.startswith("/api/models") for _, path in server.requests)
        signed_in = models_handlers.current_listing(60, token=OWNER_TOKEN)
        anonymous = models_handlers.current_listing(60)  # ...and the app never hands that listing to others
        assert "hub:owner/private-one" in {e.id for e in signed_in.entries}
        assert "hub:owner/private-one" not in {e.id for e in anonymous.entries}
        # ...but the Space will not copy a private model into the cache all visitors share.
        with pytest.raises(PrivateModelError, match="private"):
            api.pull("hub:owner/private-one", token=OWNER_TOKEN)
        assert hub_mod.cached_snapshot("owner/private-one") is None
        # A signed-in visitor pulls public models with their own token.
        assert api.pull("hub:visitor/public-one", token=VISITOR_TOKEN).is_dir()
    finally:
        server.stop()


def test_an_invalid_token_still_reads_public_models(env, tmp_path, monkeypatch, caplog):
    server = _hub(tmp_path, monkeypatch)
    try:
        api.publish(_model("open"), "owner/open", token=OWNER_TOKEN)
        folder = api.pull("hub:owner/open", token="hf_expired_token_999")
        assert (folder / "model.safetensors").is_file()
        assert "401" in caplog.text and "anonymously" in caplog.text
    finally:
        server.stop()


def test_republishing_removes_stale_files(env, tmp_path, monkeypatch):
    server = _hub(tmp_path, monkeypatch)
    try:
        model = _model("evolving", preview=True)
        api.publish(model, "owner/evolving", token=OWNER_TOKEN)
        assert "preview.jpg" in server.repos["owner/evolving"].files()
        (env / "evolving" / "preview.jpg").unlink()
        api.publish(model, "owner/evolving", token=OWNER_TOKEN)
        assert "preview.jpg" not in server.repos["owner/evolving"].files()
        assert "model.safetensors" in server.repos["owner/evolving"].files()
    finally:
        server.stop()


def test_an_organisations_private_default_is_kept(env, tmp_path, monkeypatch):
    server = _hub(tmp_path, monkeypatch, private_by_default=("acme",))
    try:
        api.publish(_model("team"), "acme/team-style", token=OWNER_TOKEN)
        assert server.repos["acme/team-style"].private
        api.publish(_model("open2"), "acme/open-style", token=OWNER_TOKEN, private=False)
        assert not server.repos["acme/open-style"].private
    finally:
        server.stop()


def test_downloads_are_pinned_to_the_checked_commit(env, tmp_path, monkeypatch):
    server = _hub(tmp_path, monkeypatch)
    try:
        api.publish(_model("pinned"), "owner/pinned", token=OWNER_TOKEN)
        checked = {}
        real_check = hub_mod.check_remote_files

        def check_then_someone_pushes(repo_id, token=None):
            sha = real_check(repo_id, token)
            checked["sha"] = sha
            server.add_file(repo_id, "model.safetensors", b"pushed after the check: not a model")
            return sha

        monkeypatch.setattr(hub_mod, "check_remote_files", check_then_someone_pushes)
        folder = api.pull("hub:owner/pinned")
        assert folder.name == checked["sha"]
        assert any(f"/resolve/{checked['sha']}/" in path for _, path in server.requests)
        assert not any("/resolve/main/" in path for _, path in server.requests)
        assert api.load_model("cache:owner/pinned") is not None  # the checked weights, not the pushed bytes
    finally:
        server.stop()


def test_a_trailing_slash_in_hf_endpoint(env, tmp_path, monkeypatch):
    server = _hub(tmp_path, monkeypatch)
    try:
        monkeypatch.setenv("HF_ENDPOINT", server.url + "/")
        result = api.publish(_model("slash"), "owner/slash", token=OWNER_TOKEN)
        assert "//" not in result.url.split("://", 1)[1]
        assert hub_probe.hub_endpoint() == server.url and hub_mod._api().endpoint == server.url  # no "//api/..."
    finally:
        server.stop()


def test_http_errors_follow_the_installed_client(monkeypatch):
    """huggingface_hub 1.x brings httpx, 2.x httpx2: the registry must not need the one that is absent."""
    import httpx

    monkeypatch.setitem(sys.modules, "httpx2", None)
    assert hub_mod.http_errors() == (httpx.HTTPError,)
