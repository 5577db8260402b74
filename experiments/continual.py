"""Continual world models on a task suite: the offline forgetting benchmark and online MBRL.

``hystax continual --suite pendulum-gravity --method hnet [--method finetune ...] --seeds 3
[--mode online|offline] [--out-dir runs/continual] [--name NAME] [--overwrite] [--resume]``
(the run goes to ``<out-dir>/<name>``, default ``<suite>[-offline]-<date>-<time>``)
(or ``python -m hystax.experiments.continual ...``)

- ``--mode offline``: random-action data per task (``--points`` transitions), each method
  trained on the tasks in sequence (``--steps`` gradient steps per task); writes the one-step
  prediction-error matrix E[t, j] (task t, model after task j) per method, "during" (E[t, t])
  and "after" (E[t, T-1]) errors and forgetting (after - during), ``errors.csv``,
  ``summary.md`` / ``summary.json`` and ``errors.png`` (heat maps).
- ``--mode online`` (default): continual MBRL (:mod:`hystax.agents.mbrl`: random warm-up,
  CEM-MPC on the model, refits on the current task only), one ``hystax train mbrl`` run per
  method in ``runs/<method>`` (seeds vmapped, checkpoints, ``--resume`` continues an
  interrupted set: finished runs are read back, the stopped one resumes exactly);
  writes the reward matrix R[t, j] and the prediction-error matrix (means over seeds,
  ``rewards.csv`` / ``errors.csv``), forgetting ratios (normalised by the random policy),
  forward transfer against a from-scratch single-task run (``--single``),
  ``summary.md`` / ``summary.json``, ``rewards.png`` (heat maps of R) and ``curves.png``
  (MPC returns while learning, per task).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np
from hystax.agents.mbrl import Config as MBRLConfig
from hystax.agents.mbrl import ContinualConfig, forgetting_ratios, forward_transfer
from hystax.agents.mbrl import results as mbrl_results
from hystax.envs.continual_suites import collect_random, suite as make_suite, suite_names
from hystax.experiments.common import (
    OneLineParser,
    add_run_dir_args,
    positive_int,
    run_or_exit,
    set_dir,
    train_or_resume,
    write_summary,
)
from hystax.world_models.continual_api import fit, one_step_mse
from hystax.world_models.continual_methods import METHODS, make_method

import hystax  # noqa: F401  (before jax: the XLA:CPU workaround)
from hystax.core.errors import HystaxError, require, unknown_name
from hystax.figure import seeds_text
from hystax.plots import plot_task_curves, plot_task_matrices
from hystax.rundir import create_run_dir
from hystax.core.stats import mean_and_standard_error

DEFAULT_METHODS = ("hnet", "finetune", "multihead", "coreset", "multitask", "ewc", "si")


def _methods(names) -> list[str]:
    names = list(DEFAULT_METHODS) if not names else list(names)
    for name in names:
        if name not in METHODS:
            raise unknown_name("continual method", name, METHODS)
    require(len(set(names)) == len(names), f"methods repeated: {names}")
    return names


def _label(name: str, options: dict) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in options.items())
    return f"{name} ({extra})" if extra else name


# --- offline -----------------------------------------------------------------------------------


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


def run_offline(suite_name: str, methods=None, seeds: int = 3, points: int = 2000,
                steps: int = 2000, out_dir=None, options: dict | None = None,
                progress: bool = True, name: str | None = None, overwrite: bool = False) -> dict:
    """The offline benchmark (see the module doc); returns the summary (``summary.json``)."""
    suite, methods = make_suite(suite_name), _methods(methods)
    seeds, points, steps = (positive_int(n, v) for n, v in
                            (("seeds", seeds), ("points", points), ("steps", steps)))
    options = options or {}
    out_dir = create_run_dir(out_dir or "runs/continual", name, stem=f"{suite_name}-offline",
                             overwrite=overwrite)
    from tqdm.auto import tqdm

    start, matrices = time.perf_counter(), {}
    bar = tqdm(total=len(methods) * seeds, desc=f"offline {suite_name}", unit="run",
               disable=not progress)
    for name in methods:
        runs = []
        for seed in range(seeds):
            runs.append(offline_errors(suite, name, jax.random.PRNGKey(seed), points, steps,
                                       **options.get(name, {})))
            bar.update(1)
        matrices[_label(name, options.get(name, {}))] = np.stack(runs)
    bar.close()
    rows = []
    for label, m in matrices.items():  # m [seeds, T, T]
        during = np.diagonal(m, axis1=1, axis2=2)  # [seeds, T]
        after = m[:, :, -1]
        rows.append({"method": label,
                     "mean_after": _stat(after.mean(axis=1)),
                     "mean_during": _stat(during.mean(axis=1)),
                     "forgetting": _stat((after - during).mean(axis=1)),
                     "task1_ratio": _stat(after[:, 0] / during[:, 0]),
                     "after_per_task": after.mean(axis=0).tolist(),
                     "during_per_task": during.mean(axis=0).tolist()})
    summary = {"suite": suite_name, "mode": "offline", "seeds": seeds, "points": points,
               "steps": steps, "labels": list(suite.labels), "rows": rows,
               "wall_s": time.perf_counter() - start,
               "date": datetime.datetime.now().isoformat(timespec="seconds")}
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_matrix_csv(out_dir / "errors.csv", matrices, "one_step_mse")
    plot_task_matrices({k: v.mean(axis=0) for k, v in matrices.items()}, out_dir / "errors.png",
                       title=f"{suite_name}: one-step MSE on random-action data (mean over "
                             f"{seeds_text(seeds)})", value="one-step MSE",
                       task_labels=suite.labels)
    table = format_offline(summary)
    _write_summary(out_dir, summary, table)
    return summary


def _stat(x) -> dict:
    mean, se = mean_and_standard_error(np.asarray(x, np.float64))
    return {"mean": mean, "se": se}


def format_offline(summary: dict) -> str:
    lines = [(f"Offline `{summary['suite']}`: one-step MSE on held-out random-action data, "
              f"{summary['points']:,} points and {summary['steps']:,} gradient steps per task, "
              f"mean ± s.e. over {summary['seeds']} seeds"), "",
             ("| method | after all tasks | during (own task) | forgetting (after − during) "
              "| task 1 after / during |"), "|---|---:|---:|---:|---:|"]
    for r in summary["rows"]:
        cells = [f"{r[k]['mean']:.2e} ± {r[k]['se']:.1e}" for k in
                 ("mean_after", "mean_during", "forgetting")]
        lines.append(f"| {r['method']} | {' | '.join(cells)} | {r['task1_ratio']['mean']:.1f} |")
    return "\n".join(lines)


# --- online ------------------------------------------------------------------------------------


def run_online(suite_name: str, methods=None, seeds: int = 3, config: ContinualConfig | None = None,
               single: bool = False, out_dir=None, options: dict | None = None,
               progress: bool = True, name: str | None = None, overwrite: bool = False,
               resume: bool = False) -> dict:
    """Continual MBRL for every method (see the module doc), each an ``mbrl`` run of the one
    runner in ``<out>/runs/<method>`` (seeds vmapped, checkpoints; ``resume`` continues an
    interrupted set); returns the summary."""
    suite, methods = make_suite(suite_name), _methods(methods)
    seeds = positive_int("seeds", seeds)
    config, options = config or ContinualConfig(), options or {}
    jobs = [(name, name, False) for name in methods] + ([("finetune", "finetune-single", True)]
                                                        if single else [])
    configs = {label: MBRLConfig(**{**{f.name: getattr(config, f.name)
                                       for f in dataclasses.fields(ContinualConfig)},
                                    "reset_each_task": reset, "method": method,
                                    **options.get(method, {})})
               for method, label, reset in jobs}  # bad settings: one line, before any run
    out_dir = set_dir(out_dir or "runs/continual", name, suite_name, overwrite=overwrite,
                      resume=resume)
    hint = f"the same command with --name {out_dir.name} --resume"
    start = time.perf_counter()
    runs, singles = {}, []
    for method, label, reset in jobs:
        result = train_or_resume(out_dir / "runs", label, "mbrl", suite_name, seeds=seeds,
                                 config=configs[label], progress=progress, resume_hint=hint)
        (singles.extend if reset else runs.setdefault(method, []).extend)(
            mbrl_results(result.state))
    summary = _online_summary(suite, runs, singles, config, seeds, time.perf_counter() - start)
    rewards = {n: np.stack([r.reward_matrix for r in rs]) for n, rs in runs.items()}
    errors = {n: np.stack([r.error_matrix for r in rs]) for n, rs in runs.items()}
    _write_matrix_csv(out_dir / "rewards.csv", rewards, "return")
    _write_matrix_csv(out_dir / "errors.csv", errors, "one_step_mse")
    labels = suite.labels
    plot_task_matrices({n: m.mean(axis=0) for n, m in rewards.items()}, out_dir / "rewards.png",
                       title=f"{suite_name}: MPC return on task t with the model saved after task "
                             f"j (mean over {seeds_text(seeds)})", value="return",
                       task_labels=labels)
    plot_task_curves({n: np.stack([r.train_returns.reshape(-1) for r in rs])
                      for n, rs in runs.items()}, out_dir / "curves.png",
                     config.episodes_per_task, task_labels=labels,
                     title=f"{suite_name}: MPC episode returns while learning each task")
    _write_summary(out_dir, summary, format_online(summary))
    return summary


def _online_summary(suite, runs, singles, config, seeds, wall_s) -> dict:
    rows = []
    warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)  # the last task: NaN
    for name, results in runs.items():
        ratios = np.stack([forgetting_ratios(r) for r in results])  # [seeds, T]
        final = np.stack([r.reward_matrix[:, -1] for r in results])
        own = np.stack([np.diag(r.reward_matrix) for r in results])
        row = {"method": name, "label": results[0].states[0].__class__.__name__,
               "final_return": _stat(final.mean(axis=1)), "own_return": _stat(own.mean(axis=1)),
               "forgetting_ratio": _stat(np.nanmean(ratios, axis=1)),
               "forgetting_ratio_per_task": np.nanmean(ratios, axis=0).tolist(),
               "final_error": _stat(np.stack([r.error_matrix[:, -1].mean() for r in results]))}
        if singles:
            transfer = np.stack([forward_transfer(r, s) for r, s in zip(results, singles)])
            row["forward_transfer"] = _stat(np.nanmean(transfer, axis=1))
        rows.append(row)
    used = dataclasses.replace(config.mpc, action_low=suite.action_low,
                               action_high=suite.action_high)  # what continual_mbrl plans with
    return {"suite": suite.name, "mode": "online", "seeds": seeds, "labels": list(suite.labels),
            "config": {**{k: v for k, v in config.__dict__.items() if k != "mpc"},
                       "mpc": str(used)},
            "random_returns": np.mean([r.random_returns for rs in runs.values() for r in rs],
                                      axis=0).tolist(),
            "rows": rows, "wall_s": wall_s,
            "date": datetime.datetime.now().isoformat(timespec="seconds")}


def format_online(summary: dict) -> str:
    transfer = any("forward_transfer" in r for r in summary["rows"])
    lines = [(f"Online continual MBRL on `{summary['suite']}` (CEM-MPC on the learned model), "
              f"mean ± s.e. over {summary['seeds']} seeds: MPC return per episode with the model "
              "saved right after each task (own) and after the last task (final), averaged over "
              "tasks; forgetting ratio (R_final − R_random) / (R_own − R_random) averaged over "
              "the tasks before the last that the agent learnt (1 = no forgetting)"), "",
             "| method | own-task return | final-model return | forgetting ratio | "
             "final one-step MSE |" + (" forward transfer |" if transfer else ""),
             "|---|---:|---:|---:|---:|" + ("---:|" if transfer else "")]
    for r in summary["rows"]:
        cell = (f"| {r['method']} | {r['own_return']['mean']:.1f} ± {r['own_return']['se']:.1f} | "
                f"{r['final_return']['mean']:.1f} ± {r['final_return']['se']:.1f} | "
                f"{r['forgetting_ratio']['mean']:.3f} ± {r['forgetting_ratio']['se']:.3f} | "
                f"{r['final_error']['mean']:.2e} |")
        if transfer:
            cell += f" {r['forward_transfer']['mean']:.3f} |"
        lines.append(cell)
    lines += ["", "random-policy return per episode, per task: "
              + ", ".join(f"{v:.0f}" for v in summary["random_returns"])]
    return "\n".join(lines)


# --- output ------------------------------------------------------------------------------------


def _write_matrix_csv(path: Path, matrices: dict, value: str) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seed", "task", "after_task", value])
        for name, m in matrices.items():
            for (seed, t, j), v in np.ndenumerate(m):
                if np.isfinite(v):
                    writer.writerow([name, seed, t, j, f"{v:.6g}"])


def _write_summary(out_dir: Path, summary: dict, table: str) -> None:
    write_summary(out_dir, "summary", summary, table)
    print(f"wrote {out_dir}/ ({summary['wall_s']:.0f} s)")


def cli(argv: list[str] | None = None, prog: str = "python -m hystax.experiments.continual") -> int:
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="pendulum-gravity",
                        help=f"task suite: {', '.join(suite_names())} (default: %(default)s)")
    parser.add_argument("--method", action="append", default=None,
                        help=f"repeatable (default: {', '.join(DEFAULT_METHODS)})")
    parser.add_argument("--mode", choices=["online", "offline"], default="online")
    parser.add_argument("--seeds", default="3")
    parser.add_argument("--beta", default=None,
                        help="the hypernetworks' regulariser weight (default 0.05)")
    parser.add_argument("--single", action="store_true",
                        help="online: also learn every task from scratch (forward transfer)")
    parser.add_argument("--mpc-steps", default=None, help="online: MPC steps per task")
    parser.add_argument("--points", default="2000", help="offline: random transitions per task")
    parser.add_argument("--steps", default="2000", help="offline: gradient steps per task")
    add_run_dir_args(parser, "runs/continual", "<suite>[-offline]")
    parser.add_argument("--resume", action="store_true",
                        help="online: continue the interrupted set named by --name")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    return run_or_exit(parser, lambda: _run_from_args(args))


def _run_from_args(args) -> None:
    options = {}
    if args.beta is not None:
        try:
            beta = float(args.beta)
        except ValueError:
            raise HystaxError(f"beta must be a number >= 0, got {args.beta!r}") from None
        require(beta >= 0, f"beta must be a number >= 0, got {args.beta!r}")
        options = {"hnet": {"beta": beta}, "hnet-chunked": {"beta": beta}}
    if args.mode == "offline":
        require(not args.resume, "--resume is for --mode online (an offline set is not saved "
                "along the way)")
        run_offline(args.suite, args.method, args.seeds, args.points, args.steps, args.out_dir,
                    options, progress=not args.no_progress, name=args.name,
                    overwrite=args.overwrite)
    else:
        config = ContinualConfig() if args.mpc_steps is None else ContinualConfig(
            mpc_steps=positive_int("mpc_steps", args.mpc_steps))
        run_online(args.suite, args.method, args.seeds, config, args.single, args.out_dir,
                   options, progress=not args.no_progress, name=args.name,
                   overwrite=args.overwrite, resume=args.resume)


if __name__ == "__main__":
    sys.exit(cli())
