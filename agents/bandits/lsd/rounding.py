"""LP rounding for monotone LSD bandits: the planner and its online (UCB) adaptation.

The planner (after Papadigenopoulos, Caramanis, Shakkottai 2022 for recharging bandits and
Foussoul, Goyal, Papadigenopoulos, Zeevi 2023 for LSD bandits; our own derivation of the steps):

1. Solve the cycle LP (:func:`~hystax.agents.bandits.lsd.planning.lp_relaxation`): y[i, c]
   cycles per round of type c = "idle b_c rounds, then play a_c consecutive rounds".
2. Each arm independently draws one cycle type with probability (a_c + b_c) y[i, c] (or none,
   with the rest), and a uniform phase o_i in [0, a_c + b_c).
3. Arm i's *virtual* schedule repeats its cycle: it asks to play in round t iff
   (t + o_i) mod (a + b) >= b. In every round the arms ask independently, arm i with
   probability sum_c a_c y[i, c], and these sum to at most 1 (the LP's capacity constraint).
4. Each round plays, among the arms asking, the one with the largest current payoff at its
   *real* state; the others skip the round while their virtual schedules go on (mirroring).
   A round nobody asks for goes to the arm with the best payoff now minus what the play costs
   its own next ask (nothing for an arm that drew no cycle): see :func:`choose_arm`.

Guarantee (monotone payoffs, in the order -Cp < ... < -1 < 1 < ... < Ci: satiation, deprivation
and f(1) >= g(2)), *when the rounds nobody asks for go to arms that drew no cycle*: then an arm
plays only in rounds its virtual schedule asks for, so its real state is never below its
virtual state and it earns at least its virtual payoff; picking the best asking arm earns at
least (1 - 1/e) of the LP per round in expectation (the correlation gap of independent asks
whose probabilities sum to <= 1), up to the first plays: E[value] >= (1 - 1/e) T LP - K max
payoff. LSD bandits must play an arm every round, so when every arm drew a cycle a filler play
can spoil the filler's next ask and the bound can fail: with few arms whose LP rates sum well
below 1 (e.g. ``random_monotone(18, 2, 6, 6, kind="recharging")`` at T = 600: 0.49 of OPT,
where greedy is optimal) the planner does worse than greedy. Without monotonicity it still runs
(with :class:`NonMonotoneWarning`) but carries no guarantee.

The learner (:func:`lp_rounding_ucb`) keeps UCB estimates of every mu_i(z), re-solves the LP on
them (in jax, by the Lagrangian dual) every ``epoch`` rounds, redraws the cycles and phases, and
plays step 4 with the UCB values of the real states. Its alpha-regret is measured against the
full-information planner's expected reward.

>>> schedule = lp_rounding_schedule(problem, jax.random.PRNGKey(0), horizon=2000)
>>> out = run_seeds(lp_rounding_ucb(), problem, seeds=10, horizon=20_000)
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from hystax.agents.bandits.api import Policy, check_horizon
from hystax.agents.bandits.lsd.runner import LSDInfo
from hystax.agents.bandits.lsd.planning import (
    LPSolution,
    cycle_table,
    lp_dual_solve,
    lp_relaxation,
    schedule_value,
)
from hystax.envs.lsd import LSDProblem, advance, is_monotone, payoff_table, state_index

from hystax.errors import require

__all__ = [
    "CyclePlan",
    "NonMonotoneWarning",
    "choose_arm",
    "lp_rounding_schedule",
    "lp_rounding_schedules",
    "lp_rounding_ucb",
    "lp_rounding_value",
    "sample_plan",
]


class NonMonotoneWarning(UserWarning):
    """An LP-rounding planner was given payoffs outside its guarantee's monotone class."""


@struct.dataclass
class CyclePlan:
    """Each arm's drawn cycle: scheduled [K] bool, plays a [K], idle b [K], offset [K] (phase)."""

    scheduled: jax.Array
    plays: jax.Array
    idle: jax.Array
    offset: jax.Array


