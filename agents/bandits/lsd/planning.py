"""Planning LSD bandits with known payoffs: exact DP, Oracle Greedy, and the cycle LP bound.

Arm states move with the arms played only (never with rewards), so every plan here is a fixed
schedule ``[T] int32`` of arms, and its expected reward is a deterministic sum
(:func:`schedule_value`). All planners run in float64 (``jax.enable_x64``).

>>> problem = preset("laforgue-main")
>>> opt, schedule = dp_plan(problem, 3600)          # 1823.2, the exact optimum
>>> greedy_value = schedule_value(problem, greedy_schedule(problem, 3600))
>>> lp = lp_relaxation(problem)                    # lp.value * T bounds OPT from above

The LP (cycles "idle b rounds, then play a consecutive rounds", ``y[i, c]`` cycles per round)::

    max  sum_ic R_i(c) y_ic   s.t.  sum_ic a_c y_ic <= 1,   for each i: sum_c (a_c + b_c) y_ic <= 1

with R_i(a, b) = f_i(b) + g_i(2) + ... + g_i(a), a = 1..play_cap + 1, b = 1..idle_cap, plus a
"steady" cycle (a = 1, b = 0, R = g_i(play_cap + 1)) that stands for the tail of longer runs.
It has one coupling constraint, so :func:`lp_relaxation` solves it exactly through its
one-dimensional Lagrangian dual (bisection on the price of a round, then mixing the two
Lagrangian solutions around it): pure jax, so it runs under ``jit``/``vmap`` inside learners.
``method="highs"`` solves the same LP with scipy's HiGHS (the reference in the tests).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hystax.agents.bandits.policy import check_horizon
from hystax.core.errors import require
from hystax.envs.lsd import LSDProblem, advance, mean_payoff, payoff_table

__all__ = [
    "DEFAULT_MAX_STATES",
    "LPSolution",
    "cycle_table",
    "dp_plan",
    "dp_value",
    "greedy_schedule",
    "joint_state_count",
    "lp_highs",
    "lp_relaxation",
    "schedule_value",
]

DEFAULT_MAX_STATES = 2_000_000
"""The largest joint state space (states_per_arm ** K) the exact DP accepts by default."""


# --- schedules --------------------------------------------------------------------------------


@jax.jit
def _schedule_rewards(problem: LSDProblem, schedule: jax.Array) -> jax.Array:
    def round_(z, arm):
        return advance(problem, z, arm), mean_payoff(problem, z, arm)

    return jax.lax.scan(round_, jnp.asarray(problem.init_state, jnp.int32), schedule)[1]


def schedule_value(problem: LSDProblem, schedule, per_round: bool = False):
    """Expected total reward of playing ``schedule`` ([T] ints in [0, K)) from the initial
    state; with ``per_round=True`` the expected reward of every round ([T] numpy)."""
    schedule = np.asarray(schedule)
    require(schedule.ndim == 1 and schedule.size > 0 and np.issubdtype(schedule.dtype, np.integer),
            f"schedule must be a non-empty 1-D int array, got shape {schedule.shape}, "
            f"dtype {schedule.dtype}")
    require(bool(np.all((schedule >= 0) & (schedule < problem.num_arms))),
            f"schedule entries must be arms in [0, {problem.num_arms})")
    with jax.enable_x64(True):
        rewards = np.asarray(_schedule_rewards(problem, jnp.asarray(schedule, jnp.int32)))
    return rewards if per_round else float(rewards.sum())


@jax.jit
def _greedy(problem: LSDProblem, rounds: jax.Array) -> jax.Array:
    arms = jnp.arange(problem.num_arms)

    def round_(z, _):
        arm = jnp.argmax(jax.vmap(lambda a: mean_payoff(problem, z, a))(arms)).astype(jnp.int32)
        return advance(problem, z, arm), arm

    return jax.lax.scan(round_, jnp.asarray(problem.init_state, jnp.int32), rounds)[1]


def greedy_schedule(problem: LSDProblem, horizon: int) -> np.ndarray:
    """Oracle Greedy: every round play argmax_i mu_i(z_i) (lowest index on ties). [T] int32."""
    horizon = check_horizon(horizon)
    with jax.enable_x64(True):
        return np.asarray(_greedy(problem, jnp.arange(horizon)))


# --- exact dynamic programming over the joint capped state ---------------------------------------


def joint_state_count(problem: LSDProblem) -> int:
    """Number of joint states, states_per_arm ** K."""
    return problem.states_per_arm ** problem.num_arms


def _joint_tables(problem: LSDProblem, max_states: int):
    """Rewards R [N, K] and successor indices NEXT [N, K] over the joint states (mixed radix,
    arm k's per-arm index (see ``state_index``) is digit k), and the initial joint index."""
    k, s, cp = problem.num_arms, problem.states_per_arm, problem.play_cap
    n = joint_state_count(problem)
    require(n <= max_states, f"DP: the joint state space has {s}^{k} = {n:,} states, above "
            f"max_states = {max_states:,}; use greedy_schedule or lp_rounding_schedule, or raise "
            "max_states if the memory allows (about 16 * K bytes per state)")
    radix = s ** np.arange(k, dtype=np.int64)
    digits = (np.arange(n, dtype=np.int64)[:, None] // radix) % s  # [N, K]
    mu = payoff_table(problem)  # [K, S]
    rewards = mu[np.arange(k)[None], digits]
    on = np.where(digits < cp, np.minimum(digits + 1, cp - 1), 0)  # played: -m -> -(m+1), +b -> -1
    off = np.where(digits < cp, cp, np.minimum(digits + 1, s - 1))  # idle: -m -> +1, +b -> +(b+1)
    base = off @ radix
    nxt = base[:, None] + (on - off) * radix[None]
    z0 = np.asarray(problem.init_state)
    start = int((np.where(z0 < 0, -z0 - 1, cp + z0 - 1) * radix).sum())
    return rewards, nxt.astype(np.int32), start


def _bellman(rewards, nxt, value):
    """One backward step: V(s) = max_a R(s, a) + V(next(s, a)). [N] -> [N]."""
    return jnp.max(rewards + value[nxt], axis=1)


@jax.jit
def _dp_values(rewards, nxt, steps: jax.Array):
    return jax.lax.fori_loop(0, steps, lambda _, v: _bellman(rewards, nxt, v),
                             jnp.zeros(rewards.shape[0], rewards.dtype))


def dp_value(problem: LSDProblem, horizon: int, max_states: int = DEFAULT_MAX_STATES) -> float:
    """The exact optimum: max expected total reward over ``horizon`` rounds from the initial state."""
    horizon = check_horizon(horizon)
    rewards, nxt, start = _joint_tables(problem, max_states)
    with jax.enable_x64(True):
        return float(_dp_values(jnp.asarray(rewards), jnp.asarray(nxt), horizon)[start])


def _dp_schedule(rewards, nxt, start, chunks: int, chunk: int, skip: int):
    """Checkpointed DP: the values at chunk ends are kept ([chunks, N]); each chunk's values are
    recomputed ([chunk, N]) on the way forward. Memory 2 sqrt(T) N instead of T N."""

    def back_chunk(value, _):
        value = jax.lax.fori_loop(0, chunk, lambda _, v: _bellman(rewards, nxt, v), value)
        return value, value

    zero = jnp.zeros(rewards.shape[0], rewards.dtype)
    _, stored = jax.lax.scan(back_chunk, zero, None, length=chunks - 1)  # stored[k]: (k+1) chunks to go
    chunk_ends = jnp.concatenate([stored[::-1], zero[None]])  # [chunks, N]: value after chunk j

    def forward_chunk(carry, inputs):
        state, t = carry
        end_value, = inputs

        def back(v, _):
            return _bellman(rewards, nxt, v), v

        _, after = jax.lax.scan(back, end_value, None, length=chunk)  # after[c]: value after step C-1-c
        after = after[::-1]  # after[c]: value after round c of this chunk

        def step(carry, value_after):
            state, t = carry
            arm = jnp.argmax(rewards[state] + value_after[nxt[state]]).astype(jnp.int32)
            live = t >= skip
            state = jnp.where(live, nxt[state, arm], state)
            return (state, t + 1), jnp.where(live, arm, -1)

        return jax.lax.scan(step, (state, t), after)

    _, arms = jax.lax.scan(forward_chunk, (jnp.int32(start), jnp.int32(0)), (chunk_ends,))
    return arms.reshape(-1)[skip:]


def dp_plan(problem: LSDProblem, horizon: int,
            max_states: int = DEFAULT_MAX_STATES) -> tuple[float, np.ndarray]:
    """The exact optimum and an optimal schedule: (OPT, [T] int32), by finite-horizon dynamic
    programming over the joint capped state (vectorised over states; checkpointed, so memory is
    O(sqrt(T) N) for N joint states). HystaxError when N > ``max_states``."""
    horizon = check_horizon(horizon)
    rewards, nxt, start = _joint_tables(problem, max_states)
    chunk = max(1, math.isqrt(horizon))
    chunks = -(-horizon // chunk)
    skip = chunks * chunk - horizon  # the padded horizon starts ``skip`` rounds early
    with jax.enable_x64(True):
        fn = jax.jit(_dp_schedule, static_argnums=(3, 4, 5))
        schedule = np.asarray(fn(jnp.asarray(rewards), jnp.asarray(nxt), start, chunks, chunk, skip))
    return schedule_value(problem, schedule), schedule


# --- the cycle LP relaxation -------------------------------------------------------------------


@struct.dataclass
class LPSolution:
    """Solution of the cycle LP. value [] (per round: value * T bounds OPT over T rounds, up to
    the initial states' head start), y [K, C] (cycles per round), plays [C] (a, consecutive
    plays per cycle), idle [C] (b, idle rounds before them; 0 for the steady cycle), price []
    (the dual price of a round)."""

    value: jax.Array
    y: jax.Array
    plays: jax.Array
    idle: jax.Array
    price: jax.Array


def cycle_table(idle_payoff, play_payoff):
    """The cycle types and rewards: (R [K, C], plays a [C], idle b [C]); C = (Cp + 1) Ci + 1,
    the last column the steady cycle. Works on numpy or jax tables (learners pass estimates)."""
    xp = jnp if isinstance(idle_payoff, jax.Array) or isinstance(play_payoff, jax.Array) else np
    ci, cp = idle_payoff.shape[-1], play_payoff.shape[-1]
    a = np.repeat(np.arange(1, cp + 2), ci)
    b = np.tile(np.arange(1, ci + 1), cp + 1)
    # g(j) for j = 2..cp + 1 is play_payoff[:, j - 2]; run_gain[a - 1] = g(2) + ... + g(a)
    run_gain = xp.concatenate([xp.zeros_like(play_payoff[:, :1]), xp.cumsum(play_payoff, axis=1)],
                              axis=1)
    rewards = idle_payoff[:, b - 1] + run_gain[:, a - 1]
    rewards = xp.concatenate([rewards, play_payoff[:, -1:]], axis=1)
    return rewards, np.append(a, 1), np.append(b, 0)


def _lagrangian_solution(rewards, plays, length, price):
    """Each arm's best cycle at a round price: y [K, C] (1 / length on its best cycle when that
    earns more than it costs), and the play rate sum_ic a_c y_ic."""
    ratio = (rewards - price * plays) / length
    best = jnp.argmax(ratio, axis=1)
    on = jnp.take_along_axis(ratio, best[:, None], axis=1)[:, 0] > 0
    y = jax.nn.one_hot(best, rewards.shape[1], dtype=rewards.dtype) * (on / length[best])[:, None]
    return y, jnp.sum(y * plays)


def lp_dual_solve(rewards: jax.Array, plays, idle, iterations: int = 80) -> LPSolution:
    """The cycle LP by its Lagrangian dual (jit/vmap-able; see the module doc). rewards [K, C]."""
    plays = jnp.asarray(plays, rewards.dtype)
    length = plays + jnp.asarray(idle, rewards.dtype)
    y_free, rate_free = _lagrangian_solution(rewards, plays, length, 0.0)

    def bisect(_, bracket):  # each side keeps its own solution: no re-evaluation at the end
        (lo, y_lo, rate_lo), (hi, y_hi, rate_hi) = bracket
        mid = 0.5 * (lo + hi)
        y_mid, rate_mid = _lagrangian_solution(rewards, plays, length, mid)
        over = rate_mid > 1.0

        def pick(a, b):
            return jax.tree.map(lambda u, v: jnp.where(over, u, v), a, b)

        return pick((mid, y_mid, rate_mid), (lo, y_lo, rate_lo)), pick((hi, y_hi, rate_hi),
                                                                       (mid, y_mid, rate_mid))

    hi0 = jnp.max(rewards / plays) + 1.0  # above every cycle's reward per play: nothing is worth it
    start = ((jnp.zeros_like(hi0), y_free, rate_free), (hi0, jnp.zeros_like(y_free), 0.0 * hi0))
    (_, y_lo, rate_lo), (hi, y_hi, rate_hi) = jax.lax.fori_loop(0, iterations, bisect, start)
    # rate_lo > 1 >= rate_hi: the mixture uses exactly one round per round
    mix = jnp.clip((1.0 - rate_hi) / jnp.where(rate_lo > rate_hi, rate_lo - rate_hi, 1.0), 0.0, 1.0)
    y = jnp.where(rate_free <= 1.0, y_free, mix * y_lo + (1.0 - mix) * y_hi)
    price = jnp.where(rate_free <= 1.0, 0.0, hi)
    return LPSolution(value=jnp.sum(rewards * y), y=y, plays=plays, idle=jnp.asarray(idle),
                      price=price)


_lp_dual_jit = jax.jit(lp_dual_solve, static_argnames="iterations")


def lp_highs(rewards: np.ndarray, plays: np.ndarray, idle: np.ndarray) -> LPSolution:
    """The cycle LP by scipy's HiGHS (the reference for the jax dual): max sum R y s.t.
    sum_ic a_c y_ic <= 1 (one play per round), sum_c (a_c + b_c) y_ic <= 1 per arm, y >= 0;
    rewards [K, C], plays a_c / idle b_c [C]."""
    from scipy.optimize import linprog

    k, c = rewards.shape
    a_ub = np.zeros((k + 1, k * c))
    a_ub[0] = np.tile(plays, k)
    for i in range(k):
        a_ub[1 + i, i * c:(i + 1) * c] = plays + idle
    out = linprog(-rewards.reshape(-1), A_ub=a_ub, b_ub=np.ones(k + 1), bounds=(0, None),
                  method="highs")
    require(out.status == 0, f"LP: HiGHS failed: {out.message}")
    return LPSolution(value=np.float64(-out.fun), y=out.x.reshape(k, c), plays=plays.astype(float),
                      idle=idle, price=np.float64(-out.ineqlin.marginals[0]))


def lp_relaxation(problem: LSDProblem, method: str = "dual") -> LPSolution:
    """The cycle LP's optimum (per-round value and cycle rates); ``method`` "dual" (pure jax,
    exact up to float64 bisection) or "highs" (scipy's HiGHS)."""
    rewards, plays, idle = cycle_table(problem.idle_payoff, problem.play_payoff)
    if method == "highs":
        return lp_highs(rewards, plays, idle)
    require(method == "dual", f"lp_relaxation: method must be 'dual' or 'highs', got {method!r}")
    with jax.enable_x64(True):
        return jax.device_get(_lp_dual_jit(jnp.asarray(rewards), plays, idle))
