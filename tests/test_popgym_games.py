"""Fidelity tests: POPGym Battleship, Minesweeper and MultiarmedBandit ports vs the numpy reference.

Each port is driven step for step beside ``popgym`` after copying the reference's hidden
state (board, mines, arm probabilities) into the port's ``EnvState``; where the reference's
own randomness cannot be aligned (arm payouts, board generation) the laws are compared.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hystax.envs import check_env, make
from hystax.envs.popgym import battleship, minesweeper, multiarmed_bandit

import hystax  # noqa: F401 -- sets XLA flags before jax starts
from hystax.core.errors import HystaxError

gym = pytest.importorskip("gymnasium")
ref_battleship = pytest.importorskip("popgym.envs.battleship")
ref_minesweeper = pytest.importorskip("popgym.envs.minesweeper")
ref_bandit = pytest.importorskip("popgym.envs.multiarmed_bandit")

LEVELS = ("easy", "medium", "hard")
KEY = jax.random.PRNGKey(0)

REFERENCES = {
    "Battleship": lambda level: getattr(ref_battleship, f"Battleship{level.capitalize()}")(),
    "Minesweeper": lambda level: getattr(ref_minesweeper, f"MineSweeper{level.capitalize()}")(),
    "MultiarmedBandit": lambda level: getattr(
        ref_bandit, f"MultiarmedBandit{level.capitalize()}")(),
}


@functools.cache
def port(name: str, level: str):
    """One env instance (and params) per name and level, so jitted functions are reused."""
    return make(f"popgym/{name}{level.capitalize()}")


@functools.cache
def stepper(name: str, level: str):
    """``env.step`` without the auto-reset (cheaper to compile): obs, state, reward, term, trunc."""
    env, params = port(name, level)

    def step(key, state, action):
        obs, state, reward, term, _ = env.step_env(key, state, action, params)
        return obs, state, reward, term, env.is_truncated(state, params)
    return jax.jit(step)


def flat_obs(ref, obs) -> np.ndarray:
    return gym.spaces.flatten(ref.observation_space, obs).astype(np.float32)


def step_both(ref, step, state, ref_action, action, key):
    """Step reference and port with the same action; compare everything; return new state."""
    ref_obs, ref_reward, ref_term, ref_trunc, _ = ref.step(ref_action)
    obs, new_state, reward, term, trunc = step(key, state, action)
    np.testing.assert_array_equal(np.asarray(obs), flat_obs(ref, ref_obs))
    np.testing.assert_allclose(float(reward), ref_reward, rtol=1e-6, atol=1e-8)
    assert (bool(term), bool(trunc)) == (bool(ref_term), bool(ref_trunc))
    return new_state, ref_reward, bool(ref_term or ref_trunc)


# --- API, spaces ---------------------------------------------------------------------------


# check_env compiles reset/step several times (~2 s per env and level): the default run
# checks each env at one level, rotating; ``-m slow`` checks every level.
CHECK_LEVEL = {name: LEVELS[i % len(LEVELS)] for i, name in enumerate(REFERENCES)}


@pytest.mark.parametrize("name", list(REFERENCES))
@pytest.mark.parametrize("level", LEVELS)
def test_check_env_and_spaces(name, level):
    env, params = port(name, level)
    if level == CHECK_LEVEL[name]:  # all levels: test_check_env_every_level (slow)
        check_env(env, params, num_steps=16)
    assert env.name == f"popgym/{name}{level.capitalize()}"
    ref = REFERENCES[name](level)
    flat = gym.spaces.flatten_space(ref.observation_space)
    space = env.observation_space(params)
    assert tuple(space.shape) == flat.shape
    np.testing.assert_array_equal(np.broadcast_to(space.low, flat.shape), flat.low)
    np.testing.assert_array_equal(np.broadcast_to(space.high, flat.shape), flat.high)
    space = ref.action_space
    n = int(np.prod(space.nvec)) if hasattr(space, "nvec") else space.n
    assert env.action_space(params).n == env.num_actions == n


@pytest.mark.parametrize("cls", [battleship.Battleship, minesweeper.Minesweeper,
                                 multiarmed_bandit.MultiarmedBandit])
def test_bad_level_raises(cls):
    assert cls("HARD").level == "hard"
    with pytest.raises(HystaxError):
        cls("impossible")


# --- Battleship ----------------------------------------------------------------------------


def battleship_state(ref) -> battleship.EnvState:
    board = jnp.asarray(ref.board.ravel() == 1)
    return battleship.EnvState(board=board, guesses=jnp.zeros_like(board), hits=jnp.int32(0),
                               time=jnp.int32(0))


def play_battleship(ref, step, seed, actions):
    """Reset ``ref`` with ``seed``, copy its board, play flat ``actions`` until the episode ends."""
    ref.reset(seed=seed)
    state, size = battleship_state(ref), ref.board_size
    total, steps = 0.0, 0
    for t, action in enumerate(actions):
        state, reward, done = step_both(ref, step, state, np.array(divmod(action, size)),
                                        action, KEY)
        total, steps = total + reward, t + 1
        if done:
            break
    assert done, "episode did not end"
    return total, steps


@pytest.mark.parametrize("level", LEVELS)
def test_battleship_step_for_step(level):
    ref, step = REFERENCES["Battleship"](level), stepper("Battleship", level)
    cells = ref.board_size ** 2
    rng = np.random.default_rng(1)
    for seed in range(2):
        # random shots with repeats: runs to truncation at size**2 steps
        _, steps = play_battleship(ref, step, seed, rng.integers(cells, size=cells))
        assert steps == cells
        # every cell once, in random order: ends when the last ship cell is hit
        total, steps = play_battleship(ref, step, seed, rng.permutation(cells))
        assert ref.hits == ref.needed_hits and total > -1.0


@pytest.mark.parametrize("level", LEVELS)
def test_battleship_oracle_and_sweep_returns(level):
    ref, step = REFERENCES["Battleship"](level), stepper("Battleship", level)
    cells = ref.board_size ** 2
    ref.reset(seed=3)
    ships = np.flatnonzero(ref.board.ravel())
    # the oracle shoots only ship cells: return 1 (the best) in 12 steps, in both
    total, steps = play_battleship(ref, step, 3, ships)
    assert steps == len(ships) == 12
    np.testing.assert_allclose(total, 1.0, atol=1e-9)
    # sweeping the board row by row, ship cells last: return 0 at exactly size**2 steps
    order = np.concatenate([np.setdiff1d(np.arange(cells), ships), ships])
    total, steps = play_battleship(ref, step, 3, order)
    assert steps == cells
    np.testing.assert_allclose(total, 0.0, atol=1e-9)


def test_battleship_board_law_matches_reference():
    """Ship placement: same per-cell occupancy and same share of horizontal neighbours."""
    env, params = port("Battleship", "easy")
    ref = REFERENCES["Battleship"]("easy")
    n, size = 2000, ref.board_size
    ref_boards = []
    for seed in range(n):
        ref.reset(seed=seed)
        ref_boards.append(ref.board.copy())
    ref_boards = np.stack(ref_boards)
    obs, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(KEY, n), params)
    assert (np.asarray(obs) == flat_obs(ref, ref.reset(seed=0)[0])).all()
    boards = np.asarray(states.board).reshape(n, size, size).astype(np.int8)
    assert (boards.reshape(n, -1).sum(1) == 12).all()  # no overlaps
    np.testing.assert_allclose(boards.mean(0), ref_boards.mean(0), atol=0.05)

    def horizontal_share(b):
        across = (b[:, :, 1:] & b[:, :, :-1]).sum()
        return across / (across + (b[:, 1:, :] & b[:, :-1, :]).sum())

    np.testing.assert_allclose(horizontal_share(boards), horizontal_share(ref_boards), atol=0.03)


# --- Minesweeper ---------------------------------------------------------------------------


def play_minesweeper(ref, env, step, seed, actions):
    ref.reset(seed=seed)
    mines = ref.hidden_grid == ref_minesweeper.HiddenSquare.MINE
    state = env.state_from_mines(jnp.asarray(mines))
    np.testing.assert_array_equal(np.asarray(state.counts), ref.neighbor_grid.ravel())
    cols = ref.dims[1]
    total, steps = 0.0, 0
    for t, action in enumerate(actions):
        state, reward, done = step_both(ref, step, state, np.array(divmod(action, cols)),
                                        action, KEY)
        total, steps = total + reward, t + 1
        if done:
            break
    assert done, "episode did not end"
    return total, steps, mines.ravel()


@pytest.mark.parametrize("level", LEVELS)
def test_minesweeper_step_for_step(level):
    env, _ = port("Minesweeper", level)
    ref, step = REFERENCES["Minesweeper"](level), stepper("Minesweeper", level)
    cells = ref.dims[0] * ref.dims[1]
    rng = np.random.default_rng(2)
    for seed in range(4):  # random clicks: repeats, mines
        play_minesweeper(ref, env, step, seed, rng.integers(cells, size=cells))
    # safe cells only, one repeated: no mine, no win, truncated at max_episode_length
    ref.reset(seed=9)
    safe = rng.permutation(np.flatnonzero(ref.hidden_grid.ravel() == 0))
    _, steps, _ = play_minesweeper(ref, env, step, 9, np.concatenate([safe[:1], safe]))
    assert steps == ref.max_episode_length and not np.all(ref.hidden_grid != 0)


@pytest.mark.parametrize("level", LEVELS)
def test_minesweeper_win_is_reachable(level):
    """Revealing every safe cell once wins (terminated, not truncated) with return 1."""
    env, _ = port("Minesweeper", level)
    ref, step = REFERENCES["Minesweeper"](level), stepper("Minesweeper", level)
    rng = np.random.default_rng(3)
    for seed in range(2):
        ref.reset(seed=seed)
        safe = rng.permutation(np.flatnonzero(ref.hidden_grid.ravel() == 0))
        total, steps, _ = play_minesweeper(ref, env, step, seed, safe)
        assert steps == ref.max_episode_length == len(safe)
        np.testing.assert_allclose(total, 1.0, atol=1e-9)


def test_minesweeper_hard_counts_fill_observation():
    """A cell with nine mines around it gives count 9, the last entry of the obs (hard)."""
    env, _ = port("Minesweeper", "hard")
    mines = np.zeros((8, 8), bool)
    mines[:3, :3] = True
    state = env.state_from_mines(jnp.asarray(mines))
    obs, _, reward, term, _ = stepper("Minesweeper", "hard")(KEY, state, 1 * 8 + 1)
    assert obs.shape == (10,) and obs[9] == 1.0 and bool(term)
    np.testing.assert_allclose(float(reward), -0.5 - 1 / 54, rtol=1e-6)


def test_minesweeper_mine_law():
    env, params = port("Minesweeper", "medium")
    n = 3000
    obs, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(jax.random.split(KEY, n), params)
    ref = REFERENCES["Minesweeper"]("medium")
    assert (np.asarray(obs) == flat_obs(ref, ref.reset(seed=0)[0])).all()
    mines = np.asarray(states.mines)
    assert (mines.sum(1) == env.num_mines).all()
    np.testing.assert_allclose(mines.mean(0), env.num_mines / env.num_cells, atol=0.04)
    # counts: a brute-force 3x3 sum over a few boards
    for board, counts in zip(mines[:5].reshape(5, 6, 6), np.asarray(states.counts)[:5]):
        padded = np.pad(board, 1).astype(int)
        brute = [padded[i:i + 3, j:j + 3].sum() for i in range(6) for j in range(6)]
        np.testing.assert_array_equal(counts, brute)


# --- MultiarmedBandit ----------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
def test_bandit_step_for_step_with_sure_arms(level):
    """Arms that always / never pay make the reference deterministic: compare every step."""
    ref, step = REFERENCES["MultiarmedBandit"](level), stepper("MultiarmedBandit", level)
    rng = np.random.default_rng(4)
    ref.reset(seed=0)
    ref.bandits = (rng.random(ref.num_bandits) < 0.5).astype(np.float32)
    state = multiarmed_bandit.EnvState(probs=jnp.asarray(ref.bandits), time=jnp.int32(0))
    for t, action in enumerate(rng.integers(ref.num_bandits, size=ref.max_episode_length)):
        state, _, done = step_both(ref, step, state, int(action), int(action),
                                   KEY)
        assert done == (t == ref.max_episode_length - 1)


@pytest.mark.parametrize("level", LEVELS)
def test_bandit_payout_law(level):
    """With the reference's arm probabilities copied in, each arm pays at its rate."""
    env, params = port("MultiarmedBandit", level)
    ref = REFERENCES["MultiarmedBandit"](level)
    ref.reset(seed=5)
    probs = ref.bandits.copy()
    state = multiarmed_bandit.EnvState(probs=jnp.asarray(probs), time=jnp.int32(0))
    n = 400
    arms = np.repeat(np.arange(ref.num_bandits), n)
    step = jax.jit(jax.vmap(env.step_env, in_axes=(0, None, 0, None)))
    obs = np.asarray(step(jax.random.split(KEY, len(arms)), state, arms, params)[0])
    rates = obs[:, 1].reshape(ref.num_bandits, n).mean(1)
    tol = 4 * np.sqrt(probs * (1 - probs) / n) + 1e-3
    assert (np.abs(rates - probs) <= tol).all()


def test_bandit_arm_law():
    env, params = port("MultiarmedBandit", "hard")
    obs, states = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(KEY, 200), params)
    ref = REFERENCES["MultiarmedBandit"]("hard")
    assert (np.asarray(obs) == flat_obs(ref, ref.reset(seed=0)[0])).all()
    probs = np.asarray(states.probs)
    assert probs.min() >= 0.0 and probs.max() < 1.0
    np.testing.assert_allclose(probs.mean(), 0.5, atol=0.02)
    np.testing.assert_allclose(probs.std(), np.sqrt(1 / 12), atol=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(REFERENCES))
@pytest.mark.parametrize("level", LEVELS)
def test_check_env_every_level(name, level):
    env, params = port(name, level)
    check_env(env, params, num_steps=16)
