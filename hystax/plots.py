"""Figures for run directories, multi-task scores and bandit regret.

Conventions (see the foundation spec): return curves are the mean over seeds with a 95%
bootstrap confidence band against environment steps; multi-task summaries are IQMs with
stratified bootstrap CIs; regret curves are mean ± standard error over seeds on linear and
log-log axes, with the fitted growth exponent in the legend.

Figures are built with ``matplotlib.figure.Figure`` and rendered by the Agg canvas directly:
pyplot's global figure registry is never touched, so nothing leaks, no display is needed and
the user's interactive backend is left alone. matplotlib is imported inside the functions,
which keeps ``import hystax.plots`` cheap.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hystax import rundir
from hystax.core.errors import HystaxError, require
from hystax.core.stats import (
    forward_fill,
    loglog_slope,
    mean_and_standard_error,
    mean_and_t_interval,
    nanmean_over_seeds,
    running_mean,
    stratified_bootstrap_ci,
)
from hystax.figure import band, band_note, new_figure, save_figure, steps_axis
from hystax.task_plots import plot_curves, plot_task_curves, plot_task_matrices

__all__ = ["plot_returns", "plot_iqm", "plot_regret", "write_regret_csv", "plot_run_dirs",
           "plot_task_matrices", "plot_task_curves", "plot_curves"]

# Columns of metrics.csv that are not training diagnostics (they go to returns.png or are counters).
_NOT_LOSSES = frozenset({*rundir.INDEX_COLUMNS, *rundir.PROGRESS_COLUMNS})


# ----------------------------------------------------------------------------- helpers

def _num(x: float) -> str:
    return f"{x:.1f}" if abs(x) < 1000 else f"{x:.3g}"


def _human(metric: str) -> str:
    return metric.replace("_", " ")


def _run_label(run_dir: Path, config: Mapping) -> str:
    agent, env = config.get("agent"), config.get("env")
    fields = config.get("config") or {}
    # PPO's memory, Dyna's world model, continual MBRL's method
    variant = fields.get("memory") or fields.get("model") or fields.get("method")
    if isinstance(variant, Mapping):  # PPO's nested memory settings (a flat name before)
        variant = variant.get("model")
    if agent and variant and variant != "none":
        agent = f"{agent}-{variant}"
    if agent and env:
        return f"{agent} on {env}"
    return str(config.get("name") or Path(run_dir).resolve().name)


def _seeds_note(n: int) -> str:
    return f"(n={n} seed{'s' if n != 1 else ''})"


def _load(run_dir) -> tuple[dict, dict[str, np.ndarray]]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise HystaxError(f"{run_dir} is not a directory")
    return rundir.read_config(run_dir), rundir.read_metrics(run_dir)


def _x_axis(metrics: Mapping[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """Environment steps (mean over seeds, forward-filled) when logged, else the update index."""
    if "env_steps" in metrics and np.isfinite(metrics["env_steps"]).any():
        return nanmean_over_seeds(forward_fill(metrics["env_steps"])), "environment steps"
    return np.asarray(metrics["update"], dtype=np.float64), "update"


# ----------------------------------------------------------------------------- returns

def _returns_figure(run_dirs: Sequence, metric: str = "episode_return",
                    labels: Sequence[str] | None = None, title: str | None = None,
                    smooth: int = 1):
    """Build (but do not save) the return-curve figure; returns the ``Figure``."""
    require(isinstance(smooth, (int, np.integer)) and smooth >= 1,
            f"smooth must be a positive number of updates, got {smooth!r}")
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise HystaxError("no run directories given to plot")
    if labels is not None and len(labels) != len(run_dirs):
        raise HystaxError(f"got {len(labels)} labels for {len(run_dirs)} run directories")
    loaded = [_load(d) for d in run_dirs]  # validate every directory before drawing
    for d, (_, m) in zip(run_dirs, loaded):
        if metric not in m or metric in ("seed", "update"):
            cols = ", ".join(k for k in m if k not in ("seed", "update"))
            raise HystaxError(f"{d} has no metric {metric!r} (columns: {cols})")

    fig, axes = new_figure()
    ax = axes[0, 0]
    xlabels, xs, any_data = set(), [], False
    for i, (d, (config, m)) in enumerate(zip(run_dirs, loaded)):
        x, xlabel = _x_axis(m)
        xlabels.add(xlabel)
        y = forward_fill(m[metric])
        if smooth > 1:
            y = running_mean(y, int(smooth))
        name = labels[i] if labels is not None else _run_label(d, config)
        label = f"{name} {_seeds_note(y.shape[0])}"
        if not np.isfinite(y).any():
            label += f" (no {_human(metric)} logged yet)"
        else:
            any_data = True
        band(ax, x, y, label, seed=i)
        xs.append(x)
    if not any_data:  # keep the axes meaningful for a run that has not finished an episode
        ax.text(0.5, 0.5, f"no {_human(metric)} logged yet", transform=ax.transAxes,
                ha="center", va="center", color="0.4")
        xall = np.concatenate(xs)
        if np.isfinite(xall).any() and np.nanmax(xall) > np.nanmin(xall):
            ax.set_xlim(np.nanmin(xall), np.nanmax(xall))
    steps_axis(ax, " / ".join(sorted(xlabels)))
    ax.set_ylabel(_human(metric))
    if title is None:
        if len(run_dirs) == 1:
            title = _run_label(run_dirs[0], loaded[0][0])
        else:
            title = f"{_human(metric)}: {len(run_dirs)} runs"
    seeds = min(m[metric].shape[0] for _, m in loaded)
    note = f"{smooth}-update running mean, " if smooth > 1 else ""
    ax.set_title(f"{title}\n{note}{band_note(seeds)}", fontsize=10)
    ax.grid(alpha=0.3)
    # Below the axes: a legend inside would hide the ends of rising curves.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncol=1 if len(run_dirs) < 4 else 2, frameon=False)
    return fig


def plot_returns(run_dirs: Sequence, out_png, metric: str = "episode_return",
                 labels: Sequence[str] | None = None, title: str | None = None,
                 smooth: int = 1) -> Path:
    """Overlay the learning curves of several runs and save them as a PNG.

    Each run contributes the mean over seeds of ``metric`` (forward-filled across updates that
    finished no episode) with a shaded 95% bootstrap confidence band (thin per-seed lines under
    3 seeds), against environment steps.

    Args:
      run_dirs: run directories (each with ``config.json`` and ``metrics.csv``).
      out_png: where to write the figure (parent folders are created).
      metric: a column of ``metrics.csv``.
      labels: legend names, one per run; default ``"<agent> on <env>"`` from the config, else
        the folder name. The number of seeds is appended, e.g. ``"(n=4 seeds)"``.
      title: figure title; default ``"<agent>[-<memory or model>] on <env>"`` (one run) or
        ``"<metric>: N runs"``.
      smooth: a running mean over this many updates (1: none).

    Returns:
      The path of the written PNG.
    """
    fig = _returns_figure(run_dirs, metric=metric, labels=labels, title=title, smooth=smooth)
    return save_figure(fig, out_png)


def _losses_figure(run_dir, columns: Sequence[str] | None = None):
    """One small panel per training-diagnostic column of a run; ``None`` if there is none."""
    config, m = _load(run_dir)
    if columns is None:
        columns = [k for k in m if k not in _NOT_LOSSES and np.isfinite(m[k]).any()]
    if not columns:
        return None
    x, xlabel = _x_axis(m)
    ncols = min(3, len(columns))
    nrows = -(-len(columns) // ncols)
    fig, axes = new_figure(figsize=(3.6 * ncols, 2.8 * nrows + 0.5), ncols=ncols, nrows=nrows)
    for k, ax in zip(columns, axes.flat):
        band(ax, x, forward_fill(m[k]), None)
        ax.set_title(_human(k), fontsize=9)
        steps_axis(ax, xlabel, nbins=4)
        ax.xaxis.label.set_fontsize(8)
        ax.set_ylabel(_human(k), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(columns):]:
        ax.set_visible(False)
    n = m[columns[0]].shape[0]
    fig.suptitle(f"{_run_label(run_dir, config)}: training metrics, {band_note(n)} "
                 f"{_seeds_note(n)}", fontsize=10)
    return fig


def plot_run_dirs(run_dirs: Sequence, out_dir=None, smooth: int = 1) -> list[Path]:
    """Write the standard figures for run directories (what ``hystax plot RUN_DIR...`` calls).

    One run directory: ``returns.png`` and, when the run logged training diagnostics (losses,
    entropy, ...), ``losses.png`` with one panel per column, both inside the run directory
    (or ``out_dir`` when given). Several: one overlay ``returns.png`` in ``out_dir``, default
    ``<parent of the first run dir>/compare``.

    Raises:
      HystaxError: if a path is not a run directory (no ``config.json`` / ``metrics.csv``).

    Returns:
      The written paths.
    """
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise HystaxError("no run directories given to plot")
    for d in run_dirs:  # fail before writing anything
        _load(d)
    if len(run_dirs) == 1:
        target = Path(out_dir) if out_dir is not None else run_dirs[0]
        written = [plot_returns(run_dirs, target / "returns.png", smooth=smooth)]
        fig = _losses_figure(run_dirs[0])
        if fig is not None:
            written.append(save_figure(fig, target / "losses.png"))
        return written
    target = Path(out_dir) if out_dir is not None else run_dirs[0].resolve().parent / "compare"
    return [plot_returns(run_dirs, target / "returns.png", smooth=smooth)]


# ----------------------------------------------------------------------------- IQM

def _iqm_figure(scores: Mapping[str, np.ndarray], title: str | None = None, seed: int = 0):
    if not scores:
        raise HystaxError("plot_iqm needs at least one algorithm's scores")
    names = list(scores)
    stats = [stratified_bootstrap_ci(scores[k], seed=seed) for k in names]
    shapes = [np.shape(np.atleast_1d(scores[k])) for k in names]
    fig, axes = new_figure(figsize=(6.5, 1.2 + 0.55 * len(names)))
    ax = axes[0, 0]
    colors = [f"C{i % 10}" for i in range(len(names))]
    ypos = np.arange(len(names))[::-1]  # first algorithm on top
    for y, (point, lo, hi), c in zip(ypos, stats, colors):
        ax.barh(y, hi - lo, left=lo, height=0.6, color=c, alpha=0.35, linewidth=0)
        ax.plot([point, point], [y - 0.3, y + 0.3], color=c, linewidth=2.2)
        ax.annotate(f"{point:.3g}", (hi, y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ticklabels = []
    for k, shape in zip(names, shapes):
        runs, tasks = (shape[0], shape[1]) if len(shape) == 2 else (shape[0], 1)
        ticklabels.append(f"{k}\n({runs} runs × {tasks} task{'s' if tasks != 1 else ''})")
    ax.set_yticks(ypos, ticklabels, fontsize=8)
    ax.set_ylabel("algorithm")
    ax.set_xlabel("IQM of normalized score")
    lo_all = min(s[1] for s in stats)
    hi_all = max(s[2] for s in stats)
    pad = 0.12 * (hi_all - lo_all) if hi_all > lo_all else 0.1 * max(1.0, abs(hi_all))
    ax.set_xlim(lo_all - pad, hi_all + 2 * pad)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{title or 'interquartile mean'}\nline: IQM, bar: 95% stratified bootstrap CI",
                 fontsize=10)
    return fig


def plot_iqm(scores: Mapping[str, np.ndarray], out_png, title: str | None = None) -> Path:
    """Plot the IQM of normalized scores per algorithm with 95% stratified bootstrap CIs.

    Args:
      scores: ``{algorithm: array [runs, tasks]}`` of normalized scores (a 1-D array is one task).
      out_png: where to write the PNG.
      title: figure title (default ``"interquartile mean"``).

    Returns:
      The path of the written PNG.
    """
    return save_figure(_iqm_figure(scores, title=title), out_png)


# ----------------------------------------------------------------------------- regret

def _regret_inputs(curves: Mapping[str, np.ndarray], rounds) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if not curves:
        raise HystaxError("no regret curves given")
    out = []
    for name, c in curves.items():
        c = np.asarray(c, dtype=np.float64)
        if c.ndim == 1:
            c = c[None, :]
        if c.ndim != 2 or c.shape[1] == 0:
            raise HystaxError(f"regret curve {name!r} must have shape [seeds, T], got {c.shape}")
        r = np.arange(1, c.shape[1] + 1, dtype=np.float64) if rounds is None \
            else np.asarray(rounds, dtype=np.float64).reshape(-1)
        if r.size != c.shape[1]:
            raise HystaxError(f"regret curve {name!r} has {c.shape[1]} columns but rounds has {r.size}")
        out.append((str(name), c, r))
    return out


def _tail_slope(r: np.ndarray, mean: np.ndarray) -> float:
    """Log-log slope of the mean curve over the last 90% of rounds (NaN if it cannot be fitted).

    With sparse (e.g. log-spaced) round subsamples that leave fewer than 3 columns in that
    tail, every column is used instead.
    """
    tail = r >= r.min() + 0.1 * (r.max() - r.min())
    if tail.sum() < 3:
        tail = np.ones_like(tail)
    try:
        return loglog_slope(r[tail], mean[tail])
    except HystaxError:
        return float("nan")


INTERVALS = {"se": "s.e.", "ci95": "95% CI"}
"""The regret plots' bands: the standard error, or the 95% Student-t interval of the mean."""


