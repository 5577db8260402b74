"""What every bandit problem played as a gymnax env shares (DLB, LSD)."""

from __future__ import annotations

import jax.numpy as jnp
from gymnax.environments import environment, spaces


class BanditEnv(environment.Environment):
    """A bandit problem ``self.problem`` (with ``num_arms``) as a gymnax 1.0 env: the action is an
    arm (Discrete(K)); episodes never terminate, they are truncated at ``max_steps_in_episode``."""

    def is_terminated(self, state, params):
        return jnp.array(False)

    @property
    def num_actions(self) -> int:
        return self.problem.num_arms

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.problem.num_arms)
