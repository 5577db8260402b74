"""A network's parameter pytree as one flat vector: what a hypernetwork emits.

:func:`weight_spec` records the tree structure, shapes and dtypes of any flax module's
``params`` with two constants per leaf (its mean / std in a reference init), and
:func:`unflatten_weights` turns a flat [P] vector back into exactly that pytree.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from hystax.core.errors import HystaxError, require

__all__ = ["WeightSpec", "flatten_weights", "main_net_shapes", "offset_scale", "param_count",
           "unflatten_weights", "weight_spec"]


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    """What a hypernetwork must emit: the tree structure, shapes and dtypes of the main net's
    parameters, and per leaf the ``offset`` / ``scale`` mapping the standardised generator output
    to weights. Hashable (a static module field)."""

    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[Any, ...]
    offsets: tuple[float, ...]
    scales: tuple[float, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(math.prod(shape) for shape in self.shapes)

    @property
    def total(self) -> int:
        """P, the number of main-net weights."""
        return sum(self.sizes)


def _shape_rule(shape: tuple[int, ...], const_scale: float) -> float:
    """Scale for a leaf known only by its shape: lecun (1/√fan_in) for kernels, else const."""
    return 1.0 / math.sqrt(max(math.prod(shape[:-1]), 1)) if len(shape) >= 2 else const_scale


def weight_spec(target, const_scale: float = 0.1) -> WeightSpec:
    """The :class:`WeightSpec` of ``target``: a pytree of arrays or ``jax.ShapeDtypeStruct``
    (e.g. ``jax.eval_shape(net.init, key, x)["params"]``) with floating dtypes.

    A concrete array leaf sets its offset / scale to its own mean / std (a reference init); a
    constant leaf (zero biases, LayerNorm ones) or a shape-only leaf keeps its mean (0 for
    shapes) and gets 1/√fan_in for kernels (ndim ≥ 2), ``const_scale`` otherwise.
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(target)
    require(len(flat) > 0, "cannot emit an empty parameter pytree: the main net has no parameters")
    shapes, dtypes, offsets, scales = [], [], [], []
    for path, leaf in flat:
        name = jax.tree_util.keystr(path) or "<root>"
        require(hasattr(leaf, "shape") and hasattr(leaf, "dtype") and not isinstance(leaf, str),
                f"cannot emit parameter {name}: it is a {type(leaf).__name__}, not an array")
        dtype = jnp.dtype(leaf.dtype)
        require(jnp.issubdtype(dtype, jnp.floating),
                f"cannot emit parameter {name}: dtype {dtype} is not floating point")
        shape = tuple(int(d) for d in leaf.shape)
        offset, scale = 0.0, _shape_rule(shape, const_scale)
        if isinstance(leaf, (np.ndarray, jax.Array)) and not isinstance(leaf, jax.core.Tracer):
            values = np.asarray(leaf, np.float64)
            if values.size:
                offset = float(values.mean())
                if values.size > 1 and values.std() > 0:
                    scale = float(values.std())
        shapes.append(shape)
        dtypes.append(dtype)
        offsets.append(offset)
        scales.append(scale)
    spec = WeightSpec(treedef, tuple(shapes), tuple(dtypes), tuple(offsets), tuple(scales))
    require(spec.total > 0, "cannot emit the main net's parameters: every leaf has size 0")
    return spec


def main_net_shapes(net: nn.Module, obs_dim: int, act_dim: int):
    """``net``'s parameter pytree of ``jax.ShapeDtypeStruct`` for [1, obs_dim + act_dim] inputs,
    or HystaxError when it cannot be emitted (no params, non-param state, init fails)."""
    require(isinstance(net, nn.Module),
            f"main net must be a flax.linen Module, got {type(net).__name__}")
    x = jnp.zeros((1, obs_dim + act_dim))
    try:
        variables = jax.eval_shape(net.init, jax.random.PRNGKey(0), x)
    except Exception as err:  # noqa: BLE001  (any failure: the user's module is the problem)
        detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise HystaxError(f"main net {type(net).__name__} cannot be initialised on [1, "
                          f"{obs_dim + act_dim}] inputs: {type(err).__name__}: {detail}") from None
    require("params" in variables and jax.tree.leaves(variables["params"]),
            f"cannot emit an empty parameter pytree: main net {type(net).__name__} has no "
            f"parameters")
    extra = sorted(set(variables) - {"params"})
    require(not extra, f"main net {type(net).__name__} has non-parameter collections {extra} "
                       f"(e.g. BatchNorm statistics); the hypernetwork emits only 'params'")
    return variables["params"]


def offset_scale(spec: WeightSpec) -> tuple[np.ndarray, np.ndarray]:
    """Per-weight offset and scale vectors [P] (trace-time constants)."""
    sizes = np.asarray(spec.sizes)
    return (np.repeat(np.asarray(spec.offsets, np.float32), sizes),
            np.repeat(np.asarray(spec.scales, np.float32), sizes))


def unflatten_weights(spec: WeightSpec, flat: jax.Array):
    """Flat weights [P] → the main net's parameter pytree (spec's structure, shapes, dtypes)."""
    require(flat.ndim == 1 and flat.shape[0] == spec.total,
            f"flat weights must have shape [{spec.total}], got {tuple(flat.shape)}")
    bounds = np.cumsum((0, *spec.sizes))
    leaves = [flat[lo:hi].reshape(shape).astype(dtype)
              for lo, hi, shape, dtype in zip(bounds[:-1], bounds[1:], spec.shapes, spec.dtypes)]
    return jax.tree.unflatten(spec.treedef, leaves)


def flatten_weights(spec: WeightSpec, tree) -> jax.Array:
    """The inverse of :func:`unflatten_weights`: a pytree of spec's structure → float32 [P]."""
    leaves, treedef = jax.tree.flatten(tree)
    require(treedef == spec.treedef, f"weights have structure {treedef}, expected {spec.treedef}")
    return jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in leaves])


def param_count(tree) -> int:
    """Number of scalars in a pytree of arrays / shape structs."""
    return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))
