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


@struct.dataclass
class DeckState(environment.EnvState):
    deck: jax.Array  # popgym's Deck.idx: card ids, dealt from the end


class DealtDeckEnv(CardEnv):
    """Base of the games that deal one card of a shuffled ``N = 52 * num_decks`` deck per step
    and show one feature of it (``SHOWN``: "suit" or "rank", as a one-hot); ``N - 1`` steps.

    A subclass's ``LEVEL_SETTINGS`` start with the number of decks (an int, or a tuple whose
    first entry it is); it calls ``super().__init__(level, num_actions)`` and defines
    ``step_env``; ``self.shown(deck, i)`` is the observation of the i-th card dealt.
    """

    SHOWN: str = "suit"

    def __init__(self, level: str, num_actions: int):
        super().__init__(level)
        self.num_decks = self.settings if isinstance(self.settings, int) else self.settings[0]
        self.num_cards = DECK_SIZE * self.num_decks
        self.episode_length = self.num_cards - 1
        self.num_actions = num_actions
        self.obs_dim = NUM_SUITS if self.SHOWN == "suit" else NUM_RANKS

    def shown(self, deck: jax.Array, i) -> jax.Array:
        """float32 [obs_dim]: the one-hot suit or rank of the i-th card dealt."""
        card = dealt(deck, i)
        return one_hot(suit(card) if self.SHOWN == "suit" else rank(card), self.obs_dim)

    def reset_with_deck(self, deck: jax.Array):
        """``(obs, state)`` for a given shuffled deck (popgym's ``Deck.idx`` order)."""
        state = DeckState(time=jnp.int32(0), deck=jnp.asarray(deck, jnp.int32))
        return self.shown(state.deck, 0), state

    def reset_env(self, key, params):
        return self.reset_with_deck(shuffled_deck(key, self.num_decks))
