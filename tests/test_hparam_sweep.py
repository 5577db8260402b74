"""hystax.sweep: a grid x seeds population in chunks equals the single-scan reference, shows
one progress bar, and refuses bad grids before compiling."""

import jax
import numpy as np
import pytest

import hystax
from hystax import envs
from hystax.agents import ppo
from hystax.core.errors import HystaxError
from hystax.hparam_sweep import grid_points

TINY = dict(total_timesteps=4 * 16 * 5, num_envs=4, num_steps=16, num_minibatches=2,
            update_epochs=2, hidden_sizes=(16,))


def test_every_grid_point_equals_its_own_scan_and_the_bar_shows(capsys):
    lrs, clips = [1e-3, 1e-2], [0.1, 0.3]
    result = hystax.sweep("ppo", "CartPole-v1", {"lr": lrs, "clip_eps": clips}, seeds=[3, 5],
                          chunk_updates=2, **TINY)  # 5 updates: chunks of 2, 2 and 1
    assert result.metrics["value_loss"].shape == (2, 2, 2, 5)
    np.testing.assert_array_equal(result.grid["lr"], np.float32([[1e-3, 1e-3], [1e-2, 1e-2]]))
    env, params = envs.make("CartPole-v1")
    train = jax.jit(ppo.make_train(ppo.Config(**TINY), env, params))
    for i, j, s in [(0, 1, 0), (1, 0, 1), (1, 1, 0)]:
        state, metrics = train(jax.random.PRNGKey([3, 5][s]),
                               {"lr": lrs[i], "clip_eps": clips[j]})
        for k in ("value_loss", "policy_loss", "episode_return"):
            np.testing.assert_allclose(result.metrics[k][i, j, s], metrics[k], rtol=2e-4,
                                       atol=1e-6, equal_nan=True, err_msg=k)
        for got, want in zip(jax.tree.leaves(result.state.params), jax.tree.leaves(state.params)):
            np.testing.assert_allclose(got[i, j, s], want, rtol=2e-4, atol=1e-6)
    assert not np.allclose(result.metrics["value_loss"][0, 0], result.metrics["value_loss"][1, 0])
    assert "sweep lr x2, clip_eps x2 on CartPole-v1" in capsys.readouterr().err
    assert not result.interrupted


@pytest.mark.parametrize("hparams, match", [
    ({"learning_rate": [1e-3]}, "'learning_rate' is not a numeric hyperparameter"),
    ({"lr": []}, r"hparams\['lr'\] must be a non-empty list"),
    ({"lr": ["fast"]}, r"hparams\['lr'\] must be a non-empty list of finite numbers"),
    ({"lr": [float("nan")]}, "finite numbers"),
    ({}, "hparams must map"),
    ([1e-3], "hparams must map"),
])
def test_bad_grids_are_one_line_errors(hparams, match):
    with pytest.raises(HystaxError, match=match):
        hystax.sweep("ppo", "CartPole-v1", hparams, progress=False, **TINY)


def test_grid_points_is_the_product_in_given_order():
    grid = grid_points({"a": [1, 2, 3], "b": [10.0, 20.0]})
    assert grid["a"].shape == grid["b"].shape == (3, 2)
    pairs = {(float(a), float(b)) for a, b in zip(grid["a"].ravel(), grid["b"].ravel())}
    assert pairs == {(a, b) for a in (1, 2, 3) for b in (10, 20)}
    assert grid["b"][0].tolist() == [10.0, 20.0]
