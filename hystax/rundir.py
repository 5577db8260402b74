"""Run directories: ``runs/<name>/`` with ``config.json``, ``metrics.csv``, checkpoints, plots.

``metrics.csv`` is long-form: one row per (seed, update), the first columns fixed::

    seed,update,env_steps,episode_return,episode_length,episodes,<agent-specific losses...>

``episode_return`` / ``episode_length`` average the episodes that ended during that update
(NaN when none did; ``episodes`` counts them). Readers get arrays shaped ``[seeds, updates]``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hystax.errors import HystaxError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
INDEX_COLUMNS = ("seed", "update")
PROGRESS_COLUMNS = ("env_steps", "episode_return", "episode_length", "episodes")
EPISODE_COLUMNS = ("episode_return", "episode_length")  # NaN when no episode ended


def write_config(run_dir: Path, config: Mapping) -> None:
    """Write ``config.json`` (the full description needed to resume the run)."""
    (Path(run_dir) / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def read_config(run_dir: Path) -> dict:
    """The run's ``config.json`` as a dict; a clear error if ``run_dir`` is not a run."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise HystaxError(f"{run_dir} is not a hystax run directory (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise HystaxError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise HystaxError(f"{path} does not hold a JSON object")
    return config


def append_metrics(run_dir: Path, seeds: list[int], first_update: int,
                   metrics: Mapping[str, np.ndarray]) -> None:
    """Append rows for a chunk of updates; ``metrics[k]`` has shape ``[seeds, updates]``."""
    path = Path(run_dir) / METRICS_FILE
    names = list(metrics)
    n_updates = np.shape(metrics[names[0]])[1]
    new_file = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new_file:
            writer.writerow([*INDEX_COLUMNS, *names])
        columns = [np.asarray(metrics[k]) for k in names]
        for i, seed in enumerate(seeds):
            for j in range(n_updates):
                writer.writerow([seed, first_update + j, *(_fmt(c[i, j]) for c in columns)])


def truncate_metrics(run_dir: Path, num_updates: int) -> None:
    """Drop rows with ``update >= num_updates`` (used when resuming from a checkpoint)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return
    header, body = _read_rows(path)
    if header is None:
        path.unlink()
        return
    kept = [r for r in body if int(float(r[1])) < num_updates]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *kept])


def _read_rows(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    """Header and complete numeric rows; a row cut short by a crash is dropped."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows or list(rows[0][:2]) != list(INDEX_COLUMNS):
        return None, []

    def complete(row):
        try:
            [float(x) for x in row]
        except ValueError:
            return False
        return len(row) == len(rows[0])

    return rows[0], [r for r in rows[1:] if complete(r)]


def read_metrics(run_dir: Path) -> dict[str, np.ndarray]:
    """Read ``metrics.csv`` into ``{column: float array [seeds, updates]}``.

    ``seed`` comes back as shape ``[seeds]`` and ``update`` as ``[updates]``.
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise HystaxError(f"{run_dir} has no {METRICS_FILE}")
    header, body = _read_rows(path)
    if header is None or not body:
        raise HystaxError(f"{path} holds no metrics rows")
    table = np.array([[float(x) for x in r] for r in body], dtype=np.float64)
    seeds = np.unique(table[:, 0]).astype(int)
    updates = np.unique(table[:, 1]).astype(int)
    seed_idx = np.searchsorted(seeds, table[:, 0].astype(int))
    upd_idx = np.searchsorted(updates, table[:, 1].astype(int))
    out: dict[str, np.ndarray] = {"seed": seeds, "update": updates}
    for c, name in enumerate(header[2:], start=2):
        grid = np.full((len(seeds), len(updates)), np.nan)
        grid[seed_idx, upd_idx] = table[:, c]
        out[name] = grid
    return out


def _fmt(x) -> str:
    x = float(x)
    if math.isnan(x):
        return "nan"
    return repr(int(x)) if x.is_integer() and abs(x) < 2**53 else f"{x:.8g}"
