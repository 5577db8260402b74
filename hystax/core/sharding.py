"""Spreading seeds over devices: one mesh axis ``"seeds"``, sharded ``jit``.

Training one seed is written once; ``jax.vmap`` batches it over seeds, and the leading
(seed) axis of every array is sharded over the devices of a 1-D mesh, so XLA runs each
device's seeds locally (no cross-device traffic). The same code runs multi-host: call
``jax.distributed.initialize()`` in every process first (``hystax train --distributed``);
``jax.devices()`` then lists the devices of all hosts and the mesh spans them.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from hystax.core.errors import HystaxError

AXIS = "seeds"


def seed_mesh(num_seeds: int, devices: int | None = None) -> Mesh:
    """A 1-D mesh over ``devices`` devices that evenly divides the seeds.

    By default the most devices (up to all of them) whose count divides ``num_seeds``.
    """
    available = jax.devices()
    if devices is None:
        devices = max(d for d in range(1, len(available) + 1) if num_seeds % d == 0)
    n = int(devices)
    if not 1 <= n <= len(available):
        raise HystaxError(f"devices must be between 1 and {len(available)} (the devices jax "
                          f"sees), got {n}")
    if num_seeds % n:
        raise HystaxError(
            f"{num_seeds} seeds cannot be split evenly over {n} devices; use a multiple of "
            f"{n} seeds or fewer devices (--devices)")
    return Mesh(np.array(available[:n]), (AXIS,))


def seed_sharding(mesh: Mesh) -> NamedSharding:
    """Shard the leading (seed) axis of every leaf over the mesh."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def seed_keys(seeds: Sequence[int], mesh: Mesh) -> jax.Array:
    """``PRNGKey(seed)`` for each seed, ``[num_seeds, 2]``, sharded over the mesh.

    Built from host data shard by shard, so it also works when the mesh spans hosts.
    """
    keys = np.stack([np.asarray(jax.random.PRNGKey(int(s))) for s in seeds])
    return jax.make_array_from_callback(keys.shape, seed_sharding(mesh), lambda idx: keys[idx])


def to_host(tree):
    """Bring a (possibly multi-host sharded) pytree of arrays to numpy on every process."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)
