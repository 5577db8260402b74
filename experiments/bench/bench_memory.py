"""Memory models: layer speed, recurrent-PPO throughput and compile time vs depth.

``python -m hystax.experiments.bench.bench_memory [--quick] [--out PATH]`` (or ``hystax bench
memory``) measures, side by side in one run:

1. forward + backward time of one S5 / S4D / LRU / S6 / GRU / minGRU / LSTM layer
   (``SequenceModel`` with one layer) on batch 64, H 256, P 256 (S5: 128 kept by conjugate
   symmetry), 1% resets, for L in {128, 1024, 4096}; ratios X / S5 per length. S4D and S6
   keep states per channel (H x N/2 complex, H x N real per sequence), so they run with
   N = 16 (2,048 and 4,096 states, vs S5's 128) and are skipped above ``channel_max_length``
   where their states would not fit in a CPU's memory;
2. recurrent PPO env-steps/s, S5, LRU, S6, GRU and minGRU at the same config (S6 with
   N = 16; compile excluded), and S5 and GRU with the defaults before issue 13 (``-before``:
   no LayerNorm, one memory shared by actor and critic), side by side;
3. compile time of S5 recurrent PPO's ``train`` for 1, 2 and 4 layers (layers are scanned).

``--quick`` (a smoke run at small sizes) leaves LRU, S6 and minGRU out of parts 1 and 2:
their compiles would double its time.

Targets (from the in-context RL issue) are GPU figures: S5's layer >= 20x faster than GRU at
L = 1024 and S5-PPO >= 5x GRU-PPO's env-steps/s at 1024-step rollouts. On a CPU the parallel
scan has little parallel hardware to use; the ratios are reported as they are.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time

import jax
import jax.numpy as jnp

import hystax
from hystax.agents import ppo
from hystax.agents.algorithm import default_hparams, replace_config
from hystax.agents.memory import MemoryConfig, SequenceModel
from hystax.experiments.bench.bench_tools import (
    bench_cli,
    compile_ahead,
    finish,
    machine_info,
    repeat,
)
from hystax.progress import PartBar

LAYER_MODELS = ("s5", "s5-before", "s4d", "lru", "s6", "gru", "mingru", "lstm")
PPO_MEMORIES = ("s5", "s5-before", "lru", "s6", "gru", "gru-before", "mingru")
NEW_CELLS = ("lru", "s6", "mingru")  # the full run only: --quick stays about 90 s on 2 cores
PER_CHANNEL = ("s4d", "s6")  # state_size is N per channel: run with Sizes.channel_state_size
PPO_ENV = "MemoryChain-bsuite"


def _variant(name: str) -> tuple[str, dict]:
    """``("s5", {})`` or, for ``"s5-before"``, ``("s5", ppo.MEMORY_BEFORE)`` (of the old
    defaults only LayerNorm and the shared memory change the cost)."""
    model, _, tag = name.partition("-")
    return model, (ppo.MEMORY_BEFORE if tag == "before" else {})


@dataclasses.dataclass(frozen=True)
class Sizes:
    lengths: tuple[int, ...]
    batch: int
    d_model: int
    state_size: int
    reps: int
    ppo: ppo.Config
    ppo_updates: int
    depths: tuple[int, ...]
    layer_models: tuple[str, ...] = LAYER_MODELS
    ppo_memories: tuple[str, ...] = PPO_MEMORIES
    channel_state_size: int = 16
    channel_max_length: int = 1024


_PPO_FULL = ppo.Config(memory=MemoryConfig("s5", d_model=128, state_size=128,
                                           encoder_sizes=(128,)),
                       num_envs=64, num_steps=1024, update_epochs=2, num_minibatches=8,
                       hidden_sizes=(128,), total_timesteps=64 * 1024, prev_action_reward=True)
FULL = Sizes(lengths=(128, 1024, 4096), batch=64, d_model=256, state_size=256, reps=3,
             ppo=_PPO_FULL, ppo_updates=2, depths=(1, 2, 4))
QUICK = Sizes(lengths=(32, 128), batch=8, d_model=32, state_size=32, reps=2,
              ppo=dataclasses.replace(_PPO_FULL, num_envs=8, num_steps=64, num_minibatches=2,
                                      hidden_sizes=(16,), total_timesteps=8 * 64,
                                      memory=dataclasses.replace(_PPO_FULL.memory, d_model=16,
                                                                 state_size=16,
                                                                 encoder_sizes=(16,))),
              ppo_updates=2, depths=(1, 2),
              layer_models=tuple(m for m in LAYER_MODELS if m not in NEW_CELLS),
              ppo_memories=tuple(m for m in PPO_MEMORIES if m not in NEW_CELLS))


def _timed(fn, *args, reps: int) -> tuple[float, float]:
    """``(compile_s, median run_s)`` of a jitted ``fn(*args)``."""
    compile_s, compiled = compile_ahead(fn, *args)
    return compile_s, statistics.median(repeat(lambda: compiled(*args), reps)[0])


def bench_layers(sizes: Sizes) -> list[dict]:
    """Forward + backward seconds of one layer per model and length."""
    rows = []
    for length in sizes.lengths:
        key = jax.random.PRNGKey(length)
        x = jax.random.normal(key, (length, sizes.batch, sizes.d_model))
        starts = jax.random.uniform(jax.random.fold_in(key, 1), (length, sizes.batch)) < 0.01
        times = {}
        models = [m for m in sizes.layer_models
                  if m not in PER_CHANNEL or length <= sizes.channel_max_length]
        for name in models:
            kind, before = _variant(name)
            state_size = sizes.channel_state_size if kind in PER_CHANNEL else sizes.state_size
            model = SequenceModel(MemoryConfig(kind, d_model=sizes.d_model,
                                               state_size=state_size,
                                               layer_norm=before.get("layer_norm", True)))
            carry = model.initialize_carry(sizes.batch)
            params = model.init(key, carry, (x[:2], starts[:2]))

            def loss(params, x, carry=carry, model=model, starts=starts):
                _, y = model.apply(params, carry, (x, starts))
                return jnp.mean(y ** 2)

            _, times[name] = _timed(jax.grad(loss), params, x, reps=sizes.reps)
        for name in models:
            rows.append({"model": name, "length": length, "fwd_bwd_ms": 1e3 * times[name],
                         "ratio_to_s5": times[name] / times["s5"]})
    return rows


def bench_ppo_throughput(sizes: Sizes) -> list[dict]:
    """Recurrent-PPO env-steps/s (compile excluded) for each of ``sizes.ppo_memories`` at the
    same config (S6 with ``channel_state_size``), S5 and GRU also with the defaults before
    issue 13; ``ratio_to_before`` is None for a model without a "-before" run."""
    env, params = hystax.make(PPO_ENV)
    rows = []
    for name in sizes.ppo_memories:
        memory, before = _variant(name)
        channel = {"state_size": sizes.channel_state_size} if memory in PER_CHANNEL else {}
        config = replace_config(sizes.ppo, {"memory": memory, **before, **channel})  # flat names
        algo = ppo.make_algorithm(config, env, params)
        state = jax.jit(algo.init)(jax.random.PRNGKey(0), default_hparams(config))

        def updates(state, algo=algo):
            return jax.lax.scan(lambda s, _: algo.update(s), state, None,
                                length=sizes.ppo_updates)

        compile_s, run_s = _timed(updates, state, reps=sizes.reps)
        steps = sizes.ppo_updates * algo.steps_per_update
        rows.append({"memory": name, "num_envs": config.num_envs,
                     "num_steps": config.num_steps, "env_steps_per_s": steps / run_s,
                     "compile_s": compile_s})
    speed = {r["memory"]: r["env_steps_per_s"] for r in rows}
    for r in rows:
        kind, _, tag = r["memory"].partition("-")
        r["ratio_to_gru"] = r["env_steps_per_s"] / speed["gru" + (f"-{tag}" if tag else "")]
        r["ratio_to_before"] = (r["env_steps_per_s"] / speed[f"{kind}-before"]
                                if f"{kind}-before" in speed else None)
    return rows


def bench_compile_vs_depth(sizes: Sizes) -> list[dict]:
    """Seconds to compile S5 recurrent PPO's whole ``train`` for each depth."""
    env, params = hystax.make(PPO_ENV)
    rows = []
    for depth in sizes.depths:
        config = dataclasses.replace(sizes.ppo,
                                     memory=dataclasses.replace(sizes.ppo.memory, layers=depth))
        train = jax.jit(ppo.make_train(config, env, params))
        start = time.perf_counter()
        train.lower(jax.random.PRNGKey(0)).compile()
        rows.append({"layers": depth, "compile_s": time.perf_counter() - start})
    return rows


