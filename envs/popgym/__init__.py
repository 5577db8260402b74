"""POPGym's 16 memory environments in pure JAX (gymnax 1.0 API), at Easy/Medium/Hard.

Registered as ``popgym/<Name><Level>``, e.g. ``hystax.make("popgym/RepeatPreviousEasy")``.
Each port lives in its own module (``envs/popgym/<snake_name>.py``) and follows the numpy
reference package ``popgym`` (observations, rewards scaled so episode returns lie in
[-1, 1], episode ends, spaces); ``tests/test_popgym_*.py`` drive both with the same actions.

A port's class takes the level as its one constructor argument:
``RepeatPrevious("easy")``; an unknown level raises :class:`HystaxError`.
"""

from __future__ import annotations

import importlib

from hystax.core.errors import require

LEVELS = ("easy", "medium", "hard")

# Name -> module under hystax.envs.popgym that defines a class of that name.
ENVS: dict[str, str] = {
    "Autoencode": "autoencode",
    "Battleship": "battleship",
    "Concentration": "concentration",
    "CountRecall": "count_recall",
    "HigherLower": "higher_lower",
    "Minesweeper": "minesweeper",
    "MultiarmedBandit": "multiarmed_bandit",
    "RepeatFirst": "repeat_first",
    "RepeatPrevious": "repeat_previous",
    "PositionOnlyCartPole": "cartpole",
    "VelocityOnlyCartPole": "cartpole",
    "NoisyPositionOnlyCartPole": "cartpole",
    "PositionOnlyPendulum": "pendulum",
    "NoisyPositionOnlyPendulum": "pendulum",
    "LabyrinthEscape": "labyrinth",
    "LabyrinthExplore": "labyrinth",
}


def level_index(level: str, env_name: str) -> int:
    """0, 1, 2 for "easy", "medium", "hard" (case-insensitive); anything else raises."""
    require(isinstance(level, str) and level.lower() in LEVELS,
            f"unknown level {level!r} for POPGym env {env_name!r} (valid: {', '.join(LEVELS)})")
    return LEVELS.index(level.lower())


def env_class(name: str) -> type:
    """The port's class for ``name`` (imported on first use)."""
    module = importlib.import_module(f"hystax.envs.popgym.{ENVS[name]}")
    return getattr(module, name)


def _factory(name: str, level: str):
    def make_env():
        return env_class(name)(level)
    make_env.__name__ = f"{name}{level.capitalize()}"
    make_env.__doc__ = f"POPGym {name} at level {level!r}."
    return make_env


def register_all() -> None:
    """Register ``popgym/<Name><Level>`` for all 16 envs and 3 levels (idempotent)."""
    from hystax.envs.registry import is_registered, register
    for name in ENVS:
        for level in LEVELS:
            env_id = f"popgym/{name}{level.capitalize()}"
            if not is_registered(env_id):
                register(env_id, _factory(name, level))
