"""Figures of per-task results: task matrices (continual learning) and mean ± s.e. curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hystax.core.errors import HystaxError, require
from hystax.core.stats import mean_and_standard_error
from hystax.figure import DPI, new_figure, save_figure, steps_axis

__all__ = ["cell_text", "plot_curves", "plot_task_curves", "plot_task_matrices"]


def cell_text(v: float) -> str:
    """A heat-map cell: whole numbers from 100 up, else two significant digits (0.0021)."""
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.2g}"


def plot_task_matrices(matrices: Mapping[str, np.ndarray], out_png, title: str | None = None,
                       value: str = "return", task_labels: Sequence[str] | None = None) -> Path:
    """Heat maps of per-method task matrices M[t, j] (row: task evaluated, column: the model
    saved after task j; NaN where t > j, i.e. the task was not seen yet), one panel per method,
    each cell annotated. matrices: ``{method: [tasks, tasks]}`` (mean over seeds)."""
    if not matrices:
        raise HystaxError("no task matrices given")
    data = {str(k): np.asarray(v, np.float64) for k, v in matrices.items()}
    for name, m in data.items():
        if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
            raise HystaxError(f"task matrix {name!r} must be square [tasks, tasks], got {m.shape}")
    n = len(data)
    size = next(iter(data.values())).shape[0]
    labels = list(task_labels) if task_labels is not None else [str(i) for i in range(size)]
    finite = np.concatenate([m[np.isfinite(m)] for m in data.values()] or [np.zeros(1)])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    ncols = min(n, 4)
    nrows = -(-n // ncols)
    fig, axes = new_figure(figsize=(3.9 * ncols + 1.2, 3.7 * nrows), ncols=ncols, nrows=nrows)
    cell = 6 if size > 4 else 7
    for k, ax in enumerate(axes.reshape(-1)):
        if k >= n:
            ax.set_axis_off()
            continue
        name, m = list(data.items())[k]
        image = ax.imshow(np.ma.masked_invalid(m), vmin=lo, vmax=hi, cmap="viridis")
        for (t, j), v in np.ndenumerate(m):
            if np.isfinite(v):
                ax.text(j, t, cell_text(v), ha="center",
                        va="center", fontsize=cell,
                        color="white" if v < (lo + hi) / 2 else "black")
        ax.set_xticks(range(size), labels, fontsize=7, rotation=45)
        ax.set_yticks(range(size), labels if k % ncols == 0 else [], fontsize=7)
        ax.set_xlabel("model saved after task", fontsize=8)
        if k % ncols == 0:
            ax.set_ylabel("task evaluated", fontsize=8)
        ax.set_title(name, fontsize=9)
    fig.colorbar(image, ax=list(axes.reshape(-1)), shrink=0.8, label=value)
    fig.suptitle(title or f"{value} per task and saved model", fontsize=10)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, bbox_inches="tight")
    fig.clear()
    return out


def _standard_error_bands(ax, curves: Mapping[str, np.ndarray], x=None) -> int:
    """Mean ± s.e. over seeds of each ``[seeds, T]`` curve against ``x`` [T] (default 1..T);
    returns the longest T."""
    total = 0
    for i, (name, c) in enumerate(curves.items()):
        c = np.asarray(c, np.float64)
        c = c[None] if c.ndim == 1 else c
        mean, se = mean_and_standard_error(c)
        xs = np.arange(1, c.shape[1] + 1) if x is None else np.asarray(x)
        require(xs.shape == (c.shape[1],),
                f"curve {name!r} has {c.shape[1]} points but x has shape {xs.shape}")
        ax.plot(xs, mean, color=f"C{i % 10}", linewidth=1.4, label=str(name))
        ax.fill_between(xs, mean - se, mean + se, color=f"C{i % 10}", alpha=0.2, linewidth=0)
        total = max(total, c.shape[1])
    return total


def plot_curves(curves: Mapping[str, np.ndarray], x, out_png, xlabel: str = "environment steps",
                ylabel: str = "episode return", title: str | None = None,
                reference: float | None = None) -> Path:
    """Learning curves ``{method: [seeds, T]}`` against ``x`` [T], mean ± s.e. over seeds; an
    optional horizontal ``reference`` line (e.g. a baseline's final return)."""
    if not curves:
        raise HystaxError("no curves given")
    fig, axes = new_figure(figsize=(8.0, 4.5))
    ax = axes[0, 0]
    _standard_error_bands(ax, curves, x)
    if reference is not None:
        ax.axhline(reference, color="grey", linewidth=0.9, linestyle="--")
    steps_axis(ax, xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    seeds = "/".join(str(n) for n in sorted({np.atleast_2d(c).shape[0] for c in curves.values()}))
    fig.suptitle(title or f"mean ± s.e. over {seeds} seeds", fontsize=10)
    return save_figure(fig, out_png)


def plot_task_curves(curves: Mapping[str, np.ndarray], out_png, task_length: int,
                     title: str | None = None, ylabel: str = "episode return",
                     task_labels: Sequence[str] | None = None) -> Path:
    """Training curves across a task sequence: ``{method: [seeds, episodes]}`` (episodes of
    every task back to back, ``task_length`` per task), mean ± s.e. over seeds, with the task
    boundaries marked."""
    if not curves:
        raise HystaxError("no curves given")
    fig, axes = new_figure(figsize=(9.0, 4.2))
    ax = axes[0, 0]
    total = _standard_error_bands(ax, curves)
    for b in range(task_length, total, task_length):
        ax.axvline(b + 0.5, color="grey", linewidth=0.8, linestyle="--")
    if task_labels is not None:
        for k, label in enumerate(task_labels):
            ax.text(k * task_length + task_length / 2 + 0.5, 1.01, str(label), fontsize=7,
                    ha="center", transform=ax.get_xaxis_transform())
    ax.set_xlabel("episode (tasks in sequence)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", framealpha=0.85)
    fig.suptitle(title or "training across tasks: mean ± s.e. over seeds", fontsize=10)
    return save_figure(fig, out_png)
