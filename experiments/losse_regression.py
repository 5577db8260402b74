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
import functools
import math
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from hystax.core.nn import MLP
from hystax.experiments.common import (
    OneLineParser,
    add_run_dir_args,
    positive_int,
    run_or_exit,
    write_summary,
)
from hystax.world_models import ftl, losse

import hystax  # noqa: F401  (its XLA:CPU workaround; importing this module ran it before jax)
from hystax.core.errors import HystaxError, require
from hystax.progress import PartBar
from hystax.rundir import create_run_dir
from hystax.core.stats import mean_and_standard_error

__all__ = ["METHODS", "RegressionConfig", "quick_config", "run", "target"]

METHODS = ("losse-ftl", "online-mlp", "replay-mlp")
ACTIVATIONS = ("tanh", "relu")  # the MLP baselines' choices (hystax.core.nn names)
_LABELS = {"losse-ftl": "Losse-FTL (single pass)", "online-mlp": "online MLP (single pass)",
           "replay-mlp": "MLP + full replay"}
_COLORS = {"losse-ftl": "tab:blue", "online-mlp": "tab:red", "replay-mlp": "tab:orange"}


def target(x):
    """The regression target ``2 sin(1.5x) + 1.5 sin(3.5x + 0.5) + 0.5 cos(7x)`` (elementwise)."""
    return 2.0 * jnp.sin(1.5 * x) + 1.5 * jnp.sin(3.5 * x + 0.5) + 0.5 * jnp.cos(7.0 * x)


def _positive_number(name: str, value) -> None:
    require(isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0, f"{name} must be a finite number > 0, got "
            f"{value!r}")


