"""Tests for hystax.world_models.hypernet: the emitted pytree for any main net (full, chunked,
recurrent), the output regulariser and frozen embeddings, the 3-polynomial continual regression
of von Oswald et al. (regulariser remembers, fine-tuning forgets), and bad input."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hystax.world_models.continual_api import fit, one_step_mse
from hystax.world_models.continual_methods import METHODS
from hystax.world_models.dynamics import DynamicsMLP, Transitions
from hystax.world_models.hypernet import (
    HyperNetwork,
    flatten_weights,
    generate,
    hnet,
    hnet_sizes,
    main_net_shapes,
    unflatten_weights,
    weight_spec,
)

from hystax.core.errors import HystaxError

KEY = jax.random.PRNGKey(0)


class Block(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        return nn.LayerNorm()(nn.gelu(nn.Dense(self.width)(x)))


class CustomNet(nn.Module):
    """Nested submodules, LayerNorms, a bias-free bf16 head and a bare scalar parameter."""

    obs_dim: int

    @nn.compact
    def __call__(self, x):
        h = Block(8, name="enc")(x)
        h = h + Block(8, name="res")(h)
        gain = self.param("gain", nn.initializers.ones, ())
        return gain * nn.Dense(self.obs_dim, use_bias=False, param_dtype=jnp.bfloat16,
                               name="head")(h).astype(jnp.float32)


class IntParamNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        count = self.param("count", lambda key: jnp.zeros((), jnp.int32))
        return nn.Dense(1)(x) + count


class NoParamNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        return x[..., :1]


class BatchNormNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(nn.BatchNorm(use_running_average=False)(x))


class WrongOutNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(5)(x)


def transitions(key, n=64, obs_dim=2, act_dim=1):
    k1, k2 = jax.random.split(key)
    obs = jax.random.normal(k1, (n, obs_dim))
    action = jax.random.normal(k2, (n, act_dim))
    next_obs = obs + 0.1 * jnp.tanh(obs) + 0.05 * action.sum(-1, keepdims=True)
    return Transitions(obs, action, next_obs)


def same_tree(a, b):
    """Same structure, shapes and dtypes."""
    sig = functools.partial(jax.tree.map, lambda x: (tuple(x.shape), jnp.dtype(x.dtype)))
    return jax.tree.structure(a) == jax.tree.structure(b) and sig(a) == sig(b)


# --- the emitted pytree -------------------------------------------------------------------------

NETS = {"mlp": DynamicsMLP(2, (16, 16)), "gaussian": DynamicsMLP(2, (16,), gaussian=True),
        "custom": CustomNet(2)}
VARIANTS = {"full": {}, "chunked": {"chunk_size": 7},
            "recurrent": {"chunk_size": 7, "recurrent": True}}


@pytest.mark.parametrize("net_name, variant", [("custom", "full"), ("custom", "chunked"),
                                               ("custom", "recurrent"), ("mlp", "recurrent"),
                                               ("gaussian", "full")])
def test_hypernetwork_emits_the_main_nets_parameter_pytree(net_name, variant):
    net = NETS[net_name]
    shapes = main_net_shapes(net, 2, 1)
    hyper = HyperNetwork(weight_spec(shapes), (8,), **VARIANTS[variant])
    theta = hyper.init(KEY, jnp.zeros(4))
    flat = hyper.apply(theta, jax.random.normal(KEY, (4,)))
    assert flat.shape == (hyper.spec.total,) and hyper.spec.total == sum(
        x.size for x in jax.tree.leaves(shapes))
    weights = generate(hyper, theta, jax.random.normal(KEY, (4,)))
    assert same_tree(weights, shapes)
    assert flatten_weights(hyper.spec, weights).shape == flat.shape
    out = net.apply({"params": weights}, jnp.ones((5, 3)))
    for part in out if isinstance(out, tuple) else (out,):
        assert part.shape == (5, 2) and bool(jnp.all(jnp.isfinite(part)))
    if variant != "full":  # ⌈P / 7⌉ chunks, the last one truncated
        assert hyper.num_chunks == -(-hyper.spec.total // 7)
        assert theta["params"]["chunk_emb"].shape == (hyper.num_chunks, 8)


def test_custom_main_net_through_the_method():
    """Bring-your-own main net: params_for gives its exact pytree (bf16 head kept) and trains."""
    method = hnet(2, 1, 2, main_net=CustomNet(2), hnet_hidden=(8,))
    data = transitions(KEY)
    state = method.begin_task(method.init(KEY), 0, data)
    params = method.params_for(state, 0)
    assert same_tree(params.weights, main_net_shapes(CustomNet(2), 2, 1))
    assert params.weights["head"]["kernel"].dtype == jnp.bfloat16
    # the reference-init offsets: LayerNorm scales start near 1, the scalar gain at 1
    np.testing.assert_allclose(params.weights["enc"]["LayerNorm_0"]["scale"], 1.0, atol=0.5)
    assert method.predict(params, data.obs, data.action).shape == data.obs.shape
    state, metrics = fit(method, state, data, 0, 200, 32, KEY)
    assert float(metrics["task_loss"][-20:].mean()) < 0.5 * float(metrics["task_loss"][:5].mean())


def test_recurrent_chunks_depend_on_earlier_chunks():
    """Perturbing the first chunk's embedding changes later chunks only in the recurrent variant."""
    spec = weight_spec(main_net_shapes(DynamicsMLP(2, (16,)), 2, 1))
    for recurrent in (False, True):
        hyper = HyperNetwork(spec, (8, 8), chunk_size=10, recurrent=recurrent)
        theta = hyper.init(KEY, jnp.zeros(4))
        moved = jax.tree.map(lambda x: x, theta)
        moved["params"]["chunk_emb"] = theta["params"]["chunk_emb"].at[0].add(1.0)
        emb = jax.random.normal(KEY, (4,))
        diff = jnp.abs(hyper.apply(theta, emb) - hyper.apply(moved, emb))
        assert float(diff[:10].max()) > 1e-4
        assert (float(diff[10:].max()) > 1e-4) == recurrent


