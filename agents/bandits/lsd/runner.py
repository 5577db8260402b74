"""Playing LSD learners: one ``lax.scan`` over rounds, vmapped over seeds (same Policy API as DLB).

A learner is a :class:`hystax.agents.bandits.Policy` whose ``init(key, info)`` gets an
:class:`LSDInfo` (what it may know: K, the caps, the initial states, the horizon, the noise
kind; never the payoffs). Arm states move with the arms played only, so a learner tracks them
itself: :func:`hystax.envs.lsd.advance` accepts the info in place of the problem.

>>> out = run_seeds(isi_comb_ucb1(block=3), preset("laforgue-main"), seeds=20, horizon=3600)
>>> out.reward[:, -1] / opt          # total expected reward / OPT per seed

Common random numbers: round t's reward is drawn from ``fold_in(fold_in(key, 0), t)``, so for
the same seed every learner sees the same uniform (Bernoulli) or normal (Gaussian) draw;
learners get ``fold_in(fold_in(key, 1), t)`` and ``init`` gets ``fold_in(key, 2)``. Recorded,
after every ``record_every`` rounds: the cumulative *expected* reward sum_t mu(z_t, a_t)
(what regrets are measured on) and the cumulative realised reward.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from hystax.agents.bandits.api import (
    Policy,
    check_horizon,
    compiled_runner,
    record_interval,
    scan_rounds,
    seed_list,
)
from hystax.envs.lsd import LSDProblem, advance, mean_payoff, sample_reward

from hystax import sharding
from hystax.errors import require

__all__ = ["LSDInfo", "LSDRunResult", "make_info", "run", "run_seeds"]


@struct.dataclass
class LSDInfo:
    """What a learner may know. init_state [K] int32, horizon [] int; static: the caps, noise."""

    init_state: jax.Array
    horizon: jax.Array
    idle_cap: int = struct.field(pytree_node=False, default=1)
    play_cap: int = struct.field(pytree_node=False, default=1)
    noise: str = struct.field(pytree_node=False, default="bernoulli")

    @property
    def num_arms(self) -> int:
        return int(np.shape(self.init_state)[0])


def make_info(problem: LSDProblem, horizon: int) -> LSDInfo:
    """The learner's view of ``problem`` over ``horizon`` rounds."""
    return LSDInfo(init_state=np.asarray(problem.init_state, np.int32),
                   horizon=np.int64(check_horizon(horizon)), idle_cap=problem.idle_cap,
                   play_cap=problem.play_cap, noise=problem.noise)


class LSDRunResult(NamedTuple):
    """Output of :func:`run` (leading [S] axis from :func:`run_seeds`); numpy float64.

    rounds [B] (rounds played at each record), reward [S, B] (cumulative expected reward),
    realised [S, B] (cumulative realised reward), arm_counts [S, K], policy_state (final).
    """

    rounds: np.ndarray
    reward: np.ndarray
    realised: np.ndarray
    arm_counts: np.ndarray
    policy_state: Any

    def regret(self, rate: float) -> np.ndarray:
        """Regret against a benchmark earning ``rate`` per round: rate * t - reward(t). [S, B]."""
        return rate * self.rounds - self.reward


def _single_run(policy: Policy, problem: LSDProblem, info: LSDInfo, key, blocks: int, every: int):
    noise_key, policy_key = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)

    def round_(carry, t):
        z, pstate, reward, realised, counts = carry
        arm = policy.act(pstate, jax.random.fold_in(policy_key, t), t)
        mean = mean_payoff(problem, z, arm)
        y = sample_reward(problem, jax.random.fold_in(noise_key, t), mean)
        pstate = policy.update(pstate, arm, y, t)
        return (advance(problem, z, arm), pstate, reward + mean, realised + y,
                counts.at[arm].add(1))

    zero = jnp.zeros((), jnp.result_type(float))
    carry = (jnp.asarray(problem.init_state, jnp.int32), policy.init(jax.random.fold_in(key, 2), info),
             zero, zero, jnp.zeros((problem.num_arms,), jnp.int32))
    carry, (reward, realised) = scan_rounds(round_, carry, blocks, every, lambda c: (c[2], c[3]))
    return reward, realised, carry[4], carry[1]


def _prepare(policy, problem, horizon, record_every):
    require(isinstance(policy, Policy), f"policy must be a Policy, got {type(policy).__name__}")
    require(isinstance(problem, LSDProblem),
            f"problem must be an LSDProblem, got {type(problem).__name__}")
    return make_info(problem, horizon), record_interval(horizon, record_every)


def _result(out, every: int) -> LSDRunResult:
    reward, realised, counts, pstate = jax.device_get(out)
    rounds = every * np.arange(1, np.shape(reward)[-1] + 1)
    return LSDRunResult(rounds, np.asarray(reward), np.asarray(realised), np.asarray(counts), pstate)


def run(policy: Policy, problem: LSDProblem, key: jax.Array, horizon: int,
        record_every: int | None = None) -> LSDRunResult:
    """Play ``policy`` on ``problem`` for ``horizon`` rounds (one jitted scan, float64)."""
    info, every = _prepare(policy, problem, horizon, record_every)
    with jax.enable_x64(True):
        out = compiled_runner(_single_run, policy, horizon // every, every, False)(problem, info, jnp.asarray(key))
        return _result(out, every)


def run_seeds(policy: Policy, problem: LSDProblem, seeds, horizon: int,
              record_every: int | None = None) -> LSDRunResult:
    """:func:`run` vmapped over seeds (a count S or a list of ints; seed s uses PRNGKey(s)),
    the seed axis sharded over the devices (:mod:`hystax.sharding`)."""
    seeds = seed_list(seeds)
    info, every = _prepare(policy, problem, horizon, record_every)
    with jax.enable_x64(True):
        keys = sharding.seed_keys(seeds, sharding.seed_mesh(len(seeds)))
        return _result(compiled_runner(_single_run, policy, horizon // every, every, True)(problem, info, keys), every)
