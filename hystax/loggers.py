"""Metric sinks beside ``metrics.csv``: TensorBoard and Weights & Biases (``--logger``).

Each chunk's metrics ``{name: [seeds, n]}`` go to every sink right after they are appended
to ``metrics.csv``. A sink logs, per update (global step = updates done: update ``j`` of a
chunk that starts after ``first_update`` is step ``first_update + j + 1``), ``<name>/mean``
(the NaN-mean over seeds) and ``<name>/seed_<s>``, skipping NaN values (``episode_return``
is NaN for an update in which no episode ended).
"""

from __future__ import annotations

import importlib
import netrc
import os
import secrets
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from hystax import rundir
from hystax.core.errors import HystaxError, require

LOGGERS = ("csv", "tensorboard", "wandb")
PACKAGES = {"tensorboard": "tensorboardX", "wandb": "wandb"}  # logger -> the package it needs
TENSORBOARD_DIR = "tensorboard"  # run_dir/tensorboard/events.out.tfevents.*
WANDB_ID_FILE = ".wandb_id"  # the W&B run id, so that a resume continues the same W&B run


def parse_loggers(spec: str | Sequence[str], *, run_folder: bool = True) -> tuple[str, ...]:
    """``"csv,tensorboard"`` (or a sequence of names) -> the loggers, in ``LOGGERS`` order.

    ``"csv"`` is always included: ``metrics.csv`` is the run's record, which resume and the
    plots read. Raises :class:`HystaxError` (one line) for an unknown name, a logger whose
    package is not installed, or a non-csv logger without a run folder (``run_folder=False``:
    ``out_dir=None``). Cheap: call it before any compute.
    """
    names = spec.split(",") if isinstance(spec, str) else spec
    require(isinstance(names, Sequence) and all(isinstance(n, str) for n in names),
            f"loggers must be a comma-separated string or a list of names, got {spec!r}")
    names = {n.strip() for n in names} - {""}
    unknown = sorted(names - set(LOGGERS))
    if unknown:
        raise HystaxError(f"unknown logger {unknown[0]!r}; choose from {', '.join(LOGGERS)} "
                          "(comma-separated, e.g. csv,tensorboard)")
    chosen = tuple(n for n in LOGGERS if n == "csv" or n in names)
    for name in chosen[1:]:
        try:
            importlib.import_module(PACKAGES[name])
        except ImportError:
            raise HystaxError(f"the {name} logger needs {PACKAGES[name]}: "
                              f"pip install 'hystax[{name}]'") from None
    require(run_folder or chosen == ("csv",),
            f"loggers need a run folder: {', '.join(chosen[1:])} cannot log with out_dir=None")
    return chosen


def rows(seeds: list[int], first_update: int,
         metrics: dict[str, np.ndarray]) -> Iterator[tuple[int, dict[str, float | int]]]:
    """``(step, {tag: value})`` per update of ``metrics`` ``{name: [seeds, n]}``: tags
    ``name/mean`` and ``name/seed_<s>``, NaN values left out; ``step = first_update + j + 1``."""
    arrays = {k: np.asarray(v) for k, v in metrics.items()}
    n = next(iter(arrays.values())).shape[1] if arrays else 0
    for j in range(n):
        row = {}
        for k, v in arrays.items():
            column = v[:, j]
            finite = ~np.isnan(column.astype(np.float64))
            if finite.any():
                row[f"{k}/mean"] = float(np.mean(column[finite], dtype=np.float64))
            row.update({f"{k}/seed_{s}": x.item() for s, x, ok in zip(seeds, column, finite) if ok})
        yield first_update + j + 1, row