def sample_plan(key: jax.Array, lp: LPSolution) -> CyclePlan:
    """Step 2: one cycle type per arm with probability (a + b) y (none with the rest), and a
    uniform phase. lp.y [K, C] -> CyclePlan of [K] arrays (jit/vmap-able)."""
    k_type, k_phase = jax.random.split(key)
    plays, idle = jnp.asarray(lp.plays).astype(jnp.int32), jnp.asarray(lp.idle).astype(jnp.int32)
    length = plays + idle
    probs = jnp.clip(jnp.asarray(lp.y) * length, 0.0, None)
    probs = probs / jnp.maximum(probs.sum(axis=1, keepdims=True), 1.0)  # float slack above 1
    none = jnp.clip(1.0 - probs.sum(axis=1, keepdims=True), 0.0, None)
    choice = jax.random.categorical(k_type, jnp.log(jnp.concatenate([probs, none], axis=1)))
    scheduled = choice < probs.shape[1]
    cycle = jnp.minimum(choice, probs.shape[1] - 1)
    cycle_length = jnp.where(scheduled, length[cycle], 1)
    offset = jnp.floor(jax.random.uniform(k_phase, cycle.shape) * cycle_length).astype(jnp.int32)
    return CyclePlan(scheduled=scheduled, plays=jnp.where(scheduled, plays[cycle], 0),
                     idle=jnp.where(scheduled, idle[cycle], 0), offset=offset)


def choose_arm(plan: CyclePlan, t: jax.Array, z: jax.Array, table: jax.Array,
               idle_cap: int) -> jax.Array:
    """Steps 3-4 for round ``t``: z [K] real states, table [K, Cp + Ci] payoffs (true or
    estimated) indexed by ``state_index`` -> the arm to play ([] int32).

    The best asking arm by its payoff now. A round nobody asks for goes to the arm with the best
    payoff now minus what playing it now costs its next ask (an arm without a cycle costs
    nothing; a scheduled arm loses the difference between its payoff at its next ask when left
    idle and when played now).
    """
    play_cap = table.shape[1] - idle_cap
    arms = jnp.arange(z.shape[0])
    now = table[arms, state_index(z, play_cap)]
    length = jnp.maximum(plan.plays + plan.idle, 1)
    phase = (t + plan.offset) % length
    asking = plan.scheduled & (phase >= plan.idle)
    wait = jnp.clip(plan.idle - phase, 1, idle_cap + 1)  # rounds to the next ask (not asking now)
    left_idle = jnp.where(z < 0, jnp.minimum(wait, idle_cap), jnp.minimum(z + wait, idle_cap))
    played_now = jnp.where(wait == 1, jnp.where(z > 0, -1, jnp.maximum(z - 1, -play_cap)),
                           jnp.minimum(wait - 1, idle_cap))
    cost = (table[arms, state_index(left_idle, play_cap)]
            - table[arms, state_index(played_now, play_cap)])
    filler = now - jnp.where(plan.scheduled, cost, 0.0)
    return jnp.where(asking.any(), jnp.argmax(jnp.where(asking, now, -jnp.inf)),
                     jnp.argmax(filler)).astype(jnp.int32)


@jax.jit
def _rounding_schedule(problem: LSDProblem, lp: LPSolution, key: jax.Array, rounds: jax.Array):
    plan = sample_plan(key, lp)
    table = jnp.asarray(payoff_table(problem))

    def round_(z, t):
        arm = choose_arm(plan, t, z, table, problem.idle_cap)
        return advance(problem, z, arm), arm

    return jax.lax.scan(round_, jnp.asarray(problem.init_state, jnp.int32), rounds)[1]


def _check_monotone(problem: LSDProblem) -> None:
    """Warn (pointing at the caller's caller) when the guarantee's monotonicity fails."""
    if not is_monotone(problem, strict=True):
        bad = [i for i in range(problem.num_arms) if not is_monotone(
            problem.replace(idle_payoff=problem.idle_payoff[i:i + 1],
                            play_payoff=problem.play_payoff[i:i + 1]), strict=True)]
        warnings.warn(f"LP rounding: the payoffs of arms {bad} are not monotone (needed: idle "
                      "side non-decreasing, play side non-increasing, f(1) >= g(2)); the "
                      "(1 - 1/e) guarantee does not apply", NonMonotoneWarning, stacklevel=3)


def _schedules(problem: LSDProblem, keys, horizon: int, lp: LPSolution | None) -> np.ndarray:
    lp = lp_relaxation(problem) if lp is None else lp
    with jax.enable_x64(True):
        fn = jax.vmap(_rounding_schedule, in_axes=(None, None, 0, None))
        return np.asarray(fn(problem, lp, jnp.asarray(keys), jnp.arange(horizon)))


def lp_rounding_schedules(problem: LSDProblem, keys: jax.Array, horizon: int,
                          lp: LPSolution | None = None) -> np.ndarray:
    """One LP-rounding schedule per key: keys [S, 2] -> [S, T] int32 (vmapped)."""
    horizon = check_horizon(horizon)
    _check_monotone(problem)
    return _schedules(problem, keys, horizon, lp)


