"""The ONNX model zoo importer (registry/onnx_graph.py, registry/onnx_zoo.py, ``python -m registry import-onnx`` /
``import-zoo``, the Models tab's ``/import_zoo_styles``): a TransformerNet exported the zoo's way, served by the
stand-in Hub as ``onnxmodelzoo/candy-9``, imports through the real Hub code and computes what onnxruntime
computes on the ONNX file; corrupt and foreign files, a missing repo and an unreachable Hub get one clear sentence.

The zoo's files are opset 9; the TorchScript exporter (``torch.onnx.export(..., dynamo=False)``) of the
installed torch still writes opset 9, so the fixtures are exported at opset 9 (and 17, to cover ``Resize`` and
pads computed by shape arithmetic).
"""
from __future__ import annotations

import hashlib
import json
import socket
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from fakehub import FakeHub, hub_env  # noqa: E402

from perceptual_studio.networks.legacy import PyTorchExamplesTransformerNet  # noqa: E402
from perceptual_studio.registry import api  # noqa: E402
from perceptual_studio.registry.errors import HubUnavailableError, ModelFormatError  # noqa: E402
from perceptual_studio.registry.onnx_zoo import import_onnx_model, import_zoo_styles  # noqa: E402

ZOO_OPSET = 9
SIZES = ((67, 90), (64, 96))  # not a multiple of 4 (the ONNX graph then returns 68 x 92), and one that is


class ZooExport(nn.Module):
    """What the zoo exported: the original forward, [0, 255] in and unclamped out."""

    def __init__(self, net: PyTorchExamplesTransformerNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_255(x)


def random_transformer(seed: int = 0) -> PyTorchExamplesTransformerNet:
    """Seeded weights; instance-norm affine parameters away from (1, 0), outputs spread over 0..255."""
    torch.manual_seed(seed)
    net = PyTorchExamplesTransformerNet().eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.InstanceNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
        net.deconv3.conv2d.weight.mul_(100)
        net.deconv3.conv2d.bias.fill_(128)
    return net


def export_zoo_style(net: nn.Module, path: Path, opset: int = ZOO_OPSET) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(ZooExport(net), (torch.rand(1, 3, 64, 64) * 255,), str(path), dynamo=False,
                          opset_version=opset, input_names=["input1"], output_names=["output1"],
                          dynamic_axes={"input1": {2: "height", 3: "width"}, "output1": {2: "oh", 3: "ow"}})
    return path


def as_2019_export(source: Path, target: Path) -> Path:
    """The zoo's 2019 form: numbered initializers that are also graph inputs, a static 1x3x224x224 input, and
    Upsample scales computed from the tensor's shape (how PyTorch 1.x exported ``F.interpolate``)."""
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    names = {t.name: str(i + 1) for i, t in enumerate(graph.initializer)}
    for tensor in graph.initializer:
        tensor.name = names[tensor.name]
    nodes = []
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        if node.op_type == "Upsample":
            x, tag = node.input[0], node.name.replace("/", "_")
            nodes += [
                helper.make_node("Shape", [x], [f"{tag}_shape"]),
                helper.make_node("Slice", [f"{tag}_shape"], [f"{tag}_hw"], starts=[2], ends=[4]),
                helper.make_node("Cast", [f"{tag}_hw"], [f"{tag}_hwf"], to=TensorProto.FLOAT),
                helper.make_node("Constant", [], [f"{tag}_two"], value=numpy_helper.from_array(np.array(2, np.float32))),
                helper.make_node("Mul", [f"{tag}_hwf", f"{tag}_two"], [f"{tag}_out"]),
                helper.make_node("Floor", [f"{tag}_out"], [f"{tag}_outf"]),
                helper.make_node("Div", [f"{tag}_outf", f"{tag}_hwf"], [f"{tag}_s"]),
                helper.make_node("Constant", [], [f"{tag}_ones"], value=numpy_helper.from_array(np.ones(2, np.float32))),
                helper.make_node("Concat", [f"{tag}_ones", f"{tag}_s"], [f"{tag}_scales"], axis=0),
            ]
            node.input[1] = f"{tag}_scales"
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    for dim, value in zip(graph.input[0].type.tensor_type.shape.dim, (1, 3, 224, 224)):
        dim.Clear()
        dim.dim_value = value
    graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in graph.initializer)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return target


