"""Shared pieces of the POPGym card games: decks, card encodings and a small base env.

A deck of ``num_decks`` decks is a permutation of the card ids ``0 .. 52 * num_decks - 1``,
the same array as popgym's ``Deck.idx`` after ``reset``. As in popgym, cards are dealt from
the *end* of that array: the ``i``-th card dealt is ``deck[-1 - i]`` (:func:`dealt`). Storing
the array exactly as popgym holds it lets tests copy a seeded reference deck into an
``EnvState`` and step both envs in lockstep.

Card id ``c`` encodes (as popgym's ``Deck``): rank ``(c % 52) // 4`` (13 ranks, ace low),
suit ``c % 4`` (spades, diamonds, clubs, hearts) and colour ``c % 2`` (black, red).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces
from hystax.envs.popgym import LEVELS, level_index

DECK_SIZE = 52
NUM_RANKS = 13
NUM_SUITS = 4
NUM_COLOURS = 2


def shuffled_deck(key: jax.Array, num_decks: int) -> jax.Array:
    """A uniformly shuffled deck of ``num_decks`` decks (int32 card ids)."""
    return jax.random.permutation(key, DECK_SIZE * num_decks).astype(jnp.int32)


def dealt(deck: jax.Array, i: jax.Array | int) -> jax.Array:
    """The ``i``-th card dealt from ``deck`` (0-based; cards leave from the end)."""
    n = deck.shape[-1]
    return deck[..., jnp.clip(n - 1 - i, 0, n - 1)]


def rank(card: jax.Array) -> jax.Array:
    return (card % DECK_SIZE) // NUM_SUITS


def suit(card: jax.Array) -> jax.Array:
    return card % NUM_SUITS


def colour(card: jax.Array) -> jax.Array:
    return card % NUM_COLOURS


# deck_type name in popgym -> (card -> type index, number of types)
CARD_TYPES = {"colors": (colour, NUM_COLOURS), "suits": (suit, NUM_SUITS),
              "ranks": (rank, NUM_RANKS)}


def one_hot(x: jax.Array, n: int) -> jax.Array:
    """float32 one-hot, as ``gymnasium.spaces.flatten`` encodes a ``Discrete(n)`` value."""
    return jax.nn.one_hot(x, n, dtype=jnp.float32)


def signed_reward(correct: jax.Array, scale: float) -> jax.Array:
    """``+scale`` if ``correct`` else ``-scale`` (float32)."""
    return jnp.where(correct, jnp.float32(scale), jnp.float32(-scale))


@struct.dataclass
class EnvParams(environment.EnvParams):
    """``max_steps_in_episode``: a time limit; by default the game's own length."""

    max_steps_in_episode: int = 1


class CardEnv(environment.Environment):
    """Base of the card-game ports.

    Subclasses set ``LEVEL_SETTINGS`` (one entry per level), and in ``__init__`` the static
    ``episode_length``, ``num_actions`` and ``obs_dim``. Observations are float32 one-hots in
    ``Box(0, 1, (obs_dim,))`` and actions ``Discrete(num_actions)``.

    Episodes of these games end after a fixed number of steps with ``terminated=True`` (as in
    popgym), so by default ``truncated`` stays False; setting ``max_steps_in_episode`` below
    ``episode_length`` truncates earlier.
    """

    LEVEL_SETTINGS: tuple = ()
    episode_length: int = 0
    num_actions: int = 0  # shadows gymnax's read-only property; set per instance
    obs_dim: int = 0

    def __init__(self, level: str = "easy"):
        self.level = LEVELS[level_index(level, type(self).__name__)]
        self.settings = self.LEVEL_SETTINGS[LEVELS.index(self.level)]

    @property
    def name(self) -> str:
        return f"popgym/{type(self).__name__}{self.level.capitalize()}"

    @property
    def default_params(self) -> EnvParams:
        return EnvParams(max_steps_in_episode=self.episode_length)

    def is_truncated(self, state, params) -> jax.Array:
        return (state.time >= params.max_steps_in_episode) & (state.time < self.episode_length)

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.obs_dim,), jnp.float32)
