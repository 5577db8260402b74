"""The round protocol: what a bandit problem supplies to the one bandit runner.

Any bandit problem (a pytree: :class:`hystax.envs.dlb.DLBProblem`,
:class:`hystax.envs.lsd.LSDProblem`, or your own) is played by
:mod:`hystax.agents.bandits.bandit_runner` through these methods::

    problem.initial_state()             -> state (pytree): the world before round 0
    problem.draw_noise(key, rounds)     -> noise (pytree, leading axis [rounds]): a block's noise
    problem.play(state, arm, noise_t)   -> (mean [], realised [], steady [], next state)
    problem.with_extra_arms(extra)      -> the problem whose arm table ends with ``extra`` [E, d]
    problem.optimal_rate                -> the best steady reward per round (J* []), or None
    problem.num_arms                    -> how many arms ``play`` takes (extra arms included)

``mean`` is E[reward | state, arm] (regrets are measured on it), ``realised`` the noisy reward
the learner sees, ``steady`` the arm's steady-state value (DLB: <h, u>; it equals ``mean`` where
no hidden dynamics separate them). ``play`` must be pure and jit/vmap-able; ``draw_noise`` is
called once per block of rounds, so a block's noise is one random call.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax

__all__ = ["BanditProblem"]


@runtime_checkable
class BanditProblem(Protocol):
    """A bandit problem the runner can play (see the module doc)."""

    def initial_state(self) -> Any: ...

    def draw_noise(self, key: jax.Array, rounds: int) -> Any: ...

    def play(self, state: Any, arm: jax.Array, noise: Any
             ) -> tuple[jax.Array, jax.Array, jax.Array, Any]: ...

    def with_extra_arms(self, extra: Any) -> BanditProblem: ...

    @property
    def optimal_rate(self) -> jax.Array | None: ...

    @property
    def num_arms(self) -> int: ...
