"""LP rounding for monotone LSD bandits: the planner and its online (UCB) adaptation.

The planner (after Papadigenopoulos, Caramanis, Shakkottai 2022 for recharging bandits and
Foussoul, Goyal, Papadigenopoulos, Zeevi 2023 for LSD bandits; our own derivation of the steps):

1. Reserve a filler arm. For each arm j solve the cycle LP
   (:func:`~hystax.agents.bandits.lsd.planning.lp_dual_solve`) over the other arms, value V_j;
   the filler is j* = argmax_j V_j and the plan rounds that LP's y [K, C] (y[j*] = 0).
2. Each other arm independently draws one cycle type c ("idle b_c rounds, then play a_c") with
   probability (a_c + b_c) y[i, c] (or none, with the rest), and a uniform phase o_i.
3. Arm i's *virtual* schedule repeats its cycle: it asks to play in round t iff
   (t + o_i) mod (a + b) >= b; it asks with probability p_i = sum_c a_c y[i, c], sum_i p_i <= 1.
4. Each round plays, among the arms asking, the one with the largest payoff at its *real* state
   (the others skip while their virtual schedules go on: mirroring). A round nobody asks for
   goes to an arm without a cycle (j* always is one), the best of them by its payoff now.

Guarantee (strictly monotone payoffs: mu_i non-decreasing along -Cp < ... < -1 < 1 < ... < Ci,
:func:`~hystax.envs.lsd.is_monotone` with ``strict=True``), :func:`lp_rounding_bound`::

    E[value over T rounds] >= gamma_{K-1} * V* * T - c,   gamma_m = 1 - (1 - 1/m)^m >= 1 - 1/e,

V* = max_j V_j, c = 0 when every arm starts recharged (z = Ci, as ``random_monotone`` does), else
c = (K - 1)(Cp + 1) max payoff. Against the full cycle LP: V* = LP whenever some LP optimum leaves
an arm unused (then the bound is >= (1 - 1/e) LP T - c); always V* >= (1 - 1/K) LP (drop the arm
with the smallest LP share), so E >= gamma_{K-1} (1 - 1/K) LP T - c unconditionally.

Proof sketch. (a) Only arms that drew a cycle ever ask, and they are played only when they ask;
fillers are arms that never ask. (b) At every ask of arm i its real state is >= its virtual
state: a run's first ask follows b rounds in which i was not played (real idle >= b, capped at
Ci >= b); inside a run, skipped asks leave i idle (above every play state) or less satiated.
Recharged starts make this hold from round 0; other starts lose at most the first cycle's
a <= Cp + 1 asks per arm. (c) By monotonicity the round pays >= max_{i asking} X_i, X_i = the
virtual payoff (0 when i does not ask); the X_i are independent across arms (own cycle and
phase), and a uniform phase gives sum_i E[X_i] = sum_ic R_i(c) y_ic = V* in every round.
(d) E max_i X_i = int_0^inf 1 - prod_i (1 - q_i(s)) ds with q_i(s) = P(X_i > s),
sum_i q_i(s) <= sum_i p_i <= 1; by AM-GM and concavity 1 - prod(1 - q_i) >= gamma_m sum_i q_i for
the m = K - 1 asking arms; integrating gives gamma_{K-1} V* per round. Fillers pay >= 0.

Why not (1 - 1/e) of the full LP: the LP lets rounds go unplayed, and LSD bandits cannot. Two arms
with f(b) = 1[b >= 6], g = 0 (strictly monotone) have LP = 2/7 but OPT = 0.168 T at T = 600 (DP),
below (1 - 1/e) LP T = 0.181 T: no planner meets that bound. The earlier rule (fill an empty round
with a scheduled arm) broke (b) and fell below its claimed bound on such instances. Adding
"exactly one play per round" to the LP keeps it a relaxation, but no (1 - 1/e) bound against
that LP is proven here, and this rule misses it (0.83 of it on a K = 2 recharging instance).

The learner (:func:`lp_rounding_ucb`) keeps UCB estimates of every mu_i(z), re-solves step 1 on
them (in jax) every ``epoch`` rounds, redraws the cycles and phases, and plays step 4 with the
UCB values of the real states. Its alpha-regret is measured against the full-information
planner's expected reward.

>>> schedule = lp_rounding_schedule(problem, jax.random.PRNGKey(0), horizon=2000)
>>> bound = lp_rounding_bound(problem, 2000)      # E[schedule_value(problem, schedule)] >= bound
>>> out = run_seeds(lp_rounding_ucb(), problem, seeds=10, horizon=20_000)
"""

