"""Every command writes a new run folder, never an existing one, and checks it before compute."""

import subprocess
import sys

import pytest

from hystax import rundir
from hystax.cli import main
from hystax.core.errors import HystaxError

# each command with the cheapest valid arguments; the folder is refused before any compute
COMMANDS = {
    "bandit dlb": ["bandit", "dlb", "--preset", "real", "--horizon", "100", "--seeds", "1",
                   "--no-progress"],
    "bandit lsd": ["bandit", "lsd", "--preset", "R1", "--horizon", "100", "--seeds", "1",
                   "--no-planning", "--no-progress"],
    "continual": ["continual", "--mode", "offline", "--seeds", "1", "--no-progress"],
    "losse dyna": ["losse", "dyna", "--quick", "--models", "none", "--no-progress"],
    "losse regression": ["losse", "regression", "--quick"],
    "bench": ["bench", "ppo", "--quick"],
}


def _exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as stop:  # the experiments' own parsers exit
        return stop.code


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_existing_run_folder_is_refused_and_left_as_it_was(command, tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "results.csv").write_text("earlier results\n")
    assert _exit_code([*COMMANDS[command], "--out-dir", str(tmp_path), "--name", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{tmp_path / 'x'} already exists" in err, err
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["results.csv"]
    assert (tmp_path / "x" / "results.csv").read_text() == "earlier results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_an_unwritable_out_dir_is_one_line_before_any_compute(command, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert _exit_code([*COMMANDS[command], "--out-dir", str(blocker)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write to the output folder" in err, err


def test_a_rerun_through_the_command_line_never_overwrites(tmp_path):
    """The subprocess view of the rule: exit code 2, one line, the earlier files untouched."""
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "final.md").write_text("earlier\n")
    out = subprocess.run([sys.executable, "-m", "hystax.cli", *COMMANDS["bandit dlb"],
                          "--out-dir", str(tmp_path), "--name", "x"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        f"hystax bandit dlb: error: {tmp_path / 'x'} already exists; pass another --name, or "
        "--overwrite to replace it"]
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["final.md"]


def test_create_run_dir_names_overwrite_and_bad_names(tmp_path):
    first = rundir.create_run_dir(tmp_path, stem="real")
    second = rundir.create_run_dir(tmp_path, stem="real")   # same second: a suffix, not a clash
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.startswith("real-") and second.name.startswith(first.name)
    (first / "old.csv").write_text("1\n")
    again = rundir.create_run_dir(tmp_path, first.name, stem="real", overwrite=True)
    assert again == first and list(again.iterdir()) == []
    for bad in ("../x", "a/b", "..", ""):
        with pytest.raises(HystaxError, match="name must be a folder name"):
            rundir.create_run_dir(tmp_path, bad, stem="real")