def _regret_figure(curves: Mapping[str, np.ndarray], rounds=None, title: str | None = None,
                   interval: str = "se", unit: str = "seeds"):
    from matplotlib import colormaps

    require(interval in INTERVALS, f"unknown interval {interval!r}; choose from "
            f"{', '.join(INTERVALS)}")
    spread = mean_and_standard_error if interval == "se" else mean_and_t_interval
    word = INTERVALS[interval]

    data = _regret_inputs(curves, rounds)
    fig, axes = new_figure(figsize=(11.0, 4.3), ncols=2)
    lin, log = axes[0, 0], axes[0, 1]
    n_seeds = sorted({c.shape[0] for _, c, _ in data})
    for i, (name, c, r) in enumerate(data):
        mean, se = spread(c)
        color = f"C{i}" if len(data) <= 10 else colormaps["tab20"](i % 20)  # no repeats
        slope = _tail_slope(r, mean)
        lin.plot(r, mean, color=color, linewidth=1.6,
                 label=f"{name}: final {_num(mean[-1])} ± {_num(se[-1])}")
        lin.fill_between(r, mean - se, mean + se, color=color, alpha=0.25, linewidth=0)
        pos = (r > 0) & (mean > 0)
        log.plot(r[pos], mean[pos], color=color, linewidth=1.6,
                 label=f"{name}: slope {slope:.2f}" if np.isfinite(slope) else
                 f"{name}: no slope (regret not positive)")
        low = np.where(mean - se > 0, mean - se, np.nan)  # a band cannot cross zero on log axes
        log.fill_between(r[pos], low[pos], (mean + se)[pos], color=color, alpha=0.25, linewidth=0)
    if any(line.get_xydata().size for line in log.get_lines()):
        log.set_xscale("log")
        log.set_yscale("log")
    else:  # log axes over no positive value cannot be drawn
        log.text(0.5, 0.5, "no positive regret to draw on log axes", ha="center",
                 transform=log.transAxes)
    for ax in (lin, log):
        ax.set_xlabel("round")
        ax.set_ylabel("cumulative regret")
        ax.grid(alpha=0.3, which="both" if ax is log else "major")
    lin.set_title(f"linear axes (legend: final regret mean ± {word})", fontsize=9)
    log.set_title("log-log axes (legend: fitted slope over the last 90% of rounds)", fontsize=9)
    lin.legend(fontsize=8, loc="upper left", framealpha=0.85)
    log.legend(fontsize=8, loc="upper left", framealpha=0.85)
    seeds = "/".join(str(n) for n in n_seeds)
    fig.suptitle(f"{title or 'cumulative regret'}: mean ± {word} over {seeds} {unit}",
                 fontsize=11)
    return fig


def plot_regret(curves: Mapping[str, np.ndarray], out_png, rounds=None,
                title: str | None = None, interval: str = "se", unit: str = "seeds") -> Path:
    """Plot cumulative regret on linear and log-log axes, mean ± standard error over seeds
    (``interval="ci95"``: ± the 95% Student-t interval of the mean; ``unit`` names the rows in
    the title, e.g. "instances").

    Args:
      curves: ``{algorithm: cumulative regret [seeds, T]}``; T may be a subsample of the rounds.
      out_png: where to write the PNG.
      rounds: [T] round index of each column (shared by all curves); default ``1..T``.
      title: figure title (default ``"cumulative regret"``).

    The left panel's legend gives each algorithm's final regret (mean ± s.e.); the right
    (log-log) panel's gives the slope of log regret on log round over the last 90% of rounds:
    about 0.5 for sqrt(T) regret, 1 for linear regret.

    Returns:
      The path of the written PNG.
    """
    return save_figure(_regret_figure(curves, rounds=rounds, title=title, interval=interval,
                                      unit=unit), out_png)


def write_regret_csv(curves: Mapping[str, np.ndarray], out_csv, rounds=None) -> Path:
    """Write cumulative-regret curves as a long-form CSV, one row per (algorithm, seed, round).

    Columns: ``algorithm,seed,round,regret``; ``seed`` is the row index (0-based) within that
    algorithm's [seeds, T] array and ``round`` comes from ``rounds`` (default ``1..T``).

    Returns:
      The path of the written CSV.
    """
    data = _regret_inputs(curves, rounds)
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["algorithm", "seed", "round", "regret"])
        for name, c, r in data:
            for s in range(c.shape[0]):
                for t in range(c.shape[1]):
                    writer.writerow([name, s, _fmt_num(r[t]), _fmt_num(c[s, t])])
    return out


def _fmt_num(x: float) -> str:
    x = float(x)
    if x.is_integer() and abs(x) < 2**53:
        return str(int(x))
    return repr(x)
