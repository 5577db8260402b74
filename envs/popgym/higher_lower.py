"""POPGym HigherLower in JAX: guess whether the next card's rank is higher or lower."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment
from hystax.envs.popgym import cards


@struct.dataclass
class EnvState(environment.EnvState):
    deck: jax.Array  # popgym's Deck.idx: card ids, dealt from the end


class HigherLower(cards.CardEnv):
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

    def __init__(self, level: str = "easy"):
        super().__init__(level)
        self.num_decks = self.settings
        self.num_cards = cards.DECK_SIZE * self.num_decks
        self.episode_length = self.num_cards - 1
        self.num_actions = 2
        self.obs_dim = cards.NUM_RANKS

    def reset_with_deck(self, deck: jax.Array):
        """``(obs, state)`` for a given shuffled deck (popgym's ``Deck.idx`` order)."""
        state = EnvState(time=jnp.int32(0), deck=jnp.asarray(deck, jnp.int32))
        return cards.one_hot(cards.rank(cards.dealt(state.deck, 0)), cards.NUM_RANKS), state

    def reset_env(self, key, params):
        return self.reset_with_deck(cards.shuffled_deck(key, self.num_decks))

    def step_env(self, key, state, action, params):
        current = cards.rank(cards.dealt(state.deck, state.time))
        following = cards.rank(cards.dealt(state.deck, state.time + 1))
        correct = (following > current) == (action == 0)
        reward = jnp.where(following == current, jnp.float32(0.0),
                           cards.signed_reward(correct, 1.0 / self.num_cards))
        state = state.replace(time=state.time + 1)
        terminated = state.time >= self.episode_length
        return cards.one_hot(following, cards.NUM_RANKS), state, reward, terminated, {}
