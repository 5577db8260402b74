"""Single-pass 1-D regression under covariate shift: Losse-FTL against online and replay MLPs.

``python -m hystax.experiments.losse_regression [--samples 4000] [--seeds 5] [--noise 0]
[--out-dir runs/losse_regression] [--name NAME] [--overwrite] [--quick]``

**Setup.** The target is ``f(x) = 2 sin(1.5x) + 1.5 sin(3.5x + 0.5) + 0.5 cos(7x)`` on
``[low, high] = [-4, 4]`` (amplitude about 4, mean square 3.25). Per seed, ``samples`` inputs
are drawn uniformly on the interval and **sorted**, so they arrive left to right (covariate
shift); targets are ``f(x) + noise · N(0, 1)`` (noise 0 by default). Every method sees each
sample once, in that order, and is scored after the stream by the test MSE against the
noiseless ``f`` on a uniform grid of ``test_points`` over the whole interval.

**Methods** (each one jitted call, ``lax.scan`` over the stream, seeds vmapped):

- ``losse-ftl``: the Losse encoding (:mod:`hystax.world_models.losse`) of the standardised input
  ``(x - centre) / losse_scale`` and a Follow-The-Leader ridge model
  (:mod:`hystax.world_models.ftl`) updated sample by sample with the sparse block update
  (``ftl.update_batch``, one scan over the stream); no refinement unless
  ``refine_iterations > 0``. Defaults: L = 20 groups, n = 50 bins, ρ = 1 (D = 1,020 features,
  k = 40 active: with ρ = 1 each group is a piecewise-linear interpolant on 51 knots, placed
  by a sigmoid of a random slope, so the 20 groups give a dense, varied knot set), ridge
  ε = 1e-5 and ``losse_scale`` 2 (inputs in [-2, 2]). On 10 seeds × 4,000 samples these give
  test MSE 0.8–5e-5; scale 1 (saturated sigmoids) is 2x worse, scale 4 10x worse, ε = 1e-4 2x
  worse (bias), and ε = 1e-6 diverges in float32 on some seeds (one-step block updates on an
  ill-conditioned A), so 1e-5 keeps a margin. ρ = 2 (the world-model default, L = 50, n = 5)
  reaches only 1e-3 to 4e-3 in 1-D.
- ``online-mlp``: an MLP ``hidden`` = [64, 64] (tanh) on ``(x - centre) / half_width``, one Adam
  step per arriving sample on a minibatch of the ``online_window`` newest samples (default 1:
  the arriving sample alone, i.e. plain single-pass online SGD).
- ``replay-mlp``: the same MLP, one Adam step per arriving sample on ``replay_batch`` (32)
  samples drawn uniformly, with replacement, from all samples seen so far (the newest included).

Learning rates (Adam), from {3e-4, 1e-3, 3e-3, 1e-2} on 4,000 samples, 3 seeds: online 1e-3
(with tanh every rate ended at 3.7–3.9 test MSE, so the rate hardly matters; relu gave 4.7–37,
and a window of 16 newest samples 3.7–4.4); replay 3e-3 (tanh: 1.4, 0.78, 0.33, 0.39 for the
four rates). The best replay baseline found was relu with 1e-2 (0.14–0.24), slightly better
than the tanh default (about 0.3); it stays four orders of magnitude above Losse-FTL.

**Shapes.** Stream x, y [S]; grid [G]; :func:`run` returns ``mse[method]`` [seeds] and
``predictions[method]`` [seeds, G]. **Outputs** in ``--out-dir``: ``mse.csv`` (method, seed,
test_mse), ``summary.json`` / ``summary.md`` (config, mean ± s.e. per method, the Losse /
online-MLP ratio) and ``regression.png`` (the target and each method's final prediction for seed
0; test MSE per method on a log scale, mean ± s.e. over seeds).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import math
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hystax.core.errors import is_int, require
from hystax.core.stats import mean_and_standard_error
from hystax.experiments import losse_regression_learners as learners
from hystax.experiments.experiment import (
    Experiment,
    add_run_dir_args,
    finite_at_least,
    markdown_table,
    positive_int,
    write_summary,
)
from hystax.experiments.losse_regression_learners import LABELS, METHODS, target
from hystax.experiments.losse_regression_plot import plot
from hystax.progress import PartBar
from hystax.rundir import create_run_dir
from hystax.world_models import losse

__all__ = ["EXPERIMENT", "METHODS", "RegressionConfig", "quick_config", "run", "summarise",
           "target", "write_outputs"]

ACTIVATIONS = ("tanh", "relu")  # the MLP baselines' choices (hystax.core.nn names)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class RegressionConfig:
    """The experiment (hashable: a static argument of the jitted runs). See the module doc."""

    samples: int = 4000
    seeds: int = 5
    noise: float = 0.0
    low: float = -4.0
    high: float = 4.0
    test_points: int = 1000
    # Losse-FTL
    num_groups: int = 20
    bins: int = 50
    group_dim: int = 1
    ridge: float = 1e-5
    losse_scale: float = 2.0
    refine_iterations: int = 0
    # the MLPs
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    online_lr: float = 1e-3
    online_window: int = 1
    replay_lr: float = 3e-3
    replay_batch: int = 32

    def __post_init__(self):
        for name in ("samples", "seeds", "test_points", "num_groups", "bins", "group_dim",
                     "online_window", "replay_batch"):
            value = getattr(self, name)
            require(is_int(value) and value >= 1,
                    f"{name} must be a positive integer, got {value!r}")
        require(_is_number(self.noise) and math.isfinite(self.noise) and self.noise >= 0,
                f"noise must be a finite number >= 0, got {self.noise!r}")
        require(all(isinstance(v, (int, float)) and math.isfinite(v) for v in (self.low, self.high))
                and self.low < self.high,
                f"the interval needs finite low < high, got [{self.low!r}, {self.high!r}]")
        for name in ("ridge", "losse_scale", "online_lr", "replay_lr"):
            value = getattr(self, name)
            require(_is_number(value) and math.isfinite(value) and value > 0,
                    f"{name} must be a finite number > 0, got {value!r}")
        require(is_int(self.refine_iterations) and self.refine_iterations >= 0,
                f"refine_iterations must be an integer >= 0, got {self.refine_iterations!r}")
        require(isinstance(self.hidden, tuple) and len(self.hidden) >= 1
                and all(is_int(h) and h >= 1 for h in self.hidden),
                f"hidden must be a non-empty tuple of positive integers, got {self.hidden!r}")
        require(self.activation in ACTIVATIONS, f"activation must be one of "
                f"{', '.join(ACTIVATIONS)}, got {self.activation!r}")
        losse.check_sizes(self.num_groups, self.bins, self.group_dim)

    @property
    def centre(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)


def quick_config(**overrides) -> RegressionConfig:
    """The ``--quick`` setting: 1,000 samples, 2 seeds, a 200-point test grid."""
    return RegressionConfig(**{"samples": 1000, "seeds": 2, "test_points": 200, **overrides})


# --- the experiment ----------------------------------------------------------------------------

class Plan(NamedTuple):
    """The validated config and the (new, empty) output folder."""

    config: RegressionConfig
    out_dir: Path
    progress: bool


def run(config: RegressionConfig | None = None, progress: bool = True) -> dict:
    """All methods on all seeds (one progress-bar tick a method). Returns ``grid`` [G],
    ``target`` [G], ``mse`` {method: [seeds]}, ``predictions`` {method: [seeds, G]} (numpy),
    ``skipped`` (Losse samples rejected or dropped, summed over seeds: 0 expected), ``config``
    and ``wall_s``."""
    config = config or RegressionConfig()
    require(isinstance(config, RegressionConfig),
            f"run expects a RegressionConfig, got {type(config).__name__}")
    start = time.perf_counter()
    keys = learners.seed_keys(config.seeds)
    data_keys = keys[:, 0]
    predictions = {}
    with PartBar(3, "losse regression", progress) as part:
        losse_pred, skipped = part("losse-ftl", learners.losse_runs, config,
                                   learners.encoders(config, keys[:, 1]), data_keys)
        predictions["losse-ftl"] = losse_pred
        predictions["online-mlp"] = part("online-mlp", learners.mlp_runs, config, False,
                                         data_keys, keys[:, 2])
        predictions["replay-mlp"] = part("replay-mlp", learners.mlp_runs, config, True,
                                         data_keys, keys[:, 3])
    grid = np.asarray(learners.grid(config))
    truth = np.asarray(target(learners.grid(config)))
    predictions = {m: np.asarray(p, np.float64) for m, p in predictions.items()}
    mse = {m: np.mean((p - truth) ** 2, axis=1) for m, p in predictions.items()}
    return {"config": config, "grid": grid, "target": truth, "mse": mse,
            "predictions": predictions, "skipped": int(np.sum(skipped)),
            "wall_s": time.perf_counter() - start}


def summarise(result: dict) -> dict:
    """The ``summary.json`` content: config, mean ± s.e. of the test MSE per method, ratios."""
    methods = {}
    for name, values in result["mse"].items():
        mean, se = mean_and_standard_error(values)
        methods[name] = {"mean": mean, "se": se, "per_seed": [float(v) for v in values]}
    losse_mean = methods["losse-ftl"]["mean"]
    config = dataclasses.asdict(result["config"])
    return {"experiment": "losse_regression", "config": config, "methods": methods,
            "losse_over_online_mlp": losse_mean / methods["online-mlp"]["mean"],
            "online_mlp_over_losse": methods["online-mlp"]["mean"] / losse_mean,
            "replay_mlp_over_losse": methods["replay-mlp"]["mean"] / losse_mean,
            "losse_skipped_samples": result["skipped"], "wall_s": result["wall_s"],
            "date": datetime.datetime.now().isoformat(timespec="seconds")}


def format_table(summary: dict) -> str:
    c = summary["config"]
    caption = (f"Single-pass 1-D regression, {c['samples']:,} inputs in sorted order on "
               f"[{c['low']:g}, {c['high']:g}], noise {c['noise']:g}: test MSE on "
               f"{c['test_points']:,} grid points, mean ± s.e. over {c['seeds']} seeds")
    losse_mean = summary["methods"]["losse-ftl"]["mean"]
    rows = [[LABELS[name], f"{row['mean']:.3g} ± {row['se']:.2g}",
             f"{row['mean'] / losse_mean:.3g}"] for name, row in summary["methods"].items()]
    lines = markdown_table(caption, ["method", "test MSE", "/ Losse-FTL"], rows)
    lines += ["", f"Losse-FTL / online MLP = {summary['losse_over_online_mlp']:.2e}"]
    return "\n".join(lines)


def write_outputs(plan: Plan, result: dict, summary: dict) -> None:
    """``mse.csv``, ``summary.json`` / ``summary.md`` (the table printed) and
    ``regression.png`` in the plan's folder."""
    out_dir = plan.out_dir
    with open(out_dir / "mse.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seed", "test_mse"])
        for name, values in result["mse"].items():
            for seed, value in enumerate(values):
                writer.writerow([name, seed, f"{value:.6g}"])
    plot(result, summary, out_dir / "regression.png")
    write_summary(out_dir, "summary", summary, format_table(summary))
    print(f"wrote {out_dir}/ ({result['wall_s']:.0f} s)")


