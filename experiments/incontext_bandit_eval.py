"""Trained in-context agents beside the planners and learners, on sets of bandit problems
(held-out problems of ``meta/DLB`` / ``meta/LSD`` and their out-of-distribution sets).

Every algorithm meets the same problems and, through the one bandit runner
(:func:`hystax.agents.bandits.bandit_runner.play_instances`), the same noise: problem ``i`` of a
set is played with seed ``i`` by every learner and agent (common random numbers). Curves are
cumulative and recorded every ``EVERY`` rounds:

* DLB: the steady-state pseudo-regret sum_t (J* - <h, u_t>) of the papers' plots.
* LSD: the regret against the exact optimum, DP(t) - reward(t), with DP(t) the cumulative
  expected reward of the DP's optimal T-round schedule and reward(t) the algorithm's cumulative
  expected reward; and the reward as a fraction of OPT (at T, and at ``T_SHORT`` against the
  optimum over ``T_SHORT`` rounds).
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import numpy as np

from hystax.agents.bandits import ALGORITHMS as DLB_ALGORITHMS
from hystax.agents.bandits import make_info as dlb_info
from hystax.agents.bandits.bandit_runner import play_instances
from hystax.agents.bandits.incontext import incontext_policy
from hystax.agents.bandits.lsd import (
    ALGORITHMS as LSD_ALGORITHMS,
)
from hystax.agents.bandits.lsd import (
    NonMonotoneWarning,
    dp_plan,
    dp_value,
    greedy_schedule,
    lp_rounding_schedule,
    schedule_value,
)
from hystax.agents.bandits.lsd import make_info as lsd_info
from hystax.envs import dlb, lsd
from hystax.envs.meta.bandit_samplers import (
    DLB_OOD,
    DLB_RHO,
    LSD_OOD,
    dlb_on_host,
    lsd_on_host,
    sample_lsd_problem,
)

__all__ = ["DLB_BASELINES", "EVERY", "LSD_LEARNERS", "LSD_PLANNERS", "OOD_SEED", "T_SHORT",
           "ProblemSet", "agent_policies", "dlb_curves", "lsd_curves", "problem_sets"]

EVERY = 10
"""Rounds between two records of a curve."""
T_SHORT = 100
"""The short horizon of the tables (read off the T-round runs)."""
DLB_BASELINES = ("clairvoyant", "dynlin-ucb-logT", "lin-ucb-logT")
LSD_PLANNERS = ("dp-optimum", "oracle-greedy", "lp-rounding")
LSD_LEARNERS = ("isi-comb-ucb1", "comb-ucb1")
OOD_SEED = 1_000_003
"""Seed of the out-of-distribution random problems (``long-caps``)."""


class ProblemSet(NamedTuple):
    """Problems played with seeds 0..N-1 (one each); ``in_distribution`` for held-out ones."""

    name: str
    problems: list
    in_distribution: bool


def family_problems(env, indices, on_host) -> list:
    """``on_host(env.problem(i))`` for each index (one vmapped draw, then numpy)."""
    batch = jax.device_get(jax.jit(jax.vmap(env.problem))(np.asarray(indices, np.int32)))
    return [on_host(jax.tree.map(lambda x, i=i: x[i], batch)) for i in range(len(indices))]


def problem_sets(family: str, env, count: int) -> list[ProblemSet]:
    """The held-out set (test-split problems ``num_tasks .. num_tasks + count - 1``), then the
    out-of-distribution sets: DLB presets (``count`` seeds each); LSD ``long-caps`` (``count``
    problems with caps up to 10) and the R1-R3 presets (``count`` seeds each)."""
    held_out = np.arange(env.num_tasks, env.num_tasks + count)
    if family == "dlb":
        sets = [ProblemSet("held-out", family_problems(env, held_out, dlb_on_host), True)]
        return sets + [ProblemSet(name, [dlb.preset(name)] * count, False) for name in DLB_OOD]
    pad = functools.partial(lsd_on_host, trim=False)  # one shape for the runner
    sets = [ProblemSet("held-out", family_problems(env, held_out, pad), True)]
    for name in LSD_OOD:
        if name == "long-caps":
            keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.PRNGKey(OOD_SEED), i))(
                np.arange(count))
            batch = jax.device_get(jax.vmap(
                lambda k: sample_lsd_problem(k, env.num_actions, cap=10))(keys))
            problems = [pad(jax.tree.map(lambda x, i=i: x[i], batch)) for i in range(count)]
        else:
            problems = [lsd.preset(name)] * count
        sets.append(ProblemSet(name, problems, False))
    return sets


def agent_policies(trained, env) -> list:
    """One bandit policy per training seed of a ``hystax.load``-ed run."""
    return [incontext_policy(trained.actor, trained.policy(seed).params, env.observe,
                             name=f"seed {seed}") for seed in trained.seeds]


def _play(policy, problems, infos, horizon):
    return play_instances(policy, problems, infos, range(len(problems)), horizon, EVERY)


def dlb_curves(pset: ProblemSet, agents: dict, horizon: int) -> dict:
    """``{algorithm: pseudo-regret [N, B]}`` for the baselines, ``{model: [S, N, B]}`` for the
    agents (one row per training seed). The learners know the family's bound ρ̄ = 0.7 and
    each problem's own Φ, ‖θ‖, ‖ω‖, ‖B‖ (make_info's defaults)."""
    rho_bar = max(DLB_RHO[1], max(float(p.rho) for p in pset.problems))
    infos = [dlb_info(p, horizon, rho_bar=rho_bar) for p in pset.problems]
    curves = {name: _play(DLB_ALGORITHMS[name](), pset.problems, infos, horizon).pseudo_regret
              for name in DLB_BASELINES}
    for model, policies in agents.items():
        curves[model] = np.stack([_play(p, pset.problems, infos, horizon).pseudo_regret
                                  for p in policies])
    return curves


def _cumulative(problem, schedule, horizon) -> np.ndarray:
    """Cumulative expected reward of ``schedule`` at every ``EVERY``-th round ``[B]``."""
    per_round = np.asarray(schedule_value(problem, np.asarray(schedule), per_round=True))
    return np.cumsum(per_round)[EVERY - 1:horizon:EVERY]


def lsd_planners(pset: ProblemSet, horizon: int) -> tuple[dict, np.ndarray]:
    """``({planner: cumulative reward [N, B]}, OPT over T_SHORT rounds [N])``; the planners see
    the true problem (trimmed to its own caps, which keeps its rewards and shrinks the DP)."""
    out = {name: [] for name in LSD_PLANNERS}
    short = []
    cache = {}
    for i, problem in enumerate(pset.problems):
        key = id(problem)
        if key not in cache:  # a preset repeated over seeds: its planners are deterministic
            small = lsd_on_host(problem)
            _, optimal = dp_plan(small, horizon)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NonMonotoneWarning)
                rounding = lp_rounding_schedule(small, jax.random.PRNGKey(i), horizon)
            cache[key] = (_cumulative(small, optimal, horizon),
                          _cumulative(small, greedy_schedule(small, horizon), horizon),
                          _cumulative(small, rounding, horizon), dp_value(small, T_SHORT))
        for name, value in zip(LSD_PLANNERS, cache[key][:3]):
            out[name].append(value)
        short.append(cache[key][3])
    return {name: np.stack(v) for name, v in out.items()}, np.asarray(short)


def lsd_curves(pset: ProblemSet, agents: dict, horizon: int) -> tuple[dict, np.ndarray]:
    """``({algorithm: cumulative expected reward [N, B] (agents: [S, N, B])}, OPT over
    T_SHORT rounds [N])``; planners first, then the learners and the agents."""
    curves, short = lsd_planners(pset, horizon)
    infos = [lsd_info(p, horizon) for p in pset.problems]
    for name in LSD_LEARNERS:
        curves[name] = _play(LSD_ALGORITHMS[name](), pset.problems, infos, horizon).reward
    for model, policies in agents.items():
        curves[model] = np.stack([_play(p, pset.problems, infos, horizon).reward
                                  for p in policies])
    return curves, short
