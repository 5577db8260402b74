"""Learning efficiency of memory models on POPGym: MMER over every Easy task (breadth) and
learning curves on four memory tasks (depth).

``hystax icrl popgym [--set breadth|depth|ablation] [--tasks ...] [--models ...] [--seeds 3]
[--total-timesteps N] [--out-dir runs/popgym_mmer] [--resume]``

Every run is what a user gets from ``hystax train ppo --memory M --env popgym/X`` with the
defaults (the runner starts from ``ppo.preset``, the POPGym preset of model M); seeds are
vmapped, and each run keeps its directory (``<out>/<set>/<task>/<model>``, with metrics,
checkpoints and plots). The sets:

* ``breadth``: the 16 Easy tasks x {s5, s4d, gru, lstm, mlp}, 200k env steps. Written:
  ``mmer.csv`` (per seed), ``mmer.md`` (mean and 95% Student-t CI per task), ``iqm.md`` /
  ``iqm.png`` (IQM over tasks of the normalized MMER, ``(MMER - MLP's) / (1 - MLP's)``, with a
  95% stratified-bootstrap CI) and ``<task>/returns.png`` overlays.
* ``ablation``: the depth tasks x the S5 variants of ``ABLATIONS`` (the pre-fix S5 with one
  of today's changes, today's S5 without one), GRU and the MLP, 200k env steps; written as
  ``breadth``.
* ``depth``: RepeatPrevious, RepeatFirst, CountRecall, Autoencode (Easy) x {s5, gru, mlp},
  1M env steps. Written: ``curves.png`` (a grid of return vs env steps) and
  ``thresholds.csv`` / ``thresholds.md``: the first env step at which the 10-update running
  mean of the seed-mean return reaches 50% and 90% of the way from the MLP's final return to
  the best return of 1.

An interrupted set continues with ``--resume``: finished runs are read back, unfinished ones
resume from their last checkpoint.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from hystax import rundir
from hystax.core.errors import HystaxError, require
from hystax.experiments.common import (
    OneLineParser,
    positive_int,
    run_or_exit,
    stop_set_if_interrupted,
    write_summary,
)
from hystax.core.stats import (
    max_mean_episodic_return,
    mean_and_t_interval,
    normalized_scores,
    steps_to_threshold,
    stratified_bootstrap_ci,
)

EASY_TASKS = ("RepeatPreviousEasy", "RepeatFirstEasy", "CountRecallEasy", "AutoencodeEasy",
              "HigherLowerEasy", "ConcentrationEasy", "BattleshipEasy", "MinesweeperEasy",
              "MultiarmedBanditEasy", "PositionOnlyCartPoleEasy", "VelocityOnlyCartPoleEasy",
              "NoisyPositionOnlyCartPoleEasy", "PositionOnlyPendulumEasy",
              "NoisyPositionOnlyPendulumEasy", "LabyrinthEscapeEasy", "LabyrinthExploreEasy")
DEPTH_TASKS = ("RepeatPreviousEasy", "RepeatFirstEasy", "CountRecallEasy", "AutoencodeEasy")
SETS = {
    "breadth": dict(tasks=EASY_TASKS, models=("s5", "s4d", "gru", "lstm", "mlp"),
                    total_timesteps=200_000),
    "depth": dict(tasks=DEPTH_TASKS, models=("s5", "gru", "mlp"), total_timesteps=1_000_000),
}
ABLATIONS = {
    "s5-before": ("before", {}),
    "s5-before+norm": ("before", dict(layer_norm=True)),
    "s5-before+lr": ("before", dict(ssm_lr_scale=30.0)),
    "s5-before+dt": ("before", dict(dt_min=0.01, dt_max=1.0)),
    "s5-before+separate": ("before", dict(separate_memory=True)),
    "s5-no-norm": ("today", dict(layer_norm=False)),
    "s5-ssm-lr-1": ("today", dict(ssm_lr_scale=1.0)),
    "s5-paper-dt": ("today", dict(dt_min=1e-3, dt_max=1e-1)),
    "s5-half-glu": ("today", dict(glu="half")),
    "s5-trunc-c": ("today", dict(c_init="trunc_normal")),
    "s5-shared": ("today", dict(separate_memory=False)),
    "s5-ffn": ("today", dict(ffn=4)),
    "s5-no-clip": ("today", dict(clip_eigs=False)),
    "s5-no-prev": ("today", dict(prev_action_reward=False)),
    "s5-prev-reward-x50": ("today", dict(prev_reward_scale=50.0)),
    "s5-encoder-128": ("today", dict(encoder_sizes=(128,))),
}
"""S5 variants of the ``ablation`` set, as (the memory defaults they start from, what they
change): "s5-before" is S5 with the defaults before issue 13 (``ppo.MEMORY_BEFORE``),
"s5-before+X" adds one of today's changes to it, the others take one change away from today's
default S5."""
SETS["ablation"] = dict(tasks=DEPTH_TASKS, models=("s5", *ABLATIONS, "gru", "mlp"),
                        total_timesteps=200_000)
BASELINE = "mlp"  # the memoryless model every score is normalized against
BEST_RETURN = 1.0  # POPGym scales every episode return into [-1, 1]
SOLVED = 1e-3  # an MMER this close to BEST_RETURN has reached it (float32 sums: 0.9999992)
THRESHOLDS = (0.5, 0.9)
WINDOW = 10  # updates in the running mean of steps-to-threshold
RESUME_HINT = "the same command and --resume"


def run(set_name: str = "breadth", tasks=None, models=None, seeds: int = 3,
        total_timesteps: int | None = None, out_dir="runs/popgym_mmer", resume: bool = False,
        progress: bool = True) -> dict:
    """Train every (task, model) of a set and write its tables and figures.

    Returns ``{task: {model: (env_steps [updates], returns [seeds, updates])}}``. Everything
    is validated before the first run starts; ``resume`` continues an interrupted set.
    """
    from hystax.envs import make
    from hystax.runner import resolve

    require(set_name in SETS, f"unknown set {set_name!r}; choose from {', '.join(SETS)}")
    spec = SETS[set_name]
    tasks = list(tasks or spec["tasks"])
    models = list(models or spec["models"])
    seeds = positive_int("seeds", seeds)
    steps = positive_int("total_timesteps", total_timesteps or spec["total_timesteps"])
    require(len(set(models)) == len(models), f"models must be distinct, got {models}")
    require(len(set(tasks)) == len(tasks), f"tasks must be distinct, got {tasks}")
    require(set_name != "depth" or BASELINE in models,
            f"the depth set's thresholds need the {BASELINE} baseline among --models")
    for task in tasks:
        make(f"popgym/{task}")  # unknown task: HystaxError with suggestions, now
    for model in models:  # unknown model or a budget below one update: HystaxError, now
        resolve("ppo", f"popgym/{tasks[0]}", check=False, total_timesteps=steps,
                **model_overrides(model))
    exp_dir = Path(out_dir) / set_name
    if exp_dir.exists() and not resume:
        raise HystaxError(f"{exp_dir} already exists; continue it with --resume or pass "
                          "another --out-dir")
    rundir.make_writable_dir(exp_dir)
    results = {}
    for task in tasks:
        for model in models:
            results.setdefault(task, {})[model] = _train_or_load(
                task, model, seeds, steps, exp_dir / task, progress)
        from hystax.plots import plot_run_dirs
        plot_run_dirs([exp_dir / task / m for m in models], out_dir=exp_dir / task)
    (write_depth if set_name == "depth" else write_breadth)(results, exp_dir, seeds, steps)
    return results


def _train_or_load(task, model, seeds, steps, task_dir: Path, progress):
    """``(env_steps [updates], returns [seeds, updates])`` of one run: trained, resumed or read."""
    from hystax.runner import resolve, saved_config, train

    run_dir = task_dir / model
    if run_dir.exists():
        saved = rundir.read_config(run_dir)
        wanted = resolve("ppo", f"popgym/{task}", check=False, total_timesteps=steps,
                         **model_overrides(model)).config
        require(saved_config("ppo", saved.get("config", {}))
                == json.loads(json.dumps(dataclasses.asdict(wanted)))
                and len(saved.get("seeds", [])) == seeds,
                f"{run_dir} was run with other settings; use another --out-dir")
        metrics = rundir.read_metrics(run_dir) if (run_dir / rundir.METRICS_FILE).exists() else {}
        updates = steps // _steps_per_update(saved["config"])
        if metrics.get("episode_return", np.empty((0, 0))).shape[-1] < updates:
            metrics = stop_set_if_interrupted(train(resume=run_dir, progress=progress),
                                              RESUME_HINT).metrics
    else:
        metrics = stop_set_if_interrupted(train(
            "ppo", f"popgym/{task}", seeds=seeds, total_timesteps=steps, name=model,
            out_dir=task_dir, progress=progress, **model_overrides(model)), RESUME_HINT).metrics
    # float32 as trained: a run read back from metrics.csv gives the same numbers bit for bit
    return (np.nanmean(metrics["env_steps"], axis=0),
            np.asarray(metrics["episode_return"], np.float32))


def model_overrides(model: str) -> dict:
    """Config overrides of a model name: ``{"memory": model}``, or an S5 ablation's."""
    if model not in ABLATIONS:
        return {"memory": model}
    from hystax.agents.ppo import MEMORY_BEFORE

    start, changes = ABLATIONS[model]
    return {"memory": "s5", **(MEMORY_BEFORE if start == "before" else {}), **changes}


