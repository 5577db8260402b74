"""What both continual modes share: the methods they compare, the task-by-task matrices they
write (``errors.csv``, ``rewards.csv``), mean ± s.e. cells, and the summary files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from hystax.core.errors import require, unknown_name
from hystax.core.stats import mean_and_standard_error
from hystax.experiments.experiment import write_summary
from hystax.world_models.continual_methods import METHODS

DEFAULT_METHODS = ("hnet", "finetune", "multihead", "coreset", "multitask", "ewc", "si")


def check_methods(names) -> list[str]:
    """The continual methods to compare (default: :data:`DEFAULT_METHODS`), each known, none
    repeated."""
    names = list(DEFAULT_METHODS) if not names else list(names)
    for name in names:
        if name not in METHODS:
            raise unknown_name("continual method", name, METHODS)
    require(len(set(names)) == len(names), f"methods repeated: {names}")
    return names


def method_label(name: str, options: dict) -> str:
    """``name`` with its non-default options: ``hnet (beta=0)``."""
    extra = ", ".join(f"{k}={v}" for k, v in options.items())
    return f"{name} ({extra})" if extra else name


def stat(x) -> dict:
    """``{"mean", "se"}`` of ``x`` over its first axis (seeds)."""
    mean, se = mean_and_standard_error(np.asarray(x, np.float64))
    return {"mean": mean, "se": se}


def write_matrix_csv(path: Path, matrices: dict, value: str) -> None:
    """``method,seed,task,after_task,<value>`` for every finite entry of each [seeds, T, T]."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seed", "task", "after_task", value])
        for name, m in matrices.items():
            for (seed, t, j), v in np.ndenumerate(m):
                if np.isfinite(v):
                    writer.writerow([name, seed, t, j, f"{v:.6g}"])


def write_summary_files(out_dir: Path, summary: dict, table: str) -> None:
    """``summary.md`` / ``summary.json`` (the table printed), and where they went."""
    write_summary(out_dir, "summary", summary, table)
    print(f"wrote {out_dir}/ ({summary['wall_s']:.0f} s)")
