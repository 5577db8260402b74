"""In-context adaptation on the meta-RL families: train on the train tasks, then measure the
return of each trial on held-out (test-split) tasks.

``python -m hystax.experiments.meta_rl [--env meta/BernoulliBandit] [--models s5 gru mlp]
[--seeds 3] [--total-timesteps 3e5] [--out-dir runs/meta_rl]``

For each model: ``hystax.train("ppo", env, memory=model)`` (recurrent PPO; the memory is
reset only at meta-episode boundaries, so it can carry what it learnt across trials), then
the trained policies play ``--eval-steps`` steps on ``env.params_for("test")`` and the
per-trial returns of the completed meta-episodes are averaged. Written: ``trials.csv``
(model, seed, trial, mean return), ``gain.md`` (trial 1 vs last trial, mean ± s.e. over
seeds), ``trials.png`` (return per trial, band over seeds) and each run's directory.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from pathlib import Path

import jax
import numpy as np

import hystax
from hystax.agents import ppo
from hystax.envs.meta import MetaEnv, trial_returns
from hystax.errors import HystaxError, require
from hystax.stats import mean_and_standard_error

BANDIT = ppo.Config(memory="s5", total_timesteps=300_000, num_envs=16, num_steps=100,
                    update_epochs=4, num_minibatches=4, d_model=64, state_size=64,
                    encoder_sizes=(64,), hidden_sizes=(64,), lr=1e-3, anneal_lr=True,
                    gamma=0.99, gae_lambda=0.95, ent_coef=0.01)


def held_out_trial_returns(result, env_name: str, eval_steps: int, key) -> np.ndarray:
    """``[seeds, num_trials]`` mean return per trial on test-split tasks."""
    env, params = hystax.make(env_name)
    algo = ppo.make_algorithm(result.config, env, params)
    test_params = env.params_for("test")
    evaluate = jax.jit(jax.vmap(algo.extras["evaluate"], in_axes=(0, 0, None, None)),
                       static_argnums=3)
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


def run(env_name="meta/BernoulliBandit", models=("s5", "gru", "mlp"), seeds=3,
        total_timesteps=300_000, eval_steps=2_000, out_dir="runs/meta_rl", progress=True):
    out_dir = Path(out_dir)
    env, _ = hystax.make(env_name)
    require(isinstance(env, MetaEnv), f"{env_name} is not a meta-RL env (meta/...): it has "
            "no held-out split")
    for model in models:
        require(model != "none", "meta_rl needs memory models (s5, s4d, gru, lstm, mlp)")
        dataclasses.replace(BANDIT, memory=model)  # unknown model: HystaxError, now
    per_model = {}
    for model in models:
        config = dataclasses.replace(BANDIT, memory=model, total_timesteps=int(total_timesteps))
        result = hystax.train("ppo", env_name, seeds=seeds, config=config,
                              name=f"{env_name.split('/')[-1]}-{model}", out_dir=out_dir,
                              progress=progress)
        per_model[model] = held_out_trial_returns(result, env_name, eval_steps,
                                                  jax.random.PRNGKey(1234))
    write_outputs(per_model, env_name, total_timesteps, seeds, out_dir)
    return per_model


def write_outputs(per_model: dict, env_name: str, total_timesteps: int, seeds: int,
                  out_dir: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "trials.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "seed", "trial", "mean_return"])
        for model, values in per_model.items():
            for s, row in enumerate(values):
                writer.writerows([model, s, k + 1, f"{v:.6f}"] for k, v in enumerate(row))
    last = next(iter(per_model.values())).shape[1]
    lines = [f"{env_name}, held-out (test-split) tasks; {total_timesteps:,} training steps per "
             f"seed; mean ± s.e. over {seeds} seeds", "",
             f"| model | trial 1 | trial {last} | gain (trial {last} − trial 1) |",
             "|---|---:|---:|---:|"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, values in per_model.items():
        cells = [mean_and_standard_error(values[:, 0]), mean_and_standard_error(values[:, -1]),
                 mean_and_standard_error(values[:, -1] - values[:, 0])]
        lines.append(f"| {model} | " + " | ".join(f"{m:.3f} ± {e:.3f}" for m, e in cells) + " |")
        mean, se = mean_and_standard_error(values)
        trials = np.arange(1, values.shape[1] + 1)
        ax.plot(trials, mean, label=model)
        ax.fill_between(trials, mean - se, mean + se, alpha=0.25)
    ax.set(xlabel="trial within meta-episode", ylabel="mean return (held-out tasks)",
           title=f"{env_name}: in-context adaptation")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "trials.png", dpi=120)
    plt.close(fig)
    (out_dir / "gain.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hystax.experiments.meta_rl",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="meta/BernoulliBandit")
    parser.add_argument("--models", nargs="+", default=["s5", "gru", "mlp"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--total-timesteps", type=float, default=300_000)
    parser.add_argument("--eval-steps", type=int, default=2_000)
    parser.add_argument("--out-dir", default="runs/meta_rl")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        return _main(args)
    except HystaxError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")


def _main(args) -> int:
    run(args.env, args.models, args.seeds, int(args.total_timesteps), args.eval_steps,
        args.out_dir, not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
