"""Continual MBRL (``hystax continual --mode online``, the default): one ``hystax train mbrl``
run per method (:mod:`hystax.agents.mbrl`: random warm-up, CEM-MPC on the model, refits on the
current task only) in ``runs/<method>``, seeds vmapped, checkpoints; ``--resume`` continues an
interrupted set (finished runs are read back, the stopped one resumes exactly).

Writes the reward matrix R[t, j] and the prediction-error matrix (means over seeds,
``rewards.csv`` / ``errors.csv``), forgetting ratios (normalised by the random policy), forward
transfer against a from-scratch single-task run (``single``), ``summary.md`` /
``summary.json``, ``rewards.png`` (heat maps of R) and ``curves.png`` (MPC returns while
learning, per task)."""

from __future__ import annotations

import dataclasses
import datetime
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hystax.agents.mbrl import Config as MBRLConfig
from hystax.agents.mbrl import ContinualConfig, forgetting_ratios, forward_transfer
from hystax.agents.mbrl import results as mbrl_results
from hystax.envs.continual_suites import suite as make_suite
from hystax.experiments.continual_matrices import (
    check_methods,
    stat,
    write_matrix_csv,
    write_summary_files,
)
from hystax.experiments.experiment import markdown_table, positive_int
from hystax.experiments.run_sets import set_dir, train_or_resume
from hystax.figure import seeds_text
from hystax.plots import plot_task_curves, plot_task_matrices


class Plan(NamedTuple):
    """The validated settings, one MBRL config per run, and the set's folder."""

    suite: object
    seeds: int
    config: ContinualConfig
    jobs: list[tuple[str, str, bool]]   # (method, run name, reset each task)
    configs: dict                       # run name -> MBRLConfig
    out_dir: Path
    progress: bool


def plan(suite_name: str, methods=None, seeds: int = 3, config: ContinualConfig | None = None,
         single: bool = False, out_dir=None, options: dict | None = None,
         progress: bool = True, name: str | None = None, overwrite: bool = False,
         resume: bool = False) -> Plan:
    """Check every setting (each run's config built: bad settings are one line, before any
    run), then the set's folder (new, or the one ``resume`` continues)."""
    suite, methods = make_suite(suite_name), check_methods(methods)
    seeds = positive_int("seeds", seeds)
    config, options = config or ContinualConfig(), options or {}
    jobs = [(name, name, False) for name in methods] + ([("finetune", "finetune-single", True)]
                                                        if single else [])
    configs = {label: MBRLConfig(**{**{f.name: getattr(config, f.name)
                                       for f in dataclasses.fields(ContinualConfig)},
                                    "reset_each_task": reset, "method": method,
                                    **options.get(method, {})})
               for method, label, reset in jobs}
    out_dir = set_dir(out_dir or "runs/continual", name, suite_name, overwrite=overwrite,
                      resume=resume)
    return Plan(suite, seeds, config, jobs, configs, out_dir, progress)


def run_plan(plan: Plan) -> tuple[dict, list, float]:
    """``({method: [per-seed results]}, [single-task results], wall seconds)``."""
    hint = f"the same command with --name {plan.out_dir.name} --resume"
    start = time.perf_counter()
    runs, singles = {}, []
    for method, label, reset in plan.jobs:
        result = train_or_resume(plan.out_dir / "runs", label, "mbrl", plan.suite.name,
                                 seeds=plan.seeds, config=plan.configs[label],
                                 progress=plan.progress, resume_hint=hint)
        (singles.extend if reset else runs.setdefault(method, []).extend)(
            mbrl_results(result.state))
    return runs, singles, time.perf_counter() - start