from __future__ import annotations

import itertools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hystax.agents.bandits.lsd.lsd_runs import LSDInfo
from hystax.agents.bandits.lsd.planning import (
    LPSolution,
    cycle_table,
    lp_dual_solve,
)
from hystax.agents.bandits.policy import Policy, check_horizon
from hystax.core.errors import require
from hystax.envs.lsd import (
    LSDProblem,
    advance,
    is_monotone,
    mean_payoff,
    payoff_table,
    state_index,
)

__all__ = [
    "CyclePlan",
    "NonMonotoneWarning",
    "batched_rounding_values",
    "choose_arm",
    "correlation_gap",
    "filler_lp",
    "lp_rounding_bound",
    "lp_rounding_expectation",
    "lp_rounding_schedule",
    "lp_rounding_schedules",
    "lp_rounding_ucb",
    "lp_rounding_value",
    "rounding_lp",
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


def filler_lp(rewards: jax.Array, plays, idle) -> tuple[LPSolution, jax.Array]:
    """Step 1: the cycle LP without each arm in turn, keeping the best. rewards [K, C] (from
    :func:`cycle_table`) -> (the LP solution V*, y [K, C] with y[filler] = 0; filler [] int32).
    jit/vmap-able; an arm with all-zero rewards is never scheduled by ``lp_dual_solve``."""
    k = rewards.shape[0]
    keep = ~jnp.eye(k, dtype=bool)  # row j: every arm but j
    solutions = jax.vmap(lambda m: lp_dual_solve(jnp.where(m[:, None], rewards, 0.0), plays,
                                                 idle))(keep)
    filler = jnp.argmax(solutions.value).astype(jnp.int32)
    return jax.tree.map(lambda x: x[filler], solutions), filler


def rounding_lp(problem: LSDProblem) -> LPSolution:
    """The LP the planner rounds (step 1, float64): value V*, y [K, C] with one arm left out."""
    rewards, plays, idle = cycle_table(problem.idle_payoff, problem.play_payoff)
    with jax.enable_x64(True):
        return jax.device_get(_filler_lp_jit(jnp.asarray(rewards), plays, idle)[0])


_filler_lp_jit = jax.jit(filler_lp)


def correlation_gap(asking_arms: int) -> float:
    """gamma_m = 1 - (1 - 1/m)^m (1 for m <= 1): E[max] / sum E over m independent asks."""
    return 1.0 if asking_arms <= 1 else 1.0 - (1.0 - 1.0 / asking_arms) ** asking_arms


def lp_rounding_bound(problem: LSDProblem, horizon: int, lp: LPSolution | None = None) -> float:
    """The planner's proven lower bound on its expected total reward (module doc):
    gamma_{K-1} V* T - c, for strictly monotone payoffs."""
    horizon = check_horizon(horizon)
    lp = rounding_lp(problem) if lp is None else lp
    k = problem.num_arms
    recharged = bool(np.all(np.asarray(problem.init_state) == problem.idle_cap))
    top = float(np.max(payoff_table(problem)))
    head_start = 0.0 if recharged else (k - 1) * (problem.play_cap + 1) * top
    return correlation_gap(k - 1) * float(lp.value) * horizon - head_start


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

    The best asking arm by its payoff now; in a round nobody asks for, the best arm without a
    cycle (a filler never touches a schedule; a plan without such an arm, which step 1 never
    makes, falls back to every arm and loses the guarantee).
    """
    play_cap = table.shape[1] - idle_cap
    now = table[jnp.arange(z.shape[0]), state_index(z, play_cap)]
    phase = (t + plan.offset) % jnp.maximum(plan.plays + plan.idle, 1)
    asking = plan.scheduled & (phase >= plan.idle)
    free = ~plan.scheduled
    pool = jnp.where(asking.any(), asking, jnp.where(free.any(), free, True))
    return jnp.argmax(jnp.where(pool, now, -jnp.inf)).astype(jnp.int32)


def _plan_rewards(problem: LSDProblem, plan: CyclePlan, rounds: jax.Array):
    """Play one plan: (arms [T] int32, expected reward of every round [T])."""
    table = jnp.asarray(payoff_table(problem))

    def round_(z, t):
        arm = choose_arm(plan, t, z, table, problem.idle_cap)
        return advance(problem, z, arm), (arm, mean_payoff(problem, z, arm))

    return jax.lax.scan(round_, jnp.asarray(problem.init_state, jnp.int32), rounds)[1]


def _rounding_run(problem: LSDProblem, lp: LPSolution, key: jax.Array, rounds: jax.Array):
    """One draw of the planner: (arms [T] int32, expected reward of every round [T])."""
    return _plan_rewards(problem, sample_plan(key, lp), rounds)


@jax.jit
def _weighted_total(problem: LSDProblem, plans: CyclePlan, weights: jax.Array, rounds):
    rewards = jax.vmap(lambda plan: _plan_rewards(problem, plan, rounds)[1])(plans)
    return jnp.sum(weights * rewards.sum(axis=1))


def _plan_support(lp: LPSolution, max_plans: int):
    """Every plan step 2 can draw, with its probability: (CyclePlan of [P, K], weights [P]),
    P padded to a power of two with zero weights; None when more than ``max_plans``."""
    y = np.asarray(lp.y)
    plays, idle = np.asarray(lp.plays).astype(np.int64), np.asarray(lp.idle).astype(np.int64)
    options = []  # per arm: (probability, scheduled, a, b, offset)
    for row in y:
        q = np.clip(row * (plays + idle), 0.0, None)
        q = q / max(q.sum(), 1.0)
        arm = [(q[c] / (plays[c] + idle[c]), True, plays[c], idle[c], o)
               for c in np.flatnonzero(q > 0) for o in range(plays[c] + idle[c])]
        none = max(1.0 - q.sum(), 0.0)
        options.append(arm + [(none, False, 0, 0, 0)] if none > 0 or not arm else arm)
    if math.prod(len(o) for o in options) > max_plans:
        return None
    combos = np.array([[o[1:] for o in combo] for combo in itertools.product(*options)])
    weights = np.array([math.prod(o[0] for o in combo) for combo in itertools.product(*options)])
    pad = 2 ** math.ceil(math.log2(len(weights))) - len(weights)
    combos = np.concatenate([combos, np.repeat(combos[:1], pad, axis=0)])
    plan = CyclePlan(scheduled=combos[..., 0].astype(bool), plays=combos[..., 1].astype(np.int32),
                     idle=combos[..., 2].astype(np.int32), offset=combos[..., 3].astype(np.int32))
    return plan, np.concatenate([weights, np.zeros(pad)])


def lp_rounding_expectation(problem: LSDProblem, horizon: int, lp: LPSolution | None = None,
                            max_plans: int = 4096) -> float | None:
    """The planner's exact expected total reward, summed over every plan step 2 can draw
    (cycle and phase per arm); None when there are more than ``max_plans`` of them."""
    horizon = check_horizon(horizon)
    _check_monotone(problem)
    support = _plan_support(rounding_lp(problem) if lp is None else lp, max_plans)
    if support is None:
        return None
    with jax.enable_x64(True):
        return float(_weighted_total(problem, *support, jnp.arange(horizon)))


@jax.jit
def _draws(problem: LSDProblem, lp: LPSolution, keys: jax.Array, rounds: jax.Array):
    """Schedules [S, T] and exact expected totals [S] of one draw per key (vmapped)."""
    arms, rewards = jax.vmap(_rounding_run, in_axes=(None, None, 0, None))(problem, lp, keys,
                                                                           rounds)
    return arms, rewards.sum(axis=1)


@jax.jit
def batched_rounding_values(problems: LSDProblem, keys: jax.Array, rounds: jax.Array):
    """For a batch of same-shape problems (leaves with a leading axis [B]): the planner's bound
    pieces and draws, all in one jitted call. keys [S, 2] -> (V* [B], totals [B, S]).
    Call under ``jax.enable_x64``."""

    def one(problem):
        rewards, plays, idle = cycle_table(jnp.asarray(problem.idle_payoff),
                                           jnp.asarray(problem.play_payoff))
        lp = filler_lp(rewards, plays, idle)[0]
        return lp.value, _draws(problem, lp, keys, rounds)[1]

    return jax.vmap(one)(problems)


def _check_monotone(problem: LSDProblem) -> None:
    """Warn (pointing at the caller's caller) when the guarantee's monotonicity fails."""
    if not is_monotone(problem, strict=True):
        bad = [i for i in range(problem.num_arms) if not is_monotone(
            problem.replace(idle_payoff=problem.idle_payoff[i:i + 1],
                            play_payoff=problem.play_payoff[i:i + 1]), strict=True)]
        warnings.warn(f"LP rounding: the payoffs of arms {bad} are not monotone (needed: idle "
                      "side non-decreasing, play side non-increasing, f(1) >= g(2)); the "
                      "gamma V* guarantee does not apply", NonMonotoneWarning, stacklevel=3)


def _schedules(problem: LSDProblem, keys, horizon: int, lp: LPSolution | None):
    lp = rounding_lp(problem) if lp is None else lp
    with jax.enable_x64(True):
        arms, totals = _draws(problem, lp, jnp.asarray(keys), jnp.arange(horizon))
        return np.asarray(arms), np.asarray(totals)


def lp_rounding_schedules(problem: LSDProblem, keys: jax.Array, horizon: int,
                          lp: LPSolution | None = None) -> np.ndarray:
    """One LP-rounding schedule per key: keys [S, 2] -> [S, T] int32 (vmapped). ``lp``: the
    solution to round (default :func:`rounding_lp`; another LP voids the guarantee)."""
    horizon = check_horizon(horizon)
    _check_monotone(problem)
    return _schedules(problem, keys, horizon, lp)[0]


def lp_rounding_schedule(problem: LSDProblem, key: jax.Array, horizon: int, draws: int = 1,
                         lp: LPSolution | None = None) -> np.ndarray:
    """The LP-rounding planner's schedule: [T] int32 (see the module doc). With ``draws`` > 1,
    the best (by exact expected reward) of that many independent draws."""
    horizon = check_horizon(horizon)
    require(isinstance(draws, int) and draws >= 1, f"draws must be a positive int, got {draws!r}")
    _check_monotone(problem)
    schedules, totals = _schedules(problem, jax.random.split(key, draws), horizon, lp)
    return schedules[int(np.argmax(totals))]


def lp_rounding_value(problem: LSDProblem, horizon: int, samples: int = 32,
                      seed: int = 0) -> np.ndarray:
    """The exact expected total reward of each of ``samples`` independent draws of the planner
    (the randomness is the draw; states never depend on rewards): [samples]. Their mean
    estimates the planner's expectation, to compare with :func:`lp_rounding_bound` (say, as
    mean - 3 standard errors over >= 64 draws)."""
    horizon = check_horizon(horizon)
    _check_monotone(problem)
    keys = jax.random.split(jax.random.PRNGKey(seed), samples)
    return _schedules(problem, keys, horizon, None)[1]


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
    """The LP-rounding planner run online on optimistic estimates (see the module doc): the
    same filler rule (step 1 on the UCB table at every re-plan) and the same :func:`choose_arm`.

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
        return state.replace(plan=sample_plan(sub, filler_lp(rewards, plays, idle)[0]), key=key)

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
