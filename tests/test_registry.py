"""The model registry: format round trips, the Hub round trip through FakeHub, offline behaviour, plugins,
the pytorch/examples importer, and every bad-model case (each with its message; the rest stay usable)."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch
from fakehub import FakeHub, hub_env
from huggingface_hub import ModelCard
from torch import nn

from perceptual_studio import hub_probe
from perceptual_studio import networks
from perceptual_studio.networks.architectures import (
    DuplicateArchitectureError,
    get_architecture,
    register_architecture,
)
from perceptual_studio.registry import api, plugins
from perceptual_studio.registry.errors import (
    AmbiguousModelIdError,
    InvalidModelIdError,
    MissingPluginError,
    ModelFormatError,
    ModelNotFoundError,
    PublishError,
    RegistryError,
    UnsafeModelError,
)
from perceptual_studio.registry.legacy import import_legacy_checkpoint
from perceptual_studio.registry.model_format import load_model_folder, read_safetensors_header

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_test_secret_token_1234"
RANDOM_ID = "vgg16:random(seed=0)"


def tiny_style() -> networks.StyleTransformNet:
    torch.manual_seed(0)
    return networks.StyleTransformNet(width=0.25, num_residual=1).eval()


def tiny_sr() -> networks.SuperResolutionNet:
    torch.manual_seed(1)
    net = networks.SuperResolutionNet(scale=2, channels=8, num_residual=1)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a lost buffer would show
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net.eval()


def training(loss_network: str = RANDOM_ID) -> dict:
    return {"loss_network": loss_network, "content_layers": ["relu2_2"], "style_weight": 1e10, "iterations": 10,
            "seconds": 1.5, "device": "cpu", "evaluation": {"final_loss": 1.25}}


@pytest.fixture
def hub(env, tmp_path, monkeypatch):
    """FakeHub, reached through HF_ENDPOINT alone: huggingface_hub's import-time constants still say hf.co."""
    with FakeHub(tmp_path / "hub") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture
def offline_endpoint(env, tmp_path):
    """A closed port: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with hub_env(f"http://127.0.0.1:{port}", cache_dir=tmp_path / "hf-cache"):
        yield


def image(h: int = 32, w: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------ format


def test_save_and_load_folder_round_trip(env):
    style, sr = tiny_style(), tiny_sr()
    api.save_model(style, "mosaic", style="mosaic", training=training(), style_image=image(64, 64))
    api.save_model(sr, "sr-x2", training=training("vgg16:imagenet"))
    for model_id, original, x in (("local:mosaic", style, image()), ("sr-x2", sr, image(16, 12))):
        loaded = api.load_model(model_id, "cpu")
        assert not loaded.network.training and torch.equal(loaded.network(x), original(x))
    assert sorted(p.name for p in (env / "mosaic").iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                                   "style.jpg"]
    config = json.loads((env / "sr-x2" / "config.json").read_text())
    assert config["architecture"] == "johnson-sr" and config["task"] == "super-resolution" and config["scale"] == 2
    assert config["architecture_args"] == sr.config and config["training"]["loss_network"] == "vgg16:imagenet"
    loaded = api.load_model("local:mosaic", "cpu")
    assert loaded.config.training.loss_network == RANDOM_ID and loaded.config.style == "mosaic"
    assert loaded.model_id == "local:mosaic"


def test_second_load_comes_from_memory_and_sees_changes(env):
    api.save_model(tiny_style(), "mosaic", style="mosaic", training=training())
    first = api.load_model("mosaic", "cpu")
    start = time.perf_counter()
    assert api.load_model("local:mosaic", "cpu") is first
    assert time.perf_counter() - start < 0.2
    api.save_model(networks.StyleTransformNet(width=0.25, num_residual=2), "mosaic", style="mosaic", overwrite=True)
    assert api.load_model("mosaic", "cpu") is not first  # the folder changed: re-read


def test_card_metadata_and_random_loss_network_warning(env):
    api.save_model(tiny_style(), "random", style="waves", training=training(RANDOM_ID))
    api.save_model(tiny_style(), "imagenet", style="waves", training=training("vgg16:imagenet"))
    card = ModelCard.load(env / "random" / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "perceptual-studio" and data["pipeline_tag"] == "image-to-image"
    assert data["license"] == "mit"
    assert {"perceptual-studio", "style-transfer", "johnson-style"} <= set(data["tags"])
    assert data["perceptual_studio"]["loss_network"] == RANDOM_ID
    for section in ("## What it does", "## How to use", "## Training details"):
        assert section in card.text
    assert "RANDOM-weight loss network" in card.text and 'load_model("local:random")' in card.text
    assert "RANDOM" not in ModelCard.load(env / "imagenet" / "README.md").text


def test_loss_network_identities_load_and_are_described_truthfully(env):
    """Old identities still load; each card says which VGG-16 it was, the Oxford one with its attribution."""
    api.save_model(tiny_style(), "legacy", style="waves", training=training("vgg16:imagenet"))
    api.save_model(tiny_style(), "oxford", style="waves", training=training("vgg16:imagenet-caffe"))
    api.save_model(tiny_style(), "tv", style="waves", training=training("vgg16:imagenet-torchvision"))
    for name in ("legacy", "oxford", "tv"):
        assert api.load_model(f"local:{name}") is not None
    legacy = (env / "legacy" / "README.md").read_text()
    assert "`vgg16:imagenet`" in legacy and "torchvision" in legacy and "told apart" in legacy
    oxford = (env / "oxford" / "README.md").read_text()
    assert "Simonyan" in oxford and "CC BY 4.0" in oxford and "Oxford" in oxford
    tv = (env / "tv" / "README.md").read_text()
    assert "torchvision" in tv and "not the paper's Oxford weights" in tv


def test_save_refuses_inconsistent_arguments(env):
    with pytest.raises(ModelFormatError, match="does not match"):
        api.save_model(tiny_style(), "x", architecture_args={"width": 0.5, "num_residual": 1})
    with pytest.raises(ValueError, match="task"):
        api.save_model(tiny_style(), "x", task="denoising")
    api.save_model(tiny_style(), "x")
    with pytest.raises(FileExistsError):
        api.save_model(tiny_style(), "x")


# ------------------------------------------------------------------------------------------ ids


def test_model_id_parsing_and_ambiguity(env, tmp_path):
    assert api.parse_model_id("local:mosaic") == ("local", "mosaic")
    assert api.parse_model_id("hub:alice/mosaic") == ("hub", "alice/mosaic")
    assert api.parse_model_id("hf-hub:alice/mosaic") == ("hub", "alice/mosaic")
    assert api.parse_model_id("alice/mosaic") == ("hub", "alice/mosaic")
    assert api.parse_model_id("cache:alice/mosaic") == ("cache", "alice/mosaic")
    for bad in ("local:../etc", "local:a/b", "hub:a/b/c", "hub:a--b/c", "hub:../x", "ftp:x", "", "hub:mosaic"):
        with pytest.raises(InvalidModelIdError):
            api.resolve_model_id(bad)
    with pytest.raises(ModelNotFoundError):
        api.resolve_model_id("mosaic")
    api.save_model(tiny_style(), "mosaic")
    assert api.resolve_model_id("mosaic") == "local:mosaic"
    (tmp_path / "hf-cache" / "models--alice--mosaic").mkdir(parents=True)
    with pytest.raises(AmbiguousModelIdError, match="local:mosaic.*cache:alice/mosaic"):
        api.resolve_model_id("mosaic")
    assert api.resolve_model_id("local:mosaic") == "local:mosaic"


# ------------------------------------------------------------------------------------------ Hub round trip


def test_publish_list_pull_load_then_offline_from_cache(hub, env, tmp_path, monkeypatch):
    style, sr = tiny_style(), tiny_sr()
    api.save_model(style, "mosaic", style="mosaic", training=training(), preview=image(48, 48))
    api.save_model(sr, "sr-x2", training=training("vgg16:imagenet"))
    x, x_small = image(), image(16, 12)
    want, want_sr = style(x), sr(x_small)

    result = api.publish("local:mosaic", "studio/mosaic", token=TOKEN)
    assert result.url == f"{hub.url}/studio/mosaic" and result.commit == hub.repos["studio/mosaic"].sha
    api.publish(env / "sr-x2", "studio/sr-x2", token=TOKEN, private=True)
    assert hub.repos["studio/sr-x2"].private and not hub.repos["studio/mosaic"].private
    published = sorted(p.name for p in (hub.root / "studio/mosaic").iterdir())
    assert published == ["README.md", "config.json", "model.safetensors", "preview.jpg"]
    assert 'load_model("hub:studio/mosaic")' in (hub.root / "studio/mosaic/README.md").read_text()

    listing = api.list_models()
    assert listing.notices == [] and ("GET", "/api/models") in hub.requests
    entry = listing.get("hub:studio/mosaic")
    assert entry is not None and entry.task == "style-transfer" and entry.style == "mosaic"
    assert entry.loss_network == RANDOM_ID and not entry.ready_offline
    assert listing.get("hub:studio/sr-x2") is None  # private: invisible without a token
    assert [e.id for e in api.list_models(source="hub")] == ["hub:studio/mosaic"]

    with pytest.raises(ModelNotFoundError, match="private"):
        api.pull("studio/sr-x2")  # private and no token
    snapshot = api.pull("studio/mosaic")
    assert snapshot.is_relative_to(tmp_path / "hf-cache")
    sr_snapshot = api.pull("hub:studio/sr-x2", token=TOKEN)
    entry = api.list_models().get("hub:studio/mosaic")
    assert entry.ready_offline and entry.path == snapshot and entry.thumbnail == snapshot / "preview.jpg"

    loaded = api.load_model("hub:studio/mosaic", "cpu")
    assert torch.equal(loaded.network(x), want)
    requests = len(hub.requests)
    assert api.load_model("studio/mosaic", "cpu") is loaded and len(hub.requests) == requests  # from memory
    assert torch.equal(api.load_model("cache:studio/sr-x2", "cpu").network(x_small), want_sr)
    assert sr_snapshot.name == hub.repos["studio/sr-x2"].sha

    hub.stop()
    hub_probe._cache.clear()
    api.clear_memory_cache()
    with monkeypatch.context() as offline:
        offline.setenv("HF_HUB_OFFLINE", "1")
        listing = api.list_models()
        assert any("Hub unreachable" in n for n in listing.notices)
        assert {"local:mosaic", "cache:studio/mosaic", "cache:studio/sr-x2"} <= set(listing.ids)
        assert torch.equal(api.load_model("hub:studio/mosaic", "cpu").network(x), want)
        assert torch.equal(api.load_model("cache:studio/sr-x2", "cpu").network(x_small), want_sr)
    api.clear_memory_cache()
    start = time.perf_counter()  # not offline mode, server gone: the probe fails fast and the cache serves
    assert torch.equal(api.load_model("studio/mosaic", "cpu").network(x), want)
    assert time.perf_counter() - start < 5


def test_hub_authors_and_extra_repos(hub, env, monkeypatch):
    api.save_model(tiny_style(), "mosaic", style="mosaic")
    api.publish("mosaic", "alice/mosaic", token=TOKEN)
    api.publish("mosaic", "bob/mosaic", token=TOKEN)
    hub.add_file("carol/untagged", "config.json", b"{}")
    monkeypatch.setenv("PERCEPTUAL_HUB_AUTHORS", "bob")
    monkeypatch.setenv("PERCEPTUAL_HUB_MODELS", "carol/untagged, dave/missing, bad--id")
    listing = api.list_models(source="hub")
    assert listing.ids == ["hub:bob/mosaic", "hub:carol/untagged"]
    assert listing.get("hub:bob/mosaic").style == "mosaic" and listing.get("hub:carol/untagged").task is None
    assert len(listing.notices) == 2 and "dave/missing" in listing.notices[0] and "bad--id" in listing.notices[1]


def test_publish_errors_never_show_the_token(env, tmp_path, caplog):
    api.save_model(tiny_style(), "mosaic")
    with FakeHub(tmp_path / "hub", required_token="the-right-one") as server, hub_env(server.url):
        with pytest.raises(PublishError) as failed:
            api.publish("mosaic", "studio/mosaic", token=TOKEN)
        assert TOKEN not in str(failed.value) and TOKEN not in caplog.text
        assert "studio/mosaic" in str(failed.value)
        with pytest.raises(PublishError, match="no Hugging Face token"):
            api.publish("mosaic", "studio/mosaic")
        with pytest.raises(InvalidModelIdError):
            api.publish("mosaic", "not a repo", token=TOKEN)


def test_pull_refuses_pickles_and_oversized_files(hub, env, monkeypatch):
    hub.add_file("bob/pickled", "config.json", b"{}")
    hub.add_file("bob/pickled", "pytorch_model.bin", b"\x80\x04not really")
    with pytest.raises(UnsafeModelError, match="pickle.*import-legacy"):
        api.pull("bob/pickled")
    api.save_model(tiny_style(), "mosaic")
    api.publish("mosaic", "bob/big", token=TOKEN)
    monkeypatch.setenv("PERCEPTUAL_MAX_MODEL_MB", "0.001")
    with pytest.raises(UnsafeModelError, match="over the"):
        api.pull("bob/big")
    assert not any(path.endswith("model.safetensors") and verb == "GET" for verb, path in hub.requests)


# ------------------------------------------------------------------------------------------ offline


class SilentServer:
    """Accepts TCP connections and never answers: a Hub that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        try:
            while True:
                self.held.append(self.sock.accept()[0])
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize("kind", ["closed-port", "hanging-server"])
def test_unreachable_hub_lists_local_models_fast_with_notice(env, tmp_path, kind):
    api.save_model(tiny_style(), "mosaic", style="mosaic")
    silent = SilentServer() if kind == "hanging-server" else None
    if silent is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    else:
        url = silent.url
    try:
        with hub_env(url, cache_dir=tmp_path / "hf-cache"):
            start = time.perf_counter()
            listing = api.list_models()
            elapsed = time.perf_counter() - start
            assert elapsed < 5, elapsed
            assert listing.ids == ["local:mosaic"]
            assert any(n.startswith("Hub unreachable: showing local and cached models") for n in listing.notices)
            with pytest.raises(RegistryError, match="not in the HF cache"):
                api.load_model("alice/absent", "cpu")
    finally:
        if silent is not None:
            silent.close()


