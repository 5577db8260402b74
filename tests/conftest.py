"""Shared test setup.

``import hystax`` comes first, before any test module imports jax or gymnax, so its XLA:CPU
deadlock workaround (see ``hystax/__init__.py``) is in place before a backend starts.
"""

import hystax  # noqa: F401
