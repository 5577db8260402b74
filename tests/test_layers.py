"""The house rules, checked by parsing the source (no imports run):

- layers, bottom to top, with imports pointing down only: ``hystax.core`` -> ``envs`` ->
  ``world_models`` -> ``agents`` -> the runner layer (``hystax.runner``, run folders, plots, ...)
  -> ``experiments`` -> ``hystax.cli``; and no import cycles, lazy imports included;
- nothing imports another module's ``_private`` name;
- every folder with an ``__init__.py`` is a package in ``pyproject.toml``.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIRS = PYPROJECT["tool"]["setuptools"]["package-dir"]  # "hystax.agents" -> "agents"
ROOTS = {name: ROOT / folder for name, folder in PACKAGE_DIRS.items() if name != "hystax.tests"}

RUNNER_LAYER = ("runner", "rundir", "checkpoints", "loggers", "plots", "figure", "task_plots",
                "learning_curves", "progress", "stopping", "hparam_sweep", "episode_gif",
                "trained", "run_evaluation")
LAYERS = {"hystax.core": 0, "hystax.envs": 1, "hystax.world_models": 2, "hystax.agents": 3,
          **{f"hystax.{name}": 4 for name in RUNNER_LAYER},
          "hystax.experiments": 5, "hystax.cli": 6, "hystax.cli_flags": 6}
"""Module (or package) -> layer; a module's layer is that of its longest listed prefix."""
LAYER_NAMES = ["core", "envs", "world_models", "agents", "runner layer", "experiments", "cli"]


def _modules() -> dict[str, Path]:
    """Every module of the installed namespace: dotted name -> file."""
    found = {}
    for package, folder in ROOTS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if any(p.startswith(".") or p == "__pycache__" for p in parts):
                continue
            found[".".join([package, *(p for p in parts if p != "__init__")])] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path):
    """(imported module, imported name or None, line) for every hystax import in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "hystax":
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([node.module] if node.module else []))
            if base.split(".")[0] != "hystax":
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:
                    yield submodule, None, node.lineno
                else:
                    yield base, alias.name, node.lineno


def _layer(module: str) -> int | None:
    best = None
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    return None if best is None else best[1]


def _edges():
    return {name: {(target, imported, line) for target, imported, line in _imports(name, path)
                   if target != "hystax" and target != name}
            for name, path in MODULES.items()}


EDGES = _edges()


def test_every_module_has_a_layer():
    loose = sorted(m for m in MODULES if m != "hystax" and _layer(m) is None)
    assert not loose, f"modules outside every layer (add them to LAYERS): {loose}"


def test_imports_point_down_the_layers():
    upward = [f"{MODULES[src].relative_to(ROOT)}:{line} imports {dst} "
              f"({LAYER_NAMES[_layer(src)]} -> {LAYER_NAMES[_layer(dst)]})"
              for src, out in EDGES.items() if src != "hystax"
              for dst, _, line in out if dst in MODULES and _layer(dst) > _layer(src)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = {src: sorted({dst for dst, _, _ in out if dst in MODULES})
             for src, out in EDGES.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def _private_uses(name: str, path: Path):
    """`from m import _x` and `m._x` for a hystax module m imported in this file."""
    tree = ast.parse(path.read_text(), str(path))
    aliases = {}
    for target, imported, line in _imports(name, path):
        if imported is not None and imported.startswith("_") and not imported.startswith("__"):
            yield f"{path.relative_to(ROOT)}:{line} imports {target}.{imported}"
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hystax"):
            for alias in node.names:
                if f"{node.module}.{alias.name}" in MODULES:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("hystax") and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_")
                and not node.attr.startswith("__") and aliases[node.value.id] != name):
            module = aliases[node.value.id]
            yield f"{path.relative_to(ROOT)}:{node.lineno} uses {module}.{node.attr}"


def test_no_private_names_across_modules():
    uses = [use for name, path in MODULES.items() for use in _private_uses(name, path)]
    assert not uses, "\n".join(uses)


@pytest.mark.parametrize("root", sorted(PACKAGE_DIRS))
def test_every_package_folder_is_in_pyproject(root):
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    folder = ROOT / PACKAGE_DIRS[root]
    for init in folder.rglob("__init__.py"):
        relative = init.parent.relative_to(folder).parts
        if any(p.startswith(".") or p == "__pycache__" for p in relative):
            continue
        package = ".".join([root, *relative])
        owner = max((r for r in PACKAGE_DIRS if package == r or package.startswith(r + ".")),
                    key=len)
        if owner == root:
            folder_name = init.parent.relative_to(ROOT)
            assert package in listed, f"{folder_name} is not in pyproject's packages"