def test_hub_that_answers_the_probe_but_hangs_on_listing(env, monkeypatch):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from perceptual_studio.registry import hub as hub_mod

    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if "filter" in self.path:  # the real listing: never answered while the test runs
                release.wait(30)
            body = b"[]"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setattr(hub_mod, "HUB_LIST_DEADLINE_S", 1.0)
    api.save_model(tiny_style(), "mosaic")
    try:
        start = time.perf_counter()
        listing = api.list_models()
        assert time.perf_counter() - start < 3
        assert listing.ids == ["local:mosaic"]
        assert any("Hub unreachable" in n and "did not answer" in n for n in listing.notices)
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_cli_list_offline_in_a_fresh_process(env, tmp_path):
    api.save_model(tiny_sr(), "sr-x2", training=training("vgg16:imagenet"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    environment = {**os.environ, "HF_ENDPOINT": url, "PERCEPTUAL_MODELS_DIR": str(env),
                   "HF_HUB_CACHE": str(tmp_path / "hf-cache"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "registry", "list"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "local:sr-x2" in done.stdout and "x2" in done.stdout and "vgg16:imagenet" in done.stdout
    assert "notice: Hub unreachable" in done.stderr and "Traceback" not in done.stderr
    assert time.perf_counter() - start < 30


def test_cli_errors_are_one_line(env, offline_endpoint, capsys):
    from perceptual_studio.registry.__main__ import main

    api.save_model(tiny_style(), "mosaic", style="mosaic")
    assert main(["list", "--task", "style-transfer"]) == 0
    out = capsys.readouterr()
    assert "local:mosaic" in out.out and "Hub unreachable" in out.err
    assert main(["list", "--source", "local", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"][0]["id"] == "local:mosaic"
    assert main(["show", "mosaic"]) == 0
    assert "RANDOM" not in capsys.readouterr().out
    for argv, code in ((["show", "nope"], 1), (["show", "hub:a--b/c"], 2), (["pull", "alice/x"], 1),
                       (["publish", "mosaic", "alice/x"], 1)):
        assert main(argv) == code
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


# ------------------------------------------------------------------------------------------ bad models


def _bad_models(models: Path) -> dict[str, str]:
    """Make one folder per failure mode; return {name: expected message fragment}."""
    api.save_model(tiny_style(), "good", style="good")
    good = models / "good"
    expected = {}

    def clone(name: str) -> Path:
        import shutil

        return Path(shutil.copytree(good, models / name))

    weights = clone("truncated") / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    expected["truncated"] = "corrupt or truncated"

    (clone("garbage") / "model.safetensors").write_bytes(b"\x00\x01not safetensors at all" * 10)
    expected["garbage"] = "corrupt or truncated"

    config = clone("wrong-shapes") / "config.json"
    data = json.loads(config.read_text())
    data["architecture_args"]["width"] = 0.5
    config.write_text(json.dumps(data))
    expected["wrong-shapes"] = "does not match config.json.*wrong shape"

    (clone("no-weights") / "model.safetensors").unlink()
    expected["no-weights"] = "missing model.safetensors"

    (clone("no-config") / "config.json").unlink()
    expected["no-config"] = "missing config.json"

    (clone("bad-json") / "config.json").write_text("{not json")
    expected["bad-json"] = "not valid JSON"

    folder = clone("pickled")
    (folder / "model.safetensors").unlink()
    torch.save(tiny_style().state_dict(), folder / "model.pth")
    expected["pickled"] = "only safetensors.*import-legacy"

    config = clone("unknown-arch") / "config.json"
    data = json.loads(config.read_text())
    data["architecture"] = "fancy-net"
    config.write_text(json.dumps(data))
    expected["unknown-arch"] = "no installed plugin provides architecture 'fancy-net'.*johnson-style"

    config = clone("bad-args") / "config.json"
    data = json.loads(config.read_text())
    data["architecture_args"]["norm"] = "magic"
    config.write_text(json.dumps(data))
    expected["bad-args"] = "architecture_args .* do not fit"

    api.save_model(networks.StyleTransformNet(width=1.0, num_residual=1), "too-big")
    expected["too-big"] = "over the 1 MiB limit"
    return expected


def test_each_bad_model_has_its_message_and_the_rest_still_work(env, offline_endpoint, monkeypatch):
    expected = _bad_models(env)
    monkeypatch.setenv("PERCEPTUAL_MAX_MODEL_MB", "1")
    listing = api.list_models()
    assert len(listing) == len(expected) + 1
    assert listing.get("local:good").error is None and listing.get("local:good").ready_offline
    for name, pattern in expected.items():
        entry = listing.get(f"local:{name}")
        assert entry is not None and not entry.ready_offline, name
        assert entry.error and re.search(pattern, entry.error), (name, entry.error)
        with pytest.raises(RegistryError, match=pattern):
            api.load_model(f"local:{name}", "cpu")
    assert listing.get("local:unknown-arch").task == "style-transfer"  # still described where possible
    assert isinstance(_raised(lambda: api.load_model("local:unknown-arch", "cpu")), MissingPluginError)
    assert isinstance(_raised(lambda: api.load_model("local:pickled", "cpu")), UnsafeModelError)
    x = image()
    assert torch.equal(api.load_model("local:good", "cpu").network(x), tiny_style()(x))


def _raised(func) -> BaseException:
    try:
        func()
    except BaseException as exc:  # noqa: BLE001
        return exc
    raise AssertionError("did not raise")


def test_safetensors_header_checks(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "m" / "model.safetensors"
    path.parent.mkdir()
    save_file({"a": torch.zeros(2, 3), "b": torch.ones(4, dtype=torch.int64)}, str(path))
    assert read_safetensors_header(path) == {"a": ("F32", (2, 3)), "b": ("I64", (4,))}
    data = path.read_bytes()
    for broken in (data[:5], data[:-1], data + b"\x00", b"\xff" * 8 + data[8:]):
        path.write_bytes(broken)
        with pytest.raises(ModelFormatError, match="corrupt or truncated"):
            read_safetensors_header(path)


# ------------------------------------------------------------------------------------------ plugins


def _install_dist(root: Path, dist: str, module: str, source: str, entry_points: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{plugins.ENTRY_POINT_GROUP}]\n{lines}\n")


PLUGIN_SOURCE = """
    import torch
    from torch import nn

    class TinyNet(nn.Module):
        task = "style-transfer"

        def __init__(self, channels: int = 4):
            super().__init__()
            self.config = {"channels": channels}
            self.body = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, 3, 1))

        def forward(self, x):
            return torch.sigmoid(self.body(x))

    class Broken:
        pass
"""


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    plugins.reset_plugins()
    yield root
    plugins.reset_plugins()
    for name in [m for m in sys.modules if m.startswith("tiny_plugin") or m.startswith("dup_plugin")]:
        del sys.modules[name]


def test_entry_point_plugin_is_discovered_and_loads_models(env, plugin_path, offline_endpoint, monkeypatch):
    _install_dist(plugin_path, "tiny-plugin", "tiny_plugin_mod", PLUGIN_SOURCE,
                  {"tiny-net": "tiny_plugin_mod:TinyNet", "broken-net": "tiny_plugin_mod:Broken",
                   "missing-net": "tiny_plugin_missing:Net"})
    report = plugins.load_plugins()
    assert report.loaded == ["tiny-net"]
    assert len(report.errors) == 2 and not report.duplicates  # broken plugins are reported, not fatal
    arch = get_architecture("tiny-net")
    assert arch.task == "style-transfer" and "tiny-plugin" in arch.provider
    net = arch.constructor(channels=5).eval()
    api.save_model(net, "tiny", style="tiny")
    x = image()
    assert torch.equal(api.load_model("tiny", "cpu").network(x), net(x))
    assert any("broken-net" in n for n in api.list_models().notices)

    plugins.reset_plugins()  # "uninstall" it: the model now names a missing plugin
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(plugin_path)])
    api.clear_memory_cache()
    with pytest.raises(MissingPluginError, match="'tiny-net'.*installed architectures: johnson-sr, johnson-style"):
        api.load_model("tiny", "cpu")
    assert "tiny-net" in api.list_models().get("local:tiny").error


def test_duplicate_plugin_name_raises_and_builtin_stays(env, plugin_path, offline_endpoint):
    _install_dist(plugin_path, "dup-plugin", "dup_plugin_mod", PLUGIN_SOURCE, {"johnson-style": "dup_plugin_mod:TinyNet"})
    with pytest.raises(DuplicateArchitectureError, match="johnson-style"):
        plugins.load_plugins()
    with pytest.raises(DuplicateArchitectureError):
        plugins.load_plugins()  # still a clash on later calls
    assert get_architecture("johnson-style").constructor is networks.StyleTransformNet
    api.save_model(tiny_style(), "mosaic")
    listing = api.list_models()  # the registry stays usable and says what is wrong
    assert listing.get("local:mosaic").error is None
    assert any("already registered" in n for n in listing.notices)
    with pytest.raises(DuplicateArchitectureError):
        register_architecture("johnson-style", task="style-transfer")(nn.Identity)


# ------------------------------------------------------------------------------------------ legacy


class _RefConvLayer(nn.Module):  # pytorch/examples fast_neural_style/neural_style/transformer_net.py, verbatim
    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super().__init__()
        reflection_padding = kernel_size // 2
        self.reflection_pad = nn.ReflectionPad2d(reflection_padding)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        return self.conv2d(self.reflection_pad(x))


class _RefResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = _RefConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = _RefConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x):
        residual = x
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        return out + residual


class _RefUpsampleConvLayer(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, upsample=None):
        super().__init__()
        self.upsample = upsample
        reflection_padding = kernel_size // 2
        self.reflection_pad = nn.ReflectionPad2d(reflection_padding)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        x_in = x
        if self.upsample:
            x_in = nn.functional.interpolate(x_in, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x_in))


class _RefTransformerNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = _RefConvLayer(3, 32, kernel_size=9, stride=1)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = _RefConvLayer(32, 64, kernel_size=3, stride=2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = _RefConvLayer(64, 128, kernel_size=3, stride=2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        self.res1 = _RefResidualBlock(128)
        self.res2 = _RefResidualBlock(128)
        self.res3 = _RefResidualBlock(128)
        self.res4 = _RefResidualBlock(128)
        self.res5 = _RefResidualBlock(128)
        self.deconv1 = _RefUpsampleConvLayer(128, 64, kernel_size=3, stride=1, upsample=2)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.deconv2 = _RefUpsampleConvLayer(64, 32, kernel_size=3, stride=1, upsample=2)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = _RefConvLayer(32, 3, kernel_size=9, stride=1)
        self.relu = nn.ReLU()

    def forward(self, X):
        y = self.relu(self.in1(self.conv1(X)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res5(self.res4(self.res3(self.res2(self.res1(y)))))
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def _legacy_checkpoint(path: Path) -> _RefTransformerNet:
    torch.manual_seed(3)
    reference = _RefTransformerNet().eval()
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, nn.InstanceNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    state = reference.state_dict()
    for key in [k for k in state if k.split(".")[-2].startswith("in") and k.endswith(".weight")]:
        prefix = key[: -len("weight")]  # what pre-0.4 InstanceNorm saved: stale running statistics
        state[prefix + "running_mean"] = torch.zeros_like(state[key])
        state[prefix + "running_var"] = torch.ones_like(state[key])
    assert "res3.in2.running_var" in state and "in5.running_mean" in state
    torch.save(state, path)
    return reference


def test_legacy_checkpoint_imports_to_identical_outputs(env, tmp_path, offline_endpoint):
    reference = _legacy_checkpoint(tmp_path / "candy.pth")
    folder = import_legacy_checkpoint(tmp_path / "candy.pth")
    assert folder == env / "candy"
    model = api.load_model("local:candy", "cpu")
    assert model.config.architecture == "pytorch-examples-transformer" and model.config.style == "candy"
    assert model.config.training.extra["imported_from"] == "candy.pth"
    for h, w in ((32, 48), (30, 37)):
        x = image(h, w, seed=h)
        with torch.no_grad():
            want = reference(x * 255).clamp(0, 255)[..., :h, :w] / 255  # neural_style.py stylize + save_image
            got = model.network(x)
        assert got.shape == x.shape and torch.equal(got, want)
    config = json.loads((folder / "config.json").read_text())
    assert config["training"]["loss_network"] == "vgg16:imagenet-torchvision" and "Provenance" in (folder / "README.md").read_text()
    # The original layout also loads straight from the .pth with the stale keys (strict key matching).
    net = networks.legacy.PyTorchExamplesTransformerNet()
    net.load_state_dict(torch.load(tmp_path / "candy.pth", weights_only=True), strict=True)


def test_legacy_importer_refuses_what_is_not_a_plain_state_dict(env, tmp_path):
    torch.save({"conv1.conv2d.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(ModelFormatError, match="missing tensors"):
        import_legacy_checkpoint(tmp_path / "wrong.pth")
    torch.save({"state": _Evil()}, tmp_path / "evil.pth")
    with pytest.raises(ModelFormatError, match="weights_only"):
        import_legacy_checkpoint(tmp_path / "evil.pth")
    assert not (env / "wrong").exists() and not (env / "evil").exists()


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_load_model_folder_directly_for_a_path(tmp_path):
    from perceptual_studio.registry.model_format import save_model

    folder = save_model(tiny_style(), tmp_path / "anywhere" / "model", style="x")
    x = image()
    assert torch.equal(load_model_folder(folder, "cpu").network(x), tiny_style()(x))


def test_calling_a_loaded_model_runs_it_as_the_pipelines_do(env):
    """``LoadedModel(x)`` is :func:`networks.inference.infer` (the machine's plan, tiles, clamping), not the
    bare network: a caller gets what the app shows."""
    from perceptual_studio.networks.inference import infer

    api.save_model(tiny_style(), "mosaic", style="mosaic", training=training())
    loaded = api.load_model("local:mosaic", "cpu")
    x = image(48, 40)
    out = loaded(x)
    assert out.shape == x.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out, infer(loaded.network, x, whole_image_tile=1024).output)


def test_a_model_folder_loads_by_its_path(env, tmp_path):
    folder = api.save_model(tiny_style(), tmp_path / "elsewhere" / "mosaic", style="mosaic", training=training())
    by_path = api.load_model(folder, "cpu")
    by_text = api.load_model(str(folder), "cpu")
    assert by_path is by_text and by_path.model_id is None and by_path.folder == folder
    assert api.read_config(folder)[1].style == "mosaic"
    with pytest.raises(api.RegistryError):
        api.load_model(tmp_path / "missing", "cpu")


@pytest.mark.slow
def test_thirty_models_keep_a_level_memory(env, monkeypatch):
    """A Space serving 30 paper-size style models: the loaded ones stay within the cache's byte budget (least
    recently used dropped first), and a dropped model is freed: nothing else (prepared copies, runtime choices,
    locks) keeps it alive, so memory stays level however many models are served."""
    import gc
    import weakref

    monkeypatch.setenv("PERCEPTUAL_MODEL_CACHE_MB", "32")
    for i in range(30):
        api.save_model(networks.StyleTransformNet(), f"style-{i}", style=f"s{i}", training=training())
    x = image(32, 32)
    seen = []
    for _ in range(3):
        for i in range(30):
            model = api.load_model(f"local:style-{i}", "cpu")
            assert model(x).shape == x.shape
            assert api.memory_cache_bytes() <= 32 * 2**20
            seen.append(weakref.ref(model.network))
    del model
    fits = 32 * 2**20 // sum(t.numel() * t.element_size() for t in networks.StyleTransformNet().state_dict().values())
    for _ in range(50):  # a runtime measurement in the background may hold the newest model for a moment
        gc.collect()
        alive = sum(ref() is not None for ref in seen)
        if alive <= fits:
            break
        time.sleep(0.2)
    assert len(seen) == 90 and alive <= fits, (alive, fits)
