"""The ``hystax`` command's flag parsing: integers written as ``1e6``, an agent's ``Config`` as
flags (``hystax train ppo --lr 1e-3 --memory-layers 2``), and ``--env-param FIELD=VALUE``."""

from __future__ import annotations

import argparse
import dataclasses

from hystax.core.errors import HystaxError


def integer(text: str) -> int:
    """Integers that may be written as 1e6 or 100_000."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}")
    return int(value)


def add_config_flags(group, config_cls) -> list[str]:
    """Add a flag per field of ``config_cls`` (:func:`flat_fields`) to ``group``; returns the
    field names (unset flags parse as None)."""
    names = []
    for name, default in flat_fields(config_cls):
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction,
                               default=None, help=f"(default: {default})")
        elif isinstance(default, tuple):
            group.add_argument(flag, dest=name, type=int_tuple, default=None,
                               help=f"comma-separated (default: {','.join(map(str, default))})")
        else:
            kind = integer if isinstance(default, int) else type(default)
            group.add_argument(flag, dest=name, type=kind, default=None,
                               help=f"(default: {default})")
        names.append(name)
    return names


def flat_fields(config_cls) -> list[tuple[str, object]]:
    """``(name, default)`` of each flag of a config: its fields, and the ``FLAT_NAMES`` of a
    nested settings field (PPO's ``--memory``, ``--memory-layers``, ...), which the runner
    routes into it; other nested settings are set from Python (``hystax.train``)."""
    out = []
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        if not dataclasses.is_dataclass(default):
            out.append((f.name, default))
        else:
            out += [(name, getattr(default, field))
                    for name, field in getattr(default, "FLAT_NAMES", {}).items()]
    return out


def int_tuple(text: str) -> tuple[int, ...]:
    """``\"64,64\"`` -> ``(64, 64)``."""
    return tuple(integer(x) for x in text.split(",") if x.strip())


def env_param_overrides(pairs: list[str]) -> dict:
    """``[\"FIELD=VALUE\", ...]`` -> ``{field: int or float}``; HystaxError for a malformed pair."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise HystaxError(f"--env-param expects FIELD=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        if key in out:
            raise HystaxError(f"--env-param {key} is given twice")
        try:
            out[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            raise HystaxError(f"--env-param {key}: {value!r} is not a number") from None
    return out
