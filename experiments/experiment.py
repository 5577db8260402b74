"""The one shape of an experiment, and the one command-line parser of ``hystax``, of every
experiment and of every benchmark.

An :class:`Experiment` is four steps over one parsed command line::

    validate(args) -> plan                every check, and the output folder made, before any
                                          compute (bad input: HystaxError, nothing written)
    run(plan) -> results                  the compute (training runs, seeds vmapped)
    summarise(plan, results) -> summary   what the tables show (JSON-able)
    write(plan, results, summary)         the table (printed, ``.md`` + ``.json``), CSVs, PNGs

:meth:`Experiment.cli` runs them under :class:`OneLineParser`: bad input is one line
(``prog: error: ...``, exit code 2) before any compute; an interrupted set of runs is one line
and exit code 128 + the signal. :mod:`hystax.experiments.experiment_registry` lists every experiment.

This module imports neither jax nor numpy: ``hystax --help`` builds its parser from it.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from hystax.core.errors import HystaxError, is_int, require


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (exit code 2) and that takes no abbreviations.

    ``error_prog``: the name the error line starts with (default: ``prog``); ``hystax``'s own
    sub-commands say ``hystax: error: ...``.
    """

    def __init__(self, *args, error_prog: str | None = None, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.error_prog = error_prog

    def error(self, message):
        self.exit(2, f"{self.error_prog or self.prog}: error: {message} (see --help)\n")


class SetInterrupted(Exception):
    """A run of an experiment set was stopped (Ctrl-C, SIGTERM) and saved: the set stops there
    too; ``exit_code`` is 128 + the signal (130 for Ctrl-C)."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


class Experiment(NamedTuple):
    """An experiment: its flags and the four steps :meth:`execute` chains (see the module doc).

    Attributes:
      prog: how it is run by itself (``python -m hystax.experiments.bandit_dlb``).
      description: the ``--help`` description (the module doc's first line or paragraph).
      add_arguments: ``add_arguments(parser)`` adds its flags.
      validate: ``validate(args) -> plan``; raises HystaxError before any compute.
      run: ``run(plan) -> results``.
      summarise: ``summarise(plan, results) -> summary``.
      write: ``write(plan, results, summary)``: tables, CSVs and figures into the plan's folder.
    """

    prog: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    validate: Callable[[argparse.Namespace], Any]
    run: Callable[[Any], Any]
    summarise: Callable[[Any, Any], Any]
    write: Callable[[Any, Any, Any], None]

    def execute(self, plan) -> tuple[Any, Any]:
        """Run, summarise and write a validated ``plan``; returns ``(results, summary)``."""
        results = self.run(plan)
        summary = self.summarise(plan, results)
        self.write(plan, results, summary)
        return results, summary

    def parser(self, prog: str | None = None) -> OneLineParser:
        """The experiment's command-line parser: its flags on :class:`OneLineParser`, and
        ``--no-progress`` (``args.progress``) that every experiment takes."""
        parser = OneLineParser(prog=prog or self.prog, description=self.description)
        self.add_arguments(parser)
        parser.add_argument("--no-progress", dest="progress", action="store_false",
                            help="no progress bar")
        return parser

    def cli(self, argv: list[str] | None = None, prog: str | None = None) -> int:
        """Parse ``argv`` (default: ``sys.argv[1:]``), validate, run, summarise and write;
        returns the exit code (bad input exits 2 with one line, before any compute)."""
        parser = self.parser(prog)
        args = parser.parse_args(argv)
        return run_or_exit(parser, lambda: self.execute(self.validate(args)))


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


# --- validate: arguments as numbers ----------------------------------------------------------


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
    require(is_int(value) and value > 0, f"{name} must be a positive integer, got {original!r}")
    return int(value)


def number(name: str, value) -> float:
    """``value`` (a number or a string of one) as a float; ranges are the config's to check."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise HystaxError(f"{name} must be a number, got {value!r}") from None


def finite_at_least(name: str, value, low: float = 0.0, kind: str = "number") -> float:
    """``value`` as a finite float >= ``low``; else HystaxError "NAME must be a finite KIND >=
    LOW"."""
    message = f"{name} must be a finite {kind} >= {low:g}, got {value!r}"
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise HystaxError(message) from None
    require(math.isfinite(out) and out >= low, message)
    return out


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


# --- write: tables ---------------------------------------------------------------------------


def markdown_table(caption: str, header: Sequence[str], rows: Iterable[Sequence[str]],
                   align: str | None = None) -> list[str]:
    """The lines of ``caption``, a blank line and a markdown table.

    align: one letter a column, ``l`` (``---``), ``r`` (``---:``) or ``c`` (``:---:``);
    default: the first column left, the others right.
    """
    align = align or "l" + "r" * (len(header) - 1)
    require(len(align) == len(header), f"align {align!r} must give one letter per column")
    rule = {"l": "---", "r": "---:", "c": ":---:"}

    def line(cells):
        return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"

    return [caption, "", line(header), "|" + "|".join(rule[a] for a in align) + "|",
            *(line(row) for row in rows)]


def write_summary(out_dir: Path, stem: str, summary: dict, table: str) -> None:
    """``<stem>.md`` (the markdown ``table``) and ``<stem>.json`` (``summary`` with the table) in
    ``out_dir``; the table is printed too."""
    summary["table"] = table
    (out_dir / f"{stem}.md").write_text(table + "\n")
    (out_dir / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(table)
