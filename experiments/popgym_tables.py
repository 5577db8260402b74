"""The tables and figures of the POPGym memory experiment (:mod:`.popgym_mmer`).

``breadth`` (and ``ablation``) sets: MMER per task and seed (``mmer.csv``), its mean and 95%
Student-t CI per task (``mmer.md``), and the IQM over tasks of the normalized MMER,
``(MMER - MLP's) / (1 - MLP's)``, with a 95% stratified-bootstrap CI (``iqm.md`` / ``iqm.png``).
``depth`` set: the env steps until the running mean of the seed-mean return first reaches 50%
and 90% of the way from the MLP's final return to 1 (``thresholds.csv`` / ``thresholds.md``)
and the learning curves (``curves.png``).

``results`` is ``{task: {model: (env_steps [updates], returns [seeds, updates])}}``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from hystax.core.errors import require
from hystax.core.stats import (
    max_mean_episodic_return,
    mean_and_t_interval,
    normalized_scores,
    steps_to_threshold,
    stratified_bootstrap_ci,
)
from hystax.experiments.experiment import markdown_table, write_summary

BASELINE = "mlp"  # the memoryless model every score is normalized against
BEST_RETURN = 1.0  # POPGym scales every episode return into [-1, 1]
SOLVED = 1e-3  # an MMER this close to BEST_RETURN has reached it (float32 sums: 0.9999992)
THRESHOLDS = (0.5, 0.9)
WINDOW = 10  # updates in the running mean of steps-to-threshold


# --- breadth: MMER and its IQM ---------------------------------------------------------------


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


def breadth_summary(results: dict) -> dict:
    """``scores`` (:func:`mmer_scores`), and where the baseline leaves at least two tasks
    unsolved, ``tasks``, ``left_out``, ``normalized`` (:func:`normalized_mmer`) and ``iqm``
    ({model: (IQM, lo, hi)})."""
    scores = mmer_scores(results)
    models = list(next(iter(scores.values())))
    tasks = normalizable_tasks(scores) if BASELINE in models else []
    if len(tasks) < 2:
        return {"scores": scores, "tasks": tasks}
    normalized = normalized_mmer(scores)
    return {"scores": scores, "tasks": tasks, "left_out": [t for t in scores if t not in tasks],
            "normalized": normalized,
            "iqm": {m: stratified_bootstrap_ci(v) for m, v in normalized.items()}}


def write_breadth_files(summary: dict, exp_dir: Path, seeds: int, steps: int) -> dict:
    """``mmer.csv``, ``mmer.md``, ``iqm.md`` / ``iqm.json`` / ``iqm.png`` from
    :func:`breadth_summary`; returns the IQMs ({} when there are none)."""
    from hystax.plots import plot_iqm

    scores = summary["scores"]
    models = list(next(iter(scores.values())))
    with open(exp_dir / "mmer.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "model", "seed", "mmer"])
        for task, by_model in scores.items():
            for model, values in by_model.items():
                writer.writerows([task, model, s, f"{v:.6f}"] for s, v in enumerate(values))
    table = markdown_table(
        f"MMER per task: mean and 95% Student-t CI over {seeds} seeds, {steps:,} env steps per "
        "seed (`hystax train ppo --memory M --env popgym/<task>` defaults)", ["task", *models],
        [[task, *(_mean_ci(by_model[m]) for m in models)] for task, by_model in scores.items()])
    write_summary(exp_dir, "mmer", {"scores": {t: {m: v.tolist() for m, v in b.items()}
                                               for t, b in scores.items()}}, "\n".join(table))
    if "iqm" not in summary:
        print(f"no IQM: it needs the {BASELINE} baseline and two tasks it does not solve")
        return {}
    iqms, tasks, left_out = summary["iqm"], summary["tasks"], summary["left_out"]
    table = markdown_table(
        f"IQM over {len(tasks)} tasks of the normalized MMER, (MMER - {BASELINE}'s) / "
        f"(1 - {BASELINE}'s), with a 95% stratified-bootstrap CI ({seeds} seeds per task)"
        + (f"; left out, as {BASELINE} reaches the best return: {', '.join(left_out)}"
           if left_out else ""), ["model", "IQM", "95% CI"],
        [[m, f"{p:.3f}", f"[{lo:.3f}, {hi:.3f}]"] for m, (p, lo, hi) in iqms.items()])
    write_summary(exp_dir, "iqm", {"iqm": iqms, "tasks": tasks, "left_out": left_out},
                  "\n".join(table))
    plot_iqm(summary["normalized"], exp_dir / "iqm.png",
             title=f"POPGym Easy ({len(tasks)} tasks, {steps // 1000}k steps): normalized MMER "
                   f"vs {BASELINE}")
    return iqms


def write_breadth(results: dict, exp_dir: Path, seeds: int, steps: int) -> dict:
    """:func:`breadth_summary` and :func:`write_breadth_files`; returns the IQMs."""
    return write_breadth_files(breadth_summary(results), exp_dir, seeds, steps)


# --- depth: steps to thresholds --------------------------------------------------------------


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


def depth_summary(results: dict) -> dict:
    """``reached`` (:func:`threshold_steps`), ``levels`` per task and ``final`` (each model's
    mean return over its last ``WINDOW`` updates)."""
    require(all(BASELINE in by_model for by_model in results.values()),
            f"the depth set needs the {BASELINE} baseline for its thresholds")
    return {"reached": threshold_steps(results),
            "levels": {t: threshold_levels(b[BASELINE][1]) for t, b in results.items()},
            "final": {t: {m: float(np.nanmean(r[:, -WINDOW:])) for m, (_, r) in b.items()}
                      for t, b in results.items()}}


def write_depth_files(summary: dict, results: dict, exp_dir: Path, seeds: int,
                      steps: int) -> dict:
    """``curves.png``, ``thresholds.csv`` and ``thresholds.md`` from :func:`depth_summary`;
    returns the thresholds."""
    from hystax.learning_curves import plot_learning_curve_grid

    reached, levels = summary["reached"], summary["levels"]
    models = list(next(iter(results.values())))
    with open(exp_dir / "thresholds.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "model", "fraction", "level", "env_steps"])
        for task, by_model in reached.items():
            for model, by_q in by_model.items():
                writer.writerows([task, model, q, f"{levels[task][q]:.4f}", by_q[q]]
                                 for q in by_q)
    table = markdown_table(
        f"Env steps until the {WINDOW}-update running mean of the return (mean over {seeds} "
        f"seeds) first reaches 50% / 90% of the way from {BASELINE}'s final return to 1 "
        f"({steps:,} env steps per seed; — = not reached)", ["task", *models],
        [[task, *(" / ".join(_steps(by_model[m][q]) for q in THRESHOLDS) for m in models)]
         for task, by_model in reached.items()])
    write_summary(exp_dir, "thresholds", {"thresholds": _jsonable(reached),
                                          "final": summary["final"]}, "\n".join(table))
    plot_learning_curve_grid(
        results, exp_dir / "curves.png", smooth=WINDOW,
        references={t: list(v.values()) for t, v in levels.items()},
        title="POPGym memory tasks: return vs env steps (dashed: 50% / 90% thresholds)")
    return reached


def write_depth(results: dict, exp_dir: Path, seeds: int, steps: int) -> dict:
    """:func:`depth_summary` and :func:`write_depth_files`; returns the thresholds."""
    return write_depth_files(depth_summary(results), results, exp_dir, seeds, steps)


def _mean_ci(values: np.ndarray) -> str:
    mean, half = mean_and_t_interval(values)
    return f"{mean:.3f} ± {half:.3f}"


def _steps(x: float) -> str:
    return "—" if not np.isfinite(x) else f"{x / 1000:.0f}k"


def _jsonable(reached: dict) -> dict:
    return json.loads(json.dumps({t: {m: {str(q): (v if np.isfinite(v) else None)
                                          for q, v in by_q.items()}
                                      for m, by_q in b.items()} for t, b in reached.items()}))