def _steps_per_update(config: dict) -> int:
    return int(config["num_envs"]) * int(config["num_steps"])


def mmer_scores(results: dict) -> dict[str, dict[str, np.ndarray]]:
    """``{task: {model: MMER [seeds]}}``."""
    return {task: {model: max_mean_episodic_return(returns)
                   for model, (_, returns) in by_model.items()}
            for task, by_model in results.items()}


def normalized_mmer(scores: dict) -> dict[str, np.ndarray]:
    """``{model: [seeds, tasks]}`` of ``(MMER - MLP's mean MMER) / (1 - MLP's mean MMER)``
    over the tasks of :func:`normalizable_tasks`."""
    tasks = normalizable_tasks(scores)
    baseline = np.array([scores[t][BASELINE].mean() for t in tasks])
    models = [m for m in scores[tasks[0]] if m != BASELINE]
    return {m: normalized_scores(np.stack([scores[t][m] for t in tasks], axis=1), baseline,
                                 BEST_RETURN) for m in models}


def normalizable_tasks(scores: dict) -> list[str]:
    """The tasks where the MLP's mean MMER is below the best return (where it reaches it, to
    within ``SOLVED``, no memory model can do better and the normalized score is undefined)."""
    return [t for t, by_model in scores.items()
            if by_model[BASELINE].mean() < BEST_RETURN - SOLVED]


