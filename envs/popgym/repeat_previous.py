"""POPGym RepeatPrevious in JAX: output the suit of a card shown some steps ago."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment
from hystax.envs.popgym import cards


@struct.dataclass
class EnvState(environment.EnvState):
    deck: jax.Array  # popgym's Deck.idx: card ids, dealt from the end


class RepeatPrevious(cards.CardEnv):
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
        super().__init__(level)
        self.num_decks, self.k = self.settings
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
        step = state.time + 1
        target = cards.suit(cards.dealt(state.deck, step - self.k))
        reward = jnp.where(step >= self.k,
                           cards.signed_reward(action == target, 1.0 / (self.num_cards - self.k)),
                           jnp.float32(0.0))
        obs = cards.one_hot(cards.suit(cards.dealt(state.deck, step)), cards.NUM_SUITS)
        state = state.replace(time=step)
        terminated = state.time >= self.episode_length
        return obs, state, reward, terminated, {}
