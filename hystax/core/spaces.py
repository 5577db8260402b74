"""Shapes and bounds of gymnax spaces (Box, Discrete), as plain numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnax.environments import spaces

__all__ = ["flat_bounds", "shape_of"]


def shape_of(shape: Any) -> tuple[int, ...]:
    """A space's shape as a tuple of ints (spaces may hold None, an int, a list or numpy ints)."""
    if shape is None:
        return ()
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(d) for d in shape)


def flat_bounds(space: Any) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) float64 [prod(shape)] of a Box or Discrete space."""
    shape = shape_of(space.shape)
    size = int(np.prod(shape))
    if isinstance(space, spaces.Discrete):
        return np.zeros(size), np.full(size, space.n - 1, dtype=np.float64)
    low = np.broadcast_to(np.asarray(space.low, dtype=np.float64), shape).reshape(-1)
    high = np.broadcast_to(np.asarray(space.high, dtype=np.float64), shape).reshape(-1)
    return low, high
