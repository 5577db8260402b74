"""The README's custom-env example runs as written and learns."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


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
