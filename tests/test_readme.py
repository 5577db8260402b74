"""The README and the guides in docs/: their examples run as written, and what they name exists.

The custom-env example is executed (it trains); every other check reads text and source files
only (no jax), so the whole file costs about as much as that one example.
"""

import ast
import functools
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
# the import name of each root folder (setuptools package-dir): hystax.agents lives in agents/
PACKAGE_DIRS = {"agents": "agents", "envs": "envs", "world_models": "world_models",
                "experiments": "experiments", "tests": "tests"}
TREE_ROOTS = ("agents/", "envs/", "world_models/", "experiments/", "hystax/", "tests/", "docs/",
              ".ci/")
FENCE = re.compile(r"```[^\n]*\n.*?```", flags=re.S)


def _python_blocks(paths=DOCS):
    return [block for path in paths
            for block in re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_readme_custom_env_example_trains_end_to_end(tmp_path):
    (example,) = [b for b in _python_blocks() if "class Corridor" in b]
    assert len(example.strip().splitlines()) <= 40
    out = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    mean_length = float(out.stdout.strip().splitlines()[-1])
    assert mean_length < 12, mean_length  # the shortest path is 9 steps; random walks take ~50
    assert list((tmp_path / "runs").glob("ppo-Corridor-v0-*/returns.png"))


def test_readme_quick_start_has_exactly_two_commands_and_ci_runs_the_second():
    quick = README.read_text().split("## Quick start", 1)[1].split("##", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", quick, flags=re.S)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 2 and "hystax demo" in commands[0]
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1] in ci
    lines = [line.strip() for line in ci.splitlines() if line.strip() and line[0] != "#"]
    assert lines[-1] == "python -m pytest -m slow --durations=25", "CI ends with the slow set"


# --- what the text names exists -------------------------------------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", FENCE.sub("", path.read_text()), flags=re.M):
        slug = _slug(heading)
        anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return anchors


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_links_point_to_files_and_headings_that_exist(doc):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", doc.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target} (no such heading in {path.name})")
    assert not broken, f"{_rel(doc)}: {broken}"


def _module_file(dotted: list[str]) -> tuple[Path | None, list[str]]:
    """The source file of the longest module prefix of ``hystax.a.b...`` and the rest."""
    parts = dotted[1:]
    here = ROOT / "hystax"
    if parts and parts[0] in PACKAGE_DIRS:
        here, parts = ROOT / PACKAGE_DIRS[parts[0]], parts[1:]
    while parts and ((here / parts[0]).is_dir() or (here / f"{parts[0]}.py").exists()):
        if (here / f"{parts[0]}.py").exists():
            return here / f"{parts[0]}.py", parts[1:]
        here, parts = here / parts[0], parts[1:]
    init = here / "__init__.py"
    return (init if init.exists() else None), parts


def _defines(source: Path, name: str) -> bool:
    """Whether module ``source`` binds ``name`` at top level (or lists it as a lazy export)."""
    tree = ast.parse(source.read_text())
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == name:
                return True
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((a.asname or a.name.split(".")[0]) == name for a in node.names):
                return True
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
    if source.name == "__init__.py":  # lazy exports: a {"name": ("module", "attr")} table
        return any(isinstance(n, ast.Constant) and n.value == name for n in ast.walk(tree))
    return False


@functools.cache
def _source_names() -> frozenset[str]:
    return frozenset(p.name for top in ("agents", "envs", "world_models", "experiments",
                                        "hystax", "tests") for p in (ROOT / top).rglob("*.py"))


def _missing_module_names(text: str) -> list[str]:
    missing = []
    for dotted in sorted(set(re.findall(r"\bhystax(?:\.[A-Za-z_]\w*)+(?![\w<.])", text))):
        source, rest = _module_file(dotted.split("."))
        if source is None or (rest and not _defines(source, rest[0])):
            missing.append(dotted)
    return missing


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_modules_paths_and_imports_named_in_the_text_exist(doc):
    text = doc.read_text()
    missing = _missing_module_names(text)
    for span in set(re.findall(r"`([^`\s]+)`", text)):
        if any(c in span for c in "<>{}*|"):
            continue  # a pattern (runs/<name>/, bench_*.py), not a path
        if span.startswith(TREE_ROOTS):
            if not (ROOT / span.split(":")[0]).exists():
                missing.append(span)
        elif re.fullmatch(r"[\w/]+\.py", span) and Path(span).name not in _source_names():
            missing.append(span)  # a bare file name: some source file of that name exists
    for block in _python_blocks([doc]):
        tree = ast.parse(block)  # every snippet is valid Python
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hystax"):
                missing += _missing_module_names(
                    " ".join(f"{node.module}.{a.name}" for a in node.names))
    assert not missing, f"{_rel(doc)} names what does not exist: {sorted(set(missing))}"


def test_architecture_section_matches_the_tree():
    """Every package folder is in the README's architecture table, and every file or folder a
    row names exists under that row's folder."""
    section = README.read_text().split("## Architecture", 1)[1].split("\n## ", 1)[0]
    packages = sorted(p.parent.relative_to(ROOT) for top in ("agents", "envs", "world_models",
                                                              "experiments", "hystax")
                      for p in (ROOT / top).rglob("__init__.py"))
    absent = [str(p) for p in packages
              if f"`{p}/`" not in section and f"`{p.name}/`" not in section]
    assert not absent, f"package folders missing from the README's Architecture: {absent}"
    wrong = []
    for row in re.findall(r"^\| \d\. .*$", section, flags=re.M):
        cells = row.split("|")
        (folder,) = re.findall(r"`([^`]+)`", cells[2])
        for name in re.findall(r"`([\w.]+/?)`", cells[3]):
            if name.endswith(".py") or name.endswith("/"):
                base = ROOT / folder
                if not any(True for _ in base.rglob(name.rstrip("/"))):
                    wrong.append(f"{folder}: {name}")
    assert not wrong, f"the README's Architecture names what is not in the tree: {wrong}"
