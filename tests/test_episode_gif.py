"""hystax.episode_gif: the renderers draw what the state says, and the GIF has one frame a step."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from hystax import envs
from hystax.core.errors import HystaxError
from hystax.envs.wrappers import (
    BatchEnv,
    EpisodeStatistics,
    FlattenObservation,
    PreviousActionReward,
)
from hystax.episode_gif import (
    FIGSIZE,
    RENDERERS,
    can_render,
    draw_frame,
    frame_indices,
    innermost,
    write_episode_gif,
)
from hystax.figure import new_figure

RENDERED = {"CartPole-v1": "CartPole", "Pendulum-v1": "Pendulum", "Acrobot-v1": "Acrobot",
            "popgym/BattleshipEasy": "Battleship", "popgym/MinesweeperEasy": "Minesweeper",
            "popgym/LabyrinthEscapeEasy": "LabyrinthEscape"}


@functools.cache
def rollout(name: str, steps: int = 5):
    """(env, params, states [T, ...]): one episode of uniform random actions, T <= steps + 1.

    ``reset`` and ``steps`` six-value ``step`` calls in one jitted scan (one compile per env);
    cached, so every test of an env shares the env object and its states.
    """
    env, params = envs.make(name)

    @jax.jit
    def run(key):
        _, first = env.reset(key, params)

        def step(state, key):
            act_key, step_key = jax.random.split(key)
            action = env.action_space(params).sample(act_key)
            _, state, _, terminated, truncated, _ = env.step(step_key, state, action, params)
            return state, (state, terminated | truncated)

        _, (states, done) = jax.lax.scan(step, first, jax.random.split(key, steps))
        return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, states), done

    states, done = jax.device_get(run(jax.random.PRNGKey(0)))
    # a step that ends the episode returns the next episode's first state: stop before it
    length = int(np.argmax(done)) + 1 if done.any() else steps + 1
    return env, params, jax.tree.map(lambda x: x[:length], states)


def first_state(name: str):
    """(env, the first state of ``rollout(name)``)."""
    env, _, states = rollout(name)
    return env, jax.tree.map(lambda x: x[0], states)


def axes_pixels(env, state) -> np.ndarray:
    """float [H, W, 3] in [0, 1]: the pixels inside the axes (no title or label) of one frame."""
    fig, axes = new_figure(FIGSIZE)
    ax = axes[0, 0]
    draw_frame(ax, env, state, "t", 0)
    fig.canvas.draw()
    box = ax.get_window_extent()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0
    height = rgb.shape[0]  # window y runs up, image rows run down
    return rgb[int(height - box.y1) + 2:int(height - box.y0) - 2, int(box.x0) + 2:int(box.x1) - 2]


def centre_of(rgb: np.ndarray, colour) -> np.ndarray:
    """(row, col) of the mean of the pixels within 0.1 of ``colour``, as fractions of the size."""
    from matplotlib.colors import to_rgb
    rows, cols = np.nonzero(np.abs(rgb - np.asarray(to_rgb(colour))).max(-1) < 0.1)
    assert rows.size, f"no {colour} pixels"
    return np.array([rows.mean() / rgb.shape[0], cols.mean() / rgb.shape[1]])


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_gif_has_a_frame_per_state_and_frames_follow_the_state(name, tmp_path):
    env, _, states = rollout(name)
    num_states = len(states.time)
    assert type(innermost(env)).__name__ == RENDERED[name] and can_render(env)
    path = write_episode_gif(env, states, tmp_path / "sub" / "ep.gif", title=name, fps=10)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == num_states
        assert gif.info["duration"] == 100
    first = jax.tree.map(lambda x: x[0], states)
    last = jax.tree.map(lambda x: x[-1], states)
    assert np.array_equal(axes_pixels(env, first), axes_pixels(env, first))  # nothing left over
    moved = any(not np.array_equal(a[0], a[-1]) for a in jax.tree.leaves(states)
                if a.dtype != np.int32 or a.ndim > 1)  # anything but the step counter
    assert num_states > 1 and moved
    assert not np.array_equal(axes_pixels(env, first), axes_pixels(env, last))


def test_cartpole_pole_leans_the_way_theta_says():
    env, state = first_state("CartPole-v1")
    right, upright, left = (
        centre_of(axes_pixels(env, state.replace(x=0.0, theta=theta)), "tab:orange")[1]
        for theta in (0.2, 0.0, -0.2))
    assert abs(upright - 0.5) < 0.01 and right > upright + 0.01 and left < upright - 0.01


def test_pendulum_up_at_zero_and_acrobot_hangs_down_at_zero():
    env, state = first_state("Pendulum-v1")
    up = centre_of(axes_pixels(env, state.replace(theta=0.0)), "tab:red")
    left = centre_of(axes_pixels(env, state.replace(theta=np.pi / 2)), "tab:red")
    assert up[0] < 0.45 and abs(up[1] - 0.5) < 0.05
    assert left[1] < 0.45 and abs(left[0] - 0.5) < 0.05  # positive theta: counter-clockwise
    env, state = first_state("Acrobot-v1")
    down = centre_of(axes_pixels(env, state.replace(joint_angle1=0.0, joint_angle2=0.0)),
                     "tab:blue")
    assert down[0] > 0.55 and abs(down[1] - 0.5) < 0.05
    _, axes = new_figure(FIGSIZE)
    draw_frame(axes[0, 0], env, state.replace(joint_angle1=0.0, joint_angle2=0.0), "t", 0)
    assert axes[0, 0].get_xlabel().startswith("tip height -2.00")  # the goal is a height > 1


def test_battleship_frame_changes_after_a_shot():
    env, state = first_state("popgym/BattleshipEasy")
    ship, water = np.flatnonzero(state.board)[0], np.flatnonzero(~state.board)[0]
    hit = state.replace(guesses=state.guesses.copy(), hits=1)
    hit.guesses[ship] = True
    miss = state.replace(guesses=state.guesses.copy())
    miss.guesses[water] = True
    before, after_hit, after_miss = (axes_pixels(env, s) for s in (state, hit, miss))
    assert not np.array_equal(before, after_hit) and not np.array_equal(before, after_miss)
    red = (after_hit[..., 0] > 0.7) & (after_hit[..., 1] < 0.3)
    assert red.any() and not ((before[..., 0] > 0.7) & (before[..., 1] < 0.3)).any()


def test_wrapped_envs_resolve_to_the_same_renderer(tmp_path):
    env, params, states = rollout("popgym/MinesweeperEasy")
    for wrapped in (PreviousActionReward(FlattenObservation(env), params),
                    BatchEnv(EpisodeStatistics(env), num_envs=2)):
        assert innermost(wrapped) is env and can_render(wrapped)
        path = write_episode_gif(wrapped, states, tmp_path / "w.gif", title="wrapped")
        with Image.open(path) as gif:
            assert gif.n_frames == len(states.time)


@pytest.mark.parametrize("name", ["popgym/RepeatPreviousEasy", "meta/CartPole"])
def test_env_without_a_renderer_raises(name, tmp_path):
    env, _ = envs.make(name)
    assert not can_render(env)
    with pytest.raises(HystaxError, match="env classes that render: .*Battleship.*CartPole"):
        write_episode_gif(env, {"time": np.zeros(3)}, tmp_path / "x.gif", title=name)
    assert not (tmp_path / "x.gif").exists()
    with pytest.raises(HystaxError, match="no renderer"):
        draw_frame(new_figure(FIGSIZE)[1][0, 0], env, None, "x", 0)


def test_max_frames_subsamples_evenly(tmp_path):
    env, state = first_state("Pendulum-v1")
    states = jax.tree.map(lambda x: np.stack([np.asarray(x)] * 25), state)
    states = states.replace(theta=np.linspace(-3.0, 3.0, 25), time=np.arange(25))
    with Image.open(write_episode_gif(env, states, tmp_path / "p.gif", "p", max_frames=7)) as gif:
        assert gif.n_frames == 7
    with Image.open(write_episode_gif(env, states, tmp_path / "q.gif", "q", max_frames=99)) as gif:
        assert gif.n_frames == 25
    picked = frame_indices(25, 7)
    assert picked[0] == 0 and picked[-1] == 24 and np.all(np.diff(picked) >= 3)
    assert list(frame_indices(3, 200)) == [0, 1, 2]


def test_bad_states_and_settings_raise_one_line_errors(tmp_path):
    env, params, _ = rollout("CartPole-v1")
    wrapped = EpisodeStatistics(env)
    with jax.disable_jit():  # a few small ops: cheaper run eagerly than compiled
        _, log_state = wrapped.reset(jax.random.PRNGKey(0), params)
    stacked = jax.tree.map(lambda x: np.asarray(x)[None], log_state)
    with pytest.raises(HystaxError, match="CartPole's EnvState"):
        write_episode_gif(wrapped, stacked, tmp_path / "a.gif", "a")  # the wrapper's state
    inner = stacked.env_state
    with pytest.raises(HystaxError, match="max_frames"):
        write_episode_gif(env, inner, tmp_path / "b.gif", "b", max_frames=0)
    with pytest.raises(HystaxError, match="leading time axis"):
        write_episode_gif(env, jax.tree.map(lambda x: x[0], inner), tmp_path / "c.gif", "c")


def test_every_renderer_names_a_registered_env_class():
    names = [n for n in envs.names() if n.startswith("popgym/") or n in RENDERED]
    classes = {type(envs.make(n)[0]).__name__ for n in names}
    assert set(RENDERERS) <= classes


@pytest.mark.parametrize("name, like", [("popgym/NoisyPositionOnlyCartPoleHard", "CartPole-v1"),
                                        ("popgym/PositionOnlyPendulumEasy", "Pendulum-v1"),
                                        ("popgym/LabyrinthExploreEasy",
                                         "popgym/LabyrinthEscapeEasy")])
def test_popgym_variants_draw_the_states_of_the_env_they_share_them_with(name, like):
    env, _ = envs.make(name)
    _, state = first_state(like)
    assert can_render(env)
    assert axes_pixels(env, state).std() > 0.05  # something drawn