def onnxruntime_output(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output1"], {"input1": x})[0]


def assert_matches_onnxruntime(model_id: str, onnx_path: Path, sizes=SIZES) -> None:
    model = api.load_model(model_id, "cpu")
    for h, w in sizes:
        x = np.random.default_rng(h * w).uniform(0, 255, (1, 3, h, w)).astype(np.float32)
        expected = np.clip(onnxruntime_output(onnx_path, x), 0, 255)[..., :h, :w]  # top-left, where it aligns
        with torch.no_grad():
            ours = model.network(torch.from_numpy(x) / 255).numpy() * 255
        assert ours.shape == (1, 3, h, w)
        assert 0.05 < float(np.mean((expected > 0) & (expected < 255)))  # not a test of clamping alone
        # Two float32 engines sum ~30 layers in different orders: their outputs differ by ~1e-3 of a grey
        # level on some CPUs. A wrong padding, norm or upsampling differs by whole grey levels.
        assert float(np.abs(ours - expected).max()) < 5e-3, (h, w)


@pytest.fixture(scope="module")
def zoo_file(tmp_path_factory) -> Path:
    return export_zoo_style(random_transformer(), tmp_path_factory.mktemp("zoo") / "candy-9.onnx")


@pytest.fixture
def zoo_hub(env, tmp_path, monkeypatch, zoo_file):
    """The stand-in Hub with ``onnxmodelzoo/candy-9``, reached through HF_ENDPOINT alone."""
    with FakeHub(tmp_path / "hub") as server:
        server.add_file("onnxmodelzoo/candy-9", "candy-9.onnx", zoo_file.read_bytes())
        server.add_file("onnxmodelzoo/candy-9", "README.md", b"---\nlicense: apache-2.0\n---\n"
                        b"<!--- SPDX-License-Identifier: BSD-3-Clause -->\n# candy\n")
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


@pytest.fixture
def closed_endpoint(env, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with hub_env(f"http://127.0.0.1:{port}", cache_dir=tmp_path / "hf-cache"):
        yield


# ------------------------------------------------------------------------------------------ from the Hub


def test_zoo_style_imports_through_the_hub_and_matches_onnxruntime(zoo_hub, env, zoo_file, caplog):
    results = import_zoo_styles(["candy", "udnie"])
    assert [(r.style, r.status) for r in results] == [("candy", "imported"), ("udnie", "failed")]
    assert "onnxmodelzoo/udnie-9 was not found on the Hub" in results[1].message
    assert_matches_onnxruntime("local:zoo-candy", zoo_file)

    folder = env / "zoo-candy"
    config = json.loads((folder / "config.json").read_text())
    training = config["training"]
    assert config["architecture"] == "pytorch-examples-transformer" and config["style"] == "candy"
    assert training["loss_network"] == "vgg16:imagenet-torchvision"
    assert training["imported_from"] == "onnxmodelzoo/candy-9/candy-9.onnx"
    assert training["imported_sha256"] == hashlib.sha256(zoo_file.read_bytes()).hexdigest()
    assert training["imported_opset"] == ZOO_OPSET and training["imported_revision"] != "unknown"
    card = (folder / "README.md").read_text()
    assert "license: bsd-3-clause" in card and "apache-2.0" in card and "SPDX-License-Identifier: BSD-3-Clause" in card
    assert "onnxmodelzoo/candy-9" in card and "COCO 2014" in card

    again = import_zoo_styles(["candy"])  # already there: skipped, without a download
    assert again[0].status == "skipped" and "local:zoo-candy" in again[0].message
    assert import_zoo_styles(["candy"], overwrite=True)[0].status == "imported"

    # A model merely named like a zoo import (a visitor's "zoo-candy") is reported, never served as the zoo's.
    import shutil

    from perceptual_studio import networks
    from perceptual_studio.registry import save_model

    shutil.rmtree(folder)
    save_model(networks.StyleTransformNet(width=0.25, num_residual=1).eval(), folder, style="candy")
    squatted = import_zoo_styles(["candy"])[0]
    assert squatted.status == "failed" and "another model, not the zoo's candy" in squatted.message


def test_zoo_cli(zoo_hub, env, capsys):
    from perceptual_studio.registry.__main__ import ZOO_STYLE_NAMES, main
    from perceptual_studio.registry.onnx_zoo import ZOO_STYLES

    assert ZOO_STYLE_NAMES == tuple(ZOO_STYLES)

    assert main(["import-zoo", "candy"]) == 0
    assert "candy: imported: onnxmodelzoo/candy-9/candy-9.onnx -> local:zoo-candy" in capsys.readouterr().out
    assert main(["import-zoo", "candy"]) == 0
    assert "skipped" in capsys.readouterr().out
    assert main(["import-zoo", "mosaic"]) == 1  # the stand-in Hub has no such repo
    assert "mosaic: failed: onnxmodelzoo/mosaic-9 was not found on the Hub" in capsys.readouterr().err
    assert main(["import-zoo", "starry-night"]) == 2
    assert "unknown ONNX model zoo style 'starry-night'" in capsys.readouterr().err


def test_unreachable_hub_gives_the_registrys_message(closed_endpoint, env, capsys):
    from perceptual_studio.registry.__main__ import main

    with pytest.raises(HubUnavailableError, match="Hub unreachable"):
        import_zoo_styles()
    assert main(["import-zoo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Hub unreachable") and err.count("\n") == 1 and "Traceback" not in err


# ------------------------------------------------------------------------------------------ from a file


@pytest.mark.parametrize("opset", [ZOO_OPSET, 17])
def test_onnx_file_imports_to_what_onnxruntime_computes(env, tmp_path, opset):
    path = export_zoo_style(random_transformer(seed=opset), tmp_path / f"net-{opset}.onnx", opset)
    folder = import_onnx_model(path, style="test")
    assert folder == env / f"net-{opset}"
    assert_matches_onnxruntime(f"local:net-{opset}", path)


def test_the_zoos_2019_form_imports_by_structure(env, tmp_path, zoo_file):
    """Numbered initializer names, a static 224 x 224 input, Upsample scales computed from shapes."""
    path = as_2019_export(zoo_file, tmp_path / "old.onnx")
    assert not any(t.name.startswith(("net.", "conv")) for t in onnx.load(str(path)).graph.initializer)
    import_onnx_model(path, "old")
    assert_matches_onnxruntime("local:old", path, sizes=((224, 224),))


def _edited(source: Path, target: Path, edit) -> Path:
    model = onnx.load(str(source))
    edit(model.graph)
    onnx.save(model, str(target))
    return target


def _set_attribute(graph, op: str, name: str, value) -> None:
    from onnx import helper

    node = next(n for n in graph.node if n.op_type == op)
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)])


