"""Dynamical linear bandit runs: the one bandit runner's sums as DLB regrets.

>>> from hystax.agents.bandits import ALGORITHMS, run_seeds
>>> from hystax.envs.dlb import preset
>>> out = run_seeds(ALGORITHMS["dynlin-ucb-logT"](), preset("real"), seeds=8, horizon=20_000)
>>> out.pseudo_regret[:, -1]          # final pseudo-regret per seed

Regrets against the oracle (u*, J* = <h, u*>):
  - ``regret``: realised expected regret  sum_t (J* - E[y_t | x_t, u_t]) = T J* - sum_t
    (<omega, x_t> + <theta, u_t>), on the realised state path (state noise included, eps not);
  - ``pseudo_regret``: steady-state pseudo-regret  sum_t (J* - <h, u_t>).
Both are cumulative curves recorded after rounds every, 2 every, ..., T (device memory is flat
in T). Runs trace and run in float64 (``jax.enable_x64``) whatever the caller's setting.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from hystax.agents.bandits.bandit_runner import Played, noise_of_rounds, play, play_seeds
from hystax.agents.bandits.policy import Policy, make_info
from hystax.core.errors import require

__all__ = ["RunResult", "dlb_regrets", "round_noise", "run", "run_seeds"]


class RunResult(NamedTuple):
    """Output of :func:`run` (leading [S] axis from :func:`run_seeds`); numpy float64.

    rounds [B] (rounds played at each record), regret [S, B], pseudo_regret [S, B],
    arm_counts [S, K + E], x_final [S, n], policy_state (final, a pytree).
    """

    rounds: np.ndarray
    regret: np.ndarray
    pseudo_regret: np.ndarray
    arm_counts: np.ndarray
    x_final: np.ndarray
    policy_state: Any


def round_noise(problem, key: jax.Array, t: int, every: int = 1):
    """Round ``t``'s noise (eta_t [n], eps_t []) for run key ``key`` in a run that records every
    ``every`` rounds: what every policy meets in that round (see the runner)."""
    return jax.tree.map(lambda x: x[int(t)], noise_of_rounds(problem, key, int(t) + 1, every))


def _check_dlb(policy: Policy, problem) -> None:
    require(all(hasattr(problem, k) for k in ("A", "B", "omega", "theta", "h", "J_star")),
            f"problem must be a DLB problem (hystax.envs.dlb), got {type(problem).__name__}")
    if isinstance(policy, Policy) and policy.extra_arms:
        extra = np.asarray(policy.extra_arms, np.float64)
        require(extra.ndim == 2 and extra.shape[1] == problem.d,
                f"policy {policy.name!r}: extra_arms must be [E, {problem.d}], got {extra.shape}")


def dlb_regrets(played: Played) -> RunResult:
    """The runner's record as DLB regrets: sum_t (J* - E[y_t]) and sum_t (J* - <h, u_t>)."""
    return RunResult(played.rounds, played.regret, played.pseudo_regret, played.arm_counts,
                     np.asarray(played.final_state), played.policy_state)


def run(policy: Policy, problem, key: jax.Array, horizon: int, record_every: int | None = None,
        bounds: dict | None = None) -> RunResult:
    """Play ``policy`` on the DLB ``problem`` for ``horizon`` rounds (one jitted scan, float64).

    record_every: regret is recorded after every this many rounds (a divisor of horizon; default
    the smallest divisor giving at most 1000 points). bounds: overrides for :func:`make_info`.
    Returns a :class:`RunResult` without the seed axis.
    """
    _check_dlb(policy, problem)
    info = make_info(problem, horizon, **(bounds or {}))
    return dlb_regrets(play(policy, problem, info, key, horizon, record_every))


def run_seeds(policy: Policy, problem, seeds, horizon: int, record_every: int | None = None,
              bounds: dict | None = None) -> RunResult:
    """:func:`run` vmapped over seeds: ``seeds`` is a count S (seeds 0..S-1) or a list of ints;
    seed s uses ``PRNGKey(s)``, so every policy sees the same noise for the same seed. The seed
    axis is sharded over the most devices that divide S (:mod:`hystax.core.sharding`)."""
    _check_dlb(policy, problem)
    info = make_info(problem, horizon, **(bounds or {}))
    return dlb_regrets(play_seeds(policy, problem, info, seeds, horizon, record_every))
