"""Tests for hystax.core.stats (bootstrap CIs, IQM, regret slopes) and hystax.plots (figures)."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest

from hystax import plots, rundir
from hystax.core import stats
from hystax.core.errors import HystaxError

# ----------------------------------------------------------------------------- stats


def test_bootstrap_ci_contains_mean_and_shrinks_with_more_seeds():
    rng = np.random.default_rng(1)
    few = rng.normal(5.0, 2.0, size=(4, 3))
    many = np.tile(few, (16, 1))  # same empirical distribution, 16x the seeds
    m4, lo4, hi4 = stats.mean_and_bootstrap_ci(few, n_boot=1000, seed=0)
    m64, lo64, hi64 = stats.mean_and_bootstrap_ci(many, n_boot=1000, seed=0)
    np.testing.assert_allclose(m4, few.mean(0))
    assert m4.shape == lo4.shape == hi4.shape == (3,)
    assert np.all(lo4 <= m4) and np.all(m4 <= hi4) and np.all(lo4 < hi4)
    assert np.all(lo64 <= m64) and np.all(m64 <= hi64)
    assert np.all(hi64 - lo64 < 0.5 * (hi4 - lo4))
    # 95% percentile bootstrap of a mean over 64 seeds: close to 2 * 1.96 * sd / sqrt(n)
    np.testing.assert_allclose(hi64 - lo64, 2 * 1.96 * many.std(0) / 8, rtol=0.15)
    normal = rng.normal(5.0, 2.0, size=(200, 2))
    m, lo, hi = stats.mean_and_bootstrap_ci(normal, n_boot=1000, seed=0)
    np.testing.assert_allclose(hi - lo, 2 * 1.96 * normal.std(0) / np.sqrt(200), rtol=0.15)


def test_bootstrap_ci_is_reproducible_and_seed_dependent():
    x = np.random.default_rng(0).normal(size=(5, 4))
    a = stats.mean_and_bootstrap_ci(x, seed=3)
    b = stats.mean_and_bootstrap_ci(x, seed=np.random.default_rng(3))
    c = stats.mean_and_bootstrap_ci(x, seed=4)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_bootstrap_ci_of_constant_data_is_degenerate_and_nan_aware():
    x = np.full((5, 4), 2.5)
    x[0, 1] = np.nan  # one seed missing in a column
    x[:, 3] = np.nan  # no seed finished an episode
    mean, lo, hi = stats.mean_and_bootstrap_ci(x)
    np.testing.assert_allclose(mean[:3], 2.5)
    np.testing.assert_allclose(lo[:3], 2.5)
    np.testing.assert_allclose(hi[:3], 2.5)
    assert np.isnan(mean[3]) and np.isnan(lo[3]) and np.isnan(hi[3])
    # one seed: the band collapses onto the value
    m1, lo1, hi1 = stats.mean_and_bootstrap_ci(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(lo1, [1.0, 2.0])
    np.testing.assert_array_equal(hi1, [1.0, 2.0])


def test_bootstrap_ci_bad_confidence_raises():
    with pytest.raises(HystaxError, match="confidence"):
        stats.mean_and_bootstrap_ci(np.ones((3, 2)), confidence=95)


def test_standard_error_matches_formula():
    x = np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 30.0], [7.0, 60.0]])
    mean, se = stats.mean_and_standard_error(x)
    np.testing.assert_allclose(mean, x.mean(0))
    np.testing.assert_allclose(se, x.std(0, ddof=1) / np.sqrt(4))
    m1, se1 = stats.mean_and_standard_error(x[:1])
    np.testing.assert_array_equal(se1, [0.0, 0.0])
    np.testing.assert_array_equal(m1, x[0])
    y = x.copy()
    y[0, 0] = np.nan
    _, se_nan = stats.mean_and_standard_error(y)
    np.testing.assert_allclose(se_nan[0], np.std(x[1:, 0], ddof=1) / np.sqrt(3))


def test_iqm_known_values():
    assert stats.iqm(np.arange(8)) == pytest.approx(np.mean([2, 3, 4, 5]))
    # outliers in the outer quartiles do not move the IQM
    assert stats.iqm([-1e9, 2, 3, 4, 5, 1e9, 1e9, -1e9]) == pytest.approx(3.5)
    # flattened over a [runs, tasks] matrix by default, per-row with axis
    m = np.arange(8.0).reshape(2, 4)
    assert stats.iqm(m) == pytest.approx(3.5)
    np.testing.assert_allclose(stats.iqm(m, axis=1), [1.5, 5.5])
    with pytest.raises(HystaxError):
        stats.iqm([1.0, np.nan])


def test_stratified_bootstrap_point_is_iqm_and_resamples_within_tasks():
    rng = np.random.default_rng(0)
    # tasks on very different scales: the per-task strata matter
    scores = np.stack([rng.normal(0.0, 0.1, 10), rng.normal(1.0, 0.1, 10),
                       rng.normal(5.0, 0.1, 10)], axis=1)
    point, lo, hi = stats.stratified_bootstrap_ci(scores, n_boot=500, seed=0)
    assert point == pytest.approx(stats.iqm(scores))
    assert lo <= point <= hi and hi - lo < 0.5
    # generic statistic: stratified resampling keeps every task's column from its own task, so
    # the minimum over the matrix stays below the smallest task's maximum
    p2, lo2, hi2 = stats.stratified_bootstrap_ci(scores, statistic=np.min, n_boot=200, seed=0)
    assert p2 == pytest.approx(scores.min())
    assert hi2 <= scores[:, 0].max()
    # the vectorised IQM path equals the generic loop
    q = stats.stratified_bootstrap_ci(scores, statistic=lambda s: stats.iqm(s), n_boot=300, seed=7)
    r = stats.stratified_bootstrap_ci(scores, n_boot=300, seed=7)
    np.testing.assert_allclose(q, r)


def test_stratified_bootstrap_of_identical_runs_is_degenerate():
    scores = np.tile([0.2, 0.4, 0.9], (6, 1))
    point, lo, hi = stats.stratified_bootstrap_ci(scores, n_boot=200)
    assert point == lo == hi == pytest.approx(stats.iqm(scores))


def test_forward_fill():
    y = np.array([[np.nan, 1.0, np.nan, np.nan, 3.0, np.nan],
                  [2.0, np.nan, 4.0, np.nan, np.nan, np.nan]])
    out = stats.forward_fill(y)
    np.testing.assert_array_equal(out[0], [np.nan, 1, 1, 1, 3, 3])
    np.testing.assert_array_equal(out[1], [2, 2, 4, 4, 4, 4])
    assert np.isnan(y[0, 2])  # input untouched


def test_loglog_slope_recovers_exponents():
    t = np.arange(1, 1001)
    assert stats.loglog_slope(t, np.sqrt(t)) == pytest.approx(0.5)
    assert stats.loglog_slope(t, 3 * t) == pytest.approx(1.0)
    y = np.sqrt(t).astype(float)
    y[:5] = 0.0  # non-positive entries are skipped
    assert stats.loglog_slope(t, y) == pytest.approx(0.5)
    with pytest.raises(HystaxError):
        stats.loglog_slope([1.0], [1.0])


# ----------------------------------------------------------------------------- plots


def _fake_run(path, agent="ppo", env="CartPole-v1", seeds=(0, 1, 2), updates=40, scale=1.0,
              with_losses=True):
    path.mkdir(parents=True)
    rundir.write_config(path, {"agent": agent, "env": env, "name": path.name})
    rng = np.random.default_rng(len(seeds) + updates)
    s = len(seeds)
    ret = scale * (np.linspace(10, 200, updates) + rng.normal(0, 15, (s, updates)))
    ret[rng.random((s, updates)) < 0.3] = np.nan  # updates that ended no episode
    ret[:, 0] = np.nan
    metrics = {
        "env_steps": np.tile(np.arange(1, updates + 1) * 512.0, (s, 1)),
        "episode_return": ret,
        "episode_length": np.where(np.isnan(ret), np.nan, ret),
        "episodes": np.where(np.isnan(ret), 0.0, 2.0),
    }
    if with_losses:
        metrics["value_loss"] = np.exp(-np.linspace(0, 3, updates)) + rng.random((s, updates)) * 0.1
        metrics["policy_loss"] = rng.normal(0, 0.01, (s, updates))
        metrics["entropy"] = np.linspace(0.69, 0.3, updates) + rng.random((s, updates)) * 0.02
    half = updates // 2  # written in two chunks, as the runner does
    rundir.append_metrics(path, list(seeds), 0, {k: v[:, :half] for k, v in metrics.items()})
    rundir.append_metrics(path, list(seeds), half, {k: v[:, half:] for k, v in metrics.items()})
    return path


def test_import_is_cheap():
    # matplotlib must not be imported by `import hystax.plots` (checked in a fresh interpreter)
    import subprocess

    code = "import sys, hystax.plots, hystax.core.stats; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_returns_figure_labels(tmp_path):
    run = _fake_run(tmp_path / "run_a")
    fig = plots._returns_figure([run])
    (ax,) = fig.axes
    assert ax.get_xlabel() == "environment steps"
    assert ax.get_ylabel() == "episode return"
    assert ax.get_title().startswith("ppo on CartPole-v1\n")  # agent and env, not the folder
    (text,) = [t.get_text() for t in ax.get_legend().get_texts()]
    assert text == "ppo on CartPole-v1 (n=3 seeds)"
    line = ax.get_lines()[0]
    assert line.get_xdata()[-1] == pytest.approx(40 * 512)
    assert len(ax.collections) == 1  # the CI band


def test_plot_returns_writes_png(tmp_path):
    run = _fake_run(tmp_path / "run_a")
    out = plots.plot_returns([run], tmp_path / "figs" / "nested" / "ret.png", labels=["mine"],
                             title="custom")
    assert out.is_file() and out.stat().st_size > 5_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(HystaxError, match="no metric"):
        plots.plot_returns([run], tmp_path / "x.png", metric="nope")
    with pytest.raises(HystaxError, match="labels"):
        plots.plot_returns([run], tmp_path / "x.png", labels=["a", "b"])


def test_plot_run_dirs_one_dir(tmp_path):
    run = _fake_run(tmp_path / "run_a")
    written = plots.plot_run_dirs([run])
    assert [p.name for p in written] == ["returns.png", "losses.png"]
    assert all(p.parent == run and p.stat().st_size > 5_000 for p in written)
    fig = plots._losses_figure(run)
    titles = sorted(ax.get_title() for ax in fig.axes if ax.get_visible())
    assert titles == ["entropy", "policy loss", "value loss"]
    # without diagnostics only returns.png is written
    bare = _fake_run(tmp_path / "bare", with_losses=False)
    assert [p.name for p in plots.plot_run_dirs([bare])] == ["returns.png"]


def test_plot_run_dirs_two_dirs(tmp_path):
    a = _fake_run(tmp_path / "runs" / "a", seeds=(0, 1))
    b = _fake_run(tmp_path / "runs" / "b", agent="dqn", seeds=(0, 1, 2, 3), updates=30, scale=0.5)
    written = plots.plot_run_dirs([a, b])
    assert written == [tmp_path / "runs" / "compare" / "returns.png"]
    assert written[0].stat().st_size > 5_000
    fig = plots._returns_figure([a, b])
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert texts == ["ppo on CartPole-v1 (n=2 seeds)", "dqn on CartPole-v1 (n=4 seeds)"]
    custom = plots.plot_run_dirs([a, b], out_dir=tmp_path / "elsewhere")
    assert custom == [tmp_path / "elsewhere" / "returns.png"] and custom[0].is_file()


def test_non_run_dir_raises(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(HystaxError, match="not a hystax run directory"):
        plots.plot_run_dirs([tmp_path / "empty"])
    with pytest.raises(HystaxError):
        plots.plot_run_dirs([tmp_path / "missing"])
    with pytest.raises(HystaxError):
        plots.plot_run_dirs([])
    # a config without metrics is not plottable either, and nothing gets written
    (tmp_path / "nometrics").mkdir()
    rundir.write_config(tmp_path / "nometrics", {"agent": "ppo", "env": "x"})
    good = _fake_run(tmp_path / "good")
    with pytest.raises(HystaxError, match="metrics.csv"):
        plots.plot_run_dirs([good, tmp_path / "nometrics"])
    assert not (tmp_path / "compare").exists()


def _regret_curves(seeds=10, rounds=500):
    rng = np.random.default_rng(0)
    t = np.arange(1, rounds + 1)
    return {
        "ucb": np.sqrt(t) * rng.uniform(2.0, 3.0, (seeds, 1)),
        "greedy": t * rng.uniform(0.05, 0.1, (seeds, 1)),
    }


def test_plot_regret(tmp_path):
    curves = _regret_curves()
    out = plots.plot_regret(curves, tmp_path / "regret.png", title="toy bandit")
    assert out.stat().st_size > 5_000
    fig = plots._regret_figure(curves)
    assert len(fig.axes) == 2
    lin, log = fig.axes
    assert (lin.get_xscale(), lin.get_yscale()) == ("linear", "linear")
    assert (log.get_xscale(), log.get_yscale()) == ("log", "log")
    for ax in fig.axes:
        assert ax.get_xlabel() == "round" and ax.get_ylabel() == "cumulative regret"
    assert "s.e." in fig._suptitle.get_text()
    slopes = [t.get_text() for t in log.get_legend().get_texts()]
    assert slopes == ["ucb: slope 0.50", "greedy: slope 1.00"]


def test_a_zero_regret_curve_has_no_nan_slope_and_still_draws(tmp_path):
    """A clairvoyant's regret is 0 everywhere: no slope is defined, so none is printed."""
    curves = {**_regret_curves(), "clairvoyant": np.zeros((10, 500))}
    log = plots._regret_figure(curves).axes[1]
    labels = [t.get_text() for t in log.get_legend().get_texts()]
    assert labels[-1] == "clairvoyant: no slope (regret not positive)"
    assert not any("nan" in label for label in labels)
    alone = plots.plot_regret({"clairvoyant": np.zeros((2, 50))}, tmp_path / "zero.png")
    assert alone.stat().st_size > 5_000   # log axes over nothing positive used to raise


