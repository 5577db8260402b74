"""The timed runs of ``hystax bench bandits`` (:mod:`.bench_bandits`): DynLin-UCB through the
jitted+vmapped bandit runner, its noise alone, and the numpy reference loop (one seed at a
time, and the seeds side by side), with a replay check that the loop is the same algorithm.

``sizes`` is a :class:`.bench_bandits.Sizes`.
"""

from __future__ import annotations

import statistics

import jax
import jax.numpy as jnp
import numpy as np

from hystax.agents.bandits import bandit_runner as runner
from hystax.agents.bandits import dynlin_ucb, make_info
from hystax.agents.bandits.dlb_runs import dlb_regrets
from hystax.experiments.bench.bench_tools import compile_ahead, repeat, timed
from hystax.experiments.reference import numpy_dynlin_ucb

# --- jax ---------------------------------------------------------------------------------------


def compile_run(problem, seeds: int, horizon: int, every: int, policy=None):
    """The jitted+vmapped run of ``run_seeds`` (the bandit runner) compiled ahead of time:
    (compiled, args, compile seconds); the policy defaults to DynLin-UCB (lam = log T)."""
    policy = dynlin_ucb(lam="logT") if policy is None else policy
    info = make_info(problem, horizon)
    with jax.enable_x64(True):
        keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(seeds))
        compile_s, (compiled, busy) = timed(lambda: _compiled_play(policy, problem, info, keys,
                                                                  horizon, every))
        return compiled, (problem, info, keys, busy), compile_s


def _compiled_play(policy, problem, info, keys, horizon: int, every: int):
    busy = runner.busy_rounds(policy, info, horizon)
    return runner.compiled_play(policy, horizon // every, every, True).lower(
        problem, info, keys, busy).compile(), busy


def _rate_row(name: str, sizes, times: list[float], compile_s: float) -> dict:
    """A row of rounds/s over ``sizes.seeds`` x ``sizes.horizon`` rounds (median run)."""
    run_s = statistics.median(times)
    rounds = sizes.seeds * sizes.horizon
    return {"name": name, "seeds": sizes.seeds, "rounds_per_seed": sizes.horizon,
            "rounds": rounds, "rounds_per_s": rounds / run_s, "run_s": run_s,
            "run_s_all": times, "compile_s": compile_s}


def bench_jax(problem, sizes, policy=None) -> tuple[dict, object]:
    """Rounds/s of the runner for ``policy`` (default DynLin-UCB, lam = log T), compile apart;
    returns (the row, the run's regret curves)."""
    compiled, args, compile_s = compile_run(problem, sizes.seeds, sizes.horizon,
                                            sizes.record_every, policy)
    with jax.enable_x64(True):
        times, out = repeat(lambda: compiled(*args), sizes.reps)
    out = dlb_regrets(runner.collect(out, sizes.record_every))
    what = "DynLin-UCB" if policy is None else policy.name
    row = _rate_row(f"jax jit+vmap run_seeds, {what}, {sizes.seeds} seeds x "
                    f"T = {sizes.horizon:,}", sizes, times, compile_s)
    row["final_pseudo_regret_mean"] = float(out.pseudo_regret[:, -1].mean())
    return row, out


