"""The covariate-shift regression experiment (``hystax.experiments.losse_regression``): Losse-FTL
against single-pass and full-replay MLPs on sorted 1-D inputs, its outputs and its input checks."""

from __future__ import annotations

import csv
import json

import chex
import jax
import numpy as np
import pytest
from hystax.experiments import losse_regression as lr
from hystax.experiments import losse_regression_learners as learners

from hystax.core.errors import HystaxError


@pytest.fixture(scope="module")
def quick():
    """The ``--quick`` run (1,000 sorted samples, seeds 0 and 1, 200 test points); the CLI test
    below reuses its compiled functions."""
    return lr.run(lr.quick_config())


def test_losse_learns_the_whole_interval_where_the_online_mlp_forgets(quick):
    """Measured (seeds 0, 1): Losse-FTL 1.3e-5 and 1.9e-5, online MLP 3.79 and 3.80 (about the
    target's mean square, 3.25: it only keeps the newest inputs), MLP with replay 1.06, 1.09."""
    mse = quick["mse"]
    assert np.all(mse["losse-ftl"] < 2e-4)  # measured <= 2e-5
    assert np.all(mse["online-mlp"] >= 100 * mse["losse-ftl"])  # measured 2e5x
    assert np.all(mse["online-mlp"] > 2.0)
    assert np.all(mse["replay-mlp"] < mse["online-mlp"])
    assert np.all(mse["losse-ftl"] < mse["replay-mlp"] / 100)
    assert quick["skipped"] == 0


def test_run_shapes(quick):
    config = quick["config"]
    chex.assert_shape(quick["grid"], (config.test_points,))
    chex.assert_shape(quick["target"], (config.test_points,))
    assert set(quick["predictions"]) == set(quick["mse"]) == set(lr.METHODS)
    for name in lr.METHODS:
        chex.assert_shape(quick["predictions"][name], (config.seeds, config.test_points))
        chex.assert_shape(quick["mse"][name], (config.seeds,))
        chex.assert_tree_all_finite(quick["predictions"][name])
    np.testing.assert_allclose(quick["grid"][[0, -1]], [config.low, config.high])


def test_stream_is_sorted_single_pass_data():
    config = lr.RegressionConfig(samples=300, seeds=1, noise=0.5)
    x, y = learners.stream(config, jax.random.PRNGKey(3))
    chex.assert_shape([x, y], (300,))
    x, y = np.asarray(x), np.asarray(y)
    assert np.all(np.diff(x) >= 0) and config.low <= x[0] and x[-1] <= config.high
    noise = y - np.asarray(lr.target(x))
    assert 0.4 < noise.std() < 0.6  # noise s.d. 0.5
    x0, y0 = learners.stream(lr.RegressionConfig(samples=300, seeds=1), jax.random.PRNGKey(3))
    np.testing.assert_allclose(np.asarray(y0), np.asarray(lr.target(x0)))  # noise 0: exact


def test_cli_quick_writes_the_outputs(quick, tmp_path, capsys):
    out = tmp_path / "run"
    assert lr.cli(["--quick", "--out-dir", str(out.parent), "--name", out.name],
                  "hystax-test") == 0
    captured = capsys.readouterr()
    assert "| Losse-FTL (single pass) |" in captured.out
    assert "losse regression: 3/3 parts" in captured.err  # the progress bar
    assert {"mse.csv", "summary.json", "regression.png"} <= {p.name for p in out.iterdir()}
    assert (out / "regression.png").stat().st_size > 10_000
    with open(out / "mse.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(lr.METHODS) * 2 and set(rows[0]) == {"method", "seed", "test_mse"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["samples"] == 1000 and summary["config"]["seeds"] == 2
    methods = summary["methods"]
    assert set(methods) == set(lr.METHODS)
    np.testing.assert_allclose(methods["losse-ftl"]["per_seed"], quick["mse"]["losse-ftl"],
                               rtol=1e-5)  # the same numbers as run()
    assert summary["losse_over_online_mlp"] == pytest.approx(
        methods["losse-ftl"]["mean"] / methods["online-mlp"]["mean"])
    assert summary["online_mlp_over_losse"] >= 100


@pytest.mark.parametrize("argv, message", [
    (["--samples", "0"], "samples must be a positive integer"),
    (["--seeds", "two"], "seeds must be a positive integer"),
    (["--noise", "-1"], "noise must be a finite number >= 0"),
    (["--quick", "--bogus"], "unrecognized arguments"),
])
def test_cli_bad_input_is_one_line(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        lr.cli([*argv, "--out-dir", str(tmp_path / "never")], "hystax-test")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("hystax-test: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "never").exists()


def test_config_validation():
    for bad in ({"samples": 0}, {"seeds": -1}, {"noise": float("nan")}, {"low": 1.0, "high": 1.0},
                {"ridge": 0.0}, {"activation": "gelu"}, {"hidden": ()}, {"online_window": 0},
                {"refine_iterations": -1}, {"bins": 0}):
        with pytest.raises(HystaxError):
            lr.RegressionConfig(**bad)
    with pytest.raises(HystaxError, match="RegressionConfig"):
        lr.run({"samples": 10})
