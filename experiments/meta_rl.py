"""In-context adaptation on the meta-RL families: train on the train tasks, then measure the
return of each trial on held-out (test-split) tasks.

``hystax icrl meta [--env meta/BernoulliBandit] [--models s5 gru mlp] [--seeds 3]
[--total-timesteps N] [--gamma G] [--eval-steps N] [--out-dir runs/meta_rl]``

For each model: ``hystax.train("ppo", env, memory=model)``, which starts from the env's preset
(``ppo.META``; plain ``ppo.Config()`` where there is none, as for meta/Pendulum) with recurrent
PPO; the memory is reset only at meta-episode boundaries, so it can carry what it learnt across
trials. Then the trained policies play ``--eval-steps`` steps on ``env.params_for("test")``
and the per-trial returns of the completed meta-episodes are averaged, three times: with the
memory carried across trials, as trained; reset at every trial's start (the control: what the
memory carries from one trial to the next is worth the difference); and reset at every step
(the same weights read memorylessly: what the memory is worth inside a trial). Written into
``<out-dir>/<env>/``: ``trials.csv`` (model, memory, seed, trial, mean return), ``gain.md`` /
``gain.json`` (trial 1, last trial and the gain last − first; the last trial with the memory
reset each trial and trial 1 with it reset every step; mean and 95% Student-t CI over seeds),
``trials.png`` (return per trial), ``returns.png`` (training curves) and each run's directory.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from hystax.core.errors import HystaxError, require
from hystax.core.stats import mean_and_t_interval
from hystax.experiments.experiment import (
    Experiment,
    markdown_table,
    number,
    positive_int,
    write_summary,
)
from hystax.experiments.run_sets import stop_set_if_interrupted
from hystax.rundir import make_writable_dir

DEFAULT_STEPS = 2_000_000  # where the env has no preset to say how long to train


MEMORY_RESETS = {"carried": None, "reset": "trial_done", "memoryless": "every_step"}
"""How the evaluation treats the memory: carried through the meta-episode (as trained), reset
at every trial's start, reset at every step (the same weights read memorylessly)."""


def held_out_trial_returns(result, env_name: str, eval_steps: int, key,
                           memory: str = "carried") -> np.ndarray:
    """``[seeds, num_trials]`` mean return per trial on test-split tasks, with the memory
    treated as ``memory`` says (a key of :data:`MEMORY_RESETS`)."""
    from hystax.agents import ppo
    from hystax.envs import make
    from hystax.envs.meta import trial_returns

    env, params = make(env_name)
    algo = ppo.make_algorithm(result.config, env, params)
    test_params = env.params_for("test")
    reset_on = MEMORY_RESETS[memory]
    evaluate = jax.jit(jax.vmap(lambda p, k, e, n: algo.extras["evaluate"](p, k, e, n, reset_on),
                                in_axes=(0, 0, None, None)), static_argnums=3)
    keys = jax.random.split(key, len(result.seeds))
    rewards, dones, info = evaluate(result.state.params, keys, test_params, eval_steps)
    out = []
    for s in range(len(result.seeds)):
        per_trial = trial_returns(np.asarray(rewards[s]), np.asarray(info["trial_index"][s]),
                                  np.asarray(info["trial_done"][s]), env.num_trials,
                                  done=np.asarray(dones[s]))
        require(len(per_trial) > 0, f"no meta-episode of {env_name} finished within "
                f"{eval_steps} evaluation steps; raise --eval-steps")
        out.append(per_trial.mean(axis=0))
    return np.stack(out)


class Plan(NamedTuple):
    """The validated settings and the (new, empty) folder ``<out-dir>/<family>``."""

    env_name: str
    models: tuple
    seeds: int
    steps: int
    eval_steps: int
    overrides: dict
    exp_dir: Path
    progress: bool


def plan(env_name="meta/BernoulliBandit", models=("s5", "gru", "mlp"), seeds=3,
         total_timesteps=None, eval_steps=2_000, out_dir="runs/meta_rl", progress=True,
         gamma=None) -> Plan:
    """Check every setting (each model's run resolved: bad settings are one line, before any
    training), then make the folder."""
    from hystax.envs import make
    from hystax.envs.meta import MetaEnv
    from hystax.runner import resolve

    env, _ = make(env_name)
    require(isinstance(env, MetaEnv), f"{env_name} is not a meta-RL env (meta/...): it has "
            "no held-out split")
    from hystax.agents import ppo

    seeds = positive_int("seeds", seeds)
    eval_steps = positive_int("eval_steps", eval_steps)
    preset = ppo.preset(env_name)
    steps = positive_int("total_timesteps", total_timesteps
                         or (preset.total_timesteps if preset else DEFAULT_STEPS))
    require(len(set(models)) == len(models), f"models must be distinct, got {list(models)}")
    overrides = {"total_timesteps": steps}
    if gamma is not None:
        overrides["gamma"] = number("gamma", gamma)
    for model in models:
        require(model != "none",
                "meta_rl needs memory models (s5, s4d, lru, s6, gru, mingru, lstm, mlp)")
        # unknown model, or a budget below one update: HystaxError, now
        resolve("ppo", env_name, memory=model, check=False, **overrides)
    exp_dir = Path(out_dir) / env_name.split("/")[-1]
    if exp_dir.exists():
        raise HystaxError(f"{exp_dir} already exists; pass another --out-dir")
    make_writable_dir(exp_dir)
    return Plan(env_name, tuple(models), seeds, steps, eval_steps, overrides, exp_dir, progress)