def _foreign_network(path: Path) -> Path:
    from perceptual_studio.networks import StyleTransformNet
    from perceptual_studio.networks.onnx_export import export_onnx

    return export_onnx(StyleTransformNet(width=0.25, num_residual=1), path, opset=ZOO_OPSET)


def _bad_files(folder: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """{case: (file, the message it must get)}."""
    truncated = folder / "truncated.onnx"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    garbage = folder / "garbage.onnx"
    garbage.write_bytes(b"\xff\xfe this is not a protobuf at all \x00" * 50)
    return {
        "truncated": (truncated, "truncated.onnx is not a readable ONNX file"),
        "garbage": (garbage, "garbage.onnx is not a readable ONNX file"),
        "other-network": (_foreign_network(folder / "johnson.onnx"),
                          (r"johnson.onnx is not a pytorch/examples fast_neural_style TransformerNet exported to ONNX: "
                           r"the weight of convolution conv1 has shape \[8, 3, 9, 9\], TransformerNet's has \[32, 3, 9, 9\]")),
        "constant-pad": (_edited(good, folder / "zeros.onnx", lambda g: _set_attribute(g, "Pad", "mode", "constant")),
                         "pads with mode 'constant'; the reflection padding before conv1 reflects"),
        "epsilon": (_edited(good, folder / "eps.onnx", lambda g: _set_attribute(g, "InstanceNormalization", "epsilon", 1e-3)),
                    "has epsilon 0.001, TransformerNet's has 1e-05"),
        "bilinear": (_edited(good, folder / "linear.onnx", lambda g: _set_attribute(g, "Upsample", "mode", "linear")),
                     "resizes with mode 'linear'; the nearest x2 upsampling before deconv1 is nearest-neighbour"),
    }


def test_corrupt_and_foreign_files_get_one_clear_sentence(env, tmp_path, zoo_file, capsys):
    from perceptual_studio.registry.__main__ import main

    for case, (path, message) in _bad_files(tmp_path, zoo_file).items():
        with pytest.raises(ModelFormatError, match=message):
            import_onnx_model(path)
        assert main(["import-onnx", str(path)]) == 1, case
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, (case, err)
        assert not (env / path.stem).exists(), case
    assert main(["import-onnx", str(tmp_path / "absent.onnx")]) == 1
    assert "absent.onnx: no such file" in capsys.readouterr().err


def test_oversized_file_is_refused_before_reading(env, zoo_file, monkeypatch):
    monkeypatch.setenv("PERCEPTUAL_MAX_MODEL_MB", "1")
    with pytest.raises(ModelFormatError, match="over the 1 MiB limit"):
        import_onnx_model(zoo_file)


# ------------------------------------------------------------------------------------------ the Models tab


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app, launched in-process (no test models needed), and the environment it reads."""
    gradio_client = pytest.importorskip("gradio_client")
    from apptools import app_environment, launch_app

    with app_environment(tmp_path_factory.mktemp("app"), models=False) as app_env, launch_app() as url:
        yield gradio_client.Client(url, verbose=False), app_env


def test_models_tab_imports_the_classic_styles(app, zoo_file, tmp_path, monkeypatch):
    client, app_env = app
    for key, value in app_env.items():  # conftest gave this test its own data folder; the app reads the module's
        monkeypatch.setenv(key, value)
    with FakeHub(tmp_path / "hub") as hub, hub_env(hub.url, cache_dir=tmp_path / "cache"):
        hub.add_file("onnxmodelzoo/candy-9", "candy-9.onnx", zoo_file.read_bytes())
        report = client.predict(api_name="/import_zoo_styles")
        assert "- candy: imported as `local:zoo-candy`" in report
        assert "- udnie: ⚠️ failed: onnxmodelzoo/udnie-9 was not found on the Hub" in report
        assert "1 of 5 ready" in report
        _, records, _ = client.predict(api_name="/list_models")
        assert any(r["id"] == "local:zoo-candy" and r["style"] == "candy" and r["error"] is None for r in records)
        assert "- candy: already there as `local:zoo-candy`" in client.predict(api_name="/import_zoo_styles")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with hub_env(closed, cache_dir=tmp_path / "cache"), pytest.raises(Exception, match="Hub unreachable: showing"):
        client.predict(api_name="/import_zoo_styles")


def test_the_pickers_refresh_after_the_import_as_after_a_pull():
    from perceptual_studio.webapp.ui import build_demo

    demo = build_demo()
    dependencies = demo.config["dependencies"]

    def followers(api_name: str) -> list[str]:
        start = next(d["id"] for d in dependencies if d.get("api_name") == api_name)
        chain, current = [], start
        while (after := next((d["id"] for d in dependencies if d.get("trigger_after") == current), None)) is not None:
            chain.append(demo.fns[after].fn.__name__)
            current = after
        return chain

    assert followers("import_zoo_styles") == followers("pull_model")
    assert followers("import_zoo_styles")[0] == "refresh_pickers_fresh"
