"""POPGym Minesweeper in JAX: reveal every safe cell of a hidden board, told only mine counts."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from hystax.envs.popgym import LEVELS, level_index


@struct.dataclass
class EnvState(environment.EnvState):
    mines: jax.Array      # (h*w,) bool
    counts: jax.Array     # (h*w,) int32, mines in the 3x3 block around (and on) each cell
    viewed: jax.Array     # (h*w,) bool, safe cells revealed so far
    exploded: jax.Array   # bool, the last action hit a mine
    time: jax.Array       # int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    max_steps_in_episode: int = 14


def neighbour_counts(mines: jax.Array) -> jax.Array:
    """Mines in the 3x3 block centred on each cell of an (h, w) grid, the cell included."""
    h, w = mines.shape
    padded = jnp.pad(mines.astype(jnp.int32), 1)
    return sum(padded[1 + di:1 + di + h, 1 + dj:1 + dj + w]
               for di in (-1, 0, 1) for dj in (-1, 0, 1))


class Minesweeper(environment.Environment[EnvState, EnvParams]):
    """Minesweeper with the board hidden (POPGym ``MineSweeper``).

    Mines are placed uniformly at random. Clicking a cell reports how many mines lie in the
    3x3 block around it (the cell itself included, as in the reference).

    - obs: one-hot of that count (``min(mines + 1, 10)`` floats); one-hot of 0 after reset.
    - action: ``Discrete(h*w)``; the reference's MultiDiscrete ``[row, col]`` is
      ``action = row * w + col``.
    - reward, with ``L = h*w - mines`` (the number of safe cells): ``1/L`` for revealing a new
      safe cell, ``-0.5/(L - 2)`` for clicking a revealed cell again, ``-0.5 - 1/L`` for a mine.
    - episode end: terminated on a mine or once every safe cell is revealed (a win, reachable
      in exactly ``L`` clicks); truncated after ``L`` steps otherwise.

    ====== ====== ===== =========
    level  board  mines max steps
    ====== ====== ===== =========
    easy   4 x 4  2     14
    medium 6 x 6  6     30
    hard   8 x 8  10    54
    ====== ====== ===== =========
    """

    LEVELS_TABLE = (((4, 4), 2), ((6, 6), 6), ((8, 8), 10))

    def __init__(self, level: str = "easy"):
        super().__init__()
        index = level_index(level, "Minesweeper")
        self.level = LEVELS[index]
        self.dims, self.num_mines = self.LEVELS_TABLE[index]
        self.num_cells = self.dims[0] * self.dims[1]
        self.max_episode_length = self.num_cells - self.num_mines
        self.num_obs = min(self.num_mines + 1, 10)

    @property
    def default_params(self) -> EnvParams:
        return EnvParams(max_steps_in_episode=self.max_episode_length)

    def state_from_mines(self, mines: jax.Array) -> EnvState:
        """A fresh state for a given (h, w) or (h*w,) bool mine layout."""
        mines = jnp.asarray(mines, bool).reshape(self.dims)
        return EnvState(mines=mines.ravel(), counts=neighbour_counts(mines).ravel(),
                        viewed=jnp.zeros(self.num_cells, bool), exploded=jnp.bool_(False),
                        time=jnp.int32(0))

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        # the cells with the largest draws: a uniform subset (cheaper to compile than choice)
        where = jax.lax.top_k(jax.random.uniform(key, (self.num_cells,)), self.num_mines)[1]
        state = self.state_from_mines(jnp.zeros(self.num_cells, bool).at[where].set(True))
        return self._obs(jnp.int32(0)), state

    def step_env(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams):
        action = jnp.asarray(action, jnp.int32)
        mine, seen = state.mines[action], state.viewed[action]
        length = self.max_episode_length
        reward = jnp.where(mine, -0.5 - 1.0 / length,
                           jnp.where(seen, -0.5 / (length - 2), 1.0 / length))
        state = state.replace(viewed=state.viewed.at[action].set(~mine), exploded=mine,
                              time=state.time + 1)
        return (self._obs(state.counts[action]), state, reward.astype(jnp.float32),
                self.is_terminated(state, params), {})

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return state.exploded | jnp.all(state.viewed | state.mines)

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        """As the reference: the step limit truncates only an episode that did not end."""
        return (state.time >= params.max_steps_in_episode) & ~self.is_terminated(state, params)

    def _obs(self, count: jax.Array) -> jax.Array:
        return jax.nn.one_hot(count, self.num_obs, dtype=jnp.float32)

    @property
    def name(self) -> str:
        return f"popgym/Minesweeper{self.level.capitalize()}"

    @property
    def num_actions(self) -> int:
        return self.num_cells

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_cells)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.num_obs,), jnp.float32)