def _positive_ints(config, names) -> None:
    for name in names:
        value = getattr(config, name)
        require(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1,
                f"{name} must be a positive integer, got {value!r}")


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
        _positive_ints(self, ("samples", "seeds", "test_points", "num_groups", "bins", "group_dim",
                              "online_window", "replay_batch"))
        require(isinstance(self.noise, (int, float, np.integer, np.floating))
                and not isinstance(self.noise, bool) and math.isfinite(self.noise)
                and self.noise >= 0, f"noise must be a finite number >= 0, got {self.noise!r}")
        require(all(isinstance(v, (int, float)) and math.isfinite(v) for v in (self.low, self.high))
                and self.low < self.high,
                f"the interval needs finite low < high, got [{self.low!r}, {self.high!r}]")
        for name in ("ridge", "losse_scale", "online_lr", "replay_lr"):
            _positive_number(name, getattr(self, name))
        require(isinstance(self.refine_iterations, (int, np.integer))
                and self.refine_iterations >= 0,
                f"refine_iterations must be an integer >= 0, got {self.refine_iterations!r}")
        require(isinstance(self.hidden, tuple) and len(self.hidden) >= 1
                and all(isinstance(h, (int, np.integer)) and h >= 1 for h in self.hidden),
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


# --- data --------------------------------------------------------------------------------------

def _stream(config: RegressionConfig, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sorted inputs x [S] and noisy targets y [S] of one seed."""
    k_x, k_noise = jax.random.split(key)
    x = jnp.sort(jax.random.uniform(k_x, (config.samples,), minval=config.low,
                                    maxval=config.high))
    return x, target(x) + config.noise * jax.random.normal(k_noise, x.shape)


def _grid(config: RegressionConfig) -> jax.Array:
    return jnp.linspace(config.low, config.high, config.test_points)


def _seed_keys(seeds: int) -> jax.Array:
    """Per seed s: keys [seeds, 4] for (data, Losse projection, online MLP, replay MLP)."""
    return jnp.stack([jax.random.split(jax.random.PRNGKey(s), 4) for s in range(seeds)])


# --- Losse-FTL ---------------------------------------------------------------------------------

def _ftl_config(config: RegressionConfig, encoder: losse.LosseEncoder) -> ftl.FTLConfig:
    return ftl.FTLConfig(encoder.num_features, 1, ridge=config.ridge)


@functools.partial(jax.jit, static_argnums=0)
def _losse_runs(config: RegressionConfig, encoders, data_keys):
    """Predictions on the grid [seeds, G] and rejected-sample counts [seeds]."""
    grid = _grid(config)
    ftl_config = _ftl_config(config, jax.tree.map(lambda a: a[0], encoders))

    def one(encoder, key):
        x, y = _stream(config, key)
        indices, values = losse.encode(encoder, x[:, None])          # [S, k] each
        state = ftl.update_batch(ftl_config, ftl.init(ftl_config), indices, values, y[:, None],
                                 config.refine_iterations)
        grid_indices, grid_values = losse.encode(encoder, grid[:, None])
        return ftl.predict(state, grid_indices, grid_values)[:, 0], state.rejected + state.overflow

    return jax.vmap(one)(encoders, data_keys)


def _encoders(config: RegressionConfig, keys: jax.Array):
    """One Losse encoder per seed, stacked along a leading axis."""
    encoders = [losse.make_encoder(k, 1, config.num_groups, config.bins, config.group_dim,
                                   loc=config.centre, scale=config.losse_scale) for k in keys]
    return jax.tree.map(lambda *a: jnp.stack(a), *encoders)


# --- the MLPs ----------------------------------------------------------------------------------

@functools.partial(jax.jit, static_argnums=(0, 1))
def _mlp_runs(config: RegressionConfig, replay: bool, data_keys, mlp_keys):
    """Grid predictions [seeds, G] of the online (``replay=False``) or the replay MLP."""
    net = MLP(config.hidden, 1, config.activation, orthogonal=False)
    optimiser = optax.adam(config.replay_lr if replay else config.online_lr)
    grid = (_grid(config) - config.centre) / config.half_width
    batch = config.replay_batch if replay else config.online_window

    def one(data_key, key):
        x, y = _stream(config, data_key)
        inputs, targets = ((x - config.centre) / config.half_width)[:, None], y[:, None]
        k_init, k_replay = jax.random.split(key)
        params = net.init(k_init, inputs[:1])

        def loss(p, xb, yb, weights):
            return jnp.sum(weights * (net.apply(p, xb) - yb)[:, 0] ** 2) / jnp.sum(weights)

        def step(carry, t):
            p, opt_state = carry
            if replay:  # uniform over the samples seen so far, the newest (t) included
                rows = jax.random.randint(jax.random.fold_in(k_replay, t), (batch,), 0, t + 1)
                weights = jnp.ones(batch)
            else:  # the `batch` newest samples (fewer at the start of the stream)
                back = t - jnp.arange(batch)
                rows, weights = jnp.maximum(back, 0), (back >= 0).astype(jnp.float32)
            grads = jax.grad(loss)(p, inputs[rows], targets[rows], weights)
            updates, opt_state = optimiser.update(grads, opt_state, p)
            return (optax.apply_updates(p, updates), opt_state), None

        (params, _), _ = jax.lax.scan(step, (params, optimiser.init(params)),
                                      jnp.arange(config.samples))
        return net.apply(params, grid[:, None])[:, 0]

    return jax.vmap(one)(data_keys, mlp_keys)


# --- the experiment ----------------------------------------------------------------------------

def run(config: RegressionConfig | None = None, progress: bool = True) -> dict:
    """All methods on all seeds (one progress-bar tick a method). Returns ``grid`` [G], ``target`` [G], ``mse`` {method: [seeds]},
    ``predictions`` {method: [seeds, G]} (numpy), ``skipped`` (Losse samples rejected or
    dropped, summed over seeds: 0 expected), ``config`` and ``wall_s``."""
    config = config or RegressionConfig()
    require(isinstance(config, RegressionConfig),
            f"run expects a RegressionConfig, got {type(config).__name__}")
    start = time.perf_counter()
    keys = _seed_keys(config.seeds)
    data_keys = keys[:, 0]
    predictions = {}
    with PartBar(3, "losse regression", progress) as part:
        losse_pred, skipped = part("losse-ftl", _losse_runs, config,
                                   _encoders(config, keys[:, 1]), data_keys)
        predictions["losse-ftl"] = losse_pred
        predictions["online-mlp"] = part("online-mlp", _mlp_runs, config, False, data_keys,
                                         keys[:, 2])
        predictions["replay-mlp"] = part("replay-mlp", _mlp_runs, config, True, data_keys,
                                         keys[:, 3])
    grid = np.asarray(_grid(config))
    truth = np.asarray(target(_grid(config)))
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
    lines = [(f"Single-pass 1-D regression, {c['samples']:,} inputs in sorted order on "
              f"[{c['low']:g}, {c['high']:g}], noise {c['noise']:g}: test MSE on "
              f"{c['test_points']:,} grid points, mean ± s.e. over {c['seeds']} seeds"), "",
             "| method | test MSE | / Losse-FTL |", "|---|---:|---:|"]
    losse_mean = summary["methods"]["losse-ftl"]["mean"]
    for name, row in summary["methods"].items():
        lines.append(f"| {_LABELS[name]} | {row['mean']:.3g} ± {row['se']:.2g} | "
                     f"{row['mean'] / losse_mean:.3g} |")
    lines += ["", f"Losse-FTL / online MLP = {summary['losse_over_online_mlp']:.2e}"]
    return "\n".join(lines)


def write_outputs(result: dict, out_dir) -> dict:
    """``mse.csv``, ``summary.json`` / ``summary.md`` and ``regression.png`` in ``out_dir``;
    prints the table and returns the summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "mse.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seed", "test_mse"])
        for name, values in result["mse"].items():
            for seed, value in enumerate(values):
                writer.writerow([name, seed, f"{value:.6g}"])
    summary = summarise(result)
    plot(result, summary, out_dir / "regression.png")
    write_summary(out_dir, "summary", summary, format_table(summary))
    return summary


