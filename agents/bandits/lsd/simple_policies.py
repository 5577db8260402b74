"""LSD policies that need no planning: fixed schedules and state-blind learners.

- :func:`scheduled`: plays a fixed schedule (any planner's output) round by round.
- :func:`ucb1`, :func:`thompson`: UCB1 and Beta-Bernoulli Thompson sampling on arm identities
  only, blind to the arm states: on LSD problems they show why the state matters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from hystax.agents.bandits.policy import Policy
from hystax.core.errors import require

__all__ = ["scheduled", "thompson", "ucb1"]


def scheduled(schedule, name: str = "schedule") -> Policy:
    """Plays ``schedule[t mod len(schedule)]`` in round t (a [T] int array, e.g. a planner's
    output; a shorter schedule repeats)."""
    schedule = np.asarray(schedule)
    require(schedule.ndim == 1 and schedule.size > 0 and np.issubdtype(schedule.dtype, np.integer)
            and schedule.min() >= 0,
            f"scheduled: schedule must be a non-empty 1-D array of arm indices, got shape "
            f"{schedule.shape}, dtype {schedule.dtype}")
    plan = jnp.asarray(schedule, jnp.int32)

    def init(key, info):
        require(int(schedule.max()) < info.num_arms, f"scheduled: arm {int(schedule.max())} is "
                f"out of range for {info.num_arms} arms")
        return plan

    return Policy(init=init, act=lambda plan, key, t: plan[t % plan.shape[0]],
                  update=lambda plan, arm, reward, t: plan, name=name)


@struct.dataclass
class CountsState:
    counts: jax.Array  # [K]
    sums: jax.Array  # [K] sum of rewards clipped to [0, 1] (Thompson's Beta posteriors need it)


def _counts_init(key, info) -> CountsState:
    return CountsState(counts=jnp.zeros(info.num_arms), sums=jnp.zeros(info.num_arms))


def _counts_update(state: CountsState, arm, reward, t) -> CountsState:
    return CountsState(counts=state.counts.at[arm].add(1),
                       sums=state.sums.at[arm].add(jnp.clip(reward, 0.0, 1.0)))


def ucb1() -> Policy:
    """UCB1 over arms (index mean + sqrt(2 log t / n), unplayed arms first), blind to states."""

    def act(state, key, t):
        n = jnp.maximum(state.counts, 1)
        index = state.sums / n + jnp.sqrt(2 * jnp.log(jnp.maximum(t, 1)) / n)
        return jnp.argmax(jnp.where(state.counts == 0, jnp.inf, index)).astype(jnp.int32)

    return Policy(_counts_init, act, _counts_update, "UCB1 (state-blind)")


def thompson() -> Policy:
    """Thompson sampling with Beta(1 + sum, 1 + n - sum) posteriors per arm, blind to states."""

    def act(state, key, t):
        draws = jax.random.beta(key, 1 + state.sums, 1 + state.counts - state.sums)
        return jnp.argmax(draws).astype(jnp.int32)

    return Policy(_counts_init, act, _counts_update, "Thompson (state-blind)")
