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


# ------------------------------------------------------------------------------------------ dataset repos


def _png(seed: int, size: int = 8) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _seed_sr_dataset(hub: FakeHub, repo_id: str) -> dict[str, bytes]:
    files = {"README.md": b"---\nlicense: mit\ntags:\n- super-resolution\n---\n# Pairs\n"}
    for index in range(3):
        files[f"HR/{index:04d}.png"] = _png(index, 16)
        files[f"LR/{index:04d}.png"] = _png(100 + index, 4)
    for path, data in files.items():
        hub.add_file(repo_id, path, data, repo_type="dataset")
    return files


def test_dataset_snapshot_download_with_allow_patterns(hub, tmp_path):
    files = _seed_sr_dataset(hub, "studio/pairs")
    hub.add_file("studio/pairs", "config.json", b'{"model": true}')  # a model repo with the same id: its own repo
    sha = hub.datasets["studio/pairs"].sha
    assert hub.repos["studio/pairs"].sha != sha

    snapshot = pathlib.Path(snapshot_download("studio/pairs", repo_type="dataset", allow_patterns=["HR/*.png"]))
    assert snapshot.is_relative_to(tmp_path / "cache" / "datasets--studio--pairs") and snapshot.name == sha
    got = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file())
    assert got == ["HR/0000.png", "HR/0001.png", "HR/0002.png"]
    for name in got:
        assert (snapshot / name).read_bytes() == files[name]
    # The client's own requests, on the dataset routes: repo_info, the recursive tree, then HEAD per file.
    assert ("GET", "/api/datasets/studio/pairs/revision/main") in hub.requests
    assert ("GET", f"/api/datasets/studio/pairs/tree/{sha}") in hub.requests
    assert ("HEAD", f"/datasets/studio/pairs/resolve/{sha}/HR/0000.png") in hub.requests
    assert not any("/LR/" in path or path.endswith("README.md") for _, path in hub.requests)
    # A PNG of a dataset repo is an LFS file: its cache blob is named by the X-Linked-Etag (sha256).
    blobs = {p.name for p in (tmp_path / "cache" / "datasets--studio--pairs" / "blobs").iterdir()}
    assert hashlib.sha256(files["HR/0000.png"]).hexdigest() in blobs

    readme = hf_hub_download("studio/pairs", "README.md", repo_type="dataset")
    assert pathlib.Path(readme).read_bytes() == files["README.md"] and pathlib.Path(readme).parent == snapshot
    info = HfApi(endpoint=hub.url).dataset_info("studio/pairs", files_metadata=True)
    assert info.sha == sha and {"super-resolution", "license:mit"} <= set(info.tags)
    sizes = {s.rfilename: (s.size, s.lfs.sha256 if s.lfs else None) for s in info.siblings}
    assert sizes["LR/0001.png"] == (len(files["LR/0001.png"]), hashlib.sha256(files["LR/0001.png"]).hexdigest())
    assert sizes["README.md"] == (len(files["README.md"]), None)
    model = pathlib.Path(snapshot_download("studio/pairs"))  # the model repo of the same id
    assert sorted(p.name for p in model.iterdir()) == ["config.json"]


def test_missing_dataset_raises_repository_not_found(hub):
    hub.add_file("studio/only-a-model", "config.json", b"{}")  # a model repo of that id is no dataset
    for repo_id in ("studio/nope", "studio/only-a-model"):
        with pytest.raises(RepositoryNotFoundError) as missing:
            snapshot_download(repo_id, repo_type="dataset", allow_patterns=["*.png"])
        assert missing.value.response.status_code == 404
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(repo_id, "README.md", repo_type="dataset")
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=hub.url).dataset_info(repo_id)


def test_resolve_image_source_downloads_a_hub_dataset_from_the_fake(hub, monkeypatch):
    from perceptual_studio import hub_probe
    from perceptual_studio.train.data import DataError, find_images, resolve_image_source

    monkeypatch.setattr(hub_probe, "_cache", {})  # probe this server afresh: it answers /api/models
    files = _seed_sr_dataset(hub, "owner/name")
    assert hub_probe.probe_hub() == (True, "ok")

    folder, label = resolve_image_source("owner/name", what="evaluation")
    assert label == "hf-dataset:owner/name"
    images = {p.relative_to(folder).as_posix(): p.read_bytes() for p in find_images(folder)}
    assert images == {name: data for name, data in files.items() if name.endswith(".png")}
    assert not (folder / "README.md").exists()  # only image files are asked for
    assert ("GET", "/api/models") in hub.requests  # the probe went to the fake too
    with pytest.raises(DataError, match="evaluation dataset owner/missing was not found"):
        resolve_image_source("owner/missing", what="evaluation")
