"""The import graph keeps its shape: arrows only run down the layers (ARCHITECTURE.md) and nothing imports in a
circle. Imports inside functions count too: they are arrows all the same."""
from __future__ import annotations

import ast
import collections
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lower number = higher layer; a module may import its own layer (train -> registry) or any lower one.
# Modules are named as installed (perceptual_studio.<package>...); the checkout's top-level folders are those
# packages. perceptual_studio itself (its __init__, the public names) sits on top with app.py.
LAYERS = {"app": 0, "benchmarks": 0, "perceptual_studio": 0, "webapp": 1, "pipelines": 2, "train": 2,
          "registry": 2, "explain": 2, "baseline": 2, "losses": 3, "networks": 4, "imaging": 5, "settings": 5,
          "hub_probe": 5}
PACKAGE = "perceptual_studio"
NOT_INSTALLED = {"app", "benchmarks"}  # repository-only: known by their own top-level names


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[0] == PACKAGE and len(parts) > 1:
        return LAYERS[parts[1]]
    return LAYERS[parts[0]]


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        top = rel.parts[0].removesuffix(".py")
        if top not in LAYERS or ".venv" in rel.parts:
            continue
        parts = rel.with_suffix("").parts
        if top not in NOT_INSTALLED and top != PACKAGE:
            parts = (PACKAGE, *parts)
        found[".".join(parts).removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[int, str]]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{module}.{alias.name}" for alias in node.names]
            if module != PACKAGE:  # `from perceptual_studio import settings` imports settings, not the package
                targets.insert(0, module)
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.append((node.lineno, target))
    return out


def test_no_import_runs_up_the_layers() -> None:
    modules = _modules()
    upward = [f"{path.relative_to(ROOT)}:{line} imports {target}"
              for name, path in modules.items() for line, target in _imports(name, path, modules)
              if _layer(target) < _layer(name)]
    assert upward == []


def test_no_import_circles() -> None:
    modules = _modules()
    edges = collections.defaultdict(set)
    for name, path in modules.items():
        for _, target in _imports(name, path, modules):
            edges[name].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in modules:
        if name not in index:
            visit(name)
    assert circles == []


MAX_FUNCTION_LINES = 60


def test_no_function_outside_the_tests_is_over_sixty_lines() -> None:
    """Small functions with one job each: a longer one is split into named helpers (its docstring counts)."""
    long = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {"tests", ".venv", "build", "data"} or rel.parts[0].startswith("."):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{rel}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []
