"""A grid of learning curves: one panel per task, one band per method.

>>> plot_learning_curve_grid({"RepeatFirstEasy": {"s5": (steps, returns), "gru": ...}, ...},
...                          "depth.png", title="POPGym Easy: return vs env steps")

Each band is the mean over seeds with a 95% bootstrap CI (as in ``returns.png``), optionally
smoothed by a trailing running mean; dashed horizontal lines mark per-panel reference levels
(e.g. the 50% and 90% thresholds of a steps-to-threshold table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hystax.core.errors import HystaxError, require
from hystax.core.stats import forward_fill, running_mean
from hystax.figure import band, band_note, new_figure, save_figure, steps_axis

Curve = tuple[np.ndarray, np.ndarray]  # (steps [T], returns [seeds, T])


def plot_learning_curve_grid(panels: Mapping[str, Mapping[str, Curve]], out_png, *,
                             title: str, ncols: int = 2, smooth: int = 1,
                             references: Mapping[str, Sequence[float]] | None = None,
                             ylabel: str = "episode return") -> Path:
    """One panel per entry of ``panels`` (``{panel: {method: (steps [T], returns [seeds, T])}}``).

    Args:
      panels: the curves; NaN returns (no episode ended) are forward-filled.
      out_png: where to write the PNG.
      title: the figure's title (say what is shown, not when).
      ncols: panels per row.
      smooth: trailing running-mean window applied to each seed's curve (1 = none).
      references: ``{panel: [levels]}`` drawn as dashed horizontal lines.
      ylabel: the y axis label.

    Returns:
      The path of the written PNG.
    """
    if not panels:
        raise HystaxError("plot_learning_curve_grid needs at least one panel")
    require(int(smooth) >= 1, f"smooth must be a positive integer, got {smooth}")
    ncols = max(1, min(int(ncols), len(panels)))
    nrows = -(-len(panels) // ncols)
    fig, axes = new_figure(figsize=(5.2 * ncols, 3.6 * nrows + 0.6), ncols=ncols, nrows=nrows)
    seeds = set()
    for ax, (name, curves) in zip(axes.flat, panels.items()):
        for i, (label, (steps, returns)) in enumerate(curves.items()):
            returns = np.atleast_2d(np.asarray(returns, np.float64))
            steps = np.asarray(steps, np.float64).reshape(-1)
            require(steps.shape == returns.shape[1:],
                    f"panel {name!r}, {label!r}: {steps.size} steps for {returns.shape[1]} points")
            seeds.add(returns.shape[0])
            y = forward_fill(returns)
            if smooth > 1:
                y = running_mean(y, int(smooth))
            band(ax, steps, y, label, seed=i, color=f"C{i % 10}")
        for level in (references or {}).get(name, ()):
            ax.axhline(level, color="0.45", linewidth=0.8, linestyle="--")
        ax.set_title(name, fontsize=10)
        steps_axis(ax, "environment steps", nbins=5)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right", framealpha=0.85)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    n = "/".join(str(s) for s in sorted(seeds))
    note = f"{smooth}-update running mean, " if smooth > 1 else ""
    fig.suptitle(f"{title}\n{note}{band_note(min(seeds))} ({n} seeds)", fontsize=11)
    return save_figure(fig, out_png)
