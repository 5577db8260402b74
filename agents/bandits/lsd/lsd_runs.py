"""Playing LSD learners through the one bandit runner (:mod:`hystax.agents.bandits.bandit_runner`).

A learner is a :class:`hystax.agents.bandits.Policy` whose ``init(key, info)`` gets an
:class:`LSDInfo` (what it may know: K, the caps, the initial states, the horizon, the noise
kind; never the payoffs). Arm states move with the arms played only, so a learner tracks them
itself: :func:`hystax.envs.lsd.advance` accepts the info in place of the problem.

>>> out = run_seeds(isi_comb_ucb1(block=3), preset("laforgue-main"), seeds=20, horizon=3600)
>>> out.reward[:, -1] / opt          # total expected reward / OPT per seed

Common random numbers: for the same seed every learner sees the same uniform (Bernoulli) or
normal (Gaussian) draw in every round (one draw per record block, see the runner). Recorded,
after every ``record_every`` rounds: the cumulative *expected* reward sum_t mu(z_t, a_t)
(what regrets are measured on) and the cumulative realised reward.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np
from flax import struct

from hystax.agents.bandits.bandit_runner import Played, play, play_seeds
from hystax.agents.bandits.policy import Policy, check_horizon
from hystax.core.errors import require

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


def make_info(problem, horizon: int) -> LSDInfo:
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


def _check_lsd(problem) -> None:
    require(all(hasattr(problem, k) for k in ("idle_payoff", "play_payoff", "init_state")),
            f"problem must be an LSDProblem, got {type(problem).__name__}")


def _result(played: Played) -> LSDRunResult:
    return LSDRunResult(played.rounds, played.reward, played.realised, played.arm_counts,
                        played.policy_state)


def run(policy: Policy, problem, key: jax.Array, horizon: int,
        record_every: int | None = None) -> LSDRunResult:
    """Play ``policy`` on ``problem`` for ``horizon`` rounds (one jitted scan, float64)."""
    _check_lsd(problem)
    return _result(play(policy, problem, make_info(problem, horizon), key, horizon,
                        record_every))


def run_seeds(policy: Policy, problem, seeds, horizon: int,
              record_every: int | None = None) -> LSDRunResult:
    """:func:`run` vmapped over seeds (a count S or a list of ints; seed s uses PRNGKey(s)),
    the seed axis sharded over the devices (:mod:`hystax.core.sharding`)."""
    _check_lsd(problem)
    return _result(play_seeds(policy, problem, make_info(problem, horizon), seeds, horizon,
                              record_every))
