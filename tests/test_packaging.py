"""pyproject.toml: what it declares exists and resolves, installed or not.

Every console script names a callable; every ``perceptual_studio.architectures`` entry point names the
built-in architecture of that name, so the plugin loader skips it as already registered (never a clash);
the dependencies match requirements*.txt; CI runs README's test command verbatim; nothing patches sys.path.
"""
from __future__ import annotations

import ast
import importlib
import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
ARCHITECTURES = PROJECT["entry-points"]["perceptual_studio.architectures"]


def _resolve(target: str) -> object:
    module, _, attribute = target.partition(":")
    obj = importlib.import_module(module)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("script", sorted(PROJECT["scripts"]))
def test_console_scripts_resolve_to_callables(script: str) -> None:
    target = PROJECT["scripts"][script]
    assert ":" in target, f"{script} = {target!r} names no function"
    assert callable(_resolve(target))


def test_every_cli_keeps_its_python_m_form() -> None:
    for target in PROJECT["scripts"].values():
        package, _, module = target.partition(":")[0].rpartition(".")
        path = _source_dir(package) / f"{module}.py"
        assert path.is_file(), path
        assert 'if __name__ == "__main__":' in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_builtin_architecture_entry_points_name_the_registered_builtins(name: str) -> None:
    from perceptual_studio.networks import get_architecture

    architecture = get_architecture(name)
    assert architecture.provider == "builtin"
    assert _resolve(ARCHITECTURES[name]) is architecture.constructor


def test_the_projects_own_entry_points_are_skipped_not_duplicates() -> None:
    from perceptual_studio.networks import architectures
    from perceptual_studio.registry import plugins

    before = dict(architectures._ARCHITECTURES)
    report = plugins.PluginReport()
    for name, target in sorted(ARCHITECTURES.items()):
        entry_point = importlib.metadata.EntryPoint(name, target, plugins.ENTRY_POINT_GROUP)
        plugins._load_entry_point(entry_point, report)
    assert report.errors == [] and report.duplicates == [] and report.loaded == []
    assert architectures._ARCHITECTURES == before


def test_installed_entry_points_load_without_clashes() -> None:
    """When the project is installed (``pip install -e .``), discovery finds its entry points and skips them."""
    from perceptual_studio.registry import plugins

    installed = {e.name for e in importlib.metadata.entry_points(group=plugins.ENTRY_POINT_GROUP)}
    if not set(ARCHITECTURES) <= installed:
        pytest.skip("perceptual-studio is not installed here (a plain checkout)")
    plugins.reset_plugins()
    try:
        report = plugins.load_plugins(strict=True)
        assert not [line for line in report.errors if any(name in line for name in ARCHITECTURES)]
        assert not set(ARCHITECTURES) & set(report.loaded)
    finally:
        plugins.reset_plugins()


def _requirements(path: Path) -> list[str]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            lines.append(re.sub(r"\s+", "", line))
    return lines


def test_dependencies_match_the_requirements_files() -> None:
    assert PROJECT["dependencies"] == _requirements(ROOT / "requirements.txt")
    assert PROJECT["optional-dependencies"]["dev"] == _requirements(ROOT / "requirements-dev.txt")
    assert PROJECT["requires-python"] == ">=3.11"


SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
PACKAGE_DIRS = SETUPTOOLS["package-dir"]  # perceptual_studio.<name> -> the checkout's <name>/


def _source_dir(package: str) -> Path:
    """The checkout folder of installed package ``package`` (its nearest mapped parent, as setuptools finds it)."""
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        mapped = PACKAGE_DIRS.get(".".join(parts[:cut]))
        if mapped is not None:
            return ROOT / mapped / Path(*parts[cut:])
    raise AssertionError(f"{package} has no package-dir")


def test_every_source_package_is_packaged_under_the_one_import_name() -> None:
    listed = SETUPTOOLS["packages"]
    assert all(name == "perceptual_studio" or name.startswith("perceptual_studio.") for name in listed)
    assert "py-modules" not in SETUPTOOLS  # no generic top-level module (settings, app...) is installed
    sources = {_source_dir(name) for name in listed}
    on_disk = {init.parent for folder in set(PACKAGE_DIRS.values()) for init in (ROOT / folder).rglob("__init__.py")
               if "__pycache__" not in init.parts}
    assert sorted(map(str, on_disk - sources)) == []
    assert all((folder / "__init__.py").is_file() for folder in sources)


def test_package_data_exists() -> None:
    for package, patterns in SETUPTOOLS["package-data"].items():
        for pattern in patterns:
            matches = list(_source_dir(package).glob(pattern))
            assert matches, f"{package}: {pattern} matches nothing"


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = next(line for line in readme.splitlines() if line.startswith("python3 -m venv") and "pytest" in line)
    assert "-e ." in command  # the tests import the installed project
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in ci


def test_nothing_patches_sys_path() -> None:
    """The project is importable by installation (or pytest's ``pythonpath``), not by path hacks."""
    files = [ROOT / "app.py", ROOT / "tests" / "conftest.py"]
    for folder in sorted(set(PACKAGE_DIRS.values())):
        files += sorted((ROOT / folder).rglob("*.py"))
    offenders = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in {"insert", "append", "extend"} \
                    and ast.unparse(node.func.value) == "sys.path":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