class TensorBoardLogger:
    """Scalars into ``run_dir/tensorboard/`` (view with ``tensorboard --logdir runs``)."""

    def __init__(self, run_dir: Path, first_update: int):
        from tensorboardX import SummaryWriter

        logdir = Path(run_dir) / TENSORBOARD_DIR
        # a resume re-logs the updates after its checkpoint: TensorBoard hides what earlier
        # sessions logged from the first re-logged step on; the suffix keeps file names unique
        # (tensorboardX names files by the second) and in the order they were written
        self.writer = SummaryWriter(logdir=str(logdir), filename_suffix=f".{time.time_ns()}",
                                    purge_step=first_update + 1 if logdir.exists() else None)

    def write(self, seeds: list[int], first_update: int, metrics: dict[str, np.ndarray]) -> None:
        for step, row in rows(seeds, first_update, metrics):
            for tag, value in row.items():
                self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    """A W&B run named after the run folder, its files in ``run_dir/wandb/``, its id kept in
    ``run_dir/.wandb_id`` so that a resume continues it. Project: ``$WANDB_PROJECT`` (default
    ``hystax``); mode: ``$WANDB_MODE``, else online with an API key, else offline."""

    def __init__(self, run_dir: Path, saved_config: dict):
        import wandb

        run_dir = Path(run_dir)
        id_file = run_dir / WANDB_ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(6)
        id_file.write_text(run_id + "\n")
        mode = None if os.environ.get("WANDB_MODE") else "online" if _has_api_key() else "offline"

        def start(mode):
            return wandb.init(project=os.environ.get("WANDB_PROJECT", "hystax"), name=run_dir.name,
                              dir=run_dir, config=saved_config, id=run_id, resume="allow",
                              allow_val_change=True, reinit="create_new", mode=mode,
                              settings=wandb.Settings(silent=True))

        why = "no W&B API key"
        try:
            self.run = start(mode)
        except Exception as err:  # an API key but no network: keep the run, log offline
            if mode != "online":
                raise
            self.run, mode = start("offline"), "offline"
            why = f"W&B could not start online ({type(err).__name__})"
        if mode == "offline":  # chosen here, not by WANDB_MODE: say where the logs are
            folder = Path(self.run.dir).parent
            print(f"hystax: {why}: logging offline into {folder}; upload it with "
                  f"`wandb sync {folder}`", file=sys.stderr, flush=True)
        self.next_step = self.run.step  # a resumed online run already holds the steps before

    def write(self, seeds: list[int], first_update: int, metrics: dict[str, np.ndarray]) -> None:
        for step, row in rows(seeds, first_update, metrics):
            if step >= self.next_step:  # W&B refuses steps below its current one
                self.run.log(row, step=step)

    def close(self) -> None:
        self.run.finish()


def _has_api_key() -> bool:
    """``WANDB_API_KEY`` or a ``~/.netrc`` entry for the W&B host (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def open_loggers(names: Sequence[str], run_dir: Path, saved_config: dict,
                 first_update: int) -> list:
    """The non-csv sinks of ``names`` (from :func:`parse_loggers`) for the run in ``run_dir``,
    which continues after ``first_update`` updates; each has ``write(seeds, first_update,
    metrics [seeds, n])`` and ``close()``. A failure closes those already open."""
    sinks = []
    try:
        for name in names:
            if name == "tensorboard":
                sinks.append(TensorBoardLogger(run_dir, first_update))
            elif name == "wandb":
                sinks.append(WandbLogger(run_dir, saved_config))
    except BaseException:
        close_all(sinks)
        raise
    return sinks


def write_all(sinks: list, run_dir: Path, seeds: list[int], first_update: int,
              metrics: dict[str, np.ndarray]) -> None:
    """One chunk's ``metrics`` ``{name: [seeds, n]}``, updates ``first_update`` on, to
    ``metrics.csv`` (:func:`hystax.rundir.append_metrics`), then to every sink."""
    rundir.append_metrics(run_dir, seeds, first_update, metrics)
    for sink in sinks:
        sink.write(seeds, first_update, metrics)


def close_all(sinks: list) -> None:
    """Close every sink (flush TensorBoard, finish the W&B run), the rest even if one fails."""
    if sinks:
        try:
            sinks[0].close()
        finally:
            close_all(sinks[1:])
