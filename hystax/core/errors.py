"""The one error type for bad user input, close-match suggestions for names, and the small
checks every layer uses to name bad input."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np


class HystaxError(ValueError):
    """Bad input from a user: the message names the problem in one line.

    The CLI prints it as ``hystax: error: <message>`` and exits with code 2; Python callers
    get it as an ordinary ``ValueError``.
    """


MAX_LISTED = 12  # longer lists of valid names are left to `hystax list`


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> HystaxError:
    """An error for an unknown ``kind`` (env, agent, ...) that suggests close matches and
    lists the valid names when there are at most ``MAX_LISTED``."""
    choices = sorted(choices)
    name = str(name)
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if not close:  # case-insensitive prefix matches help with e.g. "cartpole"
        close = [c for c in choices if c.lower().startswith(name.lower()[:4])][:3]
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    valid = (f"valid: {', '.join(choices)}" if len(choices) <= MAX_LISTED
             else "`hystax list` shows all")
    return HystaxError(f"unknown {kind} {name!r}{hint} ({valid})")


def require(condition: bool, message: str) -> None:
    """Raise :class:`HystaxError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise HystaxError(message)


def is_int(x) -> bool:
    """Whether ``x`` is a Python or numpy integer (a bool is not)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)
