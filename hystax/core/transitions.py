"""A batch of transitions: what world models learn from and continual suites collect."""

from __future__ import annotations

from typing import NamedTuple

import jax

__all__ = ["Transitions"]


class Transitions(NamedTuple):
    """A batch of transitions: obs [N, n], action [N, m], next_obs [N, n]."""

    obs: jax.Array
    action: jax.Array
    next_obs: jax.Array
