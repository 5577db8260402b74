"""LP-rounding UCB in numpy: the reference of ``lsd.rounding.lp_rounding_ucb`` for
``hystax bench lsd`` and the tests.

It follows the JAX learner step by step (the same UCB table, re-plan epoch, leave-one-out
filler LP, :func:`numpy_filler_lp`, solved with scipy's HiGHS, cycle and phase draws with
numpy, and ``choose_arm``'s rule, :func:`numpy_choose_arm`): the same rule, not the same draws.
"""

from __future__ import annotations

import math

import numpy as np

from hystax.agents.bandits.lsd.planning import cycle_table, lp_highs
from hystax.envs.lsd import payoff_table
from hystax.experiments.reference.lsd_states import advance, draw_reward, state_index

__all__ = ["numpy_choose_arm", "numpy_filler_lp", "numpy_lp_rounding_ucb"]


def _highs_cycle_lp(rewards: np.ndarray, plays: np.ndarray, idle: np.ndarray):
    """The cycle LP by HiGHS (:func:`~hystax.agents.bandits.lsd.planning.lp_highs`):
    rewards [K, C] -> (value, y [K, C]); no arms -> (0, empty)."""
    if rewards.shape[0] == 0:
        return 0.0, np.zeros((0, rewards.shape[1]))
    solution = lp_highs(rewards, plays, idle)
    return float(solution.value), np.asarray(solution.y)


def numpy_filler_lp(rewards: np.ndarray, plays, idle, tol: float = 1e-9):
    """``rounding.filler_lp`` with HiGHS: the cycle LP without each arm j in turn (value V_j;
    arm j's variables left out, so y[j] = 0 exactly), the filler j* = argmax_j V_j, the first
    of those within ``tol`` of the largest (the JAX argmax takes the first exact maximum; the
    two solvers' values differ in the last digits). Returns (V*, y [K, C], j*)."""
    rewards = np.asarray(rewards, np.float64)
    plays, idle = np.asarray(plays, np.float64), np.asarray(idle, np.float64)
    k = rewards.shape[0]
    values, ys = [], []
    for j in range(k):
        keep = np.arange(k) != j
        value, y_keep = _highs_cycle_lp(rewards[keep], plays, idle)
        y = np.zeros_like(rewards)
        y[keep] = y_keep
        values.append(value)
        ys.append(y)
    filler = int(np.flatnonzero(np.asarray(values) >= max(values) - tol)[0])
    return values[filler], ys[filler], filler


def _sample_plan(y, plays, idle, rng):
    """``rounding.sample_plan`` with numpy draws: (scheduled, a, b, offset), each [K]."""
    plays, idle = np.asarray(plays).astype(np.int64), np.asarray(idle).astype(np.int64)
    k, length = y.shape[0], plays + idle
    probs = np.clip(y * length, 0.0, None)
    probs = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1.0)  # float slack above 1
    none = np.clip(1.0 - probs.sum(axis=1, keepdims=True), 0.0, None)
    cum = np.cumsum(np.concatenate([probs, none], axis=1), axis=1)
    draw = rng.random(k) * cum[:, -1]
    choice = np.minimum((cum <= draw[:, None]).sum(axis=1), cum.shape[1] - 1)
    scheduled = choice < probs.shape[1]
    cycle = np.minimum(choice, probs.shape[1] - 1)
    cycle_length = np.where(scheduled, length[cycle], 1)
    offset = np.floor(rng.random(k) * cycle_length).astype(np.int64)
    return (scheduled, np.where(scheduled, plays[cycle], 0), np.where(scheduled, idle[cycle], 0),
            offset)


def numpy_choose_arm(plan, t: int, z: np.ndarray, table: np.ndarray, play_cap: int) -> int:
    """``rounding.choose_arm`` in numpy. plan (scheduled, a, b, offset) [K] each, z [K] real
    states, table [K, Cp + Ci]: the best asking arm by its payoff now; in a round nobody asks
    for, the best arm without a cycle (every arm when all have one); ties to the lowest index."""
    scheduled, plays, idle, offset = plan
    now = table[np.arange(z.shape[0]), state_index(z, play_cap)]
    phase = (t + offset) % np.maximum(plays + idle, 1)
    asking = scheduled & (phase >= idle)
    free = ~scheduled
    pool = asking if asking.any() else free if free.any() else np.ones_like(free)
    return int(np.argmax(np.where(pool, now, -np.inf)))


def numpy_lp_rounding_ucb(problem, horizon: int, rng, alpha: float = 2.0,
                          epoch: int | None = None) -> tuple[float, np.ndarray]:
    """LP-rounding UCB (``lsd.rounding.lp_rounding_ucb``) as a plain numpy per-round loop: the
    UCB table (mean + sqrt(alpha ln(t + 1) / n), 1 when unseen, clipped to [0, 1]) every round;
    every ``epoch`` rounds (default max(4 (Cp + Ci + 1), ceil(sqrt(T)))) the filler LP
    (:func:`numpy_filler_lp`) on it, its cycles and phases drawn with ``rng``; the arm by
    :func:`numpy_choose_arm`; the raw reward learnt, as the JAX update does.
    Returns (total expected reward, arms played [T])."""
    mu = payoff_table(problem)
    k, s = mu.shape
    ci, cp = problem.idle_cap, problem.play_cap
    if epoch is None:
        epoch = int(max(4 * (s + 1), math.ceil(math.sqrt(horizon))))
    counts, sums = np.zeros((k, s)), np.zeros((k, s))
    z = np.asarray(problem.init_state, np.int64).copy()

    def ucb(t):
        n = np.maximum(counts, 1)
        bonus = np.sqrt(alpha * np.log(max(t + 1.0, 2.0)) / n)
        return np.where(counts > 0, np.clip(sums / n + bonus, 0.0, 1.0), 1.0)

    def replan(t):
        u = ucb(t)
        rewards, plays, idle = cycle_table(u[:, cp:], u[:, :cp])
        return _sample_plan(numpy_filler_lp(rewards, plays, idle)[1], plays, idle, rng)

    plan = replan(0)
    total = 0.0
    played = np.empty(horizon, np.int64)
    for t in range(horizon):
        arm = numpy_choose_arm(plan, t, z, ucb(t), cp)
        column = int(state_index(z[arm], cp))
        mean = mu[arm, column]
        total += mean
        counts[arm, column] += 1
        sums[arm, column] += draw_reward(problem, mean, rng)
        z = advance(z, arm, ci, cp)
        if (t + 1) % epoch == 0:
            plan = replan(t + 1)
        played[t] = arm
    return total, played
