"""The offline forgetting benchmark (``hystax continual --mode offline``): random-action data per
task, each method trained on the tasks in sequence; the one-step prediction-error matrix
E[t, j] (task t, model after task j) per method, "during" (E[t, t]) and "after" (E[t, T-1])
errors and forgetting (after - during). Writes ``errors.csv``, ``summary.md`` /
``summary.json`` and ``errors.png`` (heat maps)."""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from hystax.envs.continual_suites import collect_random
from hystax.envs.continual_suites import suite as make_suite
from hystax.experiments.continual_matrices import (
    check_methods,
    method_label,
    stat,
    write_matrix_csv,
    write_summary_files,
)
from hystax.experiments.experiment import markdown_table, positive_int
from hystax.figure import seeds_text
from hystax.plots import plot_task_matrices
from hystax.rundir import create_run_dir
from hystax.world_models.continual_api import fit, one_step_mse
from hystax.world_models.continual_methods import make_method


class Plan(NamedTuple):
    """The validated settings and the (new, empty) output folder."""

    suite: object
    methods: list[str]
    seeds: int
    points: int
    steps: int
    options: dict
    out_dir: Path
    progress: bool


def offline_errors(suite, name: str, key, points: int = 2000, steps: int = 2000,
                   batch_size: int = 64, test_points: int = 1000, **options) -> np.ndarray:
    """One-step MSE matrix E[t, j] ([T, T], NaN for t > j) of method ``name`` trained on random-
    action data of each task in turn (``steps`` gradient steps per task)."""
    n = suite.num_tasks
    method = make_method(name, suite.obs_dim, suite.act_dim, n, **options)
    k_init, k_data, k_fit, k_test = jax.random.split(key, 4)
    train = [collect_random(suite, t, k, points).transitions()
             for t, k in enumerate(jax.random.split(k_data, n))]
    test = [collect_random(suite, t, k, test_points).transitions()
            for t, k in enumerate(jax.random.split(k_test, n))]
    state = method.init(k_init)
    errors = np.full((n, n), np.nan)
    for j, k in enumerate(jax.random.split(k_fit, n)):
        state = method.begin_task(state, j, train[j])
        state, _ = fit(method, state, train[j], j, steps, batch_size, k)
        state = method.end_task(state, j, train[j])
        for t in range(j + 1):
            errors[t, j] = one_step_mse(method, state, test[t], t)
    return errors


def plan(suite_name: str, methods=None, seeds: int = 3, points: int = 2000, steps: int = 2000,
         out_dir=None, options: dict | None = None, progress: bool = True,
         name: str | None = None, overwrite: bool = False) -> Plan:
    """Check every setting, then make the output folder (default
    ``runs/continual/<suite>-offline-<date>-<time>``)."""
    suite, methods = make_suite(suite_name), check_methods(methods)
    seeds, points, steps = (positive_int(n, v) for n, v in
                            (("seeds", seeds), ("points", points), ("steps", steps)))
    out_dir = create_run_dir(out_dir or "runs/continual", name, stem=f"{suite_name}-offline",
                             overwrite=overwrite)
    return Plan(suite, methods, seeds, points, steps, options or {}, out_dir, progress)


def run_plan(plan: Plan) -> tuple[dict, float]:
    """``({label: E [seeds, T, T]}, wall seconds)``."""
    from tqdm.auto import tqdm

    start, matrices = time.perf_counter(), {}
    bar = tqdm(total=len(plan.methods) * plan.seeds, desc=f"offline {plan.suite.name}",
               unit="run", disable=not plan.progress)
    for name in plan.methods:
        runs = []
        for seed in range(plan.seeds):
            runs.append(offline_errors(plan.suite, name, jax.random.PRNGKey(seed), plan.points,
                                       plan.steps, **plan.options.get(name, {})))
            bar.update(1)
        matrices[method_label(name, plan.options.get(name, {}))] = np.stack(runs)
    bar.close()
    return matrices, time.perf_counter() - start


def summarise(plan: Plan, results: tuple[dict, float]) -> dict:
    """What ``summary.json`` holds: during / after / forgetting per method, mean ± s.e."""
    matrices, wall_s = results
    rows = []
    for label, m in matrices.items():  # m [seeds, T, T]
        during = np.diagonal(m, axis1=1, axis2=2)  # [seeds, T]
        after = m[:, :, -1]
        rows.append({"method": label,
                     "mean_after": stat(after.mean(axis=1)),
                     "mean_during": stat(during.mean(axis=1)),
                     "forgetting": stat((after - during).mean(axis=1)),
                     "task1_ratio": stat(after[:, 0] / during[:, 0]),
                     "after_per_task": after.mean(axis=0).tolist(),
                     "during_per_task": during.mean(axis=0).tolist()})
    return {"suite": plan.suite.name, "mode": "offline", "seeds": plan.seeds,
            "points": plan.points, "steps": plan.steps, "labels": list(plan.suite.labels),
            "rows": rows, "wall_s": wall_s,
            "date": datetime.datetime.now().isoformat(timespec="seconds")}


def format_offline(summary: dict) -> str:
    caption = (f"Offline `{summary['suite']}`: one-step MSE on held-out random-action data, "
               f"{summary['points']:,} points and {summary['steps']:,} gradient steps per task, "
               f"mean ± s.e. over {summary['seeds']} seeds")
    rows = [[r["method"], *(f"{r[k]['mean']:.2e} ± {r[k]['se']:.1e}"
                            for k in ("mean_after", "mean_during", "forgetting")),
             f"{r['task1_ratio']['mean']:.1f}"] for r in summary["rows"]]
    return "\n".join(markdown_table(caption, ["method", "after all tasks", "during (own task)",
                                              "forgetting (after − during)",
                                              "task 1 after / during"], rows))


def write_outputs(plan: Plan, results: tuple[dict, float], summary: dict) -> None:
    """``errors.csv``, ``errors.png``, ``summary.md`` / ``summary.json``."""
    matrices, out_dir = results[0], plan.out_dir
    write_matrix_csv(out_dir / "errors.csv", matrices, "one_step_mse")
    plot_task_matrices({k: v.mean(axis=0) for k, v in matrices.items()}, out_dir / "errors.png",
                       title=f"{plan.suite.name}: one-step MSE on random-action data (mean over "
                             f"{seeds_text(plan.seeds)})", value="one-step MSE",
                       task_labels=plan.suite.labels)
    write_summary_files(out_dir, summary, format_offline(summary))
