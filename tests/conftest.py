"""Shared test setup.

``import hystax`` comes first, before any test module imports jax or gymnax, so its XLA:CPU
deadlock workaround (see ``hystax/__init__.py``) is in place before a backend starts.
The tests run in two pytest-xdist workers (pyproject's addopts): on a GPU machine neither
may preallocate most of the device's memory, so preallocation is off.
"""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import hystax  # noqa: F401