def test_plot_regret_subsampled_rounds_and_csv(tmp_path):
    rounds = np.array([10, 100, 1000, 10000])
    curves = {"a": np.sqrt(rounds)[None, :] * np.array([[1.0], [2.0]])}
    fig = plots._regret_figure(curves, rounds=rounds)
    assert fig.axes[1].get_legend().get_texts()[0].get_text() == "a: slope 0.50"
    with pytest.raises(HystaxError, match="rounds"):
        plots.plot_regret(curves, tmp_path / "r.png", rounds=[1, 2])
    out = plots.write_regret_csv(curves, tmp_path / "sub" / "regret.csv", rounds=rounds)
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 4
    assert rows[0] == {"algorithm": "a", "seed": "0", "round": "10", "regret": repr(float(np.sqrt(10.0)))}
    assert rows[-1]["seed"] == "1" and rows[-1]["round"] == "10000"
    assert float(rows[-1]["regret"]) == pytest.approx(200.0)


def test_plot_iqm(tmp_path):
    rng = np.random.default_rng(0)
    scores = {"ppo": rng.uniform(0.5, 1.0, (10, 5)), "random": rng.uniform(0.0, 0.2, (10, 5))}
    out = plots.plot_iqm(scores, tmp_path / "iqm.png", title="toy suite")
    assert out.stat().st_size > 5_000
    fig = plots._iqm_figure(scores)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "IQM of normalized score"
    assert ax.get_title()
    with pytest.raises(HystaxError):
        plots.plot_iqm({}, tmp_path / "none.png")


