"""Networks shared by the agents (flax.linen)."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import numpy as np

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu}


class MLP(nn.Module):
    """Plain MLP with orthogonal init: ``[..., d_in] -> [..., out_dim]``."""

    hidden_sizes: Sequence[int]
    out_dim: int
    activation: str = "tanh"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for width in self.hidden_sizes:
            x = act(nn.Dense(width, kernel_init=nn.initializers.orthogonal(np.sqrt(2)))(x))
        return nn.Dense(self.out_dim, kernel_init=nn.initializers.orthogonal(self.out_scale))(x)


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
