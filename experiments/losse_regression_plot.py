"""The figure of the covariate-shift regression (:mod:`.losse_regression`): the learners'
final predictions against the target, and the test MSE per learner."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hystax.experiments.losse_regression_learners import COLORS, LABELS, METHODS
from hystax.figure import new_figure, save_figure, seeds_text


def plot(result: dict, summary: dict, out_png) -> Path:
    """Left: the target and each method's final prediction (seed 0), the training inputs'
    arrival order marked. Right: test MSE per method (log scale), mean ± s.e. and every seed."""
    config = result["config"]
    fig, axes = new_figure(figsize=(12.0, 4.6), ncols=2)
    ax, ax_mse = axes[0, 0], axes[0, 1]
    grid, truth = result["grid"], result["target"]
    ax.plot(grid, truth, color="black", lw=3.0, alpha=0.35, label="target f(x)")
    for name in METHODS:
        ax.plot(grid, result["predictions"][name][0], color=COLORS[name], lw=1.4,
                label=f"{LABELS[name]}: MSE {result['mse'][name][0]:.2g}")
    span = truth.max() - truth.min()
    ax.set_ylim(truth.min() - 0.25 * span, truth.max() + 0.45 * span)
    ax.set_xlim(config.low, config.high)
    ax.annotate("", xy=(0.97, 0.04), xytext=(0.03, 0.04), xycoords="axes fraction",
                arrowprops={"arrowstyle": "->", "color": "0.4"})
    ax.text(0.5, 0.06, "inputs arrive in sorted order, each seen once", transform=ax.transAxes,
            ha="center", va="bottom", fontsize=8, color="0.3")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"Final predictions after {config.samples:,} sorted samples (seed 0)",
                 fontsize=10)
    ax.legend(loc="upper left", fontsize=8, ncol=2, frameon=False)

    positions = np.arange(len(METHODS))
    for i, name in enumerate(METHODS):
        values = result["mse"][name]
        row = summary["methods"][name]
        jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else np.zeros(1)
        ax_mse.scatter(i + 0.25 + jitter, values, s=12, color=COLORS[name], alpha=0.5,
                       label="per seed" if i == 0 else None)
        lower = min(row["se"], 0.9 * row["mean"])  # keep the bar above 0 on the log axis
        ax_mse.errorbar(i, row["mean"], yerr=[[lower], [row["se"]]], fmt="o", ms=8, capsize=6,
                        color=COLORS[name], label="mean ± s.e." if i == 0 else None)
        ax_mse.annotate(f"{row['mean']:.2g}", (i, row["mean"]), textcoords="offset points",
                        xytext=(-10, 0), ha="right", va="center", fontsize=9)
    ax_mse.set_yscale("log")
    every = np.concatenate([result["mse"][m] for m in METHODS])
    every = every[np.isfinite(every) & (every > 0)]
    if every.size:  # room below the lowest seed and above the highest for the legend
        ax_mse.set_ylim(every.min() / 4, every.max() * 20)
    ax_mse.set_xticks(positions, [LABELS[m].replace(" (", "\n(") for m in METHODS],
                      fontsize=9)
    ax_mse.set_xlim(-0.7, len(METHODS) - 0.3)
    ax_mse.set_ylabel("test MSE on a uniform grid (log)")
    ax_mse.set_title(f"Test MSE over {seeds_text(config.seeds)}; online MLP / Losse = "
                     f"{summary['online_mlp_over_losse']:.2g}", fontsize=10)
    ax_mse.grid(True, axis="y", which="major", alpha=0.3)
    ax_mse.legend(loc="upper left", fontsize=8, frameon=False)
    return save_figure(fig, out_png)
