"""DynLin-UCB on the DLB real preset: jitted+vmapped ``run_seeds`` vs a plain numpy loop, and memory in T.

``python -m hystax.experiments.bench.bench_bandits [--quick] [--out PATH]`` (or ``hystax bench bandits``)
measures, for DynLin-UCB with lambda = log T on the ``real`` preset (float64 throughout):

1. rounds/s of ``jit(vmap(run over seeds))`` for 100 seeds x T = 10^5 (one ``lax.scan`` over
   rounds; compile time from ``lower().compile()`` reported apart, median of the timed runs);
2. rounds/s of a plain numpy per-round loop of the SAME algorithm (same beta, epochs, only
   the last reward of each epoch used, V re-inverted per update; the environment stepped in
   numpy too). It is far slower, so it runs fewer seeds x rounds and its rate is per round
   (rounds are independent of T in cost): the ratio compares rounds/s. A check replays seed 0's
   JAX noise through the numpy loop and compares its regret with the JAX run's; the same
   numpy algorithm with the seeds side by side as arrays is the fairer peer;
2b. two ceilings: the clairvoyant policy through the same runner (the harness floor) and the
   run's noise drawn alone (threefry), which no runner meeting the same noise can beat;
3. memory held flat in T: the compiled executable's memory analysis (temp / output / peak
   bytes) for T in {10^4, 10^5, 10^6} with a fixed number of regret records, next to what a
   per-round history would take.

Results go to stdout as a markdown table and to ``out`` as JSON (with machine info).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from hystax.agents.bandits import bandit_runner as runner
from hystax.agents.bandits import clairvoyant, dynlin_ucb, make_info
from hystax.agents.bandits.dlb_runs import dlb_regrets
from hystax.envs.dlb import preset
from hystax.experiments.bandit_reference import numpy_dynlin_ucb
from hystax.experiments.bench.bench_tools import bench_cli, finish, machine_info
from hystax.progress import PartBar

import hystax  # noqa: F401  (before jax: the XLA:CPU workaround)

PRESET = "real"
TARGET_RATIO = 50.0


@dataclasses.dataclass(frozen=True)
class Sizes:
    seeds: int            # jax: seeds x horizon rounds
    horizon: int
    record_every: int
    reps: int
    numpy_seeds: int      # numpy loop: seeds x numpy_rounds rounds (of a horizon-T run)
    numpy_rounds: int
    check_rounds: int     # numpy replay of seed 0's jax noise (a multiple of record_every)
    memory_horizons: tuple
    memory_records: int   # regret records per run in the memory table (fixed across T)
    memory_seeds: int


FULL = Sizes(seeds=100, horizon=100_000, record_every=1000, reps=3, numpy_seeds=2,
             numpy_rounds=20_000, check_rounds=20_000, memory_horizons=(10**4, 10**5, 10**6),
             memory_records=100, memory_seeds=100)
QUICK = Sizes(seeds=8, horizon=2_000, record_every=100, reps=2, numpy_seeds=1, numpy_rounds=1_000,
              check_rounds=1_000, memory_horizons=(10_000, 40_000), memory_records=10,
              memory_seeds=8)


# --- jax ------------------------------------------------------------------------------------------


def _compile(problem, seeds: int, horizon: int, every: int, policy=None):
    """The jitted+vmapped run of ``run_seeds`` (the bandit runner) compiled ahead of time:
    (compiled, args, s); the policy defaults to DynLin-UCB (lam = log T)."""
    policy = dynlin_ucb(lam="logT") if policy is None else policy
    info = make_info(problem, horizon)
    with jax.enable_x64(True):
        keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(seeds))
        start = time.perf_counter()
        busy = runner.busy_rounds(policy, info, horizon)
        compiled = runner.compiled_play(policy, horizon // every, every, True).lower(
            problem, info, keys, busy).compile()
        return compiled, (problem, info, keys, busy), time.perf_counter() - start


def bench_jax(problem, sizes: Sizes, policy=None) -> dict:
    """Rounds/s of the runner for ``policy`` (default DynLin-UCB, lam = log T), compile apart."""
    compiled, args, compile_s = _compile(problem, sizes.seeds, sizes.horizon, sizes.record_every,
                                         policy)
    times = []
    with jax.enable_x64(True):
        for _ in range(sizes.reps):
            start = time.perf_counter()
            out = jax.block_until_ready(compiled(*args))
            times.append(time.perf_counter() - start)
    run_s = statistics.median(times)
    rounds = sizes.seeds * sizes.horizon
    out = dlb_regrets(runner.collect(out, sizes.record_every))
    pseudo = out.pseudo_regret
    what = "DynLin-UCB" if policy is None else policy.name
    return {"name": f"jax jit+vmap run_seeds, {what}, {sizes.seeds} seeds x T = {sizes.horizon:,}",
            "seeds": sizes.seeds, "rounds_per_seed": sizes.horizon, "rounds": rounds,
            "rounds_per_s": rounds / run_s, "run_s": run_s, "run_s_all": times,
            "compile_s": compile_s,
            "final_pseudo_regret_mean": float(pseudo[:, -1].mean())}, out


def bench_noise(problem, sizes: Sizes) -> dict:
    """Rounds/s of drawing the run's noise alone, as the runner draws it (threefry, one call
    per chunk of rounds, vmapped over seeds), with no round played: a ceiling for any runner
    that meets the same noise."""
    every = sizes.record_every
    size = runner.noise_chunk(every)

    def noise_sum(key):
        def chunk(total, c):
            noise = runner.chunk_noise(problem, key, c, size)
            return total + sum(jnp.sum(x) for x in jax.tree.leaves(noise)), None
        return jax.lax.scan(chunk, jnp.float64(0), jnp.arange(sizes.horizon // size))[0]

    with jax.enable_x64(True):
        keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(sizes.seeds))
        start = time.perf_counter()
        compiled = jax.jit(jax.vmap(noise_sum)).lower(keys).compile()
        compile_s = time.perf_counter() - start
        times = []
        for _ in range(sizes.reps):
            start = time.perf_counter()
            jax.block_until_ready(compiled(keys))
            times.append(time.perf_counter() - start)
    run_s = statistics.median(times)
    rounds = sizes.seeds * sizes.horizon
    return {"name": f"jax noise alone (threefry, no rounds played), {sizes.seeds} seeds x "
                    f"T = {sizes.horizon:,}",
            "seeds": sizes.seeds, "rounds_per_seed": sizes.horizon, "rounds": rounds,
            "rounds_per_s": rounds / run_s, "run_s": run_s, "run_s_all": times,
            "compile_s": compile_s}


# --- numpy ----------------------------------------------------------------------------------------


def bench_numpy(problem, sizes: Sizes) -> dict:
    rng = np.random.default_rng(0)
    times = []
    for _ in range(sizes.numpy_seeds):
        start = time.perf_counter()
        numpy_dynlin_ucb(problem, sizes.horizon, sizes.numpy_rounds, rng=rng)
        times.append(time.perf_counter() - start)
    total = sum(times)
    rounds = sizes.numpy_seeds * sizes.numpy_rounds
    return {"name": f"numpy per-round loop, {sizes.numpy_seeds} seed(s) x {sizes.numpy_rounds:,} "
                    f"rounds (of T = {sizes.horizon:,})",
            "seeds": sizes.numpy_seeds, "rounds_per_seed": sizes.numpy_rounds, "rounds": rounds,
            "rounds_per_s": rounds / total, "run_s": total, "run_s_all": times, "compile_s": 0.0,
            "extrapolated_s_for_jax_size": sizes.seeds * sizes.horizon * total / rounds,
            "note": "fewer rounds than the jax run; rate per round, extrapolated to "
                    f"{sizes.seeds} seeds x {sizes.horizon:,} rounds"}


def bench_numpy_seeds(problem, sizes: Sizes) -> dict:
    """The same numpy algorithm with the seeds side by side as arrays (one loop over rounds)."""
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    numpy_dynlin_ucb(problem, sizes.horizon, sizes.numpy_rounds, rng=rng, seeds=sizes.seeds)
    run_s = time.perf_counter() - start
    rounds = sizes.seeds * sizes.numpy_rounds
    return {"name": f"numpy, seeds vectorised: {sizes.seeds} seeds x {sizes.numpy_rounds:,} "
                    f"rounds (of T = {sizes.horizon:,})",
            "seeds": sizes.seeds, "rounds_per_seed": sizes.numpy_rounds, "rounds": rounds,
            "rounds_per_s": rounds / run_s, "run_s": run_s, "compile_s": 0.0}


def check_numpy_matches_jax(problem, sizes: Sizes, jax_out) -> dict:
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
    regret, pseudo, _ = numpy_dynlin_ucb(problem, T, n_check, noise=(np.asarray(eta), np.asarray(eps)),
                                         first_arm=int(first))
    col = n_check // sizes.record_every - 1
    jr, jp = float(regret_curve[0, col]), float(pseudo_curve[0, col])
    return {"rounds": n_check, "numpy_regret": regret, "jax_regret": jr,
            "numpy_pseudo_regret": pseudo, "jax_pseudo_regret": jp,
            "match": bool(abs(regret - jr) < 1e-6 * max(1.0, abs(jr))
                          and abs(pseudo - jp) < 1e-6 * max(1.0, abs(jp)))}


# --- memory -------------------------------------------------------------------------------------


def _memory_row(problem, seeds: int, T: int, every: int, mode: str) -> dict:
    compiled, _, compile_s = _compile(problem, seeds, T, every)
    stats = compiled.memory_analysis()

    def get(k):
        return int(getattr(stats, k)) if stats is not None and hasattr(stats, k) else None

    return {"mode": mode, "horizon": T, "record_every": every, "records": T // every,
            "seeds": seeds, "temp_bytes": get("temp_size_in_bytes"),
            "output_bytes": get("output_size_in_bytes"),
            "argument_bytes": get("argument_size_in_bytes"),
            "peak_bytes": get("peak_memory_in_bytes"),
            "per_round_history_bytes": seeds * T * 2 * 8, "compile_s": compile_s}


def bench_memory(problem, sizes: Sizes) -> list[dict]:
    """Compiled memory analysis (compiled, not run) for each T, (a) with a fixed number of
    regret records (record_every grows with T) and (b) with a fixed record_every (the number
    of records, hence the output, grows with T by design)."""
    rows = [_memory_row(problem, sizes.memory_seeds, T, T // sizes.memory_records, "fixed records")
            for T in sizes.memory_horizons]
    every = min(sizes.memory_horizons) // sizes.memory_records
    rows += [_memory_row(problem, sizes.memory_seeds, T, every, "fixed record_every")
             for T in sizes.memory_horizons]
    return rows


def memory_verdict(rows: list[dict]) -> dict:
    """Flat in T = with a fixed number of records, the output is identical and the temp memory
    does not grow between the two largest T (up to 4 KiB of allocator slack): nothing is kept
    per round. (Below that the noise chunk, at most ``runner.MAX_CHUNK`` rounds, is smaller, so
    temp can be smaller at the smallest T.) With a fixed record_every the curve itself
    (seeds x records) grows with T by design; reported, not judged."""
    a = [r for r in rows if r["mode"] == "fixed records"]
    b = [r for r in rows if r["mode"] == "fixed record_every"]
    if any(r["temp_bytes"] is None or r["output_bytes"] is None for r in rows):
        return {"flat": None, "why": "memory_analysis() not available on this backend"}
    growth = a[-1]["temp_bytes"] - a[-2]["temp_bytes"]
    rounds_added = a[-1]["horizon"] - a[-2]["horizon"]
    out_flat = len({r["output_bytes"] for r in a}) == 1
    b_growth = b[-1]["temp_bytes"] - b[0]["temp_bytes"]
    b_records = b[-1]["records"] - b[0]["records"]
    per_seed_round = growth / (a[0]["seeds"] * rounds_added)
    return {"flat": bool(out_flat and growth <= 4096),
            "output_flat_fixed_records": out_flat,
            "temp_growth_bytes_per_added_record_fixed_record_every": b_growth / max(b_records, 1),
            "temp_growth_fixed_records_bytes": growth,
            "temp_growth_bytes_per_seed_round": per_seed_round}


# --- report ---------------------------------------------------------------------------------------


def _kib(x) -> str:
    return "n/a" if x is None else f"{x / 1024:,.1f}"


def format_table(results: dict) -> str:
    lines = ["| benchmark | rounds/s | run s | compile s |", "|---|---:|---:|---:|"]
    for key in ("jax", "floor", "noise", "numpy", "numpy_seeds"):
        row = results[key]
        lines.append(f"| {row['name']} | {row['rounds_per_s']:,.0f} | {row['run_s']:.2f} | "
                     f"{row['compile_s']:.1f} |")
    verdict = "meets" if results["ratio"] >= TARGET_RATIO else "below"
    lines.append(f"| ratio (jax / numpy loop rounds/s) | {results['ratio']:,.1f}x | | "
                 f"({verdict} target >= {TARGET_RATIO:.0f}x) |")
    lines.append(f"| harness floor (clairvoyant jax / numpy loop) | "
                 f"{results['floor_ratio']:,.1f}x | | (no learner can beat it) |")
    lines.append(f"| ratio (jax / numpy with seeds vectorised) | "
                 f"{results['ratio_to_vectorised']:,.1f}x | | (target >= 10x) |")
    lines.append(f"| noise ceiling (jax noise alone / numpy with seeds vectorised) | "
                 f"{results['noise_ratio_to_vectorised']:,.1f}x | | (no runner meeting this "
                 f"noise can beat it) |")
    c = results["check"]
    lines += ["", (f"numpy loop = the same algorithm: seed 0 replayed with the JAX noise for "
              f"{c['rounds']:,} rounds: pseudo-regret numpy {c['numpy_pseudo_regret']:.6f} vs jax "
              f"{c['jax_pseudo_regret']:.6f}, regret {c['numpy_regret']:.6f} vs "
              f"{c['jax_regret']:.6f} ({'match' if c['match'] else 'MISMATCH'}). "
              f"The numpy rate is measured on fewer rounds and extrapolated per round "
              f"({results['numpy']['extrapolated_s_for_jax_size']:,.0f} s for the jax size)."), "",
              ("| memory (compiled, 0 rounds run) | T | record_every | records | seeds | temp KiB "
               "| output KiB | argument KiB | peak KiB | a per-round history would be KiB |"),
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["memory"]:
        lines.append(f"| {r['mode']} | {r['horizon']:,} | {r['record_every']:,} | {r['records']} | "
                     f"{r['seeds']} | {_kib(r['temp_bytes'])} | "
                     f"{_kib(r['output_bytes'])} | {_kib(r['argument_bytes'])} | "
                     f"{_kib(r['peak_bytes'])} | {_kib(r['per_round_history_bytes'])} |")
    v = results["memory_verdict"]
    if v["flat"] is None:
        lines.append(f"\nmemory flat in T: unknown ({v['why']})")
    else:
        lines.append(f"\nmemory flat in T: {v['flat']}: fixed records -> output identical "
                     f"({v['output_flat_fixed_records']}), temp grows "
                     f"{v['temp_growth_fixed_records_bytes']:,} B between the two largest T "
                     f"({v['temp_growth_bytes_per_seed_round']:.2e} B per seed-round); with a fixed "
                     f"record_every only the recorded curve grows (temp "
                     f"{v['temp_growth_bytes_per_added_record_fixed_record_every']:.0f} B per "
                     f"added record for all seeds).")
    return "\n".join(lines)


def main(quick: bool = False, out: str = "runs/bench_bandits.json",
         progress: bool = True) -> dict:
    """Run the benchmark, print the table, write JSON to ``out``; return the results."""
    sizes = QUICK if quick else FULL
    machine = machine_info()
    problem = preset(PRESET)
    start = time.perf_counter()
    with PartBar(7, "bench bandits", progress) as part:
        jax_row, jax_out = part("jax", bench_jax, problem, sizes)
        floor_row, _ = part("harness floor", bench_jax, problem, sizes, clairvoyant())
        noise_row = part("noise alone", bench_noise, problem, sizes)
        numpy_row = part("numpy loop", bench_numpy, problem, sizes)
        vector_row = part("numpy, seeds vectorised", bench_numpy_seeds, problem, sizes)
        check = part("numpy = jax check", check_numpy_matches_jax, problem, sizes, jax_out)
        memory = part("memory", bench_memory, problem, sizes)
    verdict = memory_verdict(memory)
    rate = jax_row["rounds_per_s"]
    results = {"benchmark": "bandits", "algorithm": "DynLin-UCB (lam = log T)", "preset": PRESET,
               "quick": quick, "sizes": dataclasses.asdict(sizes), "machine": machine,
               "jax": jax_row, "floor": floor_row, "noise": noise_row, "numpy": numpy_row,
               "numpy_seeds": vector_row,
               "ratio": rate / numpy_row["rounds_per_s"],
               "ratio_to_vectorised": rate / vector_row["rounds_per_s"],
               "floor_ratio": floor_row["rounds_per_s"] / numpy_row["rounds_per_s"],
               "noise_ratio_to_vectorised": noise_row["rounds_per_s"] / vector_row["rounds_per_s"],
               "target_ratio": TARGET_RATIO, "check": check, "memory": memory,
               "memory_verdict": verdict, "memory_flat": verdict["flat"]}
    results["meets_target"] = results["ratio"] >= TARGET_RATIO
    results["total_s"] = time.perf_counter() - start  # the table reports it
    return finish(results, format_table(results), start, out)


def cli(argv: list[str] | None = None) -> int:
    return bench_cli(main, "bandits", __doc__, argv)


if __name__ == "__main__":
    sys.exit(cli())
