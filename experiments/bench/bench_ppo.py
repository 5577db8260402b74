"""PPO-MLP on CartPole-v1: training throughput and the runner's overhead.

``python -m hystax.experiments.bench.bench_ppo [--quick] [--out PATH]`` (or ``hystax bench ppo``)
measures, with the default ``ppo.Config()`` structure (4 envs x 128 steps per update):

1. steady-state env-steps/s of ``jax.jit(jax.vmap(train))(keys)`` for 1 seed and for 64
   seeds, with compile time (``lower().compile()``) reported apart from run time;
2. the runner's overhead: the same seeds and updates run (a) as one monolithic jitted scan
   and (b) as the runner's host loop over jitted chunks (``hystax.runner.make_chunk_fn``, metrics
   brought to the host after every chunk), repeated A B A B ... and compared by median.

Results go to stdout as a markdown table and to ``out`` as JSON (with machine info).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
import sys
import time

import jax
import numpy as np

from hystax import runner
from hystax.agents import ppo
from hystax.agents.algorithm import merge_hparams
from hystax.core import sharding
from hystax.experiments.bench.bench_tools import (
    bench_cli,
    compile_ahead,
    finish,
    machine_info,
    timed,
)
from hystax.progress import PartBar

ENV = "CartPole-v1"
TARGET_RATIO = 1.10


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much to run; updates are counted per seed (one update = 512 env steps)."""

    single_updates: int
    many_seeds: int
    many_updates: int
    overhead_seeds: int
    overhead_updates: int
    reps: int


FULL = Sizes(single_updates=200, many_seeds=64, many_updates=50, overhead_seeds=8,
             overhead_updates=100, reps=5)
QUICK = Sizes(single_updates=8, many_seeds=4, many_updates=8, overhead_seeds=4,
              overhead_updates=8, reps=3)


def _config(num_updates: int) -> ppo.Config:
    """The default PPO config, with ``total_timesteps`` set to exactly ``num_updates``."""
    base = ppo.Config()
    return dataclasses.replace(base, total_timesteps=num_updates * base.num_envs * base.num_steps)


def _spec(num_seeds: int, num_updates: int, offset: int = 0) -> runner.RunSpec:
    """The runner's validated spec for seeds ``offset .. offset + num_seeds - 1``."""
    seeds = list(range(offset, offset + num_seeds))
    return runner.resolve("ppo", ENV, seeds=seeds, config=_config(num_updates))


def _keys(num_seeds: int, offset: int) -> jax.Array:
    """``PRNGKey(seed)`` for seeds ``offset ..``, as the runner builds them."""
    seeds = range(offset, offset + num_seeds)
    return sharding.seed_keys(seeds, sharding.seed_mesh(num_seeds))


@functools.lru_cache(maxsize=4)
def compile_monolithic(num_seeds: int, num_updates: int):
    """``jit(vmap(train))`` compiled ahead of time; returns ``(run(offset), compile_s)``.

    Cached, so a benchmark that repeats a size (``--quick``) compiles it once.
    """
    spec = _spec(num_seeds, num_updates)
    train = jax.vmap(ppo.make_train(spec.config, spec.env, spec.env_params))
    compile_s, compiled = compile_ahead(train, _keys(num_seeds, 0))

    def run(offset: int) -> float:
        keys = _keys(num_seeds, offset)
        return timed(lambda: sharding.to_host(jax.block_until_ready(compiled(keys))[1]))[0]

    return run, compile_s


def build_chunked(num_seeds: int, num_updates: int):
    """The runner's host loop (``runner.iterate_chunks``, as ``runner.train`` runs it, without
    files or progress bar).

    Returns ``(run(offset), num_chunks, chunk_updates)``; ``run`` initialises the seeds,
    calls the jitted chunk until all updates are done, brings each chunk's metrics to the
    host, checks them and collects them, exactly as the runner does between chunks.
    """
    spec = _spec(num_seeds, num_updates)
    algorithm = spec.module.make_algorithm(spec.config, spec.env, spec.env_params)
    chunk_updates = runner.chunk_size(algorithm.num_updates, None)
    mesh = sharding.seed_mesh(num_seeds)
    shard = sharding.seed_sharding(mesh)
    hparams = merge_hparams(spec.config, None)
    init = jax.jit(jax.vmap(algorithm.init, in_axes=(0, None)), out_shardings=shard)
    chunk = runner.make_chunk_fn(algorithm, shard, chunk_updates)

    def run(offset: int) -> float:
        start = time.perf_counter()
        state = init(_keys(num_seeds, offset), hparams)
        history = {}
        for _, state, metrics in runner.iterate_chunks(chunk, state, 0, algorithm.num_updates,
                                                       chunk_updates, spec):
            for k, v in metrics.items():
                history.setdefault(k, []).append(v)
            runner.recent_return(metrics)
        jax.block_until_ready(state)
        _ = {k: np.concatenate(v, axis=1) for k, v in history.items()}  # as the runner returns
        return time.perf_counter() - start

    return run, math.ceil(algorithm.num_updates / chunk_updates), chunk_updates


