"""The FakeHub stand-in server, driven through huggingface_hub's real client code (no network)."""

from __future__ import annotations

import hashlib
import json
import pathlib

import huggingface_hub
import pytest
import torch
from fakehub import FakeHub, hub_env
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors.torch import save_file

TOKEN = "hf_fake_token"
README = """---
library_name: perceptual-studio
license: mit
tags:
- perceptual-studio
- style-transfer
---
# Mosaic

A tiny style network.
"""


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with FakeHub(tmp_path / "hub") as server, hub_env(server.url, cache_dir=tmp_path / "cache"):
        yield server


def make_model_folder(folder: pathlib.Path) -> pathlib.Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"channels": 8, "style": "mosaic"}))
    save_file({"conv.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2)}, folder / "model.safetensors")
    (folder / "README.md").write_text(README)
    return folder


def publish(api: HfApi, repo_id: str, folder: pathlib.Path, *, private: bool = False, token: str = TOKEN) -> str:
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True, token=token)
    return api.upload_folder(folder_path=folder, repo_id=repo_id, token=token, commit_message="add model").oid


# The real Hub sends model.safetensors (an LFS pattern of every new repo) through LFS or Xet. FakeHub emulates
# the LFS batch API and refuses Xet, so `hub_env` turns hf_xet off and 2.4 takes its legacy LFS path.
def test_round_trip_publish_discover_download_then_offline(hub, tmp_path):
    api = HfApi(endpoint=hub.url)
    folder = make_model_folder(tmp_path / "model")
    oid = publish(api, "studio/mosaic", folder)
    assert oid == hub.repos["studio/mosaic"].sha and len(oid) == 40
    for step in ("/api/repos/create", "/api/validate-yaml", "/api/models/studio/mosaic/preupload/main",
                 "/studio/mosaic.git/info/lfs/objects/batch", "/api/models/studio/mosaic/commit/main"):
        assert ("POST", step) in hub.requests
    weights_sha256 = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert ("PUT", f"/lfs-upload/{weights_sha256}") in hub.requests

    found = list(api.list_models(filter="perceptual-studio", full=True, cardData=True))
    assert [m.id for m in found] == ["studio/mosaic"]
    assert {"perceptual-studio", "style-transfer", "license:mit", "safetensors"} <= set(found[0].tags)
    assert found[0].library_name == "perceptual-studio" and found[0].sha == oid
    assert found[0].card_data.tags == ["perceptual-studio", "style-transfer"]
    assert {s.rfilename for s in found[0].siblings} == {"README.md", "config.json", "model.safetensors"}
    assert [m.id for m in api.list_models(filter=["perceptual-studio", "style-transfer"], author="studio")] == [
        "studio/mosaic"
    ]
    assert list(api.list_models(filter="perceptual-studio", author="someone-else")) == []
    assert list(api.list_models(filter="image-classification")) == []
    assert [m.id for m in api.list_models(search="mosa", limit=5)] == ["studio/mosaic"]

    info = api.model_info("studio/mosaic", files_metadata=True)
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes == {p.name: p.stat().st_size for p in folder.iterdir()}
    assert info.sha == oid and info.private is False

    snapshot = pathlib.Path(snapshot_download("studio/mosaic"))
    assert snapshot.is_relative_to(tmp_path / "cache") and snapshot.name == oid
    for path in folder.iterdir():
        assert (snapshot / path.name).read_bytes() == path.read_bytes()
    assert ("HEAD", "/studio/mosaic/resolve/" + oid + "/model.safetensors") in hub.requests

    hub.stop()
    assert pathlib.Path(snapshot_download("studio/mosaic", local_files_only=True)) == snapshot
    assert pathlib.Path(snapshot_download("studio/mosaic")) == snapshot  # server gone: falls back to the cache
    with hub_env(hub.url, offline=True):
        assert pathlib.Path(snapshot_download("studio/mosaic")) == snapshot
        cached = hf_hub_download("studio/mosaic", "config.json")
        assert pathlib.Path(cached).read_bytes() == (folder / "config.json").read_bytes()
        with pytest.raises(LocalEntryNotFoundError):
            hf_hub_download("studio/other", "config.json")


def test_downloads_by_revision_and_allow_patterns(hub, tmp_path):
    hub.add_file("studio/seeded", "config.json", b'{"a": 1}')
    first = hub.repos["studio/seeded"].sha
    hub.add_file("studio/seeded", "weights/model.safetensors", b"\x00" * 64)
    sha = hub.repos["studio/seeded"].sha
    assert sha != first

    only_json = pathlib.Path(snapshot_download("studio/seeded", allow_patterns=["*.json"]))
    assert sorted(p.name for p in only_json.rglob("*") if p.is_file()) == ["config.json"]
    path = hf_hub_download("studio/seeded", "weights/model.safetensors", revision=sha)
    assert pathlib.Path(path).read_bytes() == b"\x00" * 64
    assert pathlib.Path(path).parent.parent == only_json  # same snapshot folder, keyed by the commit sha
    files = HfApi(endpoint=hub.url).list_repo_files("studio/seeded")
    assert files == ["config.json", "weights/model.safetensors"]
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("studio/seeded", "config.json", revision="f" * 40)


def test_unknown_repo_and_missing_file(hub):
    api = HfApi(endpoint=hub.url)
    hub.add_file("studio/mosaic", "config.json", b"{}")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("studio/nope")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("studio/nope", "config.json")
    with pytest.raises(RemoteEntryNotFoundError) as missing:
        hf_hub_download("studio/mosaic", "model.safetensors")
    assert isinstance(missing.value, EntryNotFoundError) and missing.value.response.status_code == 404
    assert not api.file_exists("studio/mosaic", "model.safetensors")
    assert api.file_exists("studio/mosaic", "config.json") and api.repo_exists("studio/mosaic")
    with pytest.raises(HfHubHTTPError) as unserved:
        list(api.list_datasets())
    assert unserved.value.response.status_code == 501  # unserved routes fail fast and say so


def test_required_token_rejects_wrong_token(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with FakeHub(tmp_path / "hub", required_token="right") as server, hub_env(server.url, cache_dir=tmp_path / "c"):
        api = HfApi(endpoint=server.url)
        with pytest.raises(HfHubHTTPError) as denied:
            api.create_repo("studio/mosaic", token="wrong")
        assert denied.value.response.status_code == 401
        assert not isinstance(denied.value, RepositoryNotFoundError)
        with pytest.raises(HfHubHTTPError) as denied:
            api.whoami(token="wrong")
        assert denied.value.response.status_code == 401
        assert api.whoami(token="right")["name"] == "fake-user"

        folder = make_model_folder(tmp_path / "model")
        publish(api, "studio/mosaic", folder, token="right")
        with pytest.raises(HfHubHTTPError) as denied:
            api.upload_folder(folder_path=folder, repo_id="studio/mosaic", token="wrong", commit_message="x")
        assert denied.value.response.status_code == 401
        assert [m.id for m in api.list_models(filter="style-transfer", token=False)] == ["studio/mosaic"]


def test_private_repo_hidden_without_token(hub, tmp_path):
    api = HfApi(endpoint=hub.url)
    publish(api, "studio/secret", make_model_folder(tmp_path / "model"), private=True)
    assert [m.id for m in api.list_models(filter="perceptual-studio", token=TOKEN)] == ["studio/secret"]
    assert list(api.list_models(filter="perceptual-studio", token=False)) == []
    assert api.model_info("studio/secret", token=TOKEN).private is True
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("studio/secret", token=False)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("studio/secret", "config.json", token=False)
    assert pathlib.Path(hf_hub_download("studio/secret", "config.json", token=TOKEN)).is_file()


def test_module_level_functions_follow_hub_env_and_skip_unchanged(hub, tmp_path):
    folder = make_model_folder(tmp_path / "model")
    url = huggingface_hub.create_repo("mosaic", token=TOKEN)  # no namespace: the token's user
    assert url.repo_id == "fake-user/mosaic" and url.startswith(hub.url)
    first = huggingface_hub.upload_folder(folder_path=folder, repo_id="fake-user/mosaic", token=TOKEN).oid
    assert [m.id for m in huggingface_hub.list_models(filter="style-transfer")] == ["fake-user/mosaic"]
    again = huggingface_hub.upload_folder(folder_path=folder, repo_id="fake-user/mosaic", token=TOKEN).oid
    assert again == first  # preupload returned each file's oid: nothing changed, so no new commit
    (folder / "config.json").write_text("{}")
    third = huggingface_hub.upload_folder(folder_path=folder, repo_id="fake-user/mosaic", token=TOKEN).oid
    assert third != first and (hub.root / "fake-user/mosaic/config.json").read_text() == "{}"
    assert huggingface_hub.whoami(token=TOKEN)["name"] == "fake-user"
    with pytest.raises(HfHubHTTPError):
        huggingface_hub.create_repo("fake-user/mosaic", token=TOKEN)  # 409 without exist_ok
    assert not any(path.startswith("/api/agent-harnesses") for _, path in hub.requests)  # telemetry is off


def _commit_inline(hub: FakeHub, repo_id: str, path: str, data: bytes) -> tuple[int, bytes]:
    """A raw commit that sends ``data`` inline (base64), as a client that ignored preupload would."""
    import base64
    import urllib.error
    import urllib.request

    lines = [{"key": "header", "value": {"summary": "inline"}},
             {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}]
    request = urllib.request.Request(f"{hub.url}/api/models/{repo_id}/commit/main", method="POST",
                                     data="\n".join(json.dumps(line) for line in lines).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_inline_uploads_over_10_mib_or_binary_are_refused_as_by_the_hub(hub):
    HfApi(endpoint=hub.url).create_repo("studio/big", token=TOKEN)
    status, body = _commit_inline(hub, "studio/big", "notes.txt", b"a" * (10 * 1024 * 1024 + 1))
    assert status == 400 and b"larger than 10 MiB" in body
    status, body = _commit_inline(hub, "studio/big", "model.safetensors", b"small but an LFS pattern")
    assert status == 400 and b"binary files" in body
    status, body = _commit_inline(hub, "studio/big", "notes.txt", b"plain text")
    assert status == 200, body


def test_preupload_sends_big_and_binary_files_to_lfs(hub, tmp_path):
    api = HfApi(endpoint=hub.url)
    api.create_repo("studio/modes", token=TOKEN)
    folder = tmp_path / "modes"
    folder.mkdir()
    (folder / "notes.md").write_text("text")
    (folder / "preview.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 100)
    (folder / "big.txt").write_bytes(b"b" * (10 * 1024 * 1024 + 7))
    api.upload_folder(folder_path=folder, repo_id="studio/modes", token=TOKEN)
    uploaded = {p for m, p in hub.requests if m == "PUT"}
    lfs = {hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in ("preview.jpg", "big.txt")}
    assert uploaded == {f"/lfs-upload/{oid}" for oid in lfs}
    tree = {e.path: e for e in api.list_repo_tree("studio/modes")}
    assert tree["notes.md"].lfs is None and tree["big.txt"].lfs.size == 10 * 1024 * 1024 + 7
    assert pathlib.Path(hf_hub_download("studio/modes", "big.txt")).read_bytes() == (folder / "big.txt").read_bytes()


def test_xet_is_refused_and_a_corrupt_lfs_upload_is_rejected(hub, tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", False)
    api = HfApi(endpoint=hub.url)
    with pytest.raises(Exception, match="xet-write-token"):
        publish(api, "studio/xet", make_model_folder(tmp_path / "model"))
    assert "studio/xet" in hub.repos and hub.repos["studio/xet"].files() == []  # nothing half-committed

    oid = hashlib.sha256(b"expected").hexdigest()
    request = urllib.request.Request(f"{hub.url}/lfs-upload/{oid}", data=b"something else", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400 and oid not in hub.lfs_objects
