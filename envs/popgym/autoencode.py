"""POPGym Autoencode in JAX: watch a deck's suits, then recite them in reverse order."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

from hystax.envs.popgym import cards


@struct.dataclass
class EnvState(environment.EnvState):
    deck: jax.Array  # popgym's Deck.idx: card ids, dealt from the end


class Autoencode(cards.CardEnv):
    """Autoencode: the agent watches ``N = 52 * num_decks`` cards one per step, then must
    output their suits last-seen-first, one per step.

    Level table: Easy 1 deck, Medium 2 decks, Hard 3 decks.

    Observation (6 floats): one-hot of the phase flag (2: index 1 = watch, 0 = play) then
    one-hot of a suit (4). Reset shows the first card with flag 1. The step that shows the
    *last* card already carries flag 0 (play starts with the next action), and play steps show
    flag 0 with suit 0, exactly as popgym does (earlier JAX ports inverted this flag).

    Action: ``Discrete(4)``, a suit; ignored while watching.
    Reward: 0 while watching; ``+1/N`` for each correctly recited suit, ``-1/N`` otherwise.
    Episode: ``N - 1`` watch steps then ``N`` play steps (``2N - 1`` steps in all), ending with
    ``terminated=True`` after the last recital.
    """

    LEVEL_SETTINGS = (1, 2, 3)  # num_decks

    def __init__(self, level: str = "easy"):
        super().__init__(level)
        self.num_decks = self.settings
        self.num_cards = cards.DECK_SIZE * self.num_decks
        self.episode_length = 2 * self.num_cards - 1
        self.num_actions = cards.NUM_SUITS
        self.obs_dim = 2 + cards.NUM_SUITS

    def _obs(self, watching, suit):
        return jnp.concatenate([cards.one_hot(watching.astype(jnp.int32), 2),
                                cards.one_hot(suit, cards.NUM_SUITS)])

    def reset_with_deck(self, deck: jax.Array):
        """``(obs, state)`` for a given shuffled deck (popgym's ``Deck.idx`` order)."""
        state = EnvState(time=jnp.int32(0), deck=jnp.asarray(deck, jnp.int32))
        return self._obs(jnp.bool_(True), cards.suit(cards.dealt(state.deck, 0))), state

    def reset_env(self, key, params):
        return self.reset_with_deck(cards.shuffled_deck(key, self.num_decks))

    def step_env(self, key, state, action, params):
        n, t = self.num_cards, state.time
        watching = t < n - 1
        # watch step: deal card t + 1; it is the last one when t + 1 == n - 1
        watch_obs = self._obs(t + 1 < n - 1, cards.suit(cards.dealt(state.deck, t + 1)))
        # play step j pops the (n-1-j)-th dealt card, i.e. deck[j]
        j = jnp.clip(t - (n - 1), 0, n - 1)
        correct = action == cards.suit(state.deck[j])
        play_obs = self._obs(jnp.bool_(False), jnp.int32(0))
        obs = jnp.where(watching, watch_obs, play_obs)
        reward = jnp.where(watching, jnp.float32(0.0), cards.signed_reward(correct, 1.0 / n))
        state = state.replace(time=t + 1)
        terminated = state.time >= self.episode_length
        return obs, state, reward, terminated, {}
