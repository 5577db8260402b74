"""Episodes as GIFs: small matplotlib renderers for envs that have none, and the GIF writer.

>>> write_episode_gif(env, states, "episode.gif", title="ppo seed 0")

``states`` is the innermost env's ``EnvState`` as numpy with a leading time axis ``[T, ...]``:
the state before each step of one episode. A renderer ``(ax, state_t, env) -> None`` draws one
state on a matplotlib axes; ``RENDERERS`` maps the innermost env's class name to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
from gymnax.wrappers.purerl import GymnaxWrapper

from hystax.core.errors import HystaxError, is_int, require
from hystax.envs.popgym.labyrinth import FREE, GOAL, START, WALL
from hystax.figure import new_figure

FIGSIZE = (3.0, 3.0)  # inches
DPI = 64              # 192 x 192 pixels a frame


def innermost(env: Any) -> Any:
    """The base env under any wrappers (``FlattenObservation``, ``PreviousActionReward``,
    ``BatchEnv``, ``EpisodeStatistics``, ...: every gymnax ``GymnaxWrapper`` keeps it in ``_env``).

    ``MetaEnv`` is an env of its own (its state is a ``MetaState``), so it is not unwrapped.
    """
    while isinstance(env, GymnaxWrapper):
        env = env._env
    return env


def can_render(env: Any) -> bool:
    """Whether ``write_episode_gif`` can draw ``env`` (wrapped or not)."""
    return type(innermost(env)).__name__ in RENDERERS


# ---- classic control (gymnax's, and POPGym's partially observed versions of them) ----

def draw_cartpole(ax, state, env) -> None:
    """Track, cart and pole (``x``, ``theta``; theta > 0 leans right), limits at +-x_threshold."""
    from matplotlib.patches import Rectangle
    params = env.default_params
    limit, pole = float(params.x_threshold), 2.0 * float(params.length)
    x, theta = float(state.x), float(state.theta)
    ax.set_xlim(-limit - 0.6, limit + 0.6)
    ax.set_ylim(-1.2, pole + 1.2)
    ax.set_yticks([])
    ax.axhline(0.0, color="0.3", lw=1)
    for edge in (-limit, limit):
        ax.axvline(edge, color="tab:red", lw=1, ls="--")
    ax.add_patch(Rectangle((x - 0.25, -0.15), 0.5, 0.3, color="0.25", zorder=2))
    ax.plot([x, x + pole * np.sin(theta)], [0.0, pole * np.cos(theta)], color="tab:orange",
            lw=4, solid_capstyle="round", zorder=3)
    ax.set_xlabel(f"x {x:+.2f}   theta {theta:+.2f} rad")


def draw_pendulum(ax, state, env) -> None:
    """A unit rod from the pivot (``theta`` = 0 up, positive counter-clockwise, as gymnasium)."""
    theta = float(state.theta)
    ax.set_xlim(-1.3, 1.3)
    ax.set_ylim(-1.3, 1.3)
    ax.plot([0.0, -np.sin(theta)], [0.0, np.cos(theta)], color="tab:red", lw=5,
            solid_capstyle="round")
    ax.plot([0.0], [0.0], "o", color="0.2", ms=6)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"theta {(theta + np.pi) % (2 * np.pi) - np.pi:+.2f} rad")


def draw_acrobot(ax, state, env) -> None:
    """Two links hanging down at angles 0 (as gymnasium draws it); dashed: the goal height."""
    params = env.default_params
    l1, l2 = float(params.link_length_1), float(params.link_length_2)
    a1, a12 = float(state.joint_angle1), float(state.joint_angle1 + state.joint_angle2)
    xs = [0.0, l1 * np.sin(a1), l1 * np.sin(a1) + l2 * np.sin(a12)]
    ys = [0.0, -l1 * np.cos(a1), -l1 * np.cos(a1) - l2 * np.cos(a12)]
    reach = 1.1 * (l1 + l2)
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-reach, reach)
    ax.axhline(1.0, color="0.4", lw=1, ls="--")  # the tip above this ends the episode
    ax.plot(xs, ys, "-o", color="tab:blue", lw=4, ms=6, mfc="tab:orange")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"tip height {ys[2]:+.2f} (goal > 1)")


# ---- POPGym grid games ----

def _grid(ax, rgb: np.ndarray) -> None:
    """Show an (h, w, 3) colour image cell by cell with thin grid lines, no ticks."""
    h, w, _ = rgb.shape
    ax.imshow(rgb, interpolation="nearest")
    ax.hlines(np.arange(-0.5, h), -0.5, w - 0.5, color="0.6", lw=0.5)
    ax.vlines(np.arange(-0.5, w), -0.5, h - 0.5, color="0.6", lw=0.5)
    ax.set_xticks([])
    ax.set_yticks([])


def _colours(codes: np.ndarray, palette: dict[int, str]) -> np.ndarray:
    """(h, w) int codes -> (h, w, 3) RGB floats through ``palette``."""
    from matplotlib.colors import to_rgb
    table = np.zeros((max(palette) + 1, 3))
    for code, colour in palette.items():
        table[code] = to_rgb(colour)
    return table[codes]


def draw_battleship(ax, state, env) -> None:
    """Water and ships (grey) not fired at; misses (white with a dot); hits (red)."""
    n = env.board_size
    board = np.asarray(state.board, bool).reshape(n, n)
    fired = np.asarray(state.guesses, bool).reshape(n, n)
    codes = np.where(fired, np.where(board, 3, 2), np.where(board, 1, 0))
    _grid(ax, _colours(codes, {0: "#9ecae1", 1: "#636363", 2: "white", 3: "#d62728"}))
    rows, cols = np.nonzero(fired & ~board)
    ax.plot(cols, rows, ".", color="0.3", ms=4)
    ax.set_xlabel(f"hits {int(state.hits)}/{env.needed_hits}   shots {int(fired.sum())}")


def draw_minesweeper(ax, state, env) -> None:
    """Hidden cells grey (mines marked *, red once one exploded); revealed cells show their count."""
    h, w = env.dims
    mines = np.asarray(state.mines, bool).reshape(h, w)
    viewed = np.asarray(state.viewed, bool).reshape(h, w)
    counts = np.asarray(state.counts).reshape(h, w)
    exploded = bool(state.exploded)
    codes = np.where(viewed, 1, np.where(mines & exploded, 2, 0))
    _grid(ax, _colours(codes, {0: "#bdbdbd", 1: "white", 2: "#d62728"}))
    for r, c in zip(*np.nonzero(viewed)):
        ax.text(c, r, str(counts[r, c]), ha="center", va="center", fontsize=11)
    for r, c in zip(*np.nonzero(mines)):
        ax.text(c, r, "*", ha="center", va="center", fontsize=14, color="0.1")
    status = "exploded" if exploded else f"revealed {int(viewed.sum())}/{env.max_episode_length}"
    ax.set_xlabel(status)


def draw_labyrinth(ax, state, env) -> None:
    """Walls dark, free blocks white, explored ones yellow, start green, exit gold, agent blue."""
    grid = np.asarray(state.grid)
    explored = np.asarray(state.explored, bool)
    codes = np.select([grid == WALL, grid == START, grid == GOAL, explored],
                      [1, 2, 3, 4], default=FREE)
    _grid(ax, _colours(codes, {FREE: "white", 1: "#252525", 2: "#74c476", 3: "#fdae6b",
                               4: "#fff3b0"}))
    row, col = np.asarray(state.pos)
    ax.plot([col], [row], "o", color="tab:blue", ms=7)
    ax.set_xlabel(f"explored {int(explored.sum())}/{int((grid != WALL).sum())}")


RENDERERS = {
    "CartPole": draw_cartpole,
    "PositionOnlyCartPole": draw_cartpole,
    "VelocityOnlyCartPole": draw_cartpole,
    "NoisyPositionOnlyCartPole": draw_cartpole,
    "Pendulum": draw_pendulum,
    "PositionOnlyPendulum": draw_pendulum,
    "NoisyPositionOnlyPendulum": draw_pendulum,
    "Acrobot": draw_acrobot,
    "Battleship": draw_battleship,
    "Minesweeper": draw_minesweeper,
    "LabyrinthEscape": draw_labyrinth,
    "LabyrinthExplore": draw_labyrinth,
}
"""Innermost env class name -> renderer ``(ax, state_t, env) -> None``."""


def frame_indices(num_states: int, max_frames: int) -> np.ndarray:
    """int [min(num_states, max_frames)]: evenly spread steps, first and last included."""
    count = min(num_states, max_frames)
    return np.round(np.linspace(0, num_states - 1, count)).astype(int)


def renderer(env: Any):
    """The renderer of ``env``'s innermost class; a one-line HystaxError for an env without."""
    name = type(innermost(env)).__name__
    if name not in RENDERERS:
        raise HystaxError(f"no renderer for env {name!r}; env classes that render: "
                          f"{', '.join(sorted(RENDERERS))}")
    return RENDERERS[name]