def lp_rounding_schedule(problem: LSDProblem, key: jax.Array, horizon: int, draws: int = 1,
                         lp: LPSolution | None = None) -> np.ndarray:
    """The LP-rounding planner's schedule: [T] int32 (see the module doc). With ``draws`` > 1,
    the best (by exact expected reward) of that many independent draws."""
    horizon = check_horizon(horizon)
    require(isinstance(draws, int) and draws >= 1, f"draws must be a positive int, got {draws!r}")
    _check_monotone(problem)
    schedules = _schedules(problem, jax.random.split(key, draws), horizon, lp)
    return schedules[int(np.argmax([schedule_value(problem, s) for s in schedules]))]


def lp_rounding_value(problem: LSDProblem, horizon: int, samples: int = 32,
                      seed: int = 0) -> np.ndarray:
    """The planner's expected total reward for ``samples`` independent draws: [samples]."""
    horizon = check_horizon(horizon)
    _check_monotone(problem)
    keys = jax.random.split(jax.random.PRNGKey(seed), samples)
    return np.array([schedule_value(problem, s) for s in _schedules(problem, keys, horizon, None)])


# --- the online learner --------------------------------------------------------------------------


@struct.dataclass
class RoundingUCBState:
    counts: jax.Array  # [K, S] plays per (arm, state index)
    sums: jax.Array  # [K, S] reward sums
    z: jax.Array  # [K] real states
    plan: CyclePlan
    key: jax.Array
    epoch: jax.Array  # [] rounds between re-plans
    info: LSDInfo


def _ucb(state: RoundingUCBState, t, alpha: float) -> jax.Array:
    """UCB of every mu_i(z): [K, S], 1 for unseen pairs, clipped to [0, 1] (the learner assumes
    payoffs in [0, 1], as Bernoulli problems have)."""
    n = jnp.maximum(state.counts, 1)
    bonus = jnp.sqrt(alpha * jnp.log(jnp.maximum(t + 1.0, 2.0)) / n)
    return jnp.where(state.counts > 0, jnp.clip(state.sums / n + bonus, 0.0, 1.0), 1.0)


def lp_rounding_ucb(epoch: int | None = None, alpha: float = 2.0) -> Policy:
    """The LP-rounding planner run online on optimistic estimates (see the module doc).

    epoch: rounds between re-plans (default max(4 (Cp + Ci + 1), ceil(sqrt(T)))).
    alpha: UCB width, mean + sqrt(alpha ln t / n).
    """
    require(epoch is None or (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch > 0),
            f"lp_rounding_ucb: epoch must be a positive int or None, got {epoch!r}")
    require(alpha > 0, f"lp_rounding_ucb: alpha must be > 0, got {alpha!r}")

    def replan(state: RoundingUCBState, t) -> RoundingUCBState:
        ucb, cp = _ucb(state, t, alpha), state.info.play_cap
        rewards, plays, idle = cycle_table(ucb[:, cp:], ucb[:, :cp])
        key, sub = jax.random.split(state.key)
        return state.replace(plan=sample_plan(sub, lp_dual_solve(rewards, plays, idle)), key=key)

    def init(key, info: LSDInfo) -> RoundingUCBState:
        k, s = info.num_arms, info.idle_cap + info.play_cap
        default = jnp.maximum(4 * (s + 1), jnp.ceil(jnp.sqrt(jnp.asarray(info.horizon, float))))
        empty = CyclePlan(*(jnp.zeros(k, d) for d in (bool, jnp.int32, jnp.int32, jnp.int32)))
        state = RoundingUCBState(counts=jnp.zeros((k, s)), sums=jnp.zeros((k, s)),
                                 z=jnp.asarray(info.init_state, jnp.int32), plan=empty, key=key,
                                 epoch=jnp.asarray(default if epoch is None else epoch, jnp.int32),
                                 info=info)
        return replan(state, 0)

    def act(state, key, t):
        return choose_arm(state.plan, t, state.z, _ucb(state, t, alpha), state.info.idle_cap)

    def update(state, arm, reward, t):
        column = state_index(state.z[arm], state.info.play_cap)
        state = state.replace(counts=state.counts.at[arm, column].add(1),
                              sums=state.sums.at[arm, column].add(reward),
                              z=advance(state.info, state.z, arm))
        return jax.lax.cond((t + 1) % state.epoch == 0, lambda s: replan(s, t + 1), lambda s: s,
                            state)

    return Policy(init, act, update, "LP-rounding UCB")
