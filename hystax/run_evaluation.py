"""``hystax evaluate RUN_DIR``: a loaded run played on fresh episodes, written into its folder.

Each evaluation is numbered and never overwrites another::

    eval-001.csv           seed,episode,return,length
    eval-001.json          its settings, and the summary (mean ± 95% CI over seeds)
    eval-001-episodes.npz  with record=N: the first N episodes of every seed (obs, actions,
                           rewards [seeds, N, T, ...], zero past each episode's length)
    eval-001-seed0-episode0.gif, ...   with record=N, for envs with a renderer
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

import hystax
from hystax import rundir
from hystax.agents.actor import default_max_steps, play_steps, start_play
from hystax.core.errors import is_int, require
from hystax.core.stats import mean_and_t_interval
from hystax.trained import DEFAULT_EPISODES, MAX_EPISODES, Trained, load

RECORD_CHUNK = 128  # steps per jitted call while recording


def evaluate_run(run_dir: str | Path, *, env: str | None = None,
                 env_params: Mapping[str, Any] | None = None, episodes: int = DEFAULT_EPISODES,
                 deterministic: bool = False, step: int | None = None, seed: int = 0,
                 record: int = 0, max_steps: int | None = None) -> tuple[list[Path], str]:
    """Evaluate the run in ``run_dir`` (see :meth:`hystax.trained.Trained.evaluate`) with key
    ``PRNGKey(seed)`` and write the files of the module doc; returns ``(paths, summary)``.
    Every argument is checked, and the folder probed for writing, before any compute."""
    require(is_int(record) and 0 <= record, f"record must be a non-negative integer, got "
            f"{record!r}")
    require(is_int(episodes) and episodes > 0, f"episodes must be a positive integer, got "
            f"{episodes!r}")
    require(record <= episodes, f"record ({record}) cannot exceed episodes ({episodes})")
    require(episodes <= MAX_EPISODES, f"episodes must be at most {MAX_EPISODES:,} per seed "
            f"(they are played at once), got {episodes:,}")
    require(is_int(seed) and 0 <= seed < 2**32, f"seed must be an integer in [0, 2**32), got "
            f"{seed!r}")
    require(max_steps is None or (is_int(max_steps) and 0 < max_steps < 2**31),
            f"max_steps must be a positive integer below 2**31, got {max_steps!r}")
    trained = load(run_dir, step)
    require(isinstance(trained, Trained), f"{run_dir} is a {trained.spec.agent} run (a world "
            "model, not a policy): load it with hystax.load and use .predict / .results")
    actor, name, params = trained.actor_for(env, env_params)  # spaces checked
    rundir.make_writable_dir(trained.run_dir)
    key = jax.random.PRNGKey(seed)
    result = trained.evaluate(env, env_params, episodes, deterministic, key, max_steps)
    stem, csv_path = _claim(trained.run_dir)
    _write_csv(csv_path, trained.seeds, result.returns, result.lengths)
    paths = [csv_path]
    if record:
        paths += _record(trained, actor, params, name, key, episodes, record, deterministic,
                         max_steps, trained.run_dir / stem)
    per_seed = result.returns.mean(axis=1)
    mean, half = mean_and_t_interval(per_seed)
    kind = "greedy" if deterministic else "stochastic"
    changed = [f"{k}={v}" for k, v in (env_params or {}).items()] + (
        [f"max_steps={max_steps}"] if max_steps else [])
    settings = f" with {', '.join(changed)}" if changed else ""
    summary = (f"{trained.spec.agent} run {trained.run_dir.name} at update {trained.step} on "
               f"{name}{settings} ({kind}, {episodes} episodes x {len(trained.seeds)} seeds): return "
               f"{mean:.4g} ± {half:.3g} (95% CI over seeds)")
    sidecar = trained.run_dir / f"{stem}.json"
    sidecar.write_text(json.dumps({
        "run": str(trained.run_dir), "step": trained.step, "env": name,
        "env_params": dict(env_params or {}), "episodes": int(episodes),
        "deterministic": bool(deterministic), "seed": int(seed), "record": int(record),
        "max_steps": int(max_steps or default_max_steps(params)),
        "seeds": trained.seeds, "mean_return": float(f"{mean:.7g}"),
        "ci95_half_width": float(f"{half:.7g}"),
        "per_seed_mean_return": [float(f"{x:.7g}") for x in per_seed],
        "mean_length": float(result.lengths.mean()), "summary": summary,
        "files": [p.name for p in paths], "hystax_version": hystax.__version__},
        indent=2, allow_nan=True) + "\n")
    return [*paths, sidecar], summary


def _claim(run_dir: Path) -> tuple[str, Path]:
    """The next ``eval-NNN`` stem and its CSV, created here (never an existing one)."""
    taken = [int(m.group(1)) for p in run_dir.glob("eval-*")
             if (m := re.match(r"eval-(\d+)", p.name))]
    n = max(taken, default=0) + 1
    while True:
        path = run_dir / f"eval-{n:03d}.csv"
        try:
            path.open("x").close()
            return path.stem, path
        except FileExistsError:  # another evaluation took it meanwhile
            n += 1


def _write_csv(path: Path, seeds, returns, lengths) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["seed", "episode", "return", "length"])
        for i, seed in enumerate(seeds):
            for k in range(returns.shape[1]):
                writer.writerow([seed, k, f"{returns[i, k]:.8g}", int(lengths[i, k])])


def _record(trained: Trained, actor, params, name, key, episodes, keep, deterministic,
            max_steps, stem: Path) -> list[Path]:
    """Replay the first ``keep`` episodes of every seed (the evaluation's keys, so the same
    episodes) and write them as ``.npz`` (and GIFs where the env has a renderer)."""
    max_steps = default_max_steps(params) if max_steps is None else max_steps
    keys = jax.random.split(key, len(trained.seeds))
    play = jax.jit(jax.vmap(lambda k: start_play(actor, params, k, episodes)))(keys)
    chunk = jax.jit(jax.vmap(lambda p, pl: play_steps(actor, p, params, pl, RECORD_CHUNK,
                                                      deterministic, keep)))
    records = []
    while True:  # host loop over jitted chunks until every recorded episode has ended
        play, record = chunk(trained.params, play)
        records.append(jax.device_get(record))
        t = int(np.asarray(play.t)[0])
        if np.asarray(play.done)[:, :keep].all() or t >= max_steps:
            break
    states, obs, actions, rewards, _ = jax.tree.map(lambda *x: np.concatenate(x, axis=1),
                                                    *records)  # [seeds, T, keep, ...]
    lengths = np.asarray(play.lengths)[:, :keep]
    obs, actions, rewards = (x[:, :lengths.max()] for x in (obs, actions, rewards))
    steps = np.arange(obs.shape[1])[None, :, None]
    live = steps < lengths[:, None, :]  # [seeds, T, keep]

    def episodes_first(x):  # [seeds, T, keep, ...] -> [seeds, keep, T, ...], zero past the end
        x = np.where(live.reshape(live.shape + (1,) * (x.ndim - 3)), x, 0)
        return np.swapaxes(x, 1, 2)

    out = stem.with_name(f"{stem.name}-episodes.npz")
    np.savez_compressed(out, obs=episodes_first(obs), actions=episodes_first(actions),
                        rewards=episodes_first(rewards), lengths=lengths,
                        returns=np.asarray(play.returns)[:, :keep],
                        seeds=np.asarray(trained.seeds))
    paths = [out]
    from hystax.episode_gif import can_render, write_episode_gif

    if can_render(actor.env):
        for i, seed in enumerate(trained.seeds):
            for k in range(keep):
                episode = jax.tree.map(lambda x, i=i, k=k: x[i, :lengths[i, k], k], states)
                gif = stem.with_name(f"{stem.name}-seed{seed}-episode{k}.gif")
                paths.append(write_episode_gif(
                    actor.env, episode, gif, title=f"{trained.spec.agent} on {name}, seed {seed}"))
    return paths
