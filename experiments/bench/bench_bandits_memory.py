"""Memory held flat in T (``hystax bench bandits``, :mod:`.bench_bandits`): the compiled
runner's memory analysis (temp / output / argument / peak bytes, compiled, not run) for several
horizons T, next to what a per-round history would take."""

from __future__ import annotations

from hystax.experiments.bench.bench_bandits_runs import compile_run
from hystax.experiments.bench.bench_tools import kib, memory_analysis


def memory_row(problem, seeds: int, T: int, every: int, mode: str) -> dict:
    """The compiled run's memory for ``seeds`` x ``T`` rounds recorded every ``every``."""
    compiled, _, compile_s = compile_run(problem, seeds, T, every)
    return {"mode": mode, "horizon": T, "record_every": every, "records": T // every,
            "seeds": seeds,
            **memory_analysis(compiled, ("temp", "output", "argument", "peak")),
            "per_round_history_bytes": seeds * T * 2 * 8, "compile_s": compile_s}


def bench_memory(problem, sizes) -> list[dict]:
    """Compiled memory analysis (compiled, not run) for each T, (a) with a fixed number of
    regret records (record_every grows with T) and (b) with a fixed record_every (the number
    of records, hence the output, grows with T by design)."""
    rows = [memory_row(problem, sizes.memory_seeds, T, T // sizes.memory_records, "fixed records")
            for T in sizes.memory_horizons]
    every = min(sizes.memory_horizons) // sizes.memory_records
    rows += [memory_row(problem, sizes.memory_seeds, T, every, "fixed record_every")
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


def format_memory(rows: list[dict], verdict: dict) -> list[str]:
    """The memory table and the verdict line."""
    lines = ["| memory (compiled, 0 rounds run) | T | record_every | records | seeds | temp KiB "
             "| output KiB | argument KiB | peak KiB | a per-round history would be KiB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['mode']} | {r['horizon']:,} | {r['record_every']:,} | {r['records']} | "
                     f"{r['seeds']} | {kib(r['temp_bytes'])} | "
                     f"{kib(r['output_bytes'])} | {kib(r['argument_bytes'])} | "
                     f"{kib(r['peak_bytes'])} | {kib(r['per_round_history_bytes'])} |")
    v = verdict
    if v["flat"] is None:
        lines.append(f"\nmemory flat in T: unknown ({v['why']})")
    else:
        lines.append(f"\nmemory flat in T: {v['flat']}: fixed records -> output identical "
                     f"({v['output_flat_fixed_records']}), temp grows "
                     f"{v['temp_growth_fixed_records_bytes']:,} B between the two largest T "
                     f"({v['temp_growth_bytes_per_seed_round']:.2e} B per seed-round); with a "
                     f"fixed record_every only the recorded curve grows (temp "
                     f"{v['temp_growth_bytes_per_added_record_fixed_record_every']:.0f} B per "
                     f"added record for all seeds).")
    return lines
