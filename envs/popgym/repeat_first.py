"""POPGym RepeatFirst in JAX: keep outputting the suit of the first card shown."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment
from hystax.envs.popgym import cards


@struct.dataclass
class EnvState(environment.EnvState):
    deck: jax.Array  # popgym's Deck.idx: card ids, dealt from the end


class RepeatFirst(cards.CardEnv):
    """RepeatFirst: one card of ``N = 52 * num_decks`` is shown per step; at every step the
    agent must output the suit of the card shown at reset.

    Level table: Easy 1 deck, Medium 8 decks, Hard 16 decks.

    Observation (4 floats): one-hot of the shown card's suit.
    Action: ``Discrete(4)``, a suit.
    Reward: ``+1/(N-1)`` when the action is the first card's suit, ``-1/(N-1)`` otherwise.
    Episode: ``N - 1`` steps, ending with ``terminated=True``.
    """

    LEVEL_SETTINGS = (1, 8, 16)  # num_decks

    def __init__(self, level: str = "easy"):
        super().__init__(level)
        self.num_decks = self.settings
        self.num_cards = cards.DECK_SIZE * self.num_decks
        self.episode_length = self.num_cards - 1
        self.num_actions = cards.NUM_SUITS
        self.obs_dim = cards.NUM_SUITS

    def reset_with_deck(self, deck: jax.Array):
        """``(obs, state)`` for a given shuffled deck (popgym's ``Deck.idx`` order)."""
        state = EnvState(time=jnp.int32(0), deck=jnp.asarray(deck, jnp.int32))
        return cards.one_hot(cards.suit(cards.dealt(state.deck, 0)), cards.NUM_SUITS), state

    def reset_env(self, key, params):
        return self.reset_with_deck(cards.shuffled_deck(key, self.num_decks))

    def step_env(self, key, state, action, params):
        first = cards.suit(cards.dealt(state.deck, 0))
        reward = cards.signed_reward(action == first, 1.0 / (self.num_cards - 1))
        obs = cards.one_hot(cards.suit(cards.dealt(state.deck, state.time + 1)), cards.NUM_SUITS)
        state = state.replace(time=state.time + 1)
        terminated = state.time >= self.episode_length
        return obs, state, reward, terminated, {}