def test_returns_of_run_without_finished_episodes(tmp_path):
    run = tmp_path / "early"
    run.mkdir()
    rundir.write_config(run, {"name": "early"})  # no agent/env: label falls back to the name
    rundir.append_metrics(run, [0], 0, {"env_steps": np.arange(1.0, 6.0)[None] * 100,
                                        "episode_return": np.full((1, 5), np.nan)})
    fig = plots._returns_figure([run])
    ax = fig.axes[0]
    assert ax.get_legend().get_texts()[0].get_text().startswith("early (n=1 seed)")
    assert ax.get_xlim() == (100.0, 500.0)
    assert plots.plot_returns([run], tmp_path / "r.png").is_file()


def test_max_mean_episodic_return_per_seed():
    returns = np.array([[0.1, np.nan, 0.5, 0.3], [np.nan, -0.2, -0.4, -0.1]])
    np.testing.assert_allclose(stats.max_mean_episodic_return(returns), [0.5, -0.1])
    with pytest.raises(HystaxError, match="no episode"):
        stats.max_mean_episodic_return(np.array([[0.1, 0.2], [np.nan, np.nan]]))
    with pytest.raises(HystaxError, match=r"\[seeds, updates\]"):
        stats.max_mean_episodic_return(np.zeros(3))


def test_run_label_names_the_memory_model():
    config = {"agent": "ppo", "env": "popgym/RepeatPreviousEasy", "config": {"memory": "s5"}}
    assert plots._run_label("x", config) == "ppo-s5 on popgym/RepeatPreviousEasy"
    config["config"]["memory"] = "none"
    assert plots._run_label("x", config) == "ppo on popgym/RepeatPreviousEasy"
    dyna = {"agent": "dyna", "env": "Acrobot-v1", "config": {"model": "losse"}}
    assert plots._run_label("x", dyna) == "dyna-losse on Acrobot-v1"  # Dyna's world model
    mbrl = {"agent": "mbrl", "env": "pendulum-gravity", "config": {"method": "hnet"}}
    assert plots._run_label("x", mbrl) == "mbrl-hnet on pendulum-gravity"  # continual method


