"""The measurements of ``hystax bench gpu`` (:mod:`.gpu_suite`), one function per part, each
a list of ``(name, measure)`` items; :func:`run_part` runs a part's items one by one and hands
each record to ``emit`` as soon as it has it (an item that raises records its error, and the
next one goes on).

(a) recurrent PPO at the POPGym paper config (``ppo.POPGYM_PAPER``: 64 envs x 1024 steps,
    30 epochs x 8 minibatches, d_model 256, encoder 128) on ``popgym/RepeatPreviousEasy``: S5
    with 4 and 1 layers, GRU, S4D, LRU, minGRU, S6 (one layer each; S4D and S6 with N = 16
    per channel): env-steps/s of ``calls`` jitted updates (compile apart) and the compile
    time of one update;
(b) ``hystax bench memory``'s layer timings (:func:`.bench_memory.bench_layers`, one record
    per length) and its S5-PPO / GRU-PPO env-steps/s at 64 x 1024
    (:func:`.bench_memory.bench_ppo_throughput`);
(c) PPO-MLP on CartPole-v1 (the default config but for the env count) against a random
    policy stepping the same envs in the same process;
(d) DynLin-UCB rounds/s through the bandit runner (:func:`.bench_bandits_runs.bench_jax`);
(e) Losse-FTL's sparse update time at D = 10^3 and 10^5 (:func:`.bench_losse.bench_sweep`).

``QUICK`` keeps one item of each kind at tiny sizes (a CPU smoke run of the suite: S5 x4 in
(a), no PPO ratio in (b), one env count in (c)).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

import hystax
from hystax.agents import ppo
from hystax.agents.algorithm import default_hparams
from hystax.envs.dlb import preset
from hystax.experiments.bench import bench_bandits, bench_losse, bench_memory
from hystax.experiments.bench.bench_bandits_runs import bench_jax
from hystax.experiments.bench.bench_tools import compile_ahead, machine_info, timed
from hystax.experiments.bench.blas_threads import set_blas_threads

PAPER_ENV = "popgym/RepeatPreviousEasy"
CARTPOLE = "CartPole-v1"


@dataclasses.dataclass(frozen=True)
class Sizes:
    paper: ppo.Config                      # (a)
    paper_models: tuple[tuple[str, int], ...]  # (memory model, layers), most wanted first
    paper_calls: int                       # timed updates per model
    memory: bench_memory.Sizes             # (b)
    cartpole_envs: tuple[int, ...]         # (c)
    cartpole_calls: int                    # timed PPO updates / random rollouts
    random_rollouts: int                   # PPO rollouts' worth of steps per random call
    bandits: bench_bandits.Sizes           # (d)
    losse: bench_losse.Sizes               # (e)


FULL = Sizes(
    paper=ppo.POPGYM_PAPER,
    paper_models=(("s5", 4), ("gru", 1), ("s5", 1), ("s4d", 1), ("lru", 1), ("mingru", 1),
                  ("s6", 1)),
    paper_calls=3,
    memory=dataclasses.replace(bench_memory.FULL, ppo_updates=1, ppo_memories=("s5", "gru"),
                               layer_models=tuple(m for m in bench_memory.LAYER_MODELS
                                                  if not m.endswith("-before"))),
    cartpole_envs=(1024, 16384), cartpole_calls=5, random_rollouts=8,
    bandits=dataclasses.replace(bench_bandits.FULL, seeds=1000, horizon=100_000, reps=1),
    losse=dataclasses.replace(bench_losse.FULL, targets=(10**3, 10**5), dense_max_features=0,
                              rls_max_features=0))
QUICK = Sizes(
    paper=dataclasses.replace(ppo.POPGYM_PAPER, num_envs=2, num_steps=8, update_epochs=1,
                              num_minibatches=1, hidden_sizes=(8,), total_timesteps=16,
                              memory=dataclasses.replace(ppo.POPGYM_PAPER.memory, d_model=8,
                                                         state_size=8, encoder_sizes=(8,))),
    paper_models=(("s5", 4),), paper_calls=2,
    memory=dataclasses.replace(bench_memory.QUICK, lengths=(16,), batch=2, d_model=8,
                               state_size=8, reps=1, layer_models=("s5", "gru"),
                               ppo_memories=()),  # no PPO ratio (bench memory's tests have it)
    cartpole_envs=(4,), cartpole_calls=2, random_rollouts=1,
    bandits=dataclasses.replace(bench_bandits.QUICK, seeds=2, horizon=200, record_every=100,
                                reps=1),
    losse=dataclasses.replace(bench_losse.QUICK, targets=(10**3,), chunk=4, reps=1, holdout=8,
                              dense_max_features=0, rls_max_features=0))


# --- timing ------------------------------------------------------------------------------------


def time_calls(fn, carry, calls: int) -> dict:
    """Compile ``fn(carry) -> (carry, out)`` (carry donated), then ``calls`` timed calls, each
    on the last one's carry: compile seconds and the seconds of each call."""
    compile_s, compiled = compile_ahead(fn, carry, donate_argnums=0)
    times = []
    for _ in range(calls):
        seconds, (carry, _) = timed(lambda c=carry: compiled(c))
        times.append(seconds)
    return {"compile_s": compile_s, "call_s_all": times, "call_s": statistics.median(times)}


def ppo_rate(config: ppo.Config, env_name: str, calls: int) -> dict:
    """Env-steps/s of PPO's jitted update (median of ``calls``; compile apart)."""
    env, params = hystax.make(env_name)
    algo = ppo.make_algorithm(config, env, params)
    state = jax.jit(algo.init)(jax.random.PRNGKey(0), default_hparams(config))
    row = time_calls(algo.update, state, calls)
    return {"steps_per_call": algo.steps_per_update, **row,
            "env_steps_per_s": algo.steps_per_update / row["call_s"],
            "env_steps_per_s_best": algo.steps_per_update / min(row["call_s_all"])}