def run(env_name="meta/BernoulliBandit", models=("s5", "gru", "mlp"), seeds=3,
        total_timesteps=None, eval_steps=2_000, out_dir="runs/meta_rl", progress=True,
        gamma=None):
    """Train each model on ``env_name``'s train tasks, evaluate per-trial returns on held-out
    tasks, write the tables and figures; returns ``{model: [seeds, num_trials]}`` (memory
    carried across trials). ``gamma``: PPO's discount (default: the preset's)."""
    return EXPERIMENT.execute(plan(env_name, models, seeds, total_timesteps, eval_steps,
                                   out_dir, progress, gamma))[0]["carried"]


def run_plan(plan: Plan) -> dict:
    """``{"carried" | "reset" | "memoryless": {model: [seeds, num_trials]}, "run_dirs": [...]}``:
    each model trained, then evaluated on held-out tasks three ways (:data:`MEMORY_RESETS`)."""
    from hystax.runner import train

    env_name, seeds, overrides, exp_dir = plan.env_name, plan.seeds, plan.overrides, plan.exp_dir
    progress, eval_steps = plan.progress, plan.eval_steps
    per_memory, run_dirs = {memory: {} for memory in MEMORY_RESETS}, []
    for model in plan.models:
        result = train("ppo", env_name, seeds=seeds, memory=model, name=model,
                       out_dir=exp_dir, progress=progress, **overrides)
        stop_set_if_interrupted(result, f"hystax train --resume {result.run_dir} (this set "
                                "is not resumed as a whole)")
        for memory, table in per_memory.items():
            table[model] = held_out_trial_returns(result, env_name, eval_steps,
                                                  jax.random.PRNGKey(1234), memory)
        run_dirs.append(result.run_dir)
    return {**per_memory, "run_dirs": run_dirs}


def _write_set(plan: Plan, results: dict, rows: dict) -> None:
    from hystax.plots import plot_returns

    plot_returns(results["run_dirs"], plan.exp_dir / "returns.png", labels=list(plan.models),
                 title=f"{plan.env_name}: training return (train tasks)")
    write_outputs(results["carried"], plan.env_name, plan.steps, plan.seeds, plan.exp_dir,
                  results["reset"], results["memoryless"], rows)


def gain_rows(per_model: dict, per_model_reset: dict | None = None,
              per_model_memoryless: dict | None = None
              ) -> dict[str, dict[str, tuple[float, float]]]:
    """``{model: {"first"|"last"|"gain"[|"last_reset"|"carried_minus_reset"]
    [|"first_memoryless"|"first_minus_memoryless"]: (mean, 95% half-width)}}`` over seeds: the
    last trial against the memory reset every trial (what passes between trials), the first
    against the memory reset every step (what the memory is worth inside a trial)."""
    rows = {}
    for model, v in per_model.items():
        rows[model] = {"first": mean_and_t_interval(v[:, 0]),
                       "last": mean_and_t_interval(v[:, -1]),
                       "gain": mean_and_t_interval(v[:, -1] - v[:, 0])}
        if per_model_reset is not None:
            r = per_model_reset[model]
            rows[model]["last_reset"] = mean_and_t_interval(r[:, -1])
            rows[model]["carried_minus_reset"] = mean_and_t_interval(v[:, -1] - r[:, -1])
        if per_model_memoryless is not None:
            m = per_model_memoryless[model]
            rows[model]["first_memoryless"] = mean_and_t_interval(m[:, 0])
            rows[model]["first_minus_memoryless"] = mean_and_t_interval(v[:, 0] - m[:, 0])
    return rows


PLOT_STYLES = {
    "carried": (dict(marker="o", linestyle="-"), lambda model: model),
    "reset": (dict(marker="x", linestyle="--"), lambda model: f"{model}, memory reset each trial"),
    "memoryless": (dict(marker="s", linestyle=":"),
                   lambda model: f"{model}, memory reset every step"),
}


