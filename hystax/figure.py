"""Figure building blocks shared by every plot in hystax (matplotlib, no pyplot).

Figures are ``matplotlib.figure.Figure`` objects rendered by the Agg canvas directly: pyplot's
global registry is never touched, so nothing leaks and no display is needed. matplotlib is
imported inside the functions, which keeps importing this module cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hystax.core.stats import mean_and_bootstrap_ci, nanmean_over_seeds

DPI = 120


def new_figure(figsize=(7.0, 4.5), ncols: int = 1, nrows: int = 1):
    """A Figure on an Agg canvas (no pyplot), with its axes array (squeezed like pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig, out_png) -> Path:
    """Lay out, write ``out_png`` (parent folders created) and free the figure."""
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    fig.clear()  # Figure objects are not registered with pyplot; clearing frees the artists now
    return out


def steps_axis(ax, xlabel: str, nbins: int = 6) -> None:
    """Label the x axis; environment steps get compact tick labels (20k, 1.5M)."""
    from matplotlib.ticker import EngFormatter, MaxNLocator

    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins, integer=True))
    if xlabel == "environment steps":
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))


MIN_SEEDS_FOR_CI = 3  # fewer seeds than this get thin per-seed lines instead of a band


def band(ax, x, y, label, seed=0, color=None):
    """Mean line of ``y`` [seeds, T] over seeds with its 95% bootstrap band, or, with fewer
    than ``MIN_SEEDS_FOR_CI`` seeds (too few for an interval), a thin line per seed; returns
    the mean line."""
    y = np.asarray(y, np.float64)
    if y.shape[0] >= MIN_SEEDS_FOR_CI:
        mean, lo, hi = mean_and_bootstrap_ci(y, confidence=0.95, seed=seed)
    else:
        mean = nanmean_over_seeds(y)
    (line,) = ax.plot(x, mean, label=label, color=color, linewidth=1.6)
    if y.shape[0] >= MIN_SEEDS_FOR_CI:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.25, linewidth=0)
    elif y.shape[0] > 1:
        for row in y:
            ax.plot(x, row, color=line.get_color(), linewidth=0.6, alpha=0.5)
    return line


def seeds_text(num_seeds: int) -> str:
    """``"1 seed"`` / ``"3 seeds"``, for titles."""
    return f"{num_seeds} seed" + ("" if num_seeds == 1 else "s")


def band_note(num_seeds: int) -> str:
    """What a figure's shading means for runs of ``num_seeds`` seeds (see :func:`band`)."""
    if num_seeds >= MIN_SEEDS_FOR_CI:
        return "mean over seeds, shaded: 95% bootstrap CI"
    return "mean over seeds, thin lines: each seed" if num_seeds > 1 else "one seed"