def plot(result: dict, summary: dict, out_png) -> Path:
    """Left: the target and each method's final prediction (seed 0), the training inputs'
    arrival order marked. Right: test MSE per method (log scale), mean ± s.e. and every seed."""
    from hystax.figure import new_figure, save_figure, seeds_text

    config = result["config"]
    fig, axes = new_figure(figsize=(12.0, 4.6), ncols=2)
    ax, ax_mse = axes[0, 0], axes[0, 1]
    grid, truth = result["grid"], result["target"]
    ax.plot(grid, truth, color="black", lw=3.0, alpha=0.35, label="target f(x)")
    for name in METHODS:
        ax.plot(grid, result["predictions"][name][0], color=_COLORS[name], lw=1.4,
                label=f"{_LABELS[name]}: MSE {result['mse'][name][0]:.2g}")
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
        ax_mse.scatter(i + 0.25 + jitter, values, s=12, color=_COLORS[name], alpha=0.5,
                       label="per seed" if i == 0 else None)
        lower = min(row["se"], 0.9 * row["mean"])  # keep the bar above 0 on the log axis
        ax_mse.errorbar(i, row["mean"], yerr=[[lower], [row["se"]]], fmt="o", ms=8, capsize=6,
                        color=_COLORS[name], label="mean ± s.e." if i == 0 else None)
        ax_mse.annotate(f"{row['mean']:.2g}", (i, row["mean"]), textcoords="offset points",
                        xytext=(-10, 0), ha="right", va="center", fontsize=9)
    ax_mse.set_yscale("log")
    every = np.concatenate([result["mse"][m] for m in METHODS])
    every = every[np.isfinite(every) & (every > 0)]
    if every.size:  # room below the lowest seed and above the highest for the legend
        ax_mse.set_ylim(every.min() / 4, every.max() * 20)
    ax_mse.set_xticks(positions, [_LABELS[m].replace(" (", "\n(") for m in METHODS],
                      fontsize=9)
    ax_mse.set_xlim(-0.7, len(METHODS) - 0.3)
    ax_mse.set_ylabel("test MSE on a uniform grid (log)")
    ax_mse.set_title(f"Test MSE over {seeds_text(config.seeds)}; online MLP / Losse = "
                     f"{summary['online_mlp_over_losse']:.2g}", fontsize=10)
    ax_mse.grid(True, axis="y", which="major", alpha=0.3)
    ax_mse.legend(loc="upper left", fontsize=8, frameon=False)
    return save_figure(fig, out_png)


# --- command line ------------------------------------------------------------------------------

def cli(rest: list[str] | None = None,
         prog: str = "python -m hystax.experiments.losse_regression") -> int:
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default=None,
                        help="stream length (default 4000; 1000 with --quick)")
    parser.add_argument("--seeds", default=None, help="seeds 0..N-1 (default 5; 2 with --quick)")
    parser.add_argument("--noise", default="0", help="observation noise s.d. (default: 0)")
    add_run_dir_args(parser, "runs/losse_regression", "regression")
    parser.add_argument("--quick", action="store_true",
                        help="a small run: 1,000 samples, 2 seeds, 200 test points")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(rest)
    return run_or_exit(parser, lambda: _run_from_args(args))


def _run_from_args(args) -> dict:
    overrides = {}
    if args.samples is not None:
        overrides["samples"] = positive_int("samples", args.samples)
    if args.seeds is not None:
        overrides["seeds"] = positive_int("seeds", args.seeds)
    try:
        overrides["noise"] = float(args.noise)
    except ValueError:
        raise HystaxError(f"noise must be a finite number >= 0, got {args.noise!r}") from None
    config = quick_config(**overrides) if args.quick else RegressionConfig(**overrides)
    out_dir = create_run_dir(args.out_dir, args.name, stem="regression", overwrite=args.overwrite)
    result = run(config, progress=not args.no_progress)
    summary = write_outputs(result, out_dir)
    print(f"wrote {out_dir}/ ({result['wall_s']:.0f} s)")
    return summary


if __name__ == "__main__":
    sys.exit(cli())