def test_t_interval_matches_scipy_and_widens_with_few_seeds():
    from scipy import stats as scipy_stats

    rng = np.random.default_rng(0)
    for n in (2, 3, 10):
        x = rng.normal(size=n)
        mean, half = stats.mean_and_t_interval(x)
        lo, hi = scipy_stats.t.interval(0.95, n - 1, loc=x.mean(), scale=scipy_stats.sem(x))
        np.testing.assert_allclose([mean - half, mean + half], [lo, hi], rtol=1e-10)
    _, half_3 = stats.mean_and_t_interval([0.0, 1.0, 2.0])
    _, se_3 = stats.mean_and_standard_error([0.0, 1.0, 2.0])
    assert half_3 > 4 * se_3  # t_{0.975, 2} = 4.30: three seeds give wide intervals
    assert stats.mean_and_t_interval([1.0])[1] == np.inf


def test_running_mean_matches_a_loop_and_ignores_nan():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(3, 40))
    y[rng.random(y.shape) < 0.2] = np.nan
    for window in (1, 4, 10):
        got = stats.running_mean(y, window)
        for s in range(3):
            for t in range(40):
                chunk = y[s, max(0, t - window + 1):t + 1]
                want = np.nanmean(chunk) if np.isfinite(chunk).any() else np.nan
                np.testing.assert_allclose(got[s, t], want, equal_nan=True)


