"""POPGym RepeatPrevious in JAX: output the suit of a card shown some steps ago."""

from __future__ import annotations

import jax.numpy as jnp

from hystax.envs.popgym import cards

EnvState = cards.DeckState


class RepeatPrevious(cards.DealtDeckEnv):
    """RepeatPrevious: one card of ``N = 52 * num_decks`` is shown per step; the agent must
    output the suit of the ``k``-th most recently shown card.

    Level table: Easy 1 deck, k=4; Medium 2 decks, k=32; Hard 3 decks, k=64.

    Lag, exactly as popgym computes it: at step ``s`` (1-based) the target is the ``s-k``-th
    card shown (0 = the one shown at reset), i.e. with ``k=1`` the card in the current
    observation, with ``k=4`` the card observed 3 steps before the current one. popgym's
    docstring calls ``k=0`` "the current timestep", which its code does not do; we follow the
    code (so rewards match popgym's), not the docstring.

    Observation (4 floats): one-hot of the shown card's suit.
    Action: ``Discrete(4)``, a suit.
    Reward: 0 for the first ``k - 1`` steps (no target yet), then ``+1/(N-k)`` for the right
    suit, ``-1/(N-k)`` otherwise.
    Episode: ``N - 1`` steps, ending with ``terminated=True``.
    """

    LEVEL_SETTINGS = ((1, 4), (2, 32), (3, 64))  # num_decks, k

    def __init__(self, level: str = "easy"):
        super().__init__(level, cards.NUM_SUITS)
        self.k = self.settings[1]

    def step_env(self, key, state, action, params):
        step = state.time + 1
        target = cards.suit(cards.dealt(state.deck, step - self.k))
        reward = jnp.where(step >= self.k,
                           cards.signed_reward(action == target, 1.0 / (self.num_cards - self.k)),
                           jnp.float32(0.0))
        obs = self.shown(state.deck, step)
        state = state.replace(time=step)
        terminated = state.time >= self.episode_length
        return obs, state, reward, terminated, {}
