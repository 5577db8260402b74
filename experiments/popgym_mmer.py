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
* ``depth``: RepeatPrevious, RepeatFirst, CountRecall, Autoencode (Easy) x {s5, lru, s6,
  gru, mingru, mlp}, 1M env steps. Written: ``curves.png`` (a grid of return vs env steps) and
  ``thresholds.csv`` / ``thresholds.md``: the first env step at which the 10-update running
  mean of the seed-mean return reaches 50% and 90% of the way from the MLP's final return to
  the best return of 1.

An interrupted set continues with ``--resume``: finished runs are read back, unfinished ones
resume from their last checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from hystax import rundir
from hystax.core.errors import HystaxError, require
from hystax.experiments import popgym_tables as tables
from hystax.experiments.experiment import Experiment, positive_int
from hystax.experiments.popgym_tables import BASELINE
from hystax.experiments.run_sets import stop_set_if_interrupted

EASY_TASKS = ("RepeatPreviousEasy", "RepeatFirstEasy", "CountRecallEasy", "AutoencodeEasy",
              "HigherLowerEasy", "ConcentrationEasy", "BattleshipEasy", "MinesweeperEasy",
              "MultiarmedBanditEasy", "PositionOnlyCartPoleEasy", "VelocityOnlyCartPoleEasy",
              "NoisyPositionOnlyCartPoleEasy", "PositionOnlyPendulumEasy",
              "NoisyPositionOnlyPendulumEasy", "LabyrinthEscapeEasy", "LabyrinthExploreEasy")
DEPTH_TASKS = ("RepeatPreviousEasy", "RepeatFirstEasy", "CountRecallEasy", "AutoencodeEasy")
SETS = {
    "breadth": dict(tasks=EASY_TASKS, models=("s5", "s4d", "gru", "lstm", "mlp"),
                    total_timesteps=200_000),
    "depth": dict(tasks=DEPTH_TASKS, models=("s5", "lru", "s6", "gru", "mingru", "mlp"),
                  total_timesteps=1_000_000),
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
RESUME_HINT = "the same command and --resume"


class Plan(NamedTuple):
    """The validated settings and the set's folder ``<out-dir>/<set>``."""

    set_name: str
    tasks: list[str]
    models: list[str]
    seeds: int
    steps: int
    exp_dir: Path
    progress: bool


def plan(set_name: str = "breadth", tasks=None, models=None, seeds: int = 3,
         total_timesteps: int | None = None, out_dir="runs/popgym_mmer", resume: bool = False,
         progress: bool = True) -> Plan:
    """Check every setting (each task made, each model's run resolved), then the set's folder
    (new, or the one ``resume`` continues)."""
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
    return Plan(set_name, tasks, models, seeds, steps, exp_dir, progress)


def run(set_name: str = "breadth", tasks=None, models=None, seeds: int = 3,
        total_timesteps: int | None = None, out_dir="runs/popgym_mmer", resume: bool = False,
        progress: bool = True) -> dict:
    """Train every (task, model) of a set and write its tables and figures.

    Returns ``{task: {model: (env_steps [updates], returns [seeds, updates])}}``. Everything
    is validated before the first run starts; ``resume`` continues an interrupted set.
    """
    return EXPERIMENT.execute(plan(set_name, tasks, models, seeds, total_timesteps, out_dir,
                                   resume, progress))[0]


def run_plan(plan: Plan) -> dict:
    """``{task: {model: (env_steps [updates], returns [seeds, updates])}}``, each run trained,
    resumed or read back; each task's runs overlaid in ``<task>/returns.png``."""
    from hystax.plots import plot_run_dirs

    results = {}
    for task in plan.tasks:
        for model in plan.models:
            results.setdefault(task, {})[model] = _train_or_load(
                task, model, plan.seeds, plan.steps, plan.exp_dir / task, plan.progress)
        plot_run_dirs([plan.exp_dir / task / m for m in plan.models],
                      out_dir=plan.exp_dir / task)
    return results


def summarise(plan: Plan, results: dict) -> dict:
    """:func:`~.popgym_tables.depth_summary` for the depth set, else
    :func:`~.popgym_tables.breadth_summary`."""
    return (tables.depth_summary if plan.set_name == "depth" else tables.breadth_summary)(results)


def write_outputs(plan: Plan, results: dict, summary: dict) -> None:
    """The set's tables and figures (:mod:`.popgym_tables`)."""
    if plan.set_name == "depth":
        tables.write_depth_files(summary, results, plan.exp_dir, plan.seeds, plan.steps)
    else:
        tables.write_breadth_files(summary, plan.exp_dir, plan.seeds, plan.steps)


def _train_or_load(task, model, seeds, steps, task_dir: Path, progress):
    """``(env_steps [updates], returns [seeds, updates])`` of one run: trained, resumed or read."""
    from hystax.runner import resolve, saved_config, train

    run_dir = task_dir / model
    if run_dir.exists():
        saved = rundir.read_config(run_dir)
        wanted = resolve("ppo", f"popgym/{task}", check=False, total_timesteps=steps,
                         **model_overrides(model)).config
        resumed = resolve("ppo", f"popgym/{task}", check=False,  # the config it resumes with
                          config=saved_config("ppo", saved.get("config", {}))).config
        require(resumed == wanted and len(saved.get("seeds", [])) == seeds,
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


def add_arguments(parser) -> None:
    """``--set``, ``--tasks``, ``--models``, ``--seeds``, ``--total-timesteps``, ``--out-dir``,
    and ``--resume``."""
    parser.add_argument("--set", dest="set_name", choices=list(SETS), default="breadth",
                        help="breadth: 16 Easy tasks x 5 models, 200k steps; depth: 4 memory "
                             "tasks x {s5, lru, s6, gru, mingru, mlp}, 1M steps; ablation: the 4 "
                             "memory tasks x S5 variants, 200k steps (default: breadth)")
    parser.add_argument("--tasks", nargs="+", help="POPGym tasks (default: the set's)")
    parser.add_argument("--models", nargs="+", help="memory models (default: the set's)")
    parser.add_argument("--seeds", default=3, help="seeds per run, vmapped (default: 3)")
    parser.add_argument("--total-timesteps", help="env steps per seed (default: the set's)")
    parser.add_argument("--out-dir", default="runs/popgym_mmer",
                        help="parent folder; the set goes to <out-dir>/<set>")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted set")


EXPERIMENT = Experiment(
    prog="python -m hystax.experiments.popgym_mmer", description=__doc__.split("\n\n")[0],
    add_arguments=add_arguments, validate=lambda args: plan(**vars(args)), run=run_plan,
    summarise=summarise, write=write_outputs)
cli = EXPERIMENT.cli

if __name__ == "__main__":
    raise SystemExit(cli())
