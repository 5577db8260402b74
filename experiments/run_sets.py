"""What the experiment scripts share: one-line usage errors, positive integers, the summary files."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hystax.core.errors import HystaxError, require
from hystax.stopping import exit_code_of


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (exit code 2) and that takes no abbreviations."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(name: str, value) -> int:
    """``value`` as a positive int (accepts integral floats like 1e6 and strings like "1e6")."""
    original = value
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            raise HystaxError(f"{name} must be a positive integer, got {original!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    require(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0,
            f"{name} must be a positive integer, got {original!r}")
    return int(value)


def number(name: str, value) -> float:
    """``value`` (a number or a string of one) as a float; ranges are the config's to check."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise HystaxError(f"{name} must be a number, got {value!r}") from None


def add_run_dir_args(parser: argparse.ArgumentParser, default_out_dir: str,
                     stem_note: str) -> None:
    """``--out-dir`` (the parent folder), ``--name`` and ``--overwrite``: where a run goes
    (:func:`hystax.rundir.create_run_dir`)."""
    parser.add_argument("--out-dir", default=default_out_dir,
                        help="parent folder; the run goes to <out-dir>/<name> "
                             "(default: %(default)s)")
    parser.add_argument("--name", default=None,
                        help=f"the run's folder (default: {stem_note}-<date>-<time>, never an "
                             "existing one)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing <out-dir>/<name> (else it is refused)")


def write_summary(out_dir: Path, stem: str, summary: dict, table: str) -> None:
    """``<stem>.md`` (the markdown ``table``) and ``<stem>.json`` (``summary`` with the table) in
    ``out_dir``; the table is printed too."""
    summary["table"] = table
    (out_dir / f"{stem}.md").write_text(table + "\n")
    (out_dir / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(table)


class SetInterrupted(Exception):
    """A run of an experiment set was stopped (Ctrl-C, SIGTERM) and saved: the set stops there
    too; ``exit_code`` is 128 + the signal (130 for Ctrl-C)."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


def stop_set_if_interrupted(result, resume_hint: str):
    """Raise :class:`SetInterrupted` if ``result`` (a ``RunResult``) was stopped before its end,
    so that a set of runs does not go on to the next one; returns ``result`` otherwise."""
    if result.interrupted:
        raise SetInterrupted(f"interrupted; {result.run_dir} is saved: continue with {resume_hint}",
                             exit_code_of(result))
    return result


def train_or_resume(parent: Path, name: str, agent: str, env: str, *, seeds: int, config,
                    progress: bool, resume_hint: str):
    """One run of an experiment set under the runner, in ``parent/name``: trained; or, when an
    earlier call of the set left it there, checked to have the same settings and resumed from
    its last checkpoint (a finished run is only read back). Returns the ``RunResult``; an
    interrupted run stops the set (:class:`SetInterrupted`)."""
    from hystax import checkpoints, rundir
    from hystax.runner import saved_config, train

    run_dir = Path(parent) / name
    if run_dir.exists() and checkpoints.has_checkpoint(run_dir):
        saved = rundir.read_config(run_dir)
        wanted = json.loads(json.dumps(dataclasses.asdict(config)))
        require(saved.get("agent") == agent and saved.get("env") == env
                and saved.get("seeds") == list(range(seeds))
                and saved_config(agent, saved.get("config", {})) == wanted,
                f"{run_dir} was run with other settings; use another --name or --out-dir")
        result = train(resume=run_dir, progress=progress)
    else:
        if run_dir.exists():  # stopped before its first checkpoint: nothing in it to keep
            shutil.rmtree(run_dir)
        result = train(agent, env, seeds=seeds, config=config, name=name, out_dir=parent,
                       progress=progress)
    return stop_set_if_interrupted(result, resume_hint)


def set_dir(out_dir, name: str | None, stem: str, *, overwrite: bool, resume: bool) -> Path:
    """An experiment set's folder: a new one (:func:`hystax.rundir.create_run_dir`), or with
    ``resume`` the existing ``out_dir/name`` whose runs :func:`train_or_resume` continues."""
    from hystax.rundir import create_run_dir, make_writable_dir

    if not resume:
        return create_run_dir(out_dir, name, stem=stem, overwrite=overwrite)
    require(name is not None and not overwrite, "--resume continues the set named by --name "
            "(and never overwrites it)")
    path = Path(out_dir) / name
    require(path.is_dir(), f"{path} does not exist: nothing to resume")
    return make_writable_dir(path)


def run_or_exit(parser: argparse.ArgumentParser, action: Callable[[], object]) -> int:
    """Run ``action``; a HystaxError ends the program with one line (``prog: error: ...``, exit
    code 2), an interrupted set with one line and exit code 128 + signal. Returns 0 otherwise."""
    try:
        action()
    except HystaxError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    except SetInterrupted as stop:
        print(f"{parser.prog}: {stop}")
        return stop.exit_code
    return 0
