"""Dyna-DQN with online world models on gymnax control tasks: Losse-FTL against MLP models.

``hystax losse dyna --env CartPole-v1 [--models none losse ...] [--seeds 3] [--steps N]
[--planning-steps 1] [--out-dir runs/losse_dyna] [--name NAME] [--overwrite] [--resume]
[--quick]``

Every model is a ``hystax train dyna`` run of the one runner in ``<out>/runs/<model>`` (seeds
vmapped, checkpoints; ``--resume`` continues an interrupted set: finished runs are read back,
the stopped one resumes exactly), in the same loop (:mod:`hystax.agents.dyna`): ``none`` is model-free DQN
(one update per env step) and ``none-matched`` model-free DQN with as many updates per env
step as Dyna (1 + planning steps, all on real replay); ``losse`` a single-pass Losse-FTL model; ``mlp-online`` a single-pass MLP; ``mlp-replay`` an MLP
trained on all data; ``mlp-replay-reset`` the same, re-initialised and retrained periodically.

The learning curve of a seed at env step t is the mean return of its last ``window`` episodes
that ended by t (on a grid of ``points`` steps). The table gives, per model, the final return
(mean of the curve over the last 10% of steps; mean ± s.e. over seeds), the area under the
curve, and the env steps at which the seed-mean curve first reaches the final return of
``none`` (model-free DQN; the first model given if ``none`` is not run).

Outputs in ``<out-dir>/<name>`` (default ``runs/losse_dyna/<env>-<date>-<time>``): ``curves.csv`` (model, seed, step,
return), ``episodes.csv`` (model, seed, end step, return), ``dyna.md``/``dyna.json`` (table and
settings), ``returns.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hystax.core.errors import HystaxError, require
from hystax.experiments.experiment import (
    Experiment,
    add_run_dir_args,
    markdown_table,
    positive_int,
    write_summary,
)
from hystax.experiments.run_sets import set_dir, train_or_resume
from hystax.figure import seeds_text

__all__ = ["DEFAULT_MODELS", "EXPERIMENT", "TASKS", "learning_curves", "plan", "run",
           "steps_to_reach", "summarise"]

MATCHED = "none-matched"
"""Model-free DQN with as many updates per env step as Dyna (1 + planning steps) on real data."""
DEFAULT_MODELS = ("none", MATCHED, "losse", "mlp-online", "mlp-replay", "mlp-replay-reset")
TASKS = {"CartPole-v1": 15_000, "Acrobot-v1": 15_000}
"""Tasks with a recorded setting: name -> default env steps per seed (others: 20,000)."""


def learning_curves(ends: list, returns: list, grid: np.ndarray, window: int = 10) -> np.ndarray:
    """Per seed, the mean return of the last ``window`` episodes ended by each grid step
    ([seeds, len(grid)]; NaN before the first episode)."""
    out = np.full((len(ends), len(grid)), np.nan)
    for s, (e, r) in enumerate(zip(ends, returns)):
        done = np.searchsorted(e, grid, side="right")  # episodes ended by each grid step
        csum = np.concatenate([[0.0], np.cumsum(r)])
        lo = np.maximum(done - window, 0)
        with np.errstate(invalid="ignore"):
            out[s] = np.where(done > 0, (csum[done] - csum[lo]) / np.maximum(done - lo, 1), np.nan)
    return out


def steps_to_reach(curve: np.ndarray, grid: np.ndarray, target: float) -> float:
    """The first grid step where ``curve`` [T] is >= ``target`` (NaN if never)."""
    hit = np.nonzero(curve >= target)[0]
    return float(grid[hit[0]]) if hit.size else float("nan")


def summarise(curves: dict, grid: np.ndarray, baseline: str = "none") -> tuple[list[dict], float]:
    """Per-model rows (final return, AUC, steps to the baseline's final return) and the target."""
    tail = grid >= grid[-1] - 0.1 * (grid[-1] - grid[0])
    with warnings.catch_warnings():  # columns before any episode ended are all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        finals = {m: np.nanmean(c[:, tail], axis=1) for m, c in curves.items()}
        means = {m: np.nanmean(c, axis=0) for m, c in curves.items()}
    target = float(np.mean(finals[baseline])) if baseline in finals else float("nan")
    rows = []
    for m, c in curves.items():
        f = finals[m]
        se = float(np.std(f, ddof=1) / np.sqrt(len(f))) if len(f) > 1 else 0.0
        rows.append({"model": m, "final_return": float(np.mean(f)), "final_se": se,
                     "auc": float(np.nanmean(c)),
                     "steps_to_baseline_final": steps_to_reach(means[m], grid, target)})
    return rows, target


def _table(env: str, rows: list[dict], target: float, seeds: int, steps: int,
           baseline: str) -> str:
    caption = (f"Dyna-DQN on {env}: {seeds} seeds x {steps} env steps; final return of "
               f"{baseline!r} {target:.1f}")
    cells = [[r["model"], f"{r['final_return']:.1f} ± {r['final_se']:.1f}", f"{r['auc']:.1f}",
              "never" if np.isnan(r["steps_to_baseline_final"])
              else f"{int(r['steps_to_baseline_final']):,}"] for r in rows]
    return "\n".join(markdown_table(
        caption, ["model", "final return (mean ± s.e.)", "mean return over training",
                  f"env steps to {baseline}'s final"], cells, align="llll"))


class Plan(NamedTuple):
    """The validated settings, one Dyna config per model, and the set's folder."""

    env_name: str
    seeds: int
    steps: int
    planning_steps: int
    points: int
    window: int
    configs: dict
    out_dir: Path
    progress: bool


class Results(NamedTuple):
    """Per model: the learning curves [seeds, points], the episodes, the config (as JSON)."""

    grid: np.ndarray
    curves: dict
    episodes: dict
    configs: dict
    losse_checks: dict


def plan(env_name: str = "CartPole-v1", models=DEFAULT_MODELS, seeds: int = 3,
         steps: int | None = None, planning_steps: int = 1, out_dir=None, points: int = 100,
         window: int = 10, progress: bool = True, config=None, name: str | None = None,
         overwrite: bool = False, resume: bool = False) -> Plan:
    """Check every setting (each model's algorithm built: bad settings are one line, before
    any run), then the set's folder ``out_dir/name`` (default
    ``runs/losse_dyna/<env>-<date>-<time>``; ``resume`` continues an interrupted set)."""
    from hystax.agents.dyna import DYNA_MODELS, DynaConfig, make_algorithm
    from hystax.envs import make

    models = tuple(models)
    require(len(models) > 0, "give at least one model")
    choices = (*DYNA_MODELS, MATCHED)
    for m in models:
        require(m in choices, f"unknown Dyna model {m!r}; choose from {', '.join(choices)}")
    require(len(set(models)) == len(models), f"models repeat: {models}")
    seeds = positive_int("seeds", seeds)
    steps = positive_int("steps", steps if steps is not None else TASKS.get(env_name, 20_000))
    env, env_params = make(env_name)
    base = config or DynaConfig()
    configs = {m: dataclasses.replace(base, model="none" if m == MATCHED else m,
                                      total_steps=steps, planning_steps=planning_steps,
                                      real_updates=1 + planning_steps if m == MATCHED else 1)
               for m in models}
    for cfg in configs.values():
        make_algorithm(cfg, env, env_params)
    out = set_dir(out_dir or "runs/losse_dyna", name, env_name, overwrite=overwrite,
                  resume=resume)
    return Plan(env_name, seeds, steps, planning_steps, points, window, configs, out, progress)


def run(env_name: str = "CartPole-v1", models=DEFAULT_MODELS, seeds: int = 3,
        steps: int | None = None, planning_steps: int = 1, out_dir=None, points: int = 100,
        window: int = 10, progress: bool = True, config=None, name: str | None = None,
        overwrite: bool = False, resume: bool = False) -> dict:
    """Train every model in ``models`` for ``seeds`` seeds, each a ``hystax train dyna`` run in
    ``<out>/runs/<model>`` (``resume`` continues an interrupted set); write curves, table and
    plot into ``out_dir/name`` (default ``runs/losse_dyna/<env>-<date>-<time>``); returns the
    summary."""
    return EXPERIMENT.execute(plan(env_name, models, seeds, steps, planning_steps, out_dir,
                                   points, window, progress, config, name, overwrite,
                                   resume))[1]


def run_plan(plan: Plan) -> Results:
    """Each model's run (trained, resumed or read back) and its learning curves."""
    from hystax.agents.dyna import result_of

    hint = f"the same command with --name {plan.out_dir.name} --resume"
    grid = np.linspace(plan.steps / plan.points, plan.steps, plan.points).round().astype(int)
    curves, episodes, checks, configs = {}, {}, {}, {}
    for m, cfg in plan.configs.items():
        configs[m] = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
        state = train_or_resume(plan.out_dir / "runs", m, "dyna", plan.env_name,
                                seeds=plan.seeds, config=cfg, progress=plan.progress,
                                resume_hint=hint).state
        result = result_of(state.step_returns, state.model)
        curves[m] = learning_curves(result.episode_ends, result.episode_returns, grid,
                                    plan.window)
        episodes[m] = (result.episode_ends, result.episode_returns)
        if m == "losse":
            checks = {"rejected": np.asarray(result.world_model.model.state.rejected).tolist(),
                      "overflow": np.asarray(result.world_model.model.state.overflow).tolist()}
    return Results(grid, curves, episodes, configs, checks)


def summary_of(plan: Plan, results: Results) -> dict:
    """What ``dyna.json`` holds: :func:`summarise`'s rows against ``none`` (model-free DQN;
    the first model when it is not run) and the settings."""
    models = list(plan.configs)
    baseline = "none" if "none" in results.curves else models[0]
    rows, target = summarise(results.curves, results.grid, baseline=baseline)
    return {"env": plan.env_name, "seeds": plan.seeds, "steps": plan.steps, "models": models,
            "planning_steps": plan.planning_steps, "window": plan.window, "rows": rows,
            "baseline": baseline, "baseline_final": target,
            "losse_checks": results.losse_checks, "configs": results.configs}


def write_outputs(plan: Plan, results: Results, summary: dict) -> None:
    """``curves.csv``, ``episodes.csv``, ``dyna.md`` / ``dyna.json`` and ``returns.png``."""
    from hystax import plots

    out, grid = plan.out_dir, results.grid
    with open(out / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "seed", "step", "return"])
        for m, c in results.curves.items():
            for s, row in enumerate(c):
                w.writerows([m, s, int(t), f"{v:.4g}"] for t, v in zip(grid, row))
    with open(out / "episodes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "seed", "end_step", "return"])
        for m, (ends, rets) in results.episodes.items():
            for s, (e, r) in enumerate(zip(ends, rets)):
                w.writerows([m, s, int(a), float(b)] for a, b in zip(e, r))
    baseline, target = summary["baseline"], summary["baseline_final"]
    table = _table(plan.env_name, summary["rows"], target, plan.seeds, plan.steps, baseline)
    write_summary(out, "dyna", summary, table)
    plots.plot_curves(results.curves, grid, out / "returns.png", reference=target,
                      ylabel=f"return (mean of the last {plan.window} episodes)",
                      title=f"Dyna-DQN on {plan.env_name}: mean ± s.e. over "
                            f"{seeds_text(plan.seeds)} (dashed: {baseline}'s final return)")


def add_arguments(parser) -> None:
    """``--env``, ``--models``, ``--seeds``, ``--steps``, ``--planning-steps``, the run folder,
    ``--quick`` and ``--resume``."""
    parser.add_argument("--env", default="CartPole-v1", help="a discrete-action gymnax env")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        help=f"default: {' '.join(DEFAULT_MODELS)}")
    parser.add_argument("--seeds", default="3")
    parser.add_argument("--steps", default=None, help="env steps per seed (default per env)")
    parser.add_argument("--planning-steps", default="1",
                        help="simulated minibatch updates per env step")
    add_run_dir_args(parser, "runs/losse_dyna", "<env>")
    parser.add_argument("--quick", action="store_true", help="a 2,000-step smoke run, 2 seeds")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted set named by --name")


def plan_from_args(args) -> Plan:
    try:
        planning = int(args.planning_steps)
    except ValueError:
        raise HystaxError(f"planning-steps must be an integer >= 0, got "
                          f"{args.planning_steps!r}") from None
    require(planning >= 0, f"planning-steps must be an integer >= 0, got {planning}")
    config = None
    if args.quick:
        from hystax.agents.dyna import DynaConfig

        config = DynaConfig(warmup_steps=300, planning_starts=500, chunk_steps=500,
                            eps_decay_steps=1000)
    return plan(args.env, args.models, 2 if args.quick else args.seeds,
                2000 if args.quick else args.steps, planning, args.out_dir,
                points=40 if args.quick else 100, progress=args.progress, config=config,
                name=args.name, overwrite=args.overwrite, resume=args.resume)


EXPERIMENT = Experiment(
    prog="python -m hystax.experiments.losse_dyna", description=__doc__.splitlines()[0],
    add_arguments=add_arguments, validate=plan_from_args, run=run_plan, summarise=summary_of,
    write=write_outputs)
cli = EXPERIMENT.cli

if __name__ == "__main__":
    raise SystemExit(cli())
