"""Agent families. Each family is a module with a frozen config dataclass and
``make_train(config, env, env_params) -> train(key, hparams=None) -> (state, metrics)``.

Families are imported lazily so that ``hystax --help`` and ``hystax list`` stay fast.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from hystax.core.errors import unknown_name

# agent name -> module holding `Config`, `make_algorithm` and `make_train`
_FAMILIES = {
    "dyna": "hystax.agents.dyna",
    "mbrl": "hystax.agents.mbrl",
    "ppo": "hystax.agents.ppo",
}


def names() -> list[str]:
    """Names of the registered agent families."""
    return sorted(_FAMILIES)


def get(name: str) -> ModuleType:
    """The module of agent family ``name`` (it defines ``Config``, ``make_algorithm``, ``make_train``)."""
    if name not in _FAMILIES:
        raise unknown_name("agent", name, _FAMILIES)
    return importlib.import_module(_FAMILIES[name])