def test_sizes_and_registration():
    assert hnet_sizes(3, 1, 5) == {"main_weights": 1315, "hypernetwork": 22803, "embeddings": 50}
    chunked = hnet_sizes(3, 1, 5, chunked=128, hnet_hidden=(32, 32))
    assert chunked["hypernetwork"] < hnet_sizes(3, 1, 5)["hypernetwork"] / 3
    assert METHODS["hnet"] is hnet
    method = METHODS["hnet-chunked"](3, 1, 2)
    assert method.name == "HyperCRL" and method.num_tasks == 2


# --- regulariser and embeddings ------------------------------------------------------------------


def test_regulariser_zero_at_snapshot_and_grows_when_theta_moves():
    method = hnet(2, 1, 3, hidden=(16,), hnet_hidden=(8,), beta=0.0, lookahead=False)
    d0, d1 = transitions(KEY), transitions(jax.random.PRNGKey(1))
    d1 = d1._replace(next_obs=d1.obs - 0.3 * d1.obs ** 2)  # different dynamics
    state = method.begin_task(method.init(KEY), 0, d0)
    state, metrics = fit(method, state, d0, 0, 60, 32, KEY)
    np.testing.assert_array_equal(metrics["reg"], 0.0)  # nothing to remember on task 0
    state = method.begin_task(state, 1, d1)
    assert bool(state.target_mask[0]) and not bool(state.target_mask[1:].any())
    weights = method.params_for(state, 0).weights  # the snapshot is task 0's emitted weights
    np.testing.assert_allclose(state.targets[0], flatten_weights(weight_spec(weights), weights),
                               atol=1e-6)
    emb_before = state.emb
    state, metrics = fit(method, state, d1, 1, 60, 32, KEY)  # same shapes: no recompile
    reg = np.asarray(metrics["reg"])
    assert reg[0] == pytest.approx(0.0, abs=1e-10)
    assert reg[5] > 0 and reg[-1] > 5 * reg[5]
    # old embeddings frozen, the current one trained; task 0's model moved with θ
    np.testing.assert_array_equal(state.emb[0], emb_before[0])
    np.testing.assert_array_equal(state.emb[2], emb_before[2])
    assert float(jnp.abs(state.emb[1] - emb_before[1]).max()) > 1e-3


def test_lookahead_regulariser_is_evaluated_after_the_task_step():
    """With look-ahead the first step's regulariser is already > 0 (θ + Δθ ≠ θ)."""
    method = hnet(2, 1, 2, hidden=(16,), hnet_hidden=(8,), beta=0.05, lookahead=True)
    d0, d1 = transitions(KEY), transitions(jax.random.PRNGKey(1))
    state = method.begin_task(method.begin_task(method.init(KEY), 0, d0), 1, d1)
    _, metrics = fit(method, state, d1, 1, 1, 32, KEY)
    assert float(metrics["reg"][0]) > 0


# --- the 3-polynomial toy of von Oswald et al. ---------------------------------------------------

POLYS = (((-4.0, -2.0), lambda x: (x + 3.0) ** 3),
         ((-1.0, 1.0), lambda x: 2.0 * x ** 2 - 1.0),
         ((2.0, 4.0), lambda x: (x - 3.0) ** 3))


def poly_task(i, n=100, noise=0.05, key=None):
    """Task i as transitions: x the 1-d state, a dummy zero action, next_obs = x + poly_i(x)."""
    (lo, hi), poly = POLYS[i]
    if key is None:  # noise-free evaluation grid
        x = jnp.linspace(lo, hi, 200)[:, None]
        y = poly(x)
    else:
        x = jax.random.uniform(key, (n, 1), minval=lo, maxval=hi)
        y = poly(x) + noise * jax.random.normal(jax.random.fold_in(key, 1), x.shape)
    return Transitions(x, jnp.zeros_like(x), x + y)