# --- command line ------------------------------------------------------------------------------

def add_arguments(parser) -> None:
    """``--samples``, ``--seeds``, ``--noise``, the run folder and ``--quick``."""
    parser.add_argument("--samples", default=None,
                        help="stream length (default 4000; 1000 with --quick)")
    parser.add_argument("--seeds", default=None, help="seeds 0..N-1 (default 5; 2 with --quick)")
    parser.add_argument("--noise", default="0", help="observation noise s.d. (default: 0)")
    add_run_dir_args(parser, "runs/losse_regression", "regression")
    parser.add_argument("--quick", action="store_true",
                        help="a small run: 1,000 samples, 2 seeds, 200 test points")


def plan_from_args(args) -> Plan:
    overrides = {}
    if args.samples is not None:
        overrides["samples"] = positive_int("samples", args.samples)
    if args.seeds is not None:
        overrides["seeds"] = positive_int("seeds", args.seeds)
    overrides["noise"] = finite_at_least("noise", args.noise)
    config = quick_config(**overrides) if args.quick else RegressionConfig(**overrides)
    out_dir = create_run_dir(args.out_dir, args.name, stem="regression", overwrite=args.overwrite)
    return Plan(config, out_dir, args.progress)


EXPERIMENT = Experiment(
    prog="python -m hystax.experiments.losse_regression", description=__doc__.splitlines()[0],
    add_arguments=add_arguments, validate=plan_from_args,
    run=lambda plan: run(plan.config, plan.progress),
    summarise=lambda plan, result: summarise(result), write=write_outputs)
cli = EXPERIMENT.cli

if __name__ == "__main__":
    sys.exit(cli())