def test_steps_to_threshold_finds_the_first_crossing_of_the_running_mean():
    steps = np.arange(1, 101) * 1000.0
    rng = np.random.default_rng(2)
    for _ in range(50):
        cross = rng.integers(5, 95)
        curve = np.where(np.arange(100) >= cross, 1.0, 0.0)
        # the 4-point running mean first reaches 0.5 two points after the jump
        assert stats.steps_to_threshold(curve, steps, 0.5, window=4) == steps[cross + 1]
        assert stats.steps_to_threshold(curve, steps, 1.0, window=4) == steps[cross + 3]
    assert np.isnan(stats.steps_to_threshold(np.zeros(100), steps, 0.1))


def test_normalized_scores_put_the_baseline_at_zero_and_the_best_at_one():
    scores = np.array([[0.2, -0.5], [1.0, 0.25]])
    out = stats.normalized_scores(scores, baseline=np.array([0.2, -0.5]))
    np.testing.assert_allclose(out, [[0.0, 0.0], [1.0, 0.5]])
    with pytest.raises(HystaxError, match="baseline < best"):
        stats.normalized_scores(scores, baseline=np.array([1.0, 0.0]))


def test_learning_curve_grid(tmp_path):
    from hystax.learning_curves import plot_learning_curve_grid

    steps = np.arange(1, 31) * 1000.0
    rng = np.random.default_rng(3)
    panels = {task: {m: (steps, rng.normal(size=(3, 30)).cumsum(1)) for m in ("s5", "gru")}
              for task in ("A", "B", "C")}
    out = plot_learning_curve_grid(panels, tmp_path / "grid.png", title="test grid", smooth=5,
                                   references={"A": [0.5]})
    assert out.stat().st_size > 10_000
    with pytest.raises(HystaxError, match="steps for"):
        plot_learning_curve_grid({"A": {"s5": (steps[:5], rng.normal(size=(3, 30)))}},
                                 tmp_path / "bad.png", title="bad")