def write_outputs(per_model: dict, env_name: str, total_timesteps: int, seeds: int,
                  out_dir: Path, per_model_reset: dict | None = None,
                  per_model_memoryless: dict | None = None, rows: dict | None = None) -> None:
    """``per_model`` (and ``per_model_reset`` / ``per_model_memoryless``, the memory reset every
    trial / every step): ``{model: [seeds, num_trials]}``; ``rows``: their :func:`gain_rows`
    (computed when not given). Writes ``trials.csv``, ``gain.md`` / ``gain.json`` and
    ``trials.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    memories = {name: table for name, table in (("carried", per_model),
                                                ("reset", per_model_reset),
                                                ("memoryless", per_model_memoryless)) if table}
    with open(out_dir / "trials.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "memory", "seed", "trial", "mean_return"])
        for memory, table in memories.items():
            for model, values in table.items():
                for s, row in enumerate(values):
                    writer.writerows([model, memory, s, k + 1, f"{v:.6f}"]
                                     for k, v in enumerate(row))
    last = next(iter(per_model.values())).shape[1]
    rows = gain_rows(per_model, per_model_reset, per_model_memoryless) if rows is None else rows
    columns = [("first", "trial 1"), ("last", f"trial {last}"),
               ("gain", f"gain (trial {last} − trial 1)")]
    if per_model_reset:
        columns += [("last_reset", f"trial {last}, memory reset each trial"),
                    ("carried_minus_reset", f"trial {last}: carried − reset")]
    if per_model_memoryless:
        columns += [("first_memoryless", "trial 1, memory reset every step"),
                    ("first_minus_memoryless", "trial 1: carried − reset every step")]
    lines = markdown_table(
        f"{env_name}, held-out (test-split) tasks; {total_timesteps:,} training steps per seed; "
        f"mean and 95% Student-t CI over {seeds} seeds", ["model", *(t for _, t in columns)],
        [[model, *("%.3f ± %.3f" % row[key] for key, _ in columns)]
         for model, row in rows.items()])
    _plot_trials(per_model, memories, env_name, seeds, out_dir / "trials.png")
    write_summary(out_dir, "gain", {"env": env_name, "total_timesteps": total_timesteps,
                                    "seeds": seeds, "per_trial": {m: v.tolist() for m, v in
                                                                  per_model.items()},
                                    **{f"per_trial_memory_{name}": {
                                        m: v.tolist() for m, v in table.items()}
                                       for name, table in memories.items() if name != "carried"},
                                    "gain": rows}, "\n".join(lines))


def _plot_trials(per_model: dict, memories: dict, env_name: str, seeds: int,
                 out_png: Path) -> None:
    """``trials.png``: the mean return per trial (95% CI band), memory carried / reset."""
    from hystax.figure import new_figure, save_figure, seeds_text

    fig, axes = new_figure(figsize=(6.5, 5.0))
    last = next(iter(per_model.values())).shape[1]
    ax = axes[0, 0]
    for i, (model, values) in enumerate(per_model.items()):
        trials = np.arange(1, values.shape[1] + 1)
        for memory, table in memories.items():
            mean, half = mean_and_t_interval(table[model])
            style, label = PLOT_STYLES[memory]
            ax.plot(trials, mean, markersize=3, color=f"C{i}", **style, label=label(model))
            ax.fill_between(trials, mean - half, mean + half, alpha=0.15, linewidth=0,
                            color=f"C{i}")
    ax.set(xlabel="trial within meta-episode", ylabel="mean return per trial (held-out tasks)",
           xticks=np.arange(1, last + 1))
    ax.set_title(f"{env_name}: return per trial on held-out tasks\nmean over {seeds_text(seeds)}, "
                 "shaded: 95% Student-t CI", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    save_figure(fig, out_png)


def add_arguments(parser) -> None:
    """``--env``, ``--models``, ``--seeds``, ``--total-timesteps``, ``--gamma``,
    ``--eval-steps`` and ``--out-dir``."""
    parser.add_argument("--env", dest="env_name", metavar="ENV", default="meta/BernoulliBandit",
                        help="meta/BernoulliBandit (default), meta/CartPole or meta/Pendulum")
    parser.add_argument("--models", nargs="+", default=["s5", "gru", "mlp"],
                        help="memory models (default: s5 gru mlp)")
    parser.add_argument("--seeds", default=3, help="seeds per model, vmapped (default: 3)")
    parser.add_argument("--total-timesteps", help="env steps per seed (default: the env's "
                        "preset's: 300k for meta/BernoulliBandit, 2M otherwise)")
    parser.add_argument("--gamma", help="PPO's discount (default: the env's preset's, 0.99)")
    parser.add_argument("--eval-steps", default=2_000,
                        help="held-out evaluation steps per env (default: 2000)")
    parser.add_argument("--out-dir", default="runs/meta_rl",
                        help="parent folder; results go to <out-dir>/<family>")


EXPERIMENT = Experiment(
    prog="python -m hystax.experiments.meta_rl", description=__doc__.split("\n\n")[0],
    add_arguments=add_arguments, validate=lambda args: plan(**vars(args)), run=run_plan,
    summarise=lambda plan, results: gain_rows(results["carried"], results["reset"],
                                              results["memoryless"]),
    write=_write_set)
cli = EXPERIMENT.cli

if __name__ == "__main__":
    raise SystemExit(cli())