def _row(name: str, num_seeds: int, num_updates: int, times: list[float],
         compile_s: float) -> dict:
    """One table row: median run seconds, env-steps/s over all seeds, compile seconds."""
    steps = num_seeds * num_updates * ppo.Config().num_envs * ppo.Config().num_steps
    run_s = statistics.median(times)
    return {"name": name, "seeds": num_seeds, "updates_per_seed": num_updates,
            "env_steps": steps, "env_steps_per_s": steps / run_s, "run_s": run_s,
            "run_s_all": times, "compile_s": compile_s}


def bench_throughput(name: str, num_seeds: int, num_updates: int, reps: int) -> dict:
    """Steady-state env-steps/s of ``jit(vmap(train))`` over ``num_seeds`` seeds."""
    run, compile_s = compile_monolithic(num_seeds, num_updates)
    times = [run(100 * (r + 1)) for r in range(reps)]
    return _row(name, num_seeds, num_updates, times, compile_s)


def bench_overhead(num_seeds: int, num_updates: int, reps: int) -> dict:
    """Monolithic scan vs the runner's chunked loop, interleaved A B A B ..."""
    mono, mono_compile = compile_monolithic(num_seeds, num_updates)
    chunked, num_chunks, chunk_updates = build_chunked(num_seeds, num_updates)
    warmup = chunked(0)  # compiles init, the chunk and the metric slices
    mono_times, chunked_times = [], []
    for r in range(reps):
        mono_times.append(mono(100 * (r + 1)))
        chunked_times.append(chunked(100 * (r + 1)))
    chunked_s = statistics.median(chunked_times)
    monolithic = _row(f"monolithic scan, {num_seeds} seeds", num_seeds, num_updates,
                      mono_times, mono_compile)
    chunked_row = _row(f"chunked runner, {num_seeds} seeds ({num_chunks} chunks)", num_seeds,
                       num_updates, chunked_times, max(warmup - chunked_s, 0.0))
    chunked_row.update(num_chunks=num_chunks, chunk_updates=chunk_updates,
                       compile_s_method="first run minus median steady run")
    ratio = chunked_s / monolithic["run_s"]
    pair_ratios = [c / m for c, m in zip(chunked_times, mono_times)]
    return {"monolithic": monolithic, "chunked": chunked_row, "ratio": ratio,
            "pair_ratios": pair_ratios, "target_ratio": TARGET_RATIO,
            "within_target": ratio <= TARGET_RATIO}


def bench_runner_train(num_seeds: int, num_updates: int) -> float:
    """Wall seconds of one ``hystax.runner.train`` call (compile included, nothing written)."""
    return timed(lambda: runner.train("ppo", ENV, seeds=num_seeds, config=_config(num_updates),
                                      out_dir=None, progress=False, plots=False).state)[0]


def format_table(results: dict) -> str:
    """The markdown table of env-steps/s, run seconds and compile seconds."""
    lines = ["| benchmark | env-steps/s | run s | compile s |", "|---|---:|---:|---:|"]
    for row in results["rows"]:
        lines.append(f"| {row['name']} | {row['env_steps_per_s']:,.0f} | {row['run_s']:.3f} "
                     f"| {row['compile_s']:.1f} |")
    overhead = results["overhead"]
    verdict = "within" if overhead["within_target"] else "over"
    lines.append(f"| ratio (chunked / monolithic run s) | | {overhead['ratio']:.3f} | "
                 f"({verdict} target <= {TARGET_RATIO:.2f}) |")
    return "\n".join(lines)


def main(quick: bool = False, out: str = "runs/bench_ppo.json", progress: bool = True) -> dict:
    """Run the benchmark, print the table, write JSON to ``out``; return the results."""
    sizes = QUICK if quick else FULL
    machine = machine_info()
    start = time.perf_counter()
    with PartBar(3 if quick else 4, "bench ppo", progress) as part:
        single = part("1 seed", bench_throughput, f"PPO-MLP {ENV}, 1 seed", 1,
                      sizes.single_updates, sizes.reps)
        many = part(f"{sizes.many_seeds} seeds", bench_throughput,
                    f"PPO-MLP {ENV}, {sizes.many_seeds} seeds", sizes.many_seeds,
                    sizes.many_updates, max(3, sizes.reps - 2))
        overhead = part("runner overhead", bench_overhead, sizes.overhead_seeds,
                        sizes.overhead_updates, sizes.reps)
        runner_train_s = None if quick else part("runner.train", bench_runner_train,
                                                 sizes.overhead_seeds, sizes.overhead_updates)
    base = ppo.Config()
    results = {
        "benchmark": "ppo", "env": ENV, "quick": quick,
        "config": {"num_envs": base.num_envs, "num_steps": base.num_steps,
                   "update_epochs": base.update_epochs, "num_minibatches": base.num_minibatches,
                   "hidden_sizes": list(base.hidden_sizes)},
        "sizes": dataclasses.asdict(sizes), "machine": machine,
        "rows": [single, many, overhead["monolithic"], overhead["chunked"]],
        "overhead": overhead,
        "runner_train_end_to_end_s": runner_train_s,
    }
    notes = [f"\nchunked / monolithic per pair: "
             f"{', '.join(f'{r:.3f}' for r in overhead['pair_ratios'])}"]
    if runner_train_s is not None:
        notes.append(f"runner.train end to end ({sizes.overhead_seeds} seeds, compile "
                     f"included): {runner_train_s:.1f} s")
    return finish(results, format_table(results), start, out, notes)


cli = bench_cli(main, "ppo", __doc__)


if __name__ == "__main__":
    sys.exit(cli())
