"""POPGym HigherLower in JAX: guess whether the next card's rank is higher or lower."""

from __future__ import annotations

import jax.numpy as jnp

from hystax.envs.popgym import cards

EnvState = cards.DeckState


class HigherLower(cards.DealtDeckEnv):
    """HigherLower: one card of ``N = 52 * num_decks`` is shown per step; the agent guesses
    whether the next card's rank is higher or lower (counting cards helps).

    Level table: Easy 1 deck, Medium 2 decks, Hard 3 decks.

    Observation (13 floats): one-hot of the shown card's rank (ace = 0 low, king = 12).
    Action: ``Discrete(2)``: 0 = higher, 1 = lower.
    Reward: 0 on equal ranks, ``+1/N`` for a right guess, ``-1/N`` for a wrong one (so even a
    perfect guesser's return is below 1).
    Episode: ``N - 1`` steps (one per remaining card), ending with ``terminated=True``.
    """

    LEVEL_SETTINGS = (1, 2, 3)  # num_decks

    SHOWN = "rank"

    def __init__(self, level: str = "easy"):
        super().__init__(level, 2)

    def step_env(self, key, state, action, params):
        current = cards.rank(cards.dealt(state.deck, state.time))
        following = cards.rank(cards.dealt(state.deck, state.time + 1))
        correct = (following > current) == (action == 0)
        reward = jnp.where(following == current, jnp.float32(0.0),
                           cards.signed_reward(correct, 1.0 / self.num_cards))
        state = state.replace(time=state.time + 1)
        terminated = state.time >= self.episode_length
        return cards.one_hot(following, cards.NUM_RANKS), state, reward, terminated, {}
