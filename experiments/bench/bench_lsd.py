"""LSD bandits: planner wall time vs K and horizon; learners' rounds/s, vmapped vs a numpy loop.

``python -m hystax.experiments.bench.bench_lsd [--quick] [--out PATH]`` (or ``hystax bench lsd``)
measures, in float64 throughout:

1. the exact DP (``dp_value`` and ``dp_plan``) on random monotone recharging instances
   (``random_monotone(seed, K, idle_cap, kind="recharging")``: idle_cap + 1 states per arm, so
   (idle_cap + 1)^K joint states) vs K at a fixed horizon, and vs the horizon at a fixed K.
   The first call (jit caches emptied beforehand: numpy tables, tracing, compiling and running)
   and the second call (the same arguments again, compiled code cached) are timed apart;
2. the cycle LP (``lp_relaxation``) vs K on random monotone LSD instances: the pure-jax
   Lagrangian dual (first call, then the median of warm calls) against scipy's HiGHS
   (``method="highs"``), with the largest |dual - HiGHS| of the LP values; then the rounding
   planner (``lp_rounding_schedules`` on ``rounding_lp``, the leave-one-out filler LP the
   planner itself rounds, solved once beforehand) for a batch of keys vs the horizon;
3. rounds/s of the learners LP-rounding UCB and ISI-CombUCB1 (D = 4) on ``laforgue-main``:
   ``jit(vmap(run over seeds))`` of ``run_seeds`` (one ``lax.scan`` over rounds; compile time
   from ``lower().compile()`` reported apart, median of the timed runs) next to a plain numpy
   per-round loop of the SAME algorithm (``experiments/reference/``: same UCB tables,
   same epochs / blocks, same arm choice; the environment stepped in numpy too). LP-rounding
   UCB's numpy loop solves the K leave-one-out cycle LPs on the UCB table with scipy's HiGHS at
   every re-plan, keeps the filler with the largest value, and samples the cycles and phases
   with numpy (so it follows the same rule, not the same draws; where a UCB LP has several
   optima HiGHS and the jax dual may return different ones); ISI-CombUCB1's numpy loop
   enumerates all K^D block sequences exactly (their base arms do not depend on the state, so
   they are computed once), and seed 0 is replayed with the JAX run's reward draws and compared
   with it. The numpy loops run fewer seeds (the same horizon), and the ratio compares rounds/s
   measured side by side in the same run.

Results go to stdout as markdown tables and to ``out`` as JSON (with machine info).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from hystax.agents.bandits.bandit_runner import busy_rounds, collect, compiled_play, noise_of_rounds
from hystax.agents.bandits.lsd.comb_ucb import isi_comb_ucb1
from hystax.agents.bandits.lsd.lsd_runs import make_info
from hystax.agents.bandits.lsd.rounding import lp_rounding_ucb
from hystax.envs.lsd import preset
from hystax.experiments.bench.bench_lsd_planners import bench_dp, bench_lp, bench_rounding
from hystax.experiments.bench.bench_tools import bench_cli, finish, machine_info, repeat, timed
from hystax.experiments.reference import numpy_isi_comb_ucb1, numpy_lp_rounding_ucb
from hystax.progress import PartBar

PRESET = "laforgue-main"
ISI_BLOCK = 4  # D = d + 1 with d = 3, the paper's block on laforgue-main
LP_TOL = 1e-7  # |dual - HiGHS| of the per-round LP value regarded as agreeing


@dataclasses.dataclass(frozen=True)
class Sizes:
    dp_idle_cap: int            # recharging instances: idle_cap + 1 states per arm
    dp_arms: tuple              # DP vs K, at horizon dp_arms_horizon
    dp_arms_horizon: int
    dp_horizons: tuple          # DP vs T, at K = dp_horizon_arms
    dp_horizon_arms: int
    lp_arms: tuple              # LP vs K (idle_cap = play_cap = lp_cap)
    lp_cap: int
    lp_reps: int                # warm calls (median)
    rounding_arms: int          # rounding planner: K, keys, horizons
    rounding_keys: int
    rounding_horizons: tuple
    seeds: int                  # learners, jax: seeds x horizon rounds
    horizon: int
    record_every: int
    reps: int
    numpy_seeds: int            # learners, numpy loop: numpy_seeds x horizon rounds


FULL = Sizes(dp_idle_cap=9, dp_arms=(2, 3, 4, 5, 6), dp_arms_horizon=1000,
             dp_horizons=(1000, 4000, 16000), dp_horizon_arms=4,
             lp_arms=(10, 100, 1000), lp_cap=6, lp_reps=3,
             rounding_arms=10, rounding_keys=32, rounding_horizons=(10**3, 10**4, 10**5),
             seeds=100, horizon=3600, record_every=100, reps=3, numpy_seeds=4)
QUICK = Sizes(dp_idle_cap=9, dp_arms=(2, 3, 4), dp_arms_horizon=500,
              dp_horizons=(250, 1000), dp_horizon_arms=3,
              lp_arms=(10, 100), lp_cap=6, lp_reps=2,
              rounding_arms=10, rounding_keys=8, rounding_horizons=(1000, 4000),
              seeds=8, horizon=720, record_every=72, reps=2, numpy_seeds=1)


# --- 3. learners: jax -------------------------------------------------------------------------


def bench_jax_learner(policy, problem, sizes: Sizes) -> tuple[dict, tuple]:
    """``run_seeds``' compiled runner (jit of vmap over PRNGKey(0..S-1) of one scan over rounds),
    compiled ahead of time; median of ``reps`` timed runs."""
    info = make_info(problem, sizes.horizon)
    busy = busy_rounds(policy, info, sizes.horizon)
    blocks = sizes.horizon // sizes.record_every
    with jax.enable_x64(True):
        keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(sizes.seeds))
        compile_s, compiled = timed(lambda: compiled_play(
            policy, blocks, sizes.record_every, True).lower(problem, info, keys,
                                                            busy).compile())
        times, out = repeat(lambda: compiled(problem, info, keys, busy), sizes.reps)
    played = collect(out, sizes.record_every)
    reward, counts = played.reward, played.arm_counts
    run_s = statistics.median(times)
    rounds = sizes.seeds * sizes.horizon
    per_round = reward[:, -1] / sizes.horizon
    row = {"learner": policy.name, "impl": "jax",
           "name": f"jax jit+vmap run_seeds, {sizes.seeds} seeds x T = {sizes.horizon:,}",
           "seeds": sizes.seeds, "rounds_per_seed": sizes.horizon, "rounds": rounds,
           "rounds_per_s": rounds / run_s, "run_s": run_s, "run_s_all": times,
           "compile_s": compile_s, "reward_per_round_mean": float(per_round.mean()),
           "reward_per_round_std": float(per_round.std(ddof=1)) if sizes.seeds > 1 else 0.0}
    return row, (reward, counts)


# --- 3. learners: numpy ---------------------------------------------------------------------


def bench_numpy_learner(name: str, fn, sizes: Sizes) -> dict:
    rng = np.random.default_rng(0)
    times, totals = [], []
    for _ in range(sizes.numpy_seeds):
        run_s, total = timed(lambda: fn(rng))
        times.append(run_s)
        totals.append(total)
    run_s = sum(times)
    rounds = sizes.numpy_seeds * sizes.horizon
    per_round = np.asarray(totals) / sizes.horizon
    return {"learner": name, "impl": "numpy",
            "name": f"numpy per-round loop, {sizes.numpy_seeds} seed(s) x T = {sizes.horizon:,}",
            "seeds": sizes.numpy_seeds, "rounds_per_seed": sizes.horizon, "rounds": rounds,
            "rounds_per_s": rounds / run_s, "run_s": run_s, "run_s_all": times, "compile_s": 0.0,
            "reward_per_round_mean": float(per_round.mean()),
            "reward_per_round_std": float(per_round.std(ddof=1)) if len(totals) > 1 else 0.0,
            "extrapolated_s_for_jax_size": sizes.seeds * sizes.horizon * run_s / rounds}


def check_isi_replay(problem, sizes: Sizes, jax_out) -> dict:
    """Seed 0 of the JAX ISI-CombUCB1 run (PRNGKey(0); its Bernoulli draws as the bandit runner
    makes them, :func:`~hystax.agents.bandits.bandit_runner.noise_of_rounds`) replayed through the numpy
    loop: the cumulative expected reward at every record and the arm counts must be identical."""
    reward, counts = jax_out
    with jax.enable_x64(True):
        uniforms = np.asarray(noise_of_rounds(problem, jax.random.PRNGKey(0), sizes.horizon,
                                              sizes.record_every))
    cumulative, numpy_counts = numpy_isi_comb_ucb1(problem, sizes.horizon, ISI_BLOCK,
                                                   uniforms=uniforms)
    records = cumulative[sizes.record_every - 1::sizes.record_every]
    diff = float(np.max(np.abs(records - reward[0])))
    return {"rounds": sizes.horizon, "numpy_reward": float(cumulative[-1]),
            "jax_reward": float(reward[0, -1]), "max_abs_diff_records": diff,
            "numpy_arm_counts": numpy_counts.tolist(), "jax_arm_counts": counts[0].tolist(),
            "match": bool(diff < 1e-9 and np.array_equal(numpy_counts, counts[0]))}


def bench_learners(sizes: Sizes) -> tuple[list[dict], dict]:
    problem = preset(PRESET)
    rows = []
    policies = [("lp-rounding-ucb", lp_rounding_ucb(),
                 lambda rng: numpy_lp_rounding_ucb(problem, sizes.horizon, rng)[0]),
                ("isi-comb-ucb1", isi_comb_ucb1(ISI_BLOCK),
                 lambda rng: numpy_isi_comb_ucb1(problem, sizes.horizon, ISI_BLOCK, rng)[0][-1])]
    check = None
    for key, policy, numpy_fn in policies:
        jax_row, jax_out = bench_jax_learner(policy, problem, sizes)
        numpy_row = bench_numpy_learner(policy.name, numpy_fn, sizes)
        rows += [jax_row, numpy_row]
        jax_row["ratio"] = numpy_row["ratio"] = jax_row["rounds_per_s"] / numpy_row["rounds_per_s"]
        jax_row["key"] = numpy_row["key"] = key
        if key == "isi-comb-ucb1":
            check = check_isi_replay(problem, sizes, jax_out)
    return rows, check


# --- report ---------------------------------------------------------------------------------


def _s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def format_table(results: dict) -> str:
    lines = [("| DP | K | joint states | T | dp_value 1st s | dp_value 2nd s | dp_plan 1st s "
              "| dp_plan 2nd s | backups/s (2nd dp_value) | OPT |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["dp"]:
        lines.append(f"| vs {r['sweep']} | {r['arms']} | {r['joint_states']:,} | {r['horizon']:,} | "
                     f"{_s(r['dp_value_first_s'])} | {_s(r['dp_value_warm_s'])} | "
                     f"{_s(r['dp_plan_first_s'])} | {_s(r['dp_plan_warm_s'])} | "
                     f"{r['backups_per_s_warm']:.2e} | {r['opt']:.2f} |")
    lines += ["", ("| LP | K | variables | dual 1st s | dual warm s | HiGHS 1st s | HiGHS warm s "
                   "| LP value / round | abs(dual - HiGHS) |"),
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["lp"]:
        lines.append(f"| cycle LP | {r['arms']:,} | {r['variables']:,} | {_s(r['dual_first_s'])} | "
                     f"{r['dual_warm_s']:.4f} | {_s(r['highs_first_s'])} | {r['highs_warm_s']:.4f} | "
                     f"{r['highs_value']:.6f} | {r['abs_diff']:.1e} |")
    lines += ["", "| rounding planner | K | schedules | T | 1st s | 2nd s | schedule-rounds/s |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results["rounding"]:
        lines.append(f"| lp_rounding_schedules | {r['arms']} | {r['keys']} | {r['horizon']:,} | "
                     f"{_s(r['first_s'])} | {_s(r['warm_s'])} | {r['schedule_rounds_per_s']:,.0f} |")
    lines += ["", (f"| learner ({PRESET}) | run | rounds/s | run s | compile s "
                   "| expected reward / round (mean ± sd over seeds) |"),
              "|---|---|---:|---:|---:|---:|"]
    for r in results["learners"]:
        lines.append(f"| {r['learner']} | {r['name']} | {r['rounds_per_s']:,.0f} | {r['run_s']:.2f} | "
                     f"{r['compile_s']:.1f} | {r['reward_per_round_mean']:.4f} ± "
                     f"{r['reward_per_round_std']:.4f} |")
    for key, ratio in results["ratios"].items():
        lines.append(f"| {key} | ratio (jax / numpy rounds/s) | {ratio:,.0f}x | | | |")
    c = results["isi_replay"]
    lines += ["", (f"LP values: max abs(dual - HiGHS) = {results['lp_max_abs_diff']:.1e} "
                   f"({'agree' if results['lp_agree'] else 'DISAGREE'} within {LP_TOL:g}). "
                   f"ISI-CombUCB1 numpy loop = the same algorithm: seed 0 replayed with the JAX "
                   f"reward draws for {c['rounds']:,} rounds: expected reward numpy "
                   f"{c['numpy_reward']:.4f} vs jax {c['jax_reward']:.4f}, arm counts "
                   f"{c['numpy_arm_counts']} vs {c['jax_arm_counts']} "
                   f"({'match' if c['match'] else 'MISMATCH'}). LP-rounding UCB's numpy loop "
                   f"(HiGHS leave-one-out LPs, numpy draws) follows the same rule, not the "
                   f"same draws; where a UCB LP has several optima HiGHS returns a vertex and "
                   f"the jax dual a mix of Lagrangian solutions, so their rewards per round may "
                   f"differ a little.")]
    return "\n".join(lines)


def main(quick: bool = False, out: str = "runs/bench_lsd.json", progress: bool = True) -> dict:
    """Run the benchmark, print the tables, write JSON to ``out``; return the results."""
    sizes = QUICK if quick else FULL
    machine = machine_info()
    start = time.perf_counter()
    with PartBar(4, "bench lsd", progress) as part:
        dp = part("exact DP", bench_dp, sizes)
        lp = part("LP", bench_lp, sizes)
        rounding = part("rounding", bench_rounding, sizes)
        learners, check = part("learners", bench_learners, sizes)
    ratios = {r["learner"]: r["ratio"] for r in learners if r["impl"] == "jax"}
    lp_diff = max(r["abs_diff"] for r in lp)
    results = {"benchmark": "lsd", "preset": PRESET, "quick": quick,
               "sizes": dataclasses.asdict(sizes), "machine": machine,
               "dp": dp, "lp": lp, "rounding": rounding, "learners": learners,
               "ratios": ratios, "isi_replay": check,
               "lp_max_abs_diff": lp_diff, "lp_agree": bool(lp_diff <= LP_TOL)}
    return finish(results, format_table(results), start, out)


cli = bench_cli(main, "lsd", __doc__)


if __name__ == "__main__":
    sys.exit(cli())