def random_rate(env_name: str, num_envs: int, num_steps: int, calls: int) -> dict:
    """Env-steps/s of ``num_envs`` envs stepped ``num_steps`` times per call by a uniformly
    random policy (one ``lax.scan``, the envs vmapped, rewards summed): the env's ceiling."""
    env, params = hystax.make(env_name)
    space = env.action_space(params)
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout(carry):
        def one(carry, _):
            state, key, total = carry
            key, act_key, step_key = jax.random.split(key, 3)
            actions = jax.vmap(space.sample)(jax.random.split(act_key, num_envs))
            out = step(jax.random.split(step_key, num_envs), state, actions, params)
            return (out[1], key, total + jnp.sum(out[2])), None  # (obs, state, reward, ...)
        return jax.lax.scan(one, carry, None, length=num_steps)

    keys = jax.random.split(jax.random.PRNGKey(0), num_envs)
    _, state = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    row = time_calls(rollout, (state, jax.random.PRNGKey(1), jnp.float32(0)), calls)
    steps = num_envs * num_steps
    return {"steps_per_call": steps, **row, "env_steps_per_s": steps / row["call_s"],
            "env_steps_per_s_best": steps / min(row["call_s_all"])}


# --- the parts ---------------------------------------------------------------------------------


def paper_config(sizes: Sizes, model: str, layers: int) -> ppo.Config:
    """The paper config with ``model`` x ``layers`` (S4D and S6: N = 16 per channel)."""
    memory = dataclasses.replace(sizes.paper.memory, model=model, layers=layers)
    if model in bench_memory.PER_CHANNEL:
        memory = dataclasses.replace(memory, state_size=sizes.memory.channel_state_size)
    return dataclasses.replace(sizes.paper, memory=memory)


def part_a(sizes: Sizes) -> list[tuple[str, Callable[[], dict]]]:
    def measure(model, layers):
        config = paper_config(sizes, model, layers)
        return {"model": model, "layers": layers, "env": PAPER_ENV,
                "memory": dataclasses.asdict(config.memory), "num_envs": config.num_envs,
                "num_steps": config.num_steps, "update_epochs": config.update_epochs,
                "num_minibatches": config.num_minibatches,
                **ppo_rate(config, PAPER_ENV, sizes.paper_calls)}
    return [(f"{m}-{n}", lambda m=m, n=n: measure(m, n)) for m, n in sizes.paper_models]


def part_b(sizes: Sizes) -> list[tuple[str, Callable[[], dict]]]:
    def layers(length):
        return {"length": length, "rows": bench_memory.bench_layers(
            dataclasses.replace(sizes.memory, lengths=(length,)))}
    items = [(f"layers-{n}", lambda n=n: layers(n)) for n in sizes.memory.lengths]
    if sizes.memory.ppo_memories:
        items.append(("ppo-ratio", lambda: {"env": bench_memory.PPO_ENV,
                                            "rows": bench_memory.bench_ppo_throughput(sizes.memory)}))
    return items


def part_c(sizes: Sizes) -> list[tuple[str, Callable[[], dict]]]:
    base = ppo.Config()

    def measure(num_envs):
        steps = base.num_steps * num_envs
        config = dataclasses.replace(base, num_envs=num_envs, total_timesteps=steps)
        mlp = ppo_rate(config, CARTPOLE, sizes.cartpole_calls)
        rand = random_rate(CARTPOLE, num_envs, base.num_steps * sizes.random_rollouts,
                           sizes.cartpole_calls)
        return {"num_envs": num_envs, "num_steps": base.num_steps, "ppo": mlp, "random": rand,
                "ppo_over_random": mlp["env_steps_per_s"] / rand["env_steps_per_s"]}
    return [(f"cartpole-{n}", lambda n=n: measure(n)) for n in sizes.cartpole_envs]


def part_d(sizes: Sizes) -> list[tuple[str, Callable[[], dict]]]:
    return [("dynlin-ucb", lambda: bench_jax(preset(bench_bandits.PRESET), sizes.bandits)[0])]


def part_e(sizes: Sizes) -> list[tuple[str, Callable[[], dict]]]:
    def sweep():
        found = set_blas_threads(sizes.losse.blas_threads)
        try:
            rows = bench_losse.bench_sweep(sizes.losse, progress=False)
        finally:
            set_blas_threads(found)
        return {"rows": [r for r in rows if r["method"] == "sparse"],
                "summary": bench_losse.summarize(rows, sizes.losse)}
    return [("losse-ftl", sweep)]


PARTS = {"a": part_a, "b": part_b, "c": part_c, "d": part_d, "e": part_e}


def run_part(part: str, quick: bool, emit: Callable[[dict], None]) -> None:
    """Run part ``part``'s items, handing ``emit`` a start record (machine, device) and then
    one record per item (its error where it raised), each as soon as it is done."""
    devices = jax.devices()
    emit({"name": "start", "quick": quick, "machine": machine_info(),
          "device_kind": devices[0].device_kind, "platform": devices[0].platform})
    for name, measure in PARTS[part](QUICK if quick else FULL):
        start = time.perf_counter()
        try:
            result = measure()  # a benchmark row's own "name" becomes its "title"
            record = {**{"title" if k == "name" else k: v for k, v in result.items()},
                      "name": name}
        except Exception as error:  # noqa: BLE001  (one item's failure must not lose the rest)
            record = {"name": name, "error": f"{type(error).__name__}: {error}"}
        emit({**record, "seconds": time.perf_counter() - start})
