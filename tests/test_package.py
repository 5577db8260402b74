"""`pip install .` puts only the `hystax` namespace into site-packages."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_install_puts_no_top_level_modules_besides_hystax(tmp_path):
    source = tmp_path / "src"  # a clean copy: no stale build/ or egg-info can hide a mistake
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "runs", ".git", "__pycache__", ".pytest_cache"))
    target = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
         str(source)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    top = {p.name for p in target.iterdir()
           if not p.name.endswith((".dist-info", ".egg-info")) and p.name != "bin"}
    assert top == {"hystax"}, top
    for sub in ("agents/ppo.py", "envs/registry.py", "envs/meta/meta_env.py", "core/nn.py",
                "world_models/__init__.py", "experiments/bench/bench_tools.py",
                "experiments/__init__.py", "tests/__init__.py", "cli.py"):
        assert (target / "hystax" / sub).is_file(), sub
    for stray in ("agents", "envs", "experiments", "world_models", "tests"):
        assert not (target / stray).exists()