def summarise(plan: Plan, results: tuple[dict, list, float]) -> dict:
    """What ``summary.json`` holds: own / final returns, forgetting ratios, final errors and
    (with single-task runs) forward transfer per method, mean ± s.e. over seeds."""
    runs, singles, wall_s = results
    suite, config = plan.suite, plan.config
    rows = []
    warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)  # the last task: NaN
    for name, per_seed in runs.items():
        ratios = np.stack([forgetting_ratios(r) for r in per_seed])  # [seeds, T]
        final = np.stack([r.reward_matrix[:, -1] for r in per_seed])
        own = np.stack([np.diag(r.reward_matrix) for r in per_seed])
        row = {"method": name, "label": per_seed[0].states[0].__class__.__name__,
               "final_return": stat(final.mean(axis=1)), "own_return": stat(own.mean(axis=1)),
               "forgetting_ratio": stat(np.nanmean(ratios, axis=1)),
               "forgetting_ratio_per_task": np.nanmean(ratios, axis=0).tolist(),
               "final_error": stat(np.stack([r.error_matrix[:, -1].mean() for r in per_seed]))}
        if singles:
            transfer = np.stack([forward_transfer(r, s) for r, s in zip(per_seed, singles)])
            row["forward_transfer"] = stat(np.nanmean(transfer, axis=1))
        rows.append(row)
    used = dataclasses.replace(config.mpc, action_low=suite.action_low,
                               action_high=suite.action_high)  # what continual_mbrl plans with
    return {"suite": suite.name, "mode": "online", "seeds": plan.seeds,
            "labels": list(suite.labels),
            "config": {**{k: v for k, v in config.__dict__.items() if k != "mpc"},
                       "mpc": str(used)},
            "random_returns": np.mean([r.random_returns for rs in runs.values() for r in rs],
                                      axis=0).tolist(),
            "rows": rows, "wall_s": wall_s,
            "date": datetime.datetime.now().isoformat(timespec="seconds")}


def format_online(summary: dict) -> str:
    transfer = any("forward_transfer" in r for r in summary["rows"])
    caption = (f"Online continual MBRL on `{summary['suite']}` (CEM-MPC on the learned model), "
               f"mean ± s.e. over {summary['seeds']} seeds: MPC return per episode with the "
               "model saved right after each task (own) and after the last task (final), "
               "averaged over tasks; forgetting ratio (R_final − R_random) / (R_own − R_random) "
               "averaged over the tasks before the last that the agent learnt (1 = no "
               "forgetting)")
    header = ["method", "own-task return", "final-model return", "forgetting ratio",
              "final one-step MSE"] + (["forward transfer"] if transfer else [])
    rows = []
    for r in summary["rows"]:
        cells = [r["method"], f"{r['own_return']['mean']:.1f} ± {r['own_return']['se']:.1f}",
                 f"{r['final_return']['mean']:.1f} ± {r['final_return']['se']:.1f}",
                 f"{r['forgetting_ratio']['mean']:.3f} ± {r['forgetting_ratio']['se']:.3f}",
                 f"{r['final_error']['mean']:.2e}"]
        rows.append(cells + ([f"{r['forward_transfer']['mean']:.3f}"] if transfer else []))
    lines = markdown_table(caption, header, rows)
    lines += ["", "random-policy return per episode, per task: "
              + ", ".join(f"{v:.0f}" for v in summary["random_returns"])]
    return "\n".join(lines)


def write_outputs(plan: Plan, results: tuple[dict, list, float], summary: dict) -> None:
    """``rewards.csv``, ``errors.csv``, ``rewards.png``, ``curves.png``, ``summary.md`` /
    ``summary.json``."""
    runs, out_dir, labels = results[0], plan.out_dir, plan.suite.labels
    rewards = {n: np.stack([r.reward_matrix for r in rs]) for n, rs in runs.items()}
    errors = {n: np.stack([r.error_matrix for r in rs]) for n, rs in runs.items()}
    write_matrix_csv(out_dir / "rewards.csv", rewards, "return")
    write_matrix_csv(out_dir / "errors.csv", errors, "one_step_mse")
    plot_task_matrices({n: m.mean(axis=0) for n, m in rewards.items()}, out_dir / "rewards.png",
                       title=f"{plan.suite.name}: MPC return on task t with the model saved "
                             f"after task j (mean over {seeds_text(plan.seeds)})",
                       value="return", task_labels=labels)
    plot_task_curves({n: np.stack([r.train_returns.reshape(-1) for r in rs])
                      for n, rs in runs.items()}, out_dir / "curves.png",
                     plan.config.episodes_per_task, task_labels=labels,
                     title=f"{plan.suite.name}: MPC episode returns while learning each task")
    write_summary_files(out_dir, summary, format_online(summary))
