"""The three learners of the covariate-shift regression (:mod:`.losse_regression`) and their
data: each learner is one jitted call, ``lax.scan`` over the sorted stream, seeds vmapped.

Shapes: stream x, y [S]; grid [G]; every learner returns its predictions on the grid
[seeds, G]. ``config`` is a :class:`~hystax.experiments.losse_regression.RegressionConfig`
(hashable: a static argument of the jitted runs).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from hystax.core.nn import MLP
from hystax.world_models import ftl, losse

METHODS = ("losse-ftl", "online-mlp", "replay-mlp")
LABELS = {"losse-ftl": "Losse-FTL (single pass)", "online-mlp": "online MLP (single pass)",
          "replay-mlp": "MLP + full replay"}
COLORS = {"losse-ftl": "tab:blue", "online-mlp": "tab:red", "replay-mlp": "tab:orange"}


def target(x):
    """The regression target ``2 sin(1.5x) + 1.5 sin(3.5x + 0.5) + 0.5 cos(7x)`` (elementwise)."""
    return 2.0 * jnp.sin(1.5 * x) + 1.5 * jnp.sin(3.5 * x + 0.5) + 0.5 * jnp.cos(7.0 * x)


# --- data --------------------------------------------------------------------------------------

def stream(config, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sorted inputs x [S] and noisy targets y [S] of one seed."""
    k_x, k_noise = jax.random.split(key)
    x = jnp.sort(jax.random.uniform(k_x, (config.samples,), minval=config.low,
                                    maxval=config.high))
    return x, target(x) + config.noise * jax.random.normal(k_noise, x.shape)


def grid(config) -> jax.Array:
    """The test inputs: ``test_points`` evenly spaced over [low, high]."""
    return jnp.linspace(config.low, config.high, config.test_points)


def seed_keys(seeds: int) -> jax.Array:
    """Per seed s: keys [seeds, 4] for (data, Losse projection, online MLP, replay MLP)."""
    return jnp.stack([jax.random.split(jax.random.PRNGKey(s), 4) for s in range(seeds)])


# --- Losse-FTL ---------------------------------------------------------------------------------

@functools.partial(jax.jit, static_argnums=0)
def losse_runs(config, encoders, data_keys):
    """Predictions on the grid [seeds, G] and rejected-sample counts [seeds]."""
    points = grid(config)
    one_encoder = jax.tree.map(lambda a: a[0], encoders)
    ftl_config = ftl.FTLConfig(one_encoder.num_features, 1, ridge=config.ridge)

    def one(encoder, key):
        x, y = stream(config, key)
        indices, values = losse.encode(encoder, x[:, None])          # [S, k] each
        state = ftl.update_batch(ftl_config, ftl.init(ftl_config), indices, values, y[:, None],
                                 config.refine_iterations)
        grid_indices, grid_values = losse.encode(encoder, points[:, None])
        return ftl.predict(state, grid_indices, grid_values)[:, 0], state.rejected + state.overflow

    return jax.vmap(one)(encoders, data_keys)


def encoders(config, keys: jax.Array):
    """One Losse encoder per seed, stacked along a leading axis."""
    made = [losse.make_encoder(k, 1, config.num_groups, config.bins, config.group_dim,
                               loc=config.centre, scale=config.losse_scale) for k in keys]
    return jax.tree.map(lambda *a: jnp.stack(a), *made)


# --- the MLPs ----------------------------------------------------------------------------------

@functools.partial(jax.jit, static_argnums=(0, 1))
def mlp_runs(config, replay: bool, data_keys, mlp_keys):
    """Grid predictions [seeds, G] of the online (``replay=False``) or the replay MLP."""
    net = MLP(config.hidden, 1, config.activation, orthogonal=False)
    optimiser = optax.adam(config.replay_lr if replay else config.online_lr)
    points = (grid(config) - config.centre) / config.half_width
    batch = config.replay_batch if replay else config.online_window

    def one(data_key, key):
        x, y = stream(config, data_key)
        inputs, targets = ((x - config.centre) / config.half_width)[:, None], y[:, None]
        k_init, k_replay = jax.random.split(key)
        params = net.init(k_init, inputs[:1])

        def loss(p, xb, yb, weights):
            return jnp.sum(weights * (net.apply(p, xb) - yb)[:, 0] ** 2) / jnp.sum(weights)

        def step(carry, t):
            p, opt_state = carry
            if replay:  # uniform over the samples seen so far, the newest (t) included
                rows = jax.random.randint(jax.random.fold_in(k_replay, t), (batch,), 0, t + 1)
                weights = jnp.ones(batch)
            else:  # the `batch` newest samples (fewer at the start of the stream)
                back = t - jnp.arange(batch)
                rows, weights = jnp.maximum(back, 0), (back >= 0).astype(jnp.float32)
            grads = jax.grad(loss)(p, inputs[rows], targets[rows], weights)
            updates, opt_state = optimiser.update(grads, opt_state, p)
            return (optax.apply_updates(p, updates), opt_state), None

        (params, _), _ = jax.lax.scan(step, (params, optimiser.init(params)),
                                      jnp.arange(config.samples))
        return net.apply(params, points[:, None])[:, 0]

    return jax.vmap(one)(data_keys, mlp_keys)