def format_tables(results: dict) -> str:
    lines = ["| model | L | fwd+bwd ms | × S5 |", "|---|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['length']} | {r['fwd_bwd_ms']:.1f} | {r['ratio_to_s5']:.2f} |"
              for r in results["layers"]]
    lines += ["", "| recurrent PPO | envs × steps | env-steps/s | compile s | × GRU | "
              "× before |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['memory']} | {r['num_envs']} × {r['num_steps']} | "
              f"{r['env_steps_per_s']:,.0f} | {r['compile_s']:.1f} | {r['ratio_to_gru']:.2f} | "
              f"{_ratio(r['ratio_to_before'])} |" for r in results["ppo"]]
    lines += ["", "| S5 layers | compile s (whole train) |", "|---:|---:|"]
    lines += [f"| {r['layers']} | {r['compile_s']:.1f} |" for r in results["compile"]]
    return "\n".join(lines)


def _ratio(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}"


def main(quick: bool = False, out: str = "runs/bench_memory.json",
         progress: bool = True) -> dict:
    """Run the benchmark, print the tables, write JSON to ``out``; return the results."""
    sizes = QUICK if quick else FULL
    start = time.perf_counter()
    results = {"benchmark": "memory", "quick": quick, "machine": machine_info(),
               "sizes": {k: v for k, v in dataclasses.asdict(sizes).items() if k != "ppo"},
               "ppo_config": dataclasses.asdict(sizes.ppo)}
    with PartBar(3, "bench memory", progress) as part:
        results["layers"] = part("layer timings", bench_layers, sizes)
        results["ppo"] = part("PPO throughput", bench_ppo_throughput, sizes)
        results["compile"] = part("compile vs depth", bench_compile_vs_depth, sizes)
    return finish(results, format_tables(results), start, out)


cli = bench_cli(main, "memory", __doc__)


if __name__ == "__main__":
    sys.exit(cli())
