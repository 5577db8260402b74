"""Hyperparameter sweeps: a grid x seeds trained as one vmapped population, in jitted chunks
under one tqdm bar.

>>> import hystax
>>> result = hystax.sweep("ppo", "CartPole-v1", {"lr": [3e-4, 1e-3]}, seeds=4,
...                       total_timesteps=100_000)
>>> result.metrics["episode_return"].shape            # [2 lrs, 4 seeds, updates]

A sweep lives in memory (no run folder, no checkpoints): for runs that are kept, resumed and
plotted, train each setting with :func:`hystax.train`. Ctrl-C or SIGTERM ends a sweep after
its current chunk and returns what it has (``interrupted=True``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from hystax.agents.algorithm import merge_hparams
from hystax.core import sharding
from hystax.core.errors import HystaxError, require
from hystax.runner import chunk_size, make_chunk_fn, recent_return, resolve
from hystax.stopping import StopRequests


class SweepResult(NamedTuple):
    """A sweep's outcome; ``shape`` is the grid's, one axis per swept name, in given order."""

    grid: dict[str, np.ndarray]     # name -> [*shape]: the value at every grid point
    seeds: list[int]
    state: Any                      # final train state, leaves [*shape, seeds, ...]
    metrics: dict[str, np.ndarray]  # [*shape, seeds, updates done]
    config: Any
    interrupted: bool


def grid_points(hparams: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    """The full grid of ``hparams`` (name -> values): name -> float32 ``[*shape]``."""
    require(isinstance(hparams, Mapping) and len(hparams) > 0,
            f"hparams must map hyperparameter names to lists of values, got {hparams!r}")
    values = {}
    for name, vs in hparams.items():
        vs = [vs] if isinstance(vs, (int, float)) else vs
        ok = (isinstance(vs, (Sequence, np.ndarray)) and not isinstance(vs, str) and len(vs) > 0
              and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
                      and math.isfinite(v) for v in vs))
        require(ok, f"hparams[{name!r}] must be a non-empty list of finite numbers, got {vs!r}")
        values[name] = [float(v) for v in vs]
    shape = tuple(len(v) for v in values.values())
    points = np.array(list(itertools.product(*values.values())), np.float32)  # [grid, names]
    return {name: points[:, i].reshape(shape) for i, name in enumerate(values)}


def sweep(agent: str, env: str | Any, hparams: Mapping[str, Sequence[float]], *,
          seeds: int | Sequence[int] = 1, config: Any = None, env_params: Mapping | None = None,
          chunk_updates: int | None = None, progress: bool = True, devices: int | None = None,
          check: bool = True, **overrides) -> SweepResult:
    """Train ``agent`` on ``env`` at every point of the ``hparams`` grid, for every seed.

    Args:
      hparams: numeric hyperparameters (the agent's ``Config.HPARAMS``, e.g. ``lr``) to
        lists of values; the grid is their product.
      seeds, config, env_params, chunk_updates, devices, check, overrides: as for
        :func:`hystax.train`; the grid x seeds population is vmapped and sharded.
      progress: one tqdm bar over the env steps of the whole population.

    A diverged grid point (non-finite loss) does not stop the others: its metrics hold NaN.
    """
    grid = grid_points(hparams)
    spec = resolve(agent, env, seeds=seeds, config=config, env_params=env_params, check=check,
                   **overrides)
    merge_hparams(spec.config, {k: 0.0 for k in grid})  # unknown names: one line, before compile
    algorithm = spec.module.make_algorithm(spec.config, spec.env, spec.env_params)
    shape, num_seeds = next(iter(grid.values())).shape, len(spec.seeds)
    size = math.prod(shape) * num_seeds
    mesh = sharding.seed_mesh(size, devices)
    shard = sharding.seed_sharding(mesh)

    keys = np.tile(np.asarray(jax.vmap(jax.random.PRNGKey)(np.asarray(spec.seeds))),
                   (math.prod(shape), 1))                                  # [grid * seeds, 2]
    swept = {k: np.repeat(v.reshape(-1), num_seeds) for k, v in grid.items()}
    merged = merge_hparams(spec.config, swept)
    axes = {k: 0 if k in swept else None for k in merged}
    init = jax.jit(jax.vmap(algorithm.init, in_axes=(0, axes)), out_shardings=shard)
    state = init(jax.device_put(keys, shard), merged)

    updates = chunk_size(algorithm.num_updates, chunk_updates)
    chunk = make_chunk_fn(algorithm, shard, updates)
    steps = algorithm.steps_per_update * size
    history: dict[str, list[np.ndarray]] = {}
    done, requests = 0, StopRequests()
    from tqdm.auto import tqdm

    label = ", ".join(f"{k} x{n}" for k, n in zip(grid, shape))
    with requests, tqdm(total=algorithm.num_updates * steps, unit="step", unit_scale=True,
                        disable=not progress or jax.process_index() != 0, dynamic_ncols=True,
                        desc=f"sweep {label} on {spec.env_name}") as bar:
        while done < algorithm.num_updates and not requests.requested:
            n = min(updates, algorithm.num_updates - done)
            if algorithm.hook_every:  # end the chunk where the hook must run
                n = min(n, algorithm.hook_every - done % algorithm.hook_every)
            state, metrics = chunk(state, n, done)
            metrics = sharding.to_host(metrics)
            if algorithm.host_hook is not None:
                state = algorithm.host_hook(state, done, done + n)
            for k, v in metrics.items():
                history.setdefault(k, []).append(v)
            done += n
            bar.update(n * steps)
            recent = recent_return(metrics)
            if recent is not None:
                bar.set_postfix(ret=f"{recent:.4g}")
    if not history:
        raise HystaxError("the sweep was stopped before its first chunk ended")
    unflat = lambda x: x.reshape(*shape, num_seeds, *x.shape[1:])  # noqa: E731
    metrics = {k: unflat(np.concatenate(v, axis=1)) for k, v in history.items()}
    return SweepResult(grid, list(spec.seeds), jax.tree.map(unflat, state), metrics,
                       spec.config, requests.requested)
