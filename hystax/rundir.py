"""Run directories: ``runs/<name>/`` with ``config.json``, ``metrics.csv``, checkpoints, plots.

``metrics.csv`` is long-form: one row per (seed, update), the first columns fixed::

    seed,update,env_steps,episode_return,episode_length,episodes,<agent-specific losses...>

``episode_return`` / ``episode_length`` average the episodes that ended during that update
(NaN when none did; ``episodes`` counts them). Readers get arrays shaped ``[seeds, updates]``.
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import math
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hystax.core.errors import HystaxError

CONFIG_FILE = "config.json"
ORIGINAL_CONFIG_FILE = ".config.json"  # config.json as written, to name an edited field
HASH_FIELD = "config_sha256"
METRICS_FILE = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
INDEX_COLUMNS = ("seed", "update")
PROGRESS_COLUMNS = ("env_steps", "episode_return", "episode_length", "episodes")
EPISODE_COLUMNS = ("episode_return", "episode_length")  # NaN when no episode ended


def write_config(run_dir: Path, config: Mapping) -> None:
    """Write ``config.json`` (the full description needed to resume the run) with its
    ``config_sha256``, and the same text to ``.config.json``, kept to name an edited field."""
    body = {k: v for k, v in config.items() if k != HASH_FIELD}
    text = json.dumps({**body, HASH_FIELD: _sha256(body)}, indent=2, sort_keys=True) + "\n"
    (Path(run_dir) / CONFIG_FILE).write_text(text)
    (Path(run_dir) / ORIGINAL_CONFIG_FILE).write_text(text)


def check_unedited(run_dir: Path, config: Mapping) -> None:
    """Raise HystaxError when ``config`` (read from ``config.json``) no longer matches its
    hash, naming the first changed field; runs written before hashes existed pass."""
    recorded = config.get(HASH_FIELD)
    body = {k: v for k, v in config.items() if k != HASH_FIELD}
    if recorded is None or _sha256(body) == recorded:
        return
    try:
        original = json.loads((Path(run_dir) / ORIGINAL_CONFIG_FILE).read_text())
    except (OSError, ValueError):
        original = None
    change = (_first_difference({k: v for k, v in original.items() if k != HASH_FIELD}, body)
              if isinstance(original, dict) else None)
    raise HystaxError(f"{Path(run_dir) / CONFIG_FILE} was edited after the run started"
                      f"{f' ({change})' if change else ''}; a resume keeps the settings the run "
                      "started with: undo the edit, or start a new run with the new settings")


def check_history(run_dir: Path, seeds: list[int], done: int) -> None:
    """Raise HystaxError unless ``metrics.csv`` holds every update before ``done`` (the
    checkpoint a resume starts from) for every seed: a resume must not leave a gap."""
    if done == 0:
        return
    path = Path(run_dir) / METRICS_FILE
    body = _read_rows(path)[1] if path.is_file() else []
    have = {(int(float(r[0])), int(float(r[1]))) for r in body}
    missing = [u for u in range(done) if any((s, u) not in have for s in seeds)]
    if missing:
        raise HystaxError(f"{path} lacks {len(missing)} of the {done} updates before the "
                          f"checkpoint (the first: update {missing[0]}); resuming would leave a "
                          "gap in the run's history: restore the file, or start a new run")


def _sha256(body: Mapping) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _first_difference(a: Mapping, b: Mapping, prefix: str = "") -> str | None:
    """``"config.lr: 0.0003 -> 0.001"`` for the first key (sorted, depth first) that differs."""
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, "<absent>"), b.get(key, "<absent>")
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            found = _first_difference(x, y, f"{prefix}{key}.")
            if found:
                return found
        elif x != y:
            return f"{prefix}{key}: {x!r} -> {y!r}"
    return None


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



def check_name(name) -> None:
    """Raise HystaxError unless ``name`` is None or a plain folder name (no separator, no
    ``..``): a run must land inside its ``--out-dir``."""
    ok = name is None or (isinstance(name, str) and name not in ("", ".", "..")
                          and not any(c in name for c in "/\\"))
    if not ok:
        raise HystaxError(f"name must be a folder name without '/', '\\' or '..', got {name!r}")


def make_writable_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) and check that it can be written, before any
    compute; a one-line HystaxError otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".hystax-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise HystaxError(f"cannot write to the output folder {path}: "
                          f"{err.strerror or type(err).__name__}") from None
    return path


def create_run_dir(out_dir, name: str | None = None, *, stem: str,
                   overwrite: bool = False) -> Path:
    """Create a new run's folder ``out_dir/name`` before any compute and return it.

    ``name`` defaults to ``<stem>-<YYYYmmdd-HHMMSS>`` (with ``-2``, ``-3``, ... when taken), so
    a rerun never lands on an earlier run. An existing ``name`` is refused unless
    ``overwrite`` (which removes it first); an unwritable folder is refused too.
    """
    check_name(name)
    parent = Path(out_dir)
    if name is None:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) + f"-{datetime.datetime.now():%Y%m%d-%H%M%S}"
        name, k = base, 2
        while (parent / name).exists():
            name, k = f"{base}-{k}", k + 1
    path = parent / name
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise HystaxError(f"{path} already exists; pass another --name, or --overwrite to "
                              "replace it")
        if not path.is_dir() or path.is_symlink():
            raise HystaxError(f"{path} exists and is not a folder (or is a link): not replaced")
        shutil.rmtree(path)
    return make_writable_dir(path)


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