def bench_noise(problem, sizes) -> dict:
    """Rounds/s of drawing the run's noise alone, as the runner draws it (threefry, one call
    per chunk of rounds, vmapped over seeds), with no round played: a ceiling for any runner
    that meets the same noise."""
    size = runner.noise_chunk(sizes.record_every)

    def noise_sum(key):
        def chunk(total, c):
            noise = runner.chunk_noise(problem, key, c, size)
            return total + sum(jnp.sum(x) for x in jax.tree.leaves(noise)), None
        return jax.lax.scan(chunk, jnp.float64(0), jnp.arange(sizes.horizon // size))[0]

    with jax.enable_x64(True):
        keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(sizes.seeds))
        compile_s, compiled = compile_ahead(jax.vmap(noise_sum), keys)
        times, _ = repeat(lambda: compiled(keys), sizes.reps)
    return _rate_row(f"jax noise alone (threefry, no rounds played), {sizes.seeds} seeds x "
                     f"T = {sizes.horizon:,}", sizes, times, compile_s)


# --- numpy -------------------------------------------------------------------------------------


def bench_numpy(problem, sizes) -> dict:
    """Rounds/s of the numpy loop, one seed at a time (fewer rounds than the jax run; the
    rate is per round, extrapolated to the jax size)."""
    rng = np.random.default_rng(0)
    times = [timed(lambda: numpy_dynlin_ucb(problem, sizes.horizon, sizes.numpy_rounds,
                                            rng=rng))[0] for _ in range(sizes.numpy_seeds)]
    total = sum(times)
    rounds = sizes.numpy_seeds * sizes.numpy_rounds
    return {"name": f"numpy per-round loop, {sizes.numpy_seeds} seed(s) x {sizes.numpy_rounds:,} "
                    f"rounds (of T = {sizes.horizon:,})",
            "seeds": sizes.numpy_seeds, "rounds_per_seed": sizes.numpy_rounds, "rounds": rounds,
            "rounds_per_s": rounds / total, "run_s": total, "run_s_all": times, "compile_s": 0.0,
            "extrapolated_s_for_jax_size": sizes.seeds * sizes.horizon * total / rounds,
            "note": "fewer rounds than the jax run; rate per round, extrapolated to "
                    f"{sizes.seeds} seeds x {sizes.horizon:,} rounds"}


def bench_numpy_seeds(problem, sizes) -> dict:
    """The same numpy algorithm with the seeds side by side as arrays (one loop over rounds)."""
    rng = np.random.default_rng(1)
    run_s, _ = timed(lambda: numpy_dynlin_ucb(problem, sizes.horizon, sizes.numpy_rounds,
                                              rng=rng, seeds=sizes.seeds))
    rounds = sizes.seeds * sizes.numpy_rounds
    return {"name": f"numpy, seeds vectorised: {sizes.seeds} seeds x {sizes.numpy_rounds:,} "
                    f"rounds (of T = {sizes.horizon:,})",
            "seeds": sizes.seeds, "rounds_per_seed": sizes.numpy_rounds, "rounds": rounds,
            "rounds_per_s": rounds / run_s, "run_s": run_s, "compile_s": 0.0}


def check_numpy_matches_jax(problem, sizes, jax_out) -> dict:
    """Seed 0: replay the JAX run's noise and first arm through the numpy loop; compare the
    regrets after ``check_rounds`` rounds with the JAX run's records (``jax_out``: the output
    of :func:`bench_jax`, whose seed 0 uses PRNGKey(0) as ``run_seeds`` does)."""
    T, n_check = sizes.horizon, sizes.check_rounds
    regret_curve, pseudo_curve = jax_out.regret, jax_out.pseudo_regret
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(0)
        eta, eps = runner.noise_of_rounds(problem, key, n_check, sizes.record_every)
        first = jax.random.randint(runner.policy_key(key, 0, sizes.record_every), (), 0,
                                   problem.num_arms)
    regret, pseudo, _ = numpy_dynlin_ucb(problem, T, n_check,
                                         noise=(np.asarray(eta), np.asarray(eps)),
                                         first_arm=int(first))
    col = n_check // sizes.record_every - 1
    jr, jp = float(regret_curve[0, col]), float(pseudo_curve[0, col])
    return {"rounds": n_check, "numpy_regret": regret, "jax_regret": jr,
            "numpy_pseudo_regret": pseudo, "jax_pseudo_regret": jp,
            "match": bool(abs(regret - jr) < 1e-6 * max(1.0, abs(jr))
                          and abs(pseudo - jp) < 1e-6 * max(1.0, abs(jp)))}
