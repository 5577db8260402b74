"""Shared test setup.

``import hystax`` comes first, before any test module imports jax or gymnax, so its XLA:CPU
deadlock workaround (see ``hystax/__init__.py``) is in place before a backend starts.
The tests run in two pytest-xdist workers (pyproject's addopts): on a GPU machine neither
may preallocate most of the device's memory, so preallocation is off.
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import hystax  # noqa: F401

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def _same_leaves(a, b) -> bool:
    """Every leaf of two pytrees equal bit for bit (NaN equal to NaN), same structure."""
    return all(np.array_equal(np.asarray(x), np.asarray(y),
                              equal_nan=np.issubdtype(np.asarray(x).dtype, np.inexact))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.fixture
def same_leaves():
    """``same_leaves(a, b)``: every leaf of two pytrees equal bit for bit (exact-resume tests)."""
    return _same_leaves
