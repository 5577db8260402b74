"""Network building blocks shared by agents and world models (flax.linen).

>>> net = MLP((64, 64), out_dim=2, activation="tanh")           # [..., d_in] -> [..., 2]
>>> x = hidden_layers(x, (32, 32), activation("silu"))          # inside a compact module
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import numpy as np

from hystax.core.errors import unknown_name

__all__ = ["ACTIVATIONS", "MLP", "activation", "hidden_layers"]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "leaky_relu": nn.leaky_relu,
    "silu": nn.silu, "swish": nn.swish, "elu": nn.elu, "softplus": nn.softplus,
    "sigmoid": nn.sigmoid,
}
"""Activation name -> function: the one table every network and config check reads."""


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """``ACTIVATIONS[name]``, or a one-line HystaxError naming the choices."""
    if name not in ACTIVATIONS:
        raise unknown_name("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]


def hidden_layers(x: jax.Array, sizes: Sequence[int], act: Callable, kernel_init=None) -> jax.Array:
    """``act(Dense(width)(x))`` for each width, created in the calling compact module's scope
    (so the layers are its ``Dense_0 ...``): [..., d_in] -> [..., sizes[-1]]."""
    kwargs = {} if kernel_init is None else {"kernel_init": kernel_init}
    for width in sizes:
        x = act(nn.Dense(width, **kwargs)(x))
    return x


class MLP(nn.Module):
    """Plain MLP: ``[..., d_in] -> [..., out_dim]``.

    ``orthogonal`` (the PPO default): hidden layers orthogonal(sqrt 2), the output layer
    orthogonal(``out_scale``); otherwise flax's default (LeCun normal) everywhere.
    """

    hidden_sizes: Sequence[int]
    out_dim: int
    activation: str = "tanh"
    out_scale: float = 1.0
    orthogonal: bool = True

    @nn.compact
    def __call__(self, x):
        ortho = nn.initializers.orthogonal
        x = hidden_layers(x, self.hidden_sizes, activation(self.activation),
                          ortho(np.sqrt(2)) if self.orthogonal else None)
        if self.orthogonal:
            return nn.Dense(self.out_dim, kernel_init=ortho(self.out_scale))(x)
        return nn.Dense(self.out_dim)(x)
