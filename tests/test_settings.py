"""settings.py: every environment variable parsed in one place, one way, at call time.

The parsers: a good value is used, an empty or blank one is the default, an unusable one logs a warning
naming the variable and the value and the default applies. And no module outside settings.py reads the
environment itself (an AST check over the project's sources).
"""
from __future__ import annotations

import ast
import logging
import os
import re
from pathlib import Path

import pytest
import torch

from perceptual_studio import settings

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCES = {"tests", "data", "artifacts", "reports", "docs", "build", "dist"}
VAR = "PERCEPTUAL_TEST_SETTING"


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Each test sees every warning (settings warns once per variable and value), and the variable unset."""
    monkeypatch.setattr(settings, "_warned", set())
    monkeypatch.delenv(VAR, raising=False)
    caplog.set_level(logging.WARNING, logger="perceptual_studio.settings")


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "perceptual_studio.settings" and r.levelno == logging.WARNING]


# ------------------------------------------------------------------------------------------ the parsers


@pytest.mark.parametrize(
    ("parse", "raw", "expected"),
    [
        (lambda: settings._int(VAR, 7, minimum=1), "12", 12),
        (lambda: settings._int(VAR, 7, minimum=1), " 4e3 ", 4000),
        (lambda: settings._float(VAR, 1.5, positive=True), "0.001", 0.001),
        (lambda: settings._float(VAR, 1.5, minimum=-1), "-1", -1.0),
        (lambda: settings._bool(VAR, False), "Yes", True),
        (lambda: settings._bool(VAR, True), "off", False),
        (lambda: settings._str(VAR, "x"), "  value  ", "value"),
        (lambda: settings._csv(VAR), "a, b,,c ", ["a", "b", "c"]),
        (lambda: settings._size(VAR, "50mb"), "2 KB", 2048),
        (lambda: settings._size(VAR, "50mb"), "1.5gb", int(1.5 * (1 << 30))),
        (lambda: settings._size(VAR, "50mb"), "1000", 1000),
        (lambda: settings._choice(VAR, "auto", ("auto", "caffe"), {"oxford": "caffe"}), "OXFORD", "caffe"),
        (lambda: settings._path(VAR, Path("/default")), "~/models", Path("~/models").expanduser()),
    ],
)
def test_a_good_value_is_used(monkeypatch, caplog, parse, raw, expected) -> None:
    monkeypatch.setenv(VAR, raw)
    assert parse() == expected
    assert not _warnings(caplog)


@pytest.mark.parametrize(
    ("parse", "raw", "default"),
    [
        (lambda: settings._int(VAR, 7, minimum=1), "lots", 7),
        (lambda: settings._int(VAR, 7, minimum=1), "2.5", 7),
        (lambda: settings._int(VAR, 7, minimum=1), "0", 7),
        (lambda: settings._int(VAR, 7, minimum=1), "inf", 7),
        (lambda: settings._float(VAR, 1.5, positive=True), "nan", 1.5),
        (lambda: settings._float(VAR, 1.5, positive=True), "-3", 1.5),
        (lambda: settings._float(VAR, 1.5, minimum=2), "1", 1.5),
        (lambda: settings._bool(VAR, False), "maybe", False),
        (lambda: settings._size(VAR, "50mb"), "50 parsecs", 50 << 20),
        (lambda: settings._size(VAR, "50mb"), "0", 50 << 20),
        (lambda: settings._choice(VAR, "auto", ("auto", "caffe")), "resnet", "auto"),
    ],
)
def test_a_bad_value_warns_with_its_name_and_value_then_the_default_applies(monkeypatch, caplog, parse, raw,
                                                                            default) -> None:
    monkeypatch.setenv(VAR, raw)
    assert parse() == default
    (message,) = _warnings(caplog)
    assert f"{VAR}={raw!r}" in message and "default" in message


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_unset_or_blank_is_the_default(monkeypatch, caplog, raw) -> None:
    if raw is not None:
        monkeypatch.setenv(VAR, raw)
    assert settings._int(VAR, 7, minimum=1) == 7
    assert settings._float(VAR, 1.5) == 1.5
    assert settings._bool(VAR, True) is True
    assert settings._str(VAR, "x") == "x" and settings._str(VAR) is None
    assert settings._csv(VAR) == []
    assert settings._size(VAR, "50mb") == 50 << 20
    assert settings._path(VAR) is None and settings._path(VAR, Path("/d")) == Path("/d")
    assert not _warnings(caplog)


def test_a_bad_value_warns_once_not_on_every_call(monkeypatch, caplog) -> None:
    monkeypatch.setenv(VAR, "lots")
    for _ in range(3):
        assert settings._int(VAR, 7) == 7
    assert len(_warnings(caplog)) == 1
    monkeypatch.setenv(VAR, "heaps")  # a different bad value is news
    assert settings._int(VAR, 7) == 7
    assert len(_warnings(caplog)) == 2


# ------------------------------------------------------------------------------------------ the settings


@pytest.mark.parametrize(
    ("function", "variable", "good", "expected", "default"),
    [
        (settings.max_pixels, "PERCEPTUAL_MAX_PIXELS", "5000", 5000, 40_000_000),
        (settings.max_output_pixels, "PERCEPTUAL_MAX_OUTPUT_PIXELS", "1e6", 1_000_000, 4096 * 4096),
        (settings.max_side, "PERCEPTUAL_MAX_SIDE", "512", 512, 2048),
        (settings.style_tile, "PERCEPTUAL_STYLE_TILE", "64", 64, 1024),
        (settings.concurrency, "PERCEPTUAL_CONCURRENCY", "4", 4, 2),
        (settings.queue_size, "PERCEPTUAL_QUEUE_SIZE", "8", 8, 64),
        (settings.max_model_mb, "PERCEPTUAL_MAX_MODEL_MB", "0.5", 0.5, 512.0),
        (settings.max_upload_bytes, "PERCEPTUAL_MAX_UPLOAD", "1gb", 1 << 30, 50 << 20),
        (settings.mcp_server, "PERCEPTUAL_MCP_SERVER", "1", True, False),
        (settings.log_level, "PERCEPTUAL_LOG_LEVEL", "debug", "DEBUG", "INFO"),
        (settings.loss_network_choice, "PERCEPTUAL_LOSS_NETWORK", "oxford", "caffe", "auto"),
        (settings.hf_hub_offline, "HF_HUB_OFFLINE", "1", True, False),
        (settings.torchrun_rank, "RANK", "3", 3, 0),
        (settings.torchrun_world_size, "WORLD_SIZE", "4", 4, 1),
    ],
)
def test_each_setting_is_read_at_call_time(monkeypatch, caplog, function, variable, good, expected, default) -> None:
    monkeypatch.delenv(variable, raising=False)
    assert function() == default
    monkeypatch.setenv(variable, good)
    assert function() == expected
    monkeypatch.setenv(variable, "?bad value?")
    assert function() == default
    assert any(variable in message and "?bad value?" in message for message in _warnings(caplog))


@pytest.mark.parametrize(
    ("function", "variable", "good", "default"),
    [
        (settings.hub_tag, "PERCEPTUAL_HUB_TAG", "mine", "perceptual-studio"),
        (settings.server_name, "GRADIO_SERVER_NAME", "0.0.0.0", "127.0.0.1"),
        (settings.train_content, "PERCEPTUAL_TRAIN_CONTENT", "user/dataset", None),
        (settings.hf_token, "HF_TOKEN", "hf_abc", None),
        (settings.hf_hub_cache, "HF_HUB_CACHE", "/tmp/hf", None),
        (settings.oauth_client_id, "OAUTH_CLIENT_ID", "id", None),
        (settings.malloc_arena_max, "MALLOC_ARENA_MAX", "2", None),
    ],
)
def test_text_settings_are_read_at_call_time(monkeypatch, function, variable, good, default) -> None:
    monkeypatch.delenv(variable, raising=False)
    assert function() == default
    monkeypatch.setenv(variable, f" {good} ")
    assert function() == good
    monkeypatch.setenv(variable, "  ")
    assert function() == default


def test_device_falls_back_with_a_warning(monkeypatch, caplog) -> None:
    monkeypatch.setenv("PERCEPTUAL_DEVICE", "cpu")
    assert settings.device() == torch.device("cpu")
    monkeypatch.setenv("PERCEPTUAL_DEVICE", "quantum:9")
    assert settings.device().type in {"cpu", "cuda"}
    assert "PERCEPTUAL_DEVICE='quantum:9'" in _warnings(caplog)[0]


def test_folders_follow_the_data_dir(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PERCEPTUAL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PERCEPTUAL_MODELS_DIR", raising=False)
    monkeypatch.delenv("PERCEPTUAL_CACHE_DIR", raising=False)
    assert settings.models_dir() == tmp_path / "models" and settings.cache_dir() == tmp_path / "cache"
    assert settings.runs_dir() == tmp_path / "runs"
    monkeypatch.setenv("PERCEPTUAL_MODELS_DIR", str(tmp_path / "elsewhere"))
    assert settings.models_dir() == tmp_path / "elsewhere"


def test_space_and_hub_identity(monkeypatch) -> None:
    for name in ("SPACE_ID", "OAUTH_CLIENT_ID", "HF_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert not settings.running_on_space() and settings.hf_token() is None and settings.hf_endpoint() is None
    monkeypatch.setenv("SPACE_ID", "owner/space")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1/")
    assert settings.running_on_space() and settings.space_id() == "owner/space"
    assert settings.hf_endpoint() == "http://127.0.0.1:1/"


def test_every_variable_is_declared_once_and_the_docs_table_is_the_generated_one() -> None:
    """Each setting is declared once (name, parser, default, help); docs/app.md shows the table made from the
    declarations (``python -m perceptual_studio.settings``), so the docs cannot drift from the code."""
    assert len(settings.SETTINGS) >= 30
    assert all(s.help and s.read for s in settings.SETTINGS.values())
    docs = (ROOT / "docs" / "app.md").read_text(encoding="utf-8")
    assert settings.markdown_table() in docs
    for setting in settings.SETTINGS.values():  # every declared default is what its function returns when unset
        if setting.set_by is None and not callable(setting.default) and setting.default is not None:
            assert setting.get() == setting.read(setting.name, setting.default)


def test_a_declared_setting_reads_its_variable_at_call_time(monkeypatch) -> None:
    monkeypatch.delenv("PERCEPTUAL_MAX_SIDE", raising=False)
    assert settings.max_side() == settings.MAX_SIDE.default == 2048
    monkeypatch.setenv("PERCEPTUAL_MAX_SIDE", "512")
    assert settings.max_side() == 512
    monkeypatch.setenv("PERCEPTUAL_MAX_SIDE", "-3")
    assert settings.max_side() == 2048  # an unusable value: a warning, then the default


def test_the_app_passes_mcp_server_only_when_asked(monkeypatch) -> None:
    from perceptual_studio.webapp.ui import launch_kwargs

    monkeypatch.delenv("PERCEPTUAL_MCP_SERVER", raising=False)
    assert "mcp_server" not in launch_kwargs()  # Gradio's MCP server needs the gradio[mcp] extra
    monkeypatch.setenv("PERCEPTUAL_MCP_SERVER", "true")
    assert launch_kwargs()["mcp_server"] is True
    monkeypatch.setenv("PERCEPTUAL_MAX_UPLOAD", "2mb")
    assert launch_kwargs()["max_file_size"] == 2 << 20


# ------------------------------------------------------------------------------------------ one source


def _sources() -> list[Path]:
    """The project's Python files (not tests, data folders, the virtualenv or other hidden folders)."""
    files = []
    for folder, subfolders, names in os.walk(ROOT):
        top = Path(folder) == ROOT
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d != "__pycache__"
                         and not d.endswith(".egg-info") and not (top and d in NOT_SOURCES)]
        files += [Path(folder) / name for name in names if name.endswith(".py")]
    return sorted(files)


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ`` (``from os import environ``)."""
    return (isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)
            and node.value.id == "os") or (isinstance(node, ast.Name) and node.id == "environ")


def _environment_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """Reads of single variables: ``os.environ.get(...)``, ``os.environ[...]``, ``os.getenv(...)``,
    ``... in os.environ``. Writes (``setdefault``, assignment, ``update``) and whole copies for a subprocess
    (``{**os.environ, ...}``) are not reads of a setting."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "get" and _is_environ(func.value):
                found.append((node.lineno, ast.unparse(node)))
            elif (isinstance(func, ast.Attribute) and func.attr == "getenv") or (
                    isinstance(func, ast.Name) and func.id == "getenv"):
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value):
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) \
                and any(_is_environ(c) for c in node.comparators):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_checker_finds_each_kind_of_read() -> None:
    source = (
        "import os\nfrom os import environ, getenv\n"
        "a = os.environ.get('PERCEPTUAL_X')\nb = os.environ['PERCEPTUAL_X']\nc = os.getenv('PERCEPTUAL_X')\n"
        "d = 'PERCEPTUAL_X' in os.environ\ne = environ.get('X')\nf = getenv('X')\n"
        "os.environ.setdefault('HF_HUB_DISABLE_TELEMETRY', '1')\nos.environ['X'] = '1'\nenv = {**os.environ}\n"
    )
    assert sorted(line for line, _ in _environment_reads(ast.parse(source))) == [3, 4, 5, 6, 7, 8]


def test_no_module_outside_settings_reads_the_environment() -> None:
    offenders = []
    for path in _sources():
        if path == ROOT / "perceptual_studio" / "settings.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offenders += [f"{path.relative_to(ROOT)}:{line}: {code}" for line, code in _environment_reads(tree)]
    assert offenders == [], "read these through a settings.py function:\n" + "\n".join(offenders)


def test_every_perceptual_variable_named_in_the_code_is_one_settings_knows() -> None:
    known = set(settings.SETTINGS)
    unknown = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"PERCEPTUAL_[A-Z0-9_]+", node.value) and node.value not in known:
                unknown.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert unknown == []
