"""POPGym Battleship in JAX: find four hidden ships by firing at cells, told only hit or miss."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from hystax.envs.popgym import LEVELS, level_index

SHIP_SIZES = (2, 3, 3, 4)


@struct.dataclass
class EnvState(environment.EnvState):
    board: jax.Array    # (size*size,) bool, True where a ship lies
    guesses: jax.Array  # (size*size,) bool, True where the agent has fired
    hits: jax.Array     # int32, ship cells hit so far (repeat shots excluded)
    time: jax.Array     # int32


@struct.dataclass
class EnvParams(environment.EnvParams):
    max_steps_in_episode: int = 64


def _place_ship(u: jax.Array, board: jax.Array, length: int) -> jax.Array:
    """Add one ship of ``length`` cells to the (size, size) bool ``board``, uniformly among the
    horizontal and vertical segments that fit on the board without overlapping a ship.

    ``u`` ~ U(0, 1) picks the free segment: the ``floor(u * n_free)``-th one."""
    size = board.shape[0]
    padded = jnp.pad(board, (0, length - 1), constant_values=True)  # off-board = occupied
    across = jnp.any(jnp.stack([padded[:size, k:k + size] for k in range(length)]), axis=0)
    down = jnp.any(jnp.stack([padded[k:k + size, :size] for k in range(length)]), axis=0)
    taken = jnp.stack([across, down]).ravel()
    free = ~taken
    rank = jnp.minimum((u * free.sum()).astype(jnp.int32), free.sum() - 1)
    choice = jnp.argmax(jnp.cumsum(free) > rank)
    vertical, row, col = choice // size ** 2, choice // size % size, choice % size
    cells = jnp.arange(length)
    return board.at[row + cells * vertical, col + cells * (1 - vertical)].set(True)


class Battleship(environment.Environment[EnvState, EnvParams]):
    """Battleship on a hidden square board (POPGym ``Battleship``).

    Ships of sizes 2, 3, 3 and 4 are placed without overlap, each uniformly among the
    segments that still fit (the reference's rejection sampling gives the same law).

    - obs: one-hot of "the last shot was a new hit" (2 floats); ``[1, 0]`` after reset.
    - action: ``Discrete(size*size)``; the reference's MultiDiscrete ``[row, col]`` is
      ``action = row * size + col``.
    - reward: ``1/12`` for a new hit, ``-1/(size**2 - 12)`` for a miss or a repeat shot at a
      ship cell (so hitting all 12 ship cells in 12 shots returns 1, firing at every cell returns 0).
    - episode end: terminated once all 12 ship cells are hit; truncated after ``size**2`` shots
      (both may hold on the same step, as in the reference).

    ====== ========== ==========
    level  board      max steps
    ====== ========== ==========
    easy   8 x 8      64
    medium 10 x 10    100
    hard   12 x 12    144
    ====== ========== ==========
    """

    BOARD_SIZES = (8, 10, 12)

    def __init__(self, level: str = "easy"):
        super().__init__()
        index = level_index(level, "Battleship")
        self.level = LEVELS[index]
        self.board_size = self.BOARD_SIZES[index]
        self.needed_hits = sum(SHIP_SIZES)

    @property
    def default_params(self) -> EnvParams:
        return EnvParams(max_steps_in_episode=self.board_size ** 2)

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        board = jnp.zeros((self.board_size, self.board_size), bool)
        # one small draw for all ships (XLA compiles big PRNG draws slowly)
        for u, length in zip(jax.random.uniform(key, (len(SHIP_SIZES),)), SHIP_SIZES):
            board = _place_ship(u, board, length)
        board = board.ravel()
        state = EnvState(board=board, guesses=jnp.zeros_like(board), hits=jnp.int32(0),
                         time=jnp.int32(0))
        return self._obs(jnp.bool_(False)), state

    def step_env(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams):
        action = jnp.asarray(action, jnp.int32)
        hit = state.board[action] & ~state.guesses[action]
        state = state.replace(guesses=state.guesses.at[action].set(True),
                              hits=state.hits + hit.astype(jnp.int32), time=state.time + 1)
        cells = self.board_size ** 2
        reward = jnp.where(hit, 1.0 / self.needed_hits, -1.0 / (cells - self.needed_hits))
        terminated = state.hits >= self.needed_hits
        return self._obs(hit), state, reward.astype(jnp.float32), terminated, {}

    def _obs(self, hit: jax.Array) -> jax.Array:
        return jax.nn.one_hot(hit.astype(jnp.int32), 2, dtype=jnp.float32)

    @property
    def name(self) -> str:
        return f"popgym/Battleship{self.level.capitalize()}"

    @property
    def num_actions(self) -> int:
        return self.board_size ** 2

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.board_size ** 2)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (2,), jnp.float32)