def test_task_matrix_cells_keep_significant_digits(tmp_path):
    """One-step errors of a good model are ~1e-3: every cell used to read "0.0"."""
    from hystax.task_plots import cell_text

    assert [cell_text(v) for v in (0.0021, 0.0043, 0.35, 12.0, 120.4)] == [
        "0.0021", "0.0043", "0.35", "12", "120"]
    errors = {"hnet": np.array([[0.0021, 0.0043], [np.nan, 0.0017]])}
    assert plots.plot_task_matrices(errors, tmp_path / "errors.png").stat().st_size > 5_000


@pytest.mark.parametrize("seeds, shaded, thin_lines", [((0, 1, 2), True, 0), ((0, 1), False, 2)])
def test_run_titles_name_the_run_not_its_timestamp_and_bands_need_three_seeds(
        tmp_path, seeds, shaded, thin_lines):
    from matplotlib.collections import PolyCollection

    run = _fake_run(tmp_path / "ppo-CartPole-v1-20261202-101010", seeds=seeds)
    ax = plots._returns_figure([run]).axes[0]
    title = ax.get_title()
    assert title.splitlines()[0] == "ppo on CartPole-v1" and "2026" not in title
    assert ("95% bootstrap CI" in title) == shaded and ("each seed" in title) != shaded
    assert any(isinstance(c, PolyCollection) for c in ax.collections) == shaded
    assert len(ax.get_lines()) == 1 + thin_lines


def test_smoothing_is_a_running_mean_and_is_named_in_the_title(tmp_path):
    run = _fake_run(tmp_path / "r")
    raw = plots._returns_figure([run]).axes[0].get_lines()[0].get_ydata()
    ax = plots._returns_figure([run], smooth=5).axes[0]
    smoothed = ax.get_lines()[0].get_ydata()
    assert "5-update running mean" in ax.get_title()
    assert np.nanstd(np.diff(smoothed)) < np.nanstd(np.diff(raw))
    with pytest.raises(HystaxError, match="smooth must be a positive"):
        plots._returns_figure([run], smooth=0)
