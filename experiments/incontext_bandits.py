"""In-context bandit agents against the planners: recurrent PPO (S5, GRU, and an MLP control)
meta-trained on ``meta/DLB`` and ``meta/LSD``, then played beside DynLin-UCB / Lin-UCB and the
LSD planners and learners on held-out and out-of-distribution problems.

``hystax icrl bandits [--families dlb lsd] [--models s5 gru mlp] [--seeds 3]
[--total-timesteps N] [--problems 200] [--out-dir runs/incontext_bandits]
[--name NAME] [--resume] [--overwrite]``

Each model trains ``--seeds`` seeds (vmapped) on the family's train problems for
``--total-timesteps`` env steps per seed (episodes of the family's T = 1,000 rounds) (``hystax.train("ppo", "meta/DLB", memory=model)``,
from the ``ppo.META`` preset). Every trained seed then plays ``--problems`` held-out problems
and each out-of-distribution set (DLB: the ``real`` and ``synthetic-0.01`` presets; LSD:
``long-caps`` problems and the R1-R3 presets) with the same noise as every baseline (common
random numbers, :mod:`.incontext_bandit_eval`). Written into ``<out-dir>/<name>/<family>/``:
``table.md`` / ``table.json`` (final regret at T = 100 and T, mean and 95% Student-t CI over
problems, the agents' first averaged over their training seeds; LSD also the reward as a
fraction of OPT), ``regret.csv`` (every curve), ``regret.png`` (held-out problems, mean ±
95% CI), ``returns.png`` (training) and the training runs. ``--resume`` continues a set by
``--name`` (runs finished are read back, interrupted ones resumed).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from hystax.core.errors import require
from hystax.experiments.experiment import (
    Experiment,
    add_run_dir_args,
    positive_int,
)

FAMILIES = {"dlb": "meta/DLB", "lsd": "meta/LSD"}
MODELS = ("s5", "gru", "mlp")
RESUME_HINT = "hystax icrl bandits --resume --name NAME"


class Plan(NamedTuple):
    """The validated settings and the set's folder."""

    families: tuple
    models: tuple
    seeds: int
    steps: int
    problems: int
    exp_dir: Path
    progress: bool


def plan(families=tuple(FAMILIES), models=MODELS, seeds=3, total_timesteps=None,
         problems=200, out_dir="runs/incontext_bandits", name=None,
         overwrite=False, resume=False, progress=True) -> Plan:
    """Check every setting (each run resolved), then make or find the set's folder."""
    from hystax.agents import ppo
    from hystax.experiments.run_sets import set_dir
    from hystax.runner import resolve

    for family in families:
        require(family in FAMILIES, f"unknown family {family!r}; choose from "
                f"{', '.join(FAMILIES)}")
    require(len(set(families)) == len(families) and len(set(models)) == len(models),
            "--families and --models must be distinct")
    seeds, problems = positive_int("seeds", seeds), positive_int("problems", problems)
    steps = positive_int("total_timesteps", total_timesteps
                         or ppo.META[FAMILIES[families[0]]].total_timesteps)
    for family in families:
        for model in models:
            require(model != "none", "the agents need a memory model name (s5, gru, ..., "
                    "or mlp, the memoryless control)")
            resolve("ppo", FAMILIES[family], memory=model, check=False, total_timesteps=steps)
    exp_dir = set_dir(out_dir, name, "incontext-bandits", overwrite=overwrite, resume=resume)
    return Plan(tuple(families), tuple(models), seeds, steps, problems, exp_dir, progress)


def run_plan(plan: Plan) -> dict:
    """``{family: {"sets": [...], "curves": {set: {algorithm: curve}}, "short": {set: OPT(100)},
    "run_dirs": [...]}}``: each model trained (or resumed), then every set played."""
    from hystax import envs
    from hystax.experiments import incontext_bandit_eval as ev
    from hystax.experiments.run_sets import train_or_resume
    from hystax.runner import resolve
    from hystax.trained import load

    results = {}
    for family in plan.families:
        env_name = FAMILIES[family]
        env, _ = envs.make(env_name)
        agents, run_dirs = {}, []
        for model in plan.models:
            config = resolve("ppo", env_name, memory=model, check=False,
                             total_timesteps=plan.steps).config
            result = train_or_resume(plan.exp_dir / family, model, "ppo", env_name,
                                     seeds=plan.seeds, config=config, progress=plan.progress,
                                     resume_hint=RESUME_HINT)
            agents[model] = ev.agent_policies(load(result.run_dir), env)
            run_dirs.append(result.run_dir)
        curves, short = {}, {}
        for pset in ev.problem_sets(family, env, plan.problems):
            if family == "dlb":
                curves[pset.name] = ev.dlb_curves(pset, agents, env.horizon)
            else:
                curves[pset.name], short[pset.name] = ev.lsd_curves(pset, agents, env.horizon)
        results[family] = {"curves": curves, "short": short, "run_dirs": run_dirs,
                           "horizon": env.horizon}
    return results


def summarise(plan: Plan, results: dict) -> dict:
    from hystax.experiments.incontext_bandit_tables import family_summary

    return {family: family_summary(family, out, plan) for family, out in results.items()}


def write(plan: Plan, results: dict, summary: dict) -> None:
    from hystax.experiments.incontext_bandit_tables import write_family

    for family, out in results.items():
        write_family(family, out, summary[family], plan)


def run(**kwargs) -> dict:
    """:func:`plan`, then train, play and write; returns the summary."""
    return EXPERIMENT.execute(plan(**kwargs))[1]


def add_arguments(parser) -> None:
    parser.add_argument("--families", nargs="+", default=list(FAMILIES),
                        help="dlb (meta/DLB) and/or lsd (meta/LSD) (default: both)")
    parser.add_argument("--models", nargs="+", default=list(MODELS),
                        help="memory models; mlp is the memoryless control (default: s5 gru mlp)")
    parser.add_argument("--seeds", default=3, help="training seeds per model, vmapped (default: 3)")
    parser.add_argument("--total-timesteps", help="env steps per seed (default: the preset's, "
                        "ppo.META['meta/DLB'])")
    parser.add_argument("--problems", default=200,
                        help="held-out problems, and seeds per preset (default: 200)")
    add_run_dir_args(parser, "runs/incontext_bandits", "incontext-bandits")
    parser.add_argument("--resume", action="store_true",
                        help="continue the set named by --name (finished runs are read back)")


EXPERIMENT = Experiment(
    prog="python -m hystax.experiments.incontext_bandits",
    description=__doc__.split("\n\n")[0], add_arguments=add_arguments,
    validate=lambda args: plan(**vars(args)), run=run_plan, summarise=summarise, write=write)
cli = EXPERIMENT.cli

if __name__ == "__main__":
    raise SystemExit(cli())
