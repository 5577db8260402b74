"""LabyrinthEscape / LabyrinthExplore against the numpy reference (popgym 1.0.7 + mazelib)."""

from __future__ import annotations

import functools
import warnings
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hystax.envs import check_env
from hystax.envs.popgym.labyrinth import EnvState, LabyrinthEscape, LabyrinthExplore

import hystax
from hystax.core.errors import HystaxError

popgym = pytest.importorskip("popgym")
pytest.importorskip("mazelib")
gym = pytest.importorskip("gymnasium")
from popgym.envs import labyrinth_escape, labyrinth_explore

LEVELS = ("easy", "medium", "hard")
CLASSES = {"LabyrinthEscape": LabyrinthEscape, "LabyrinthExplore": LabyrinthExplore}
REFERENCE = {"LabyrinthEscape": labyrinth_escape, "LabyrinthExplore": labyrinth_explore}
CASES = [(name, level) for name in CLASSES for level in LEVELS]
MOVES = ((0, -1), (0, 1), (-1, 0), (1, 0))  # left, right, up, down
EPISODE = 1023  # the reference truncates at step 1023


@functools.cache
def port(name: str, level: str):
    return CLASSES[name](level)


@functools.cache
def reference(name: str, level: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(REFERENCE[name], f"{name}{level.capitalize()}")()


def ref_reset(ref, seed: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ref.reset(seed=seed)[0]


def flat(ref, obs) -> np.ndarray:
    return gym.spaces.flatten(ref.observation_space, obs).astype(np.float32)


def injected(ref) -> EnvState:
    """The reference's current maze, agent and visited blocks as an EnvState."""
    return EnvState(grid=jnp.asarray(ref.maze.grid, jnp.int32),
                    pos=jnp.asarray(ref.position, jnp.int32),
                    explored=jnp.asarray(ref.explored == 1), time=jnp.int32(ref.curr_step))


@functools.cache
def rollout(name: str, level: str):
    """jit: (state, actions[EPISODE], key) -> per-step final_obs, reward, terminated, truncated."""
    env = port(name, level)
    params = env.default_params

    def run(state, actions, key):
        def body(state, xs):
            _, state, reward, term, trunc, info = env.step(xs[1], state, xs[0], params)
            return state, (info["final_observation"], reward, term, trunc)
        return jax.lax.scan(body, state, (actions, jax.random.split(key, EPISODE)))[1]
    return jax.jit(run)


@functools.cache
def batch_reset(name: str, level: str):
    """200 initial states of the port (numpy), from one vmapped reset."""
    env = port(name, level)
    keys = jax.random.split(jax.random.PRNGKey(1), 200)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, env.default_params)
    return jax.tree.map(np.asarray, states)


def compare_episode(name, level, seed, actions):
    """Step the reference and the port with ``actions`` until the reference's episode ends."""
    ref = reference(name, level)
    obs = ref_reset(ref, seed)
    state = injected(ref)
    np.testing.assert_array_equal(port(name, level).get_obs(state, 4), flat(ref, obs))
    actions = np.concatenate([actions, np.random.default_rng(seed).integers(0, 4, EPISODE)])
    outs = [np.asarray(x) for x in rollout(name, level)(
        state, jnp.asarray(actions[:EPISODE], jnp.int32), jax.random.PRNGKey(seed))]
    total = 0.0
    for t in range(EPISODE):
        obs, reward, term, trunc, _ = ref.step(int(actions[t]))
        where = f"{name}{level} seed {seed} step {t}"
        np.testing.assert_array_equal(outs[0][t], flat(ref, obs), err_msg=where)
        np.testing.assert_allclose(outs[1][t], reward, rtol=1e-6, atol=1e-9, err_msg=where)
        assert (bool(outs[2][t]), bool(outs[3][t])) == (term, trunc), where
        total += reward
        if term or trunc:
            return t + 1, total, term
    raise AssertionError(f"{name}{level} seed {seed}: reference episode did not end")


# --- API ----------------------------------------------------------------------------------------


# check_env compiles reset/step several times (~2 s per env and level): the default run
# checks each env at one level, rotating; ``-m slow`` checks every level.
CHECK_LEVEL = {name: LEVELS[i % len(LEVELS)] for i, name in enumerate(CLASSES)}


@pytest.mark.parametrize("name,level", CASES)
def test_check_env_make_and_spaces(name, level):
    env = port(name, level)
    if level == CHECK_LEVEL[name]:  # all levels: test_check_env_every_level (slow)
        check_env(env)
    made, params = hystax.make(f"popgym/{name}{level.capitalize()}")
    assert type(made) is CLASSES[name] and made.name == f"popgym/{name}{level.capitalize()}"
    assert params == env.default_params
    ref = reference(name, level)
    ref_obs = gym.spaces.flatten_space(ref.observation_space)
    space = env.observation_space(env.default_params)
    assert space.shape == ref_obs.shape == (50,) and space.dtype == jnp.float32
    assert env.action_space().n == ref.action_space.n == env.num_actions == 4
    assert env.default_params.max_steps_in_episode == ref.max_episode_length - 1
    ref_reset(ref, 0)
    assert ref.maze.grid.shape == (env.size, env.size) == (2 * ref.maze_dims[0] + 1,) * 2


def test_bad_level_raises():
    for cls in CLASSES.values():
        with pytest.raises(HystaxError):
            cls("impossible")


# --- step for step on the reference's mazes -----------------------------------------------------


@pytest.mark.parametrize("name,level", CASES)
def test_random_actions_step_for_step(name, level):
    for seed in range(3):
        actions = np.random.default_rng(100 + seed).integers(0, 4, EPISODE)
        compare_episode(name, level, seed, actions)


def shortest_path(grid: np.ndarray, start, goal) -> list[int]:
    """BFS actions from start to goal over non-wall blocks."""
    parent = {tuple(start): None}
    queue = deque([tuple(start)])
    while queue:
        p = queue.popleft()
        for a, (dy, dx) in enumerate(MOVES):
            q = (p[0] + dy, p[1] + dx)
            if (0 <= q[0] < grid.shape[0] and 0 <= q[1] < grid.shape[1] and grid[q] != 1
                    and q not in parent):
                parent[q] = (p, a)
                queue.append(q)
    path, p = [], tuple(goal)
    while parent[p] is not None:
        p, a = parent[p]
        path.append(a)
    return path[::-1]


def cover_tour(grid: np.ndarray, start) -> list[int]:
    """Shortest walk from ``start`` visiting every block of a tree maze (deepest branch last)."""
    def children(p, parent):
        for a, (dy, dx) in enumerate(MOVES):
            q = (p[0] + dy, p[1] + dx)
            if (0 <= q[0] < grid.shape[0] and 0 <= q[1] < grid.shape[1] and grid[q] != 1
                    and q != parent):
                yield a, q

    @functools.cache
    def height(p, parent):
        return max((1 + height(q, p) for _, q in children(p, parent)), default=0)

    actions = []

    def visit(p, parent, last):
        kids = sorted(children(p, parent), key=lambda aq: height(aq[1], p))
        for i, (a, q) in enumerate(kids):
            final = last and i == len(kids) - 1
            actions.append(a)
            visit(q, p, final)
            if not final:
                actions.append(a ^ 1)  # back: left<->right, up<->down
    visit(tuple(start), None, True)
    return actions


@pytest.mark.parametrize("level", LEVELS)
def test_escape_oracle_reaches_best_return(level):
    ref = reference("LabyrinthEscape", level)
    for seed in (7, 8):
        ref_reset(ref, seed)
        path = shortest_path(ref.maze.grid, ref.position, ref.maze.end)
        steps, total, term = compare_episode("LabyrinthEscape", level, seed, np.array(path))
        assert term and steps == len(path)
        assert total == pytest.approx(1.0 - len(path) / 1024)


@pytest.mark.parametrize("level", LEVELS)
def test_explore_oracle_reaches_best_return(level):
    ref = reference("LabyrinthExplore", level)
    for seed in (7, 8):
        ref_reset(ref, seed)
        tour = cover_tour(ref.maze.grid, ref.position)
        free = int((ref.maze.grid == 0).sum())
        steps, total, term = compare_episode("LabyrinthExplore", level, seed, np.array(tour))
        assert term and steps == len(tour) < EPISODE
        assert total == pytest.approx(1.0 - (len(tour) - free) / 1024)


@pytest.mark.parametrize("level", LEVELS)
def test_oracles_on_generated_mazes(level):
    """Both oracles finish the port's own mazes (goal reachable, every block reachable)."""
    for name in CLASSES:
        states = batch_reset(name, level)
        for i in range(2):
            state = jax.tree.map(lambda x, i=i: jnp.asarray(x[i]), states)
            grid, start = states.grid[i], tuple(states.pos[i])
            if name == "LabyrinthEscape":
                goal = tuple(np.argwhere(grid == 3)[0])
                plan = shortest_path(grid, start, goal)
                best = 1.0 - len(plan) / 1024
            else:
                plan = cover_tour(grid, start)
                best = 1.0 - (len(plan) - (grid == 0).sum()) / 1024
            actions = np.concatenate([plan, np.zeros(EPISODE - len(plan), int)])
            _, reward, term, trunc = (np.asarray(x) for x in rollout(name, level)(
                state, jnp.asarray(actions, jnp.int32), jax.random.PRNGKey(i)))
            done = np.flatnonzero(term | trunc)[0]
            assert done == len(plan) - 1 and term[done]
            assert reward[: done + 1].sum() == pytest.approx(best, abs=1e-5)


# --- the generator ------------------------------------------------------------------------------


def tree_check(grid: np.ndarray, start) -> None:
    """Every non-wall block is reachable from start, with no loops (edges = blocks - 1)."""
    open_ = grid != 1
    edges = (open_[1:, :] & open_[:-1, :]).sum() + (open_[:, 1:] & open_[:, :-1]).sum()
    seen, queue = {tuple(start)}, deque([tuple(start)])
    while queue:
        p = queue.popleft()
        for dy, dx in MOVES:
            q = (p[0] + dy, p[1] + dx)
            if 0 <= q[0] < grid.shape[0] and 0 <= q[1] < grid.shape[1] and open_[q] \
                    and q not in seen:
                seen.add(q)
                queue.append(q)
    assert len(seen) == open_.sum(), "unreachable open blocks"
    assert edges == open_.sum() - 1, "maze has loops"


def side(p, size: int) -> int:
    """0 north, 1 south, 2 west, 3 east (popgym's order)."""
    return [p[0] == 0, p[0] == size - 1, p[1] == 0, p[1] == size - 1].index(True)


def maze_stats(grid: np.ndarray, start, end):
    """Dead-end rooms and start-to-end path length of a maze."""
    rooms = grid[1:-1:2, 1:-1:2] != 1
    inner = grid != 1
    degree = sum(np.roll(inner, s, axis) for s in (1, -1) for axis in (0, 1))[1:-1:2, 1:-1:2]
    dead_ends = int((rooms & (degree == 1)).sum())
    open_end = grid.copy()
    open_end[tuple(end)] = 0
    return dead_ends, len(shortest_path(open_end, start, end))


@pytest.mark.parametrize("level", LEVELS)
def test_generated_mazes_layout_and_perfect(level):
    for name in CLASSES:
        states = batch_reset(name, level)
        size = port(name, level).size
        n = size // 2
        for grid, pos, explored, time in zip(states.grid, states.pos, states.explored,
                                             states.time):
            assert grid.shape == (size, size) and time == 0
            start = tuple(pos)
            assert grid[start] == 2 and explored.sum() == 1 and explored[start]
            border = np.ones((size, size), bool)
            border[1:-1, 1:-1] = False
            ends = np.argwhere(border & (grid != 1))
            assert (grid[1:-1:2, 1:-1:2] == 0).all()  # every room carved
            assert (grid[::2, ::2] == 1).all()  # wall posts
            assert (grid[1:-1, 1:-1] == 0).sum() == 2 * n * n - 1
            if name == "LabyrinthEscape":
                assert len(ends) == 2 and (grid == 3).sum() == 1
                end = tuple(np.argwhere(grid == 3)[0])
                assert side(start, size) ^ 1 == side(end, size)  # opposite sides
                assert sum(end) % 2 == 1  # an odd position along its side
            else:
                assert len(ends) == 1 and (grid == 3).sum() == 0
            assert sum(start) % 2 == 1
            tree_check(grid, start)


@pytest.mark.parametrize("level", LEVELS)
def test_statistics_match_reference(level):
    """Start sides, start/end offsets, dead ends and solution length: port vs reference."""
    count = 200
    ref = reference("LabyrinthEscape", level)
    size = port("LabyrinthEscape", level).size
    ours, theirs = [], []
    states = batch_reset("LabyrinthEscape", level)
    for grid, pos in zip(states.grid, states.pos):
        end = tuple(np.argwhere(grid == 3)[0])
        ours.append((side(pos, size), max(pos) if min(pos) == 0 else min(pos),
                     max(end) if min(end) == 0 else min(end), *maze_stats(grid, pos, end)))
    for seed in range(1000, 1000 + count):
        ref_reset(ref, seed)
        grid, pos, end = ref.maze.grid, ref.position, ref.maze.end
        theirs.append((side(pos, size), max(pos) if min(pos) == 0 else min(pos),
                       max(end) if min(end) == 0 else min(end), *maze_stats(grid, pos, end)))
    ours, theirs = np.array(ours, float), np.array(theirs, float)
    # start side: each about a quarter of the mazes
    for data in (ours, theirs):
        assert (np.bincount(data[:, 0].astype(int), minlength=4) > count / 4 * 0.5).all()
    # offsets along the side, dead ends, path length: means within 4.5 standard errors
    for column in range(1, 5):
        a, b = ours[:, column], theirs[:, column]
        se = np.sqrt(a.var() / len(a) + b.var() / len(b)) + 1e-9
        assert abs(a.mean() - b.mean()) < 4.5 * se, (column, a.mean(), b.mean())


@pytest.mark.slow
@pytest.mark.parametrize("name,level", CASES)
def test_check_env_every_level(name, level):
    check_env(port(name, level))
