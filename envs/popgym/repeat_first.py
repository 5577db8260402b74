"""POPGym RepeatFirst in JAX: keep outputting the suit of the first card shown."""

from __future__ import annotations

from hystax.envs.popgym import cards

EnvState = cards.DeckState


class RepeatFirst(cards.DealtDeckEnv):
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
        super().__init__(level, cards.NUM_SUITS)

    def step_env(self, key, state, action, params):
        first = cards.suit(cards.dealt(state.deck, 0))
        reward = cards.signed_reward(action == first, 1.0 / (self.num_cards - 1))
        obs = self.shown(state.deck, state.time + 1)
        state = state.replace(time=state.time + 1)
        terminated = state.time >= self.episode_length
        return obs, state, reward, terminated, {}