def continual_poly(beta):
    """Train tasks 0, 1, 2 in sequence; MSE of every task on its grid after the last task."""
    method = hnet(1, 1, 3, hidden=(10, 10), hnet_hidden=(10, 10), beta=beta)
    state = method.init(KEY)
    for i in range(3):
        data = poly_task(i, key=jax.random.PRNGKey(10 + i))
        state = method.begin_task(state, i, data)
        state, _ = fit(method, state, data, i, 1500, 32, jax.random.PRNGKey(20 + i))
        state = method.end_task(state, i, data)
    return np.array([one_step_mse(method, state, poly_task(i), i) for i in range(3)])


def test_three_polynomials_regulariser_remembers_fine_tuning_forgets():
    """Paper: 0.0042 / 0.0024 / 0.0061 with the regulariser, old tasks at 4.5 / 5.1 fine-tuned."""
    remembered = continual_poly(beta=0.05)  # measured 0.0016 / 0.0004 / 0.0005
    forgotten = continual_poly(beta=0.0)    # measured 15 / 0.79 / 0.0004
    # (over 4 other seeds: regularised ≤ 0.011 on every task; fine-tuned old tasks 0.04 to 6.5,
    # always ≥ 90x the regularised error)
    assert np.all(remembered < 0.05), remembered
    assert forgotten[2] < 0.05  # the last task is learnt either way
    assert np.all(forgotten[:2] > 0.05) and np.all(forgotten[:2] > 20 * remembered[:2]), forgotten


# --- bad input --------------------------------------------------------------------------------


def test_bad_task_ids_and_dims():
    method = hnet(2, 1, 3, hidden=(8,), hnet_hidden=(8,))
    state = method.init(KEY)
    data = transitions(KEY)
    for task in (3, 7, -1):
        with pytest.raises(HystaxError, match="out of range: the model holds 3 tasks"):
            method.begin_task(state, task, data)
    with pytest.raises(HystaxError, match="task id must be an int"):
        method.begin_task(state, 1.0, data)
    with pytest.raises(HystaxError, match="out of range"):
        method.params_for(state, 3)
    state = method.begin_task(state, 0, data)
    with pytest.raises(HystaxError, match="state dimension 3 differs from the model's 2"):
        method.begin_task(state, 1, transitions(KEY, obs_dim=3))
    with pytest.raises(HystaxError, match="action dimension 2 differs from the model's 1"):
        method.begin_task(state, 1, transitions(KEY, act_dim=2))


def test_main_nets_that_cannot_be_emitted():
    cases = [(IntParamNet(), "parameter \\['count'\\]: dtype int32 is not floating point"),
             (NoParamNet(), "empty parameter pytree: main net NoParamNet has no parameters"),
             (BatchNormNet(), "non-parameter collections \\['batch_stats'\\]"),
             (WrongOutNet(), "main net must map \\[1, 3\\] inputs to \\[1, 2\\]"),
             (lambda x: x, "main net must be a flax.linen Module, got function")]
    for net, message in cases:
        with pytest.raises(HystaxError, match=message):
            hnet(2, 1, 2, main_net=net)
    with pytest.raises(HystaxError, match="parameter \\['b'\\]: it is a float, not an array"):
        weight_spec({"w": jnp.zeros((2, 2)), "b": 1.0})
    with pytest.raises(HystaxError, match="cannot emit an empty parameter pytree"):
        weight_spec({"a": {}, "b": None})
    spec = weight_spec({"w": jnp.zeros((2, 3))})
    with pytest.raises(HystaxError, match="flat weights must have shape \\[6\\], got \\(5,\\)"):
        unflatten_weights(spec, jnp.zeros(5))


def test_bad_generator_options():
    for size in (0, -3, 2.5):
        with pytest.raises(HystaxError, match=f"chunk size must be a positive int, got {size}"):
            hnet(2, 1, 2, chunked=size)
    spec = weight_spec(main_net_shapes(DynamicsMLP(2), 2, 1))
    with pytest.raises(HystaxError, match="chunk size must be a positive int, got 0"):
        HyperNetwork(spec, (8,), chunk_size=0)
    with pytest.raises(HystaxError, match="needs a WeightSpec"):
        HyperNetwork({"w": jnp.zeros(3)})
    with pytest.raises(HystaxError, match="recurrent hypernetwork needs a chunk size"):
        hnet(2, 1, 2, recurrent=True)
    with pytest.raises(HystaxError, match="hidden widths must be positive ints"):
        hnet(2, 1, 2, hnet_hidden=(16, 0))
    with pytest.raises(HystaxError, match="num_tasks must be a positive int, got 0"):
        hnet(2, 1, 0)
