"""POPGym's LabyrinthEscape and LabyrinthExplore in pure JAX.

Both envs drop the agent into a fresh perfect maze each episode. The maze is built like the
reference's (mazelib ``HuntAndKill`` with random hunting, ``generate_entrances``): a grid of
``size x size`` blocks, ``size = 2 * cells + 1``, with rooms at odd (row, col), walls at even
indices and an all-wall border. The start is an opening in the border (value 2) on a random
side, at a random odd position; the end is on the opposite side (value 3 in Escape, where it
is the exit; Explore leaves it a wall).

Observation (50 floats): one-hots (5 each) of the 9 blocks of the agent's 3x3 view, row by
row (0 free, 1 wall, 2 start, 3 goal), then of the previous action (4 = none, at reset).
Actions: 0 left, 1 right, 2 up, 3 down; moving into a wall leaves the agent in place.

| level  | blocks  | cells | steps |
|--------|---------|-------|-------|
| easy   | 11 x 11 | 5 x 5 | 1024  |
| medium | 15 x 15 | 7 x 7 | 1024  |
| hard   | 19 x 19 | 9 x 9 | 1024  |

The reference truncates when its step counter reaches ``steps - 1`` (1023 steps), reproduced
with ``max_steps_in_episode = 1023``.

Reference quirk kept: the 3x3 view is cut from the grid clipped at the top/left edge and then
padded with walls at the bottom/right, so on row 0 or column 0 (the start when it is on the
north or west side, or an exit there) the view is shifted by one block instead of centred.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from hystax.envs.popgym import level_index

FREE, WALL, START, GOAL = 0, 1, 2, 3
NUM_CELL_TYPES = 5  # popgym's Cell enum also has HIDDEN, never observed
NO_ACTION = 4
# (d_row, d_col) of the actions left, right, up, down (also the generator's directions).
MOVES = jnp.array([[0, -1], [0, 1], [-1, 0], [1, 0]], dtype=jnp.int32)


@struct.dataclass
class EnvState(environment.EnvState):
    grid: jax.Array       # (size, size) int32 block types
    pos: jax.Array        # (2,) int32 agent (row, col)
    explored: jax.Array   # (size, size) bool blocks visited this episode
    time: int


@struct.dataclass
class EnvParams(environment.EnvParams):
    max_steps_in_episode: int = 1023


def random_maze(key: jax.Array, cells: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(grid, start, end)``: a perfect maze of ``(2 cells + 1)**2`` blocks (0 free, 1 wall)
    and its two border openings (start on a uniform side, end on the opposite one, each at a
    uniform odd offset; both still walls in ``grid``).

    The maze has the law of mazelib's ``HuntAndKill(hunt_order="random")``: random walks
    carve into unvisited neighbouring rooms; when a walk is stuck, up to ``size**2`` hunts in
    all pick uniform random rooms and a walk restarts from the first one that is visited and
    has an unvisited neighbour. Here the misses are drawn at once (a geometric count) and the
    hit is a uniform frontier room, so every scan step carves one room: ``cells**2 - 1``
    steps. All randomness is one uniform draw (threefry is slow to compile on CPU).
    """
    n = cells
    size = 2 * n + 1
    ids = jnp.arange(n * n).reshape(n, n)  # rooms are numbered row * n + col
    u = jax.random.uniform(key, (n * n + 1, 3))
    first, side, a, b = _index(u[-2:].ravel()[:4], jnp.array([n * n, 4, n, n]))

    def carve(carry, u):
        visited, cell, hunts, stopped = carry
        unvisited = jnp.pad(~visited, 1)
        # open_nb[d, r, c]: room (r, c) has an unvisited neighbour in direction d
        open_nb = jnp.stack([unvisited[1:-1, :-2], unvisited[1:-1, 2:],
                             unvisited[:-2, 1:-1], unvisited[2:, 1:-1]])
        frontier = visited & open_nb.any(0)
        stuck = ~(open_nb & (ids == cell)).any()
        # a stuck walk hunts: misses ~ Geometric(hit rate), then a uniform frontier room
        hit_rate = jnp.maximum(frontier.sum(), 1) / (n * n)
        misses = jnp.floor(jnp.log1p(-u[0]) / jnp.log1p(-hit_rate)).astype(jnp.int32)
        hunts = hunts + jnp.where(stuck, misses + 1, 0)
        stopped = stopped | (stuck & (hunts > size**2))
        cell = jnp.where(stuck, _pick(frontier, u[1]), cell)
        dirs = (open_nb & (ids == cell)).any((1, 2))
        d = (jnp.cumsum(dirs) <= _index(u[2], dirs.sum())).sum()
        new = cell + jnp.array([-1, 1, -n, n])[d]
        visited = visited | ((ids == new) & ~stopped)
        return (visited, jnp.where(stopped, cell, new), hunts, stopped), \
            jnp.where(stopped, -1, jnp.stack([cell, new]))

    carry = (ids == first, first, jnp.int32(0), jnp.bool_(False))
    (visited, *_), pairs = jax.lax.scan(carve, carry, u[:-2])
    # the wall between rooms (r, c) and (r', c') is block (r + r' + 1, c + c' + 1)
    walls = jnp.stack([(pairs // n).sum(1) + 1, (pairs % n).sum(1) + 1], 1)
    rows, cols = jnp.arange(size)[:, None], jnp.arange(size)[None, :]
    grid = jnp.ones((size, size), jnp.int32).at[1::2, 1::2].set(jnp.where(visited, FREE, WALL))
    carved = ((rows == walls[:, 0, None, None]) & (cols == walls[:, 1, None, None])).any(0)
    grid = jnp.where(carved, FREE, grid)
    a, b, last = 2 * a + 1, 2 * b + 1, 2 * n  # north, south, west, east starts; opposite ends
    start = jnp.array([[0, a], [last, a], [a, 0], [a, last]], jnp.int32)[side]
    end = jnp.array([[last, b], [0, b], [b, last], [b, 0]], jnp.int32)[side]
    return grid, start, end


def _index(u: jax.Array, count: jax.Array) -> jax.Array:
    """Uniform integers in ``[0, count)`` from uniforms in [0, 1)."""
    return jnp.minimum(jnp.floor(u * count), count - 1).astype(jnp.int32)


def _pick(mask: jax.Array, u: jax.Array) -> jax.Array:
    """Flat index of a uniform true entry of the 2-D ``mask`` (``u`` uniform in [0, 1)).

    Picks the ``k``-th true entry row first, then column: two short cumsums instead of one
    long one, which XLA:CPU computes in quadratic time.
    """
    row_counts = mask.sum(1)
    k = _index(u, row_counts.sum())
    row_ends = jnp.cumsum(row_counts)
    row = (row_ends <= k).sum()
    in_row = (mask & (jnp.arange(mask.shape[0]) == row)[:, None]).any(0)
    return row * mask.shape[1] + (jnp.cumsum(in_row) <= k - (row_ends - row_counts)[row]).sum()


class _Labyrinth(environment.Environment):
    """Shared maze, movement and observation of the two labyrinth envs."""

    _env_name = ""
    _goal_value = WALL  # what the end block becomes

    def __init__(self, level: str = "easy"):
        super().__init__()
        self.level = level_index(level, self._env_name)
        self.maze_dims = (10, 14, 18)[self.level]
        self.cells = self.maze_dims // 2
        self.size = 2 * self.cells + 1
        self.episode_length = 1024
        self.step_penalty = -1.0 / self.episode_length

    @property
    def name(self) -> str:
        return f"popgym/{self._env_name}{('Easy', 'Medium', 'Hard')[self.level]}"

    @property
    def num_actions(self) -> int:
        return 4

    @property
    def default_params(self) -> EnvParams:
        return EnvParams(max_steps_in_episode=self.episode_length - 1)

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (10 * NUM_CELL_TYPES,), jnp.float32)

    def reset_env(self, key, params):
        grid, start, end = random_maze(key, self.cells)
        grid = grid.at[start[0], start[1]].set(START).at[end[0], end[1]].set(self._goal_value)
        explored = jnp.zeros_like(grid, dtype=bool).at[start[0], start[1]].set(True)
        state = EnvState(grid=grid, pos=start, explored=explored, time=0)
        return self.get_obs(state, NO_ACTION), state

    def move(self, state: EnvState, action) -> jax.Array:
        new = jnp.clip(state.pos + MOVES[action], 0, self.size - 1)
        return jnp.where(state.grid[new[0], new[1]] == WALL, state.pos, new)

    def get_obs(self, state: EnvState, action) -> jax.Array:
        top_left = jnp.maximum(state.pos - 1, 0)
        padded = jnp.pad(state.grid, ((0, 2), (0, 2)), constant_values=WALL)
        view = jax.lax.dynamic_slice(padded, (top_left[0], top_left[1]), (3, 3))
        # blocks past pos + 1 are padding (the reference's view is shifted at row/col 0)
        rows_ok = top_left[0] + jnp.arange(3) <= state.pos[0] + 1
        cols_ok = top_left[1] + jnp.arange(3) <= state.pos[1] + 1
        view = jnp.where(rows_ok[:, None] & cols_ok[None, :], view, WALL)
        values = jnp.append(view.ravel(), jnp.asarray(action, jnp.int32))
        return jax.nn.one_hot(values, NUM_CELL_TYPES, dtype=jnp.float32).ravel()

    def _advance(self, state: EnvState, pos: jax.Array) -> EnvState:
        return state.replace(pos=pos, explored=state.explored.at[pos[0], pos[1]].set(True),
                             time=state.time + 1)


class LabyrinthEscape(_Labyrinth):
    """Find the exit of a random maze (POPGym LabyrinthEscape).

    Reward: -1/1024 per step, plus 1 on the step that reaches the exit (block value 3), which
    terminates the episode; truncated after 1023 steps. Levels and obs: see the module doc.
    """

    _env_name = "LabyrinthEscape"
    _goal_value = GOAL

    def step_env(self, key, state, action, params):
        state = self._advance(state, self.move(state, action))
        at_goal = state.grid[state.pos[0], state.pos[1]] == GOAL
        reward = self.step_penalty + jnp.where(at_goal, 1.0, 0.0)
        return self.get_obs(state, action), state, reward.astype(jnp.float32), at_goal, {}


class LabyrinthExplore(_Labyrinth):
    """Visit every open block of a random maze (POPGym LabyrinthExplore).

    Reward: 1/N for a step onto a block not yet visited (N: open blocks of the maze, the
    start opening excluded), else -1/1024. Terminates once every non-wall block has been
    visited; truncated after 1023 steps. The end opening stays a wall. Levels and obs: see
    the module doc.
    """

    _env_name = "LabyrinthExplore"

    def step_env(self, key, state, action, params):
        pos = self.move(state, action)
        new_block = ~state.explored[pos[0], pos[1]]
        state = self._advance(state, pos)
        num_free = (state.grid == FREE).sum()
        reward = jnp.where(new_block, 1.0 / num_free, self.step_penalty).astype(jnp.float32)
        done = jnp.all(state.explored == (state.grid != WALL))
        return self.get_obs(state, action), state, reward, done, {}
