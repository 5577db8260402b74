"""Planning with a learned model (``hystax bench continual``, :mod:`.bench_continual`): CEM
plans/s on one env and batched over E envs, and random shooting for comparison, each compiled
ahead of time and timed as the median of a few calls with fresh keys.

``sizes`` is a :class:`.bench_continual.Sizes`; ``seq`` the task suite.
"""

from __future__ import annotations

import statistics

import jax
import jax.numpy as jnp

from hystax.agents.mpc import (
    MPCConfig,
    cem_plan,
    initial_mean,
    plan_batch,
    random_shooting_plan,
)
from hystax.core.transitions import Transitions
from hystax.experiments.bench.bench_tools import timed, tree_bytes
from hystax.world_models.continual_methods import make_method
from hystax.world_models.hypernet import hnet_sizes

PLAN_METHOD = "hnet"  # the learned model the planner rolls out


def _planner_fn(planner: str, batched: bool, predict, reward_fn, config: MPCConfig):
    plan = {"cem": cem_plan, "random": random_shooting_plan}[planner]

    def single(params, obs, key, mean):
        action, next_mean, info = plan(predict, params, reward_fn, obs, key, mean, config)
        return action, next_mean, info.best_return

    def batch(params, obs, keys, means):
        action, next_mean, info = plan_batch(predict, params, reward_fn, obs, keys, means, config,
                                             method=planner)
        return action, next_mean, info.best_return

    return jax.jit(batch if batched else single)


def _plan_row(planner: str, horizon: int, envs: int | None, model, obs_pool, sizes,
              seq) -> dict:
    """One planner variant: ``envs=None`` is the single-env planner, else plan_batch over E."""
    method, params = model
    config = MPCConfig(horizon=horizon, num_samples=sizes.plan_samples,
                       num_elites=sizes.plan_elites, iterations=sizes.plan_iterations,
                       action_low=seq.action_low, action_high=seq.action_high)
    fn = _planner_fn(planner, envs is not None, method.predict, seq.reward_fn, config)
    mean0 = initial_mean(config, seq.act_dim)
    e = 1 if envs is None else envs

    def inputs(rep):
        keys = jax.random.split(jax.random.PRNGKey(100 + rep), e)
        if envs is None:
            return params, obs_pool[0], keys[0], mean0
        return params, obs_pool[:e], keys, jnp.broadcast_to(mean0, (e, *mean0.shape))

    compile_s, compiled = timed(lambda: fn.lower(*inputs(0)).compile())
    jax.block_until_ready(compiled(*inputs(0)))  # one untimed call (allocations, thread pools)
    times, returns = [], []
    for rep in range(sizes.plan_reps):
        args = inputs(rep + 1)
        call_s, out = timed(lambda a=args: compiled(*a))
        times.append(call_s)
        returns.append(float(jnp.mean(out[2])))
    call_s = statistics.median(times)
    rollouts = sizes.plan_samples * sizes.plan_iterations  # sequences scored per plan
    return {"planner": planner, "horizon": horizon, "envs": e,
            "call": "single" if envs is None else "plan_batch",
            "samples": sizes.plan_samples, "elites": sizes.plan_elites,
            "iterations": sizes.plan_iterations,
            "compile_s": compile_s, "call_s": call_s, "call_s_all": times,
            "plans_per_s": e / call_s, "model_steps_per_s": e * rollouts * horizon / call_s,
            "predicted_best_return": statistics.fmean(returns)}


def bench_planning(sizes, seq, data: list[Transitions]) -> tuple[list[dict], dict]:
    """The learned model: hnet after init + begin_task(0) on task 0's random transitions."""
    method = make_method(PLAN_METHOD, seq.obs_dim, seq.act_dim, seq.num_tasks)  # its own
    state = method.begin_task(method.init(jax.random.PRNGKey(0)), 0, data[0])
    params = jax.block_until_ready(method.params_for(state, 0))
    model = (method, params)
    largest = max(sizes.plan_envs)
    obs_pool = data[0].obs[:: max(1, data[0].obs.shape[0] // largest)][:largest]
    rows = []
    for horizon in sizes.plan_horizons:
        rows.append(_plan_row("cem", horizon, None, model, obs_pool, sizes, seq))
        rows += [_plan_row("cem", horizon, e, model, obs_pool, sizes, seq) for e in sizes.plan_envs]
    rows.append(_plan_row("random", sizes.random_horizon, None, model, obs_pool, sizes, seq))
    if sizes.random_batched:
        rows.append(_plan_row("random", sizes.random_horizon, largest, model, obs_pool, sizes, seq))
    info = {"method": PLAN_METHOD, "model_weights": tree_bytes(params.weights) // 4,
            "sizes": hnet_sizes(seq.obs_dim, seq.act_dim, seq.num_tasks)}
    return rows, info
