"""The agents' actor-critic networks (flax.linen), over :class:`hystax.core.nn.MLP`."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from hystax.core.nn import MLP, activation


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs on a flat observation ``[..., obs_dim]``.

    Returns ``(policy_params, value)``: for discrete actions ``policy_params`` are the
    logits ``[..., num_actions]``; for continuous actions a pair
    ``(mean [..., action_dim], log_std [action_dim])``. ``value`` has shape ``[...]``.
    """

    action_dim: int
    discrete: bool
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        value = MLP(self.hidden_sizes, 1, self.activation, out_scale=1.0)(obs)[..., 0]
        head = MLP(self.hidden_sizes, self.action_dim, self.activation, out_scale=0.01)(obs)
        if self.discrete:
            return head, value
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return (head, log_std), value


class RecurrentActorCritic(nn.Module):
    """Encoder -> memory (:class:`~hystax.agents.memory.SequenceModel`) -> actor and critic.

    ``(carry, obs [T, B, obs_dim], starts [T, B]) -> (carry, (policy_params, value [T, B]))``
    with ``policy_params`` as in :class:`ActorCritic`. The encoder is an MLP of
    ``encoder_sizes`` then a Dense to the memory's ``d_model``; the heads are MLPs of
    ``hidden_sizes``.
    """

    action_dim: int
    discrete: bool
    memory: nn.Module
    encoder_sizes: Sequence[int] = (64,)
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "leaky_relu"
    separate: bool = False

    def initialize_carry(self, batch: int):
        carry = self.memory.initialize_carry(batch)
        return jnp.concatenate([carry, carry]) if self.separate else carry

    def _trunk(self, name, carry, obs, starts):
        x = MLP(self.encoder_sizes, self.memory.d_model, self.activation,
                out_scale=np.sqrt(2), name=f"{name}_encoder" if name else None)(obs)
        memory = self.memory.copy(name=f"{name}_memory") if name else self.memory
        return memory(carry, (activation(self.activation)(x), starts))

    @nn.compact
    def __call__(self, carry, obs, starts):
        if self.separate:
            n = self.memory.num_layers
            carry_a, x = self._trunk("actor", carry[:n], obs, starts)
            carry_c, x_c = self._trunk("critic", carry[n:], obs, starts)
            carry = jnp.concatenate([carry_a, carry_c])
        else:
            carry, x = self._trunk(None, carry, obs, starts)
            x_c = x
        value = MLP(self.hidden_sizes, 1, self.activation, out_scale=1.0)(x_c)[..., 0]
        head = MLP(self.hidden_sizes, self.action_dim, self.activation, out_scale=0.01)(x)
        if self.discrete:
            return carry, (head, value)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return carry, ((head, log_std), value)
