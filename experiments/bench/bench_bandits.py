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
import sys
import time

from hystax.agents.bandits import clairvoyant
from hystax.envs.dlb import preset
from hystax.experiments.bench.bench_bandits_memory import (
    bench_memory,
    format_memory,
    memory_verdict,
)
from hystax.experiments.bench.bench_bandits_runs import (
    bench_jax,
    bench_noise,
    bench_numpy,
    bench_numpy_seeds,
    check_numpy_matches_jax,
)
from hystax.experiments.bench.bench_tools import bench_cli, finish, machine_info
from hystax.progress import PartBar

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
              f"({results['numpy']['extrapolated_s_for_jax_size']:,.0f} s for the jax size)."), ""]
    lines += format_memory(results["memory"], results["memory_verdict"])
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
    return finish(results, format_table(results), start, out)


cli = bench_cli(main, "bandits", __doc__)

if __name__ == "__main__":
    sys.exit(cli())
