"""The planners of ``hystax bench lsd`` (:mod:`.bench_lsd`): the exact DP vs K and the horizon,
the cycle LP (the jax dual against HiGHS) vs K, and the rounding planner vs the horizon; first
calls (jit caches emptied) and warm calls timed apart.

``sizes`` is a :class:`.bench_lsd.Sizes`.
"""

from __future__ import annotations

import statistics

import jax
import numpy as np

from hystax.agents.bandits.lsd.planning import dp_plan, dp_value, joint_state_count, lp_relaxation
from hystax.agents.bandits.lsd.rounding import lp_rounding_schedules, rounding_lp
from hystax.envs.lsd import random_monotone
from hystax.experiments.bench.bench_tools import repeat, timed, timed_first


def _median_time(fn, reps: int) -> tuple[float, list]:
    times, _ = repeat(fn, reps)
    return statistics.median(times), times


# --- 1. exact DP ------------------------------------------------------------------------------


def _dp_row(sweep: str, num_arms: int, horizon: int, idle_cap: int) -> dict:
    problem = random_monotone(0, num_arms, idle_cap=idle_cap, kind="recharging")
    n = joint_state_count(problem)
    value_first, value = timed_first(lambda: dp_value(problem, horizon))
    value_warm, _ = timed(lambda: dp_value(problem, horizon))
    plan_first, (plan_value, _) = timed_first(lambda: dp_plan(problem, horizon))
    plan_warm, _ = timed(lambda: dp_plan(problem, horizon))
    return {"sweep": sweep, "arms": num_arms, "states_per_arm": problem.states_per_arm,
            "joint_states": n, "horizon": horizon,
            "dp_value_first_s": value_first, "dp_value_warm_s": value_warm,
            "dp_plan_first_s": plan_first, "dp_plan_warm_s": plan_warm,
            # Bellman backups: every state, every arm, every round
            "backups_per_s_warm": n * num_arms * horizon / value_warm,
            "opt": value, "plan_value": plan_value, "value_minus_plan": abs(value - plan_value)}


def bench_dp(sizes) -> list[dict]:
    rows = [_dp_row("K", k, sizes.dp_arms_horizon, sizes.dp_idle_cap) for k in sizes.dp_arms]
    rows += [_dp_row("T", sizes.dp_horizon_arms, t, sizes.dp_idle_cap) for t in sizes.dp_horizons]
    return rows


# --- 2. LP planner and rounding --------------------------------------------------------------


def _lp_row(num_arms: int, cap: int, reps: int) -> dict:
    problem = random_monotone(0, num_arms, idle_cap=cap, play_cap=cap)
    dual_first, dual = timed_first(lambda: lp_relaxation(problem))
    dual_warm, dual_all = _median_time(lambda: lp_relaxation(problem), reps)
    highs_first, highs = timed(lambda: lp_relaxation(problem, method="highs"))
    highs_warm, highs_all = _median_time(lambda: lp_relaxation(problem, method="highs"), reps)
    cycles = int(np.shape(dual.y)[1])
    return {"arms": num_arms, "idle_cap": cap, "play_cap": cap, "cycles_per_arm": cycles,
            "variables": num_arms * cycles, "constraints": num_arms + 1,
            "dual_first_s": dual_first, "dual_warm_s": dual_warm, "dual_warm_s_all": dual_all,
            "highs_first_s": highs_first, "highs_warm_s": highs_warm,
            "highs_warm_s_all": highs_all,
            "dual_value": float(dual.value), "highs_value": float(highs.value),
            "abs_diff": abs(float(dual.value) - float(highs.value)),
            "dual_price": float(dual.price), "highs_price": float(highs.price)}


def bench_lp(sizes) -> list[dict]:
    return [_lp_row(k, sizes.lp_cap, sizes.lp_reps) for k in sizes.lp_arms]


def bench_rounding(sizes) -> list[dict]:
    problem = random_monotone(0, sizes.rounding_arms, idle_cap=sizes.lp_cap, play_cap=sizes.lp_cap)
    lp = rounding_lp(problem)  # the planner's own LP (one arm left out as the filler)
    keys = jax.random.split(jax.random.PRNGKey(0), sizes.rounding_keys)
    rows = []
    for horizon in sizes.rounding_horizons:
        first, schedules = timed_first(
            lambda h=horizon: lp_rounding_schedules(problem, keys, h, lp))
        warm, _ = timed(lambda h=horizon: lp_rounding_schedules(problem, keys, h, lp))
        rows.append({"arms": sizes.rounding_arms, "keys": sizes.rounding_keys, "horizon": horizon,
                     "first_s": first, "warm_s": warm,
                     "schedule_rounds_per_s": sizes.rounding_keys * horizon / warm,
                     "shape": list(np.shape(schedules))})
    return rows