def write_breadth(results: dict, exp_dir: Path, seeds: int, steps: int) -> dict:
    """``mmer.csv``, ``mmer.md``, ``iqm.md`` / ``iqm.json`` / ``iqm.png``; returns the IQMs."""
    from hystax.plots import plot_iqm

    scores = mmer_scores(results)
    models = list(next(iter(scores.values())))
    with open(exp_dir / "mmer.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "model", "seed", "mmer"])
        for task, by_model in scores.items():
            for model, values in by_model.items():
                writer.writerows([task, model, s, f"{v:.6f}"] for s, v in enumerate(values))
    lines = [f"MMER per task: mean and 95% Student-t CI over {seeds} seeds, {steps:,} env steps "
             "per seed (`hystax train ppo --memory M --env popgym/<task>` defaults)", "",
             "| task | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for task, by_model in scores.items():
        cells = [_mean_ci(by_model[m]) for m in models]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    write_summary(exp_dir, "mmer", {"scores": {t: {m: v.tolist() for m, v in b.items()}
                                               for t, b in scores.items()}}, "\n".join(lines))
    tasks = normalizable_tasks(scores) if BASELINE in models else []
    if len(tasks) < 2:
        print(f"no IQM: it needs the {BASELINE} baseline and two tasks it does not solve")
        return {}
    normalized = normalized_mmer(scores)
    iqms = {m: stratified_bootstrap_ci(v) for m, v in normalized.items()}
    left_out = [t for t in scores if t not in tasks]
    table = [f"IQM over {len(tasks)} tasks of the normalized MMER, (MMER - {BASELINE}'s) / "
             f"(1 - {BASELINE}'s), with a 95% stratified-bootstrap CI ({seeds} seeds per task)"
             + (f"; left out, as {BASELINE} reaches the best return: {', '.join(left_out)}"
                if left_out else ""),
             "", "| model | IQM | 95% CI |", "|---|---:|---:|"]
    table += [f"| {m} | {p:.3f} | [{lo:.3f}, {hi:.3f}] |" for m, (p, lo, hi) in iqms.items()]
    write_summary(exp_dir, "iqm", {"iqm": iqms, "tasks": tasks, "left_out": left_out},
                  "\n".join(table))
    plot_iqm(normalized, exp_dir / "iqm.png",
             title=f"POPGym Easy ({len(tasks)} tasks, {steps // 1000}k steps): normalized MMER "
                   f"vs {BASELINE}")
    return iqms


def threshold_steps(results: dict) -> dict[str, dict[str, dict[float, float]]]:
    """``{task: {model: {fraction: env step}}}``: where the running mean of the seed-mean
    return first reaches ``fraction`` of the way from the MLP's final return to 1."""
    out = {}
    for task, by_model in results.items():
        levels = threshold_levels(by_model[BASELINE][1])
        out[task] = {model: {q: steps_to_threshold(np.nanmean(returns, axis=0), steps, level,
                                                   WINDOW)
                             for q, level in levels.items()}
                     for model, (steps, returns) in by_model.items()}
    return out


def threshold_levels(baseline_returns: np.ndarray) -> dict[float, float]:
    """``{fraction: level}`` from the baseline's final return (mean of its last
    ``WINDOW`` updates over seeds)."""
    final = float(np.nanmean(baseline_returns[:, -WINDOW:]))
    return {q: final + q * (BEST_RETURN - final) for q in THRESHOLDS}


def write_depth(results: dict, exp_dir: Path, seeds: int, steps: int) -> dict:
    """``curves.png``, ``thresholds.csv`` and ``thresholds.md``; returns the thresholds."""
    from hystax.learning_curves import plot_learning_curve_grid

    require(all(BASELINE in by_model for by_model in results.values()),
            f"the depth set needs the {BASELINE} baseline for its thresholds")
    reached = threshold_steps(results)
    models = list(next(iter(results.values())))
    with open(exp_dir / "thresholds.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "model", "fraction", "level", "env_steps"])
        for task, by_model in reached.items():
            levels = threshold_levels(results[task][BASELINE][1])
            for model, by_q in by_model.items():
                writer.writerows([task, model, q, f"{levels[q]:.4f}", by_q[q]] for q in by_q)
    lines = [f"Env steps until the {WINDOW}-update running mean of the return (mean over {seeds} "
             f"seeds) first reaches 50% / 90% of the way from {BASELINE}'s final return to 1 "
             f"({steps:,} env steps per seed; — = not reached)", "",
             "| task | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for task, by_model in reached.items():
        cells = [" / ".join(_steps(by_model[m][q]) for q in THRESHOLDS) for m in models]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    final = {t: {m: float(np.nanmean(r[:, -WINDOW:])) for m, (_, r) in b.items()}
             for t, b in results.items()}
    write_summary(exp_dir, "thresholds", {"thresholds": _jsonable(reached), "final": final},
                  "\n".join(lines))
    plot_learning_curve_grid(
        results, exp_dir / "curves.png", smooth=WINDOW,
        references={t: list(threshold_levels(b[BASELINE][1]).values()) for t, b in results.items()},
        title=f"POPGym memory tasks: return vs env steps (dashed: 50% / 90% thresholds)")
    return reached


def _mean_ci(values: np.ndarray) -> str:
    mean, half = mean_and_t_interval(values)
    return f"{mean:.3f} ± {half:.3f}"


def _steps(x: float) -> str:
    return "—" if not np.isfinite(x) else f"{x / 1000:.0f}k"


def _jsonable(reached: dict) -> dict:
    return json.loads(json.dumps({t: {m: {str(q): (v if np.isfinite(v) else None)
                                          for q, v in by_q.items()}
                                      for m, by_q in b.items()} for t, b in reached.items()}))


def cli(argv: list[str] | None = None, prog: str = "hystax icrl popgym") -> int:
    parser = OneLineParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", dest="set_name", choices=list(SETS), default="breadth",
                        help="breadth: 16 Easy tasks x 5 models, 200k steps; depth: 4 memory "
                             "tasks x {s5, gru, mlp}, 1M steps; ablation: the 4 memory tasks x "
                             "S5 variants, 200k steps (default: breadth)")
    parser.add_argument("--tasks", nargs="+", help="POPGym tasks (default: the set's)")
    parser.add_argument("--models", nargs="+", help="memory models (default: the set's)")
    parser.add_argument("--seeds", default=3, help="seeds per run, vmapped (default: 3)")
    parser.add_argument("--total-timesteps", help="env steps per seed (default: the set's)")
    parser.add_argument("--out-dir", default="runs/popgym_mmer",
                        help="parent folder; the set goes to <out-dir>/<set>")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted set")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    return run_or_exit(parser, lambda: run(
        args.set_name, args.tasks, args.models, args.seeds, args.total_timesteps, args.out_dir,
        args.resume, not args.no_progress))


if __name__ == "__main__":
    raise SystemExit(cli(prog="python -m hystax.experiments.popgym_mmer"))
