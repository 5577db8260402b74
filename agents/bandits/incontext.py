"""A trained memory policy as a bandit :class:`~hystax.agents.bandits.policy.Policy`, so the
one bandit runner plays it beside the planners and learners, with the same noise.

>>> actor = ppo.make_actor(config, env, env_params)          # env: meta/DLB or meta/LSD
>>> policy = incontext_policy(actor, actor.params_of(seed_state), env.observe)
>>> out = run_seeds(policy, preset("real"), seeds=200, horizon=1000)

The policy's state holds the actor's carry and the previous arm and reward; each round it
builds the observation the agent was trained on (``observe(prev_arm, prev_reward, t)``,
:func:`hystax.envs.meta.bandit_observation`) and acts on it. ``start`` is true in round 0 only,
so the memory is reset where an episode starts, as in training. ``update`` steps the carry
with the same observation (the carry does not depend on the action's key), then stores the
arm and the reward. The runner plays in float64; the actor's carry keeps its own dtypes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from hystax.agents.actor import Actor
from hystax.agents.bandits.policy import Policy
from hystax.core.errors import require

__all__ = ["InContextState", "incontext_policy"]


@struct.dataclass
class InContextState:
    """carry: the actor's (batch of one); prev_arm int32 [] (-1 before round 0); prev_reward []."""

    carry: Any
    prev_arm: jax.Array
    prev_reward: jax.Array


def incontext_policy(actor: Actor, params: Any, observe: Callable[..., jax.Array], *,
                     deterministic: bool = False, name: str = "in-context") -> Policy:
    """The bandit policy of ``actor`` with ``params`` (one seed's), observing through
    ``observe(prev_arm, prev_reward, t) -> obs`` (see the module)."""
    example = observe(jnp.int32(-1), jnp.float32(0.0), 0)
    space = actor.env.observation_space(actor.env.default_params)
    require(tuple(example.shape) == tuple(space.shape),
            f"incontext_policy: observe gives shape {tuple(example.shape)}, but the agent was "
            f"trained on observations of shape {tuple(space.shape)}")

    def step(state: InContextState, key, t):
        obs = observe(state.prev_arm, state.prev_reward, t).astype(jnp.float32)[None]
        action, carry = actor.act(params, obs, state.carry, jnp.reshape(t == 0, (1,)), key,
                                  deterministic=deterministic)
        carry = jax.tree.map(lambda new, old: new.astype(old.dtype), carry, state.carry)
        return action[0].astype(jnp.int32), carry

    def init(key, info):
        return InContextState(carry=actor.init_carry(1), prev_arm=jnp.int32(-1),
                              prev_reward=jnp.float32(0.0))

    def act(state, key, t):
        return step(state, key, t)[0]

    def update(state, arm, reward, t):
        _, carry = step(state, jax.random.PRNGKey(0), t)
        return InContextState(carry=carry, prev_arm=jnp.asarray(arm, jnp.int32),
                              prev_reward=jnp.asarray(reward, jnp.float32))

    return Policy(init, act, update, name)
