"""POPGym Concentration in JAX: flip face-down cards two at a time to find matching pairs."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from hystax.envs.popgym import cards


@struct.dataclass
class EnvState(environment.EnvState):
    deck: jax.Array  # popgym's Deck.idx: the card id lying at each position
    face_up: jax.Array  # bool per position: matched and shown for good
    first: jax.Array  # position flipped first this turn, -1 if none


class Concentration(cards.CardEnv):
    """Concentration: ``N = 52 * num_decks`` cards lie face down; each step flips one.
    Two flipped cards of the same type (colour or rank) at different positions stay face up.

    Level table: Easy 1 deck, colours (2 types); Medium 2 decks, colours; Hard 1 deck, ranks
    (13 types).

    Observation (``N * (T + 1)`` floats): per position a one-hot over ``T + 1`` values, the
    card's type when face up or flipped this turn (the just-flipped card(s) are shown in the
    observation of the step that flips them, even a mismatching second card), ``T`` when face
    down.

    Action: ``Discrete(N)``, the position to flip.
    Reward (popgym's): flipping a card that is already face up gives ``-1/L`` per card flipped
    this turn (1 or 2) and ends the turn; a matching pair gives ``+1/(N/2)``; a mismatch or
    flipping the same position twice gives ``-2/L``; the first flip of a turn gives 0.
    Here ``L = ceil(2N - N / (2N - 1)) = 2N``, popgym's episode length.
    Episode: ``terminated`` when every card is face up, ``truncated`` after ``L`` steps (both
    can hold on the last step, as in popgym). Best return is 1 (every flip finds a pair).
    """

    LEVEL_SETTINGS = ((1, "colors"), (2, "colors"), (1, "ranks"))  # num_decks, deck_type

    def __init__(self, level: str = "easy"):
        super().__init__(level)
        self.num_decks, self.deck_type = self.settings
        self.card_type, self.num_types = cards.CARD_TYPES[self.deck_type]
        self.num_cards = n = cards.DECK_SIZE * self.num_decks
        self.episode_length = math.ceil(2 * n - n / (2 * n - 1))
        self.num_actions = n
        self.obs_dim = n * (self.num_types + 1)

    def is_truncated(self, state, params):
        return state.time >= params.max_steps_in_episode

    def _obs(self, deck, shown):
        values = jnp.where(shown, self.card_type(deck), self.num_types)
        return cards.one_hot(values, self.num_types + 1).reshape(-1)

    def reset_with_deck(self, deck: jax.Array):
        """``(obs, state)`` for a given shuffled deck (popgym's ``Deck.idx`` order)."""
        n = self.num_cards
        state = EnvState(time=jnp.int32(0), deck=jnp.asarray(deck, jnp.int32),
                         face_up=jnp.zeros(n, bool), first=jnp.int32(-1))
        return self._obs(state.deck, state.face_up), state

    def reset_env(self, key, params):
        return self.reset_with_deck(cards.shuffled_deck(key, self.num_decks))

    def step_env(self, key, state, action, params):
        success, failure = 1.0 / (self.num_cards // 2), -1.0 / self.episode_length
        pos = jnp.arange(self.num_cards)
        has_first = state.first >= 0
        first = jnp.maximum(state.first, 0)
        obs = self._obs(state.deck, state.face_up | (pos == action) | (has_first & (pos == first)))

        already_up = state.face_up[action]  # the first card of a turn is never face up
        types = self.card_type(state.deck)
        match = has_first & ~already_up & (types[first] == types[action]) & (first != action)
        reward = jnp.where(already_up, failure * (1 + has_first),
                           jnp.where(has_first, jnp.where(match, success, 2 * failure), 0.0))
        face_up = state.face_up | (match & ((pos == first) | (pos == action)))
        ends_turn = already_up | has_first
        state = state.replace(time=state.time + 1, face_up=face_up,
                              first=jnp.where(ends_turn, -1, action).astype(jnp.int32))
        terminated = match & face_up.all()
        return obs, state, reward.astype(jnp.float32), terminated, {}
