"""POPGym CountRecall in JAX: say how often the queried card type has been dealt so far."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from hystax.envs.popgym import cards


@struct.dataclass
class EnvState(environment.EnvState):
    value_deck: jax.Array  # popgym's value_deck.idx (dealt from the end)
    query_deck: jax.Array  # popgym's query_deck.idx (dealt from the end)
    counts: jax.Array  # times each type has been dealt from the value deck


class CountRecall(cards.CardEnv):
    """CountRecall: each step deals a value card and a query card (from two decks of
    ``N = 52 * num_decks`` cards); the agent must answer, one step later, how many cards of the
    queried type had been dealt up to and including the step that showed the query.

    Level table: Easy 1 deck, colours (2 types); Medium 2 decks, suits (4); Hard 4 decks,
    ranks (13).

    Observation (``2T`` floats): one-hot of the dealt card's type, then of the queried type.
    Action: ``Discrete(N / T + 1)``, the count ``0 .. N/T`` (every count that can be correct;
    earlier JAX ports used ``Discrete(2)`` at every level).
    Reward: ``+1/(N-1)`` for the right count, ``-1/(N-1)`` otherwise.
    Episode: ``N - 1`` steps, ending with ``terminated=True`` when the decks are empty.
    """

    LEVEL_SETTINGS = ((1, "colors"), (2, "suits"), (4, "ranks"))  # num_decks, deck_type

    def __init__(self, level: str = "easy"):
        super().__init__(level)
        self.num_decks, self.deck_type = self.settings
        self.card_type, self.num_types = cards.CARD_TYPES[self.deck_type]
        self.num_cards = cards.DECK_SIZE * self.num_decks
        self.max_card_count = self.num_cards // self.num_types
        self.episode_length = self.num_cards - 1
        self.num_actions = self.max_card_count + 1
        self.obs_dim = 2 * self.num_types

    def _deal(self, state, i):
        value = self.card_type(cards.dealt(state.value_deck, i))
        query = self.card_type(cards.dealt(state.query_deck, i))
        obs = jnp.concatenate([cards.one_hot(value, self.num_types),
                               cards.one_hot(query, self.num_types)])
        return obs, value, query

    def reset_with_deck(self, value_deck: jax.Array, query_deck: jax.Array):
        """``(obs, state)`` for given shuffled decks (popgym's ``Deck.idx`` order)."""
        state = EnvState(time=jnp.int32(0), value_deck=jnp.asarray(value_deck, jnp.int32),
                         query_deck=jnp.asarray(query_deck, jnp.int32),
                         counts=jnp.zeros(self.num_types, jnp.int32))
        obs, value, _ = self._deal(state, 0)
        return obs, state.replace(counts=state.counts.at[value].add(1))

    def reset_env(self, key, params):
        value_key, query_key = jax.random.split(key)
        return self.reset_with_deck(cards.shuffled_deck(value_key, self.num_decks),
                                    cards.shuffled_deck(query_key, self.num_decks))

    def step_env(self, key, state, action, params):
        prev_query = self.card_type(cards.dealt(state.query_deck, state.time))
        reward = cards.signed_reward(action == state.counts[prev_query], 1.0 / self.episode_length)
        obs, value, _ = self._deal(state, state.time + 1)
        state = state.replace(time=state.time + 1, counts=state.counts.at[value].add(1))
        terminated = state.time >= self.episode_length
        return obs, state, reward, terminated, {}