def draw_frame(ax, env: Any, state_t: Any, title: str, step: int) -> None:
    """Clear ``ax`` and draw one state of ``env`` (wrapped or not) titled ``title  step N``."""
    draw = renderer(env)
    ax.clear()
    ax.set_aspect("equal")
    draw(ax, state_t, innermost(env))
    ax.set_title(f"{title}  step {step}", fontsize=9)
    ax.xaxis.label.set_fontsize(8)
    ax.tick_params(labelsize=7)


def write_episode_gif(env: Any, states: Any, path, title: str, fps: int = 20,
                      max_frames: int = 200) -> Path:
    """Write one episode as an animated GIF, one frame per (subsampled) state.

    Args:
      env: the env (wrappers allowed); its innermost class must be in ``RENDERERS``.
      states: the innermost env's state pytree, numpy leaves ``[T, ...]``: frame t shows the
        state before step t.
      path: the ``.gif`` to write (parent folders are made).
      title: drawn above every frame, followed by the step number.
      fps: frames per second.
      max_frames: at most this many frames, spread evenly over the ``T`` states.

    Returns:
      ``path`` as a :class:`Path`.
    """
    from PIL import Image

    renderer(env)  # an env without one fails before any work
    name = type(innermost(env)).__name__
    require(is_int(fps) and fps >= 1, f"fps must be a positive int, got {fps!r}")
    require(is_int(max_frames) and max_frames >= 1,
            f"max_frames must be a positive int, got {max_frames!r}")
    leaves = [np.asarray(x) for x in jax.tree.leaves(states)]
    lengths = {x.shape[0] if x.ndim else None for x in leaves}
    require(len(lengths) == 1 and None not in lengths and lengths != {0},
            f"states need one leading time axis T >= 1 on every leaf, got leading sizes "
            f"{sorted(str(n) for n in lengths)}")
    fig, axes = new_figure(FIGSIZE)
    fig.set_dpi(DPI)
    ax = axes[0, 0]
    frames = []
    for i, t in enumerate(frame_indices(lengths.pop(), max_frames)):
        state_t = jax.tree.map(lambda x, t=t: np.asarray(x)[t], states)
        try:
            draw_frame(ax, env, state_t, title, int(t))
        except AttributeError as error:
            raise HystaxError(f"states must be {name}'s EnvState (the innermost env's), got "
                              f"{type(states).__name__} ({error})") from None
        if i == 0:
            fig.tight_layout()  # once: the frames share the layout (and it is slow)
        fig.canvas.draw()
        frames.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB"))
    fig.clear()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=round(1000 / fps),
                   loop=0)
    return out
