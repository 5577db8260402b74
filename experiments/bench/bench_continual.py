"""Continual world models: CEM plans/s with a learned model, model-update time per task, memory
vs the number of tasks seen.

``python -m hystax.experiments.bench.bench_continual [--quick] [--out PATH]`` (or
``hystax bench continual``) measures, in float32:

1. plans/s of :func:`~hystax.agents.mpc.cem_plan` (``num_samples`` 500, ``num_elites`` 50,
   5 iterations; horizons 15 and 30) on ``pendulum-gravity`` with a *learned* model: HyperCRL
   (``"hnet"``) after ``init`` + ``begin_task(0)`` on random transitions, its task-0 weights
   generated once (``params_for(state, 0)``) and passed to the planner with the known reward.
   One env (``cem_plan`` itself) and E = 1, 8, 32 envs (:func:`~hystax.agents.mpc.plan_batch`,
   ``jax.vmap`` over envs, the model shared); plans/s = E / (seconds per call). Every variant is
   compiled ahead of time (``jit(...).lower(...).compile()``, reported apart) and timed as the
   median of a few calls with fresh keys. Random shooting (the same number of model rollouts)
   at one horizon, single env and the largest E, for comparison;
2. the model-update time per task of every method in ``UPDATE_METHODS``: ``begin_task``, ``fit``
   (``fit_steps`` gradient steps, batch 64, one jitted ``lax.scan``) and ``end_task`` on one
   task's random transitions. Task 0's calls are the first ones (tracing and compiling
   included, reported apart); the warm numbers are the median over the next tasks (same shapes,
   compiled code reused);
3. memory against the number of tasks seen: each method in ``memory_methods`` runs through every
   task of ``memory_suite`` (``begin_task``, a short ``fit``, ``end_task``); after each task t the
   bytes of the whole state pytree (sum of the leaves' nbytes), its shape signature, and the
   compiled ``update``'s ``memory_analysis()`` (``jax.jit(method.update).lower(state, batch,
   task).compile()``: temp / argument / output bytes) and the hash of its lowered program. All
   state arrays are allocated at ``init`` for the method's capacity (``num_tasks`` slots with
   masks), so these are identical for every t; the embedding array's share of the state is
   reported, and, from ``jax.eval_shape`` of ``init`` at several capacities, the bytes each extra
   task *slot* costs and which fields they sit in.

Results go to stdout as markdown tables and to ``out`` as JSON (with machine info).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import math
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from hystax.agents.mpc import (
    MPCConfig,
    cem_plan,
    initial_mean,
    plan_batch,
    random_shooting_plan,
)
from hystax.envs.continual_suites import collect_random, suite
from hystax.experiments.bench.bench_tools import bench_cli, finish, machine_info
from hystax.progress import PartBar
from hystax.world_models.continual_api import fit
from hystax.world_models.continual_methods import make_method
from hystax.world_models.dynamics import Transitions
from hystax.world_models.hypernet import hnet_sizes

import hystax  # noqa: F401  (before jax starts a backend: the XLA:CPU workaround)

SUITE = "pendulum-gravity"
PLAN_METHOD = "hnet"  # the learned model the planner rolls out
UPDATE_METHODS = ("hnet", "hnet-chunked", "finetune", "ewc", "si", "coreset", "multitask")
MEMORY_FIELDS = ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes",
                 "alias_size_in_bytes", "generated_code_size_in_bytes")


@dataclasses.dataclass(frozen=True)
class Sizes:
    data_steps: int             # random transitions collected per task
    plan_horizons: tuple        # CEM horizons H
    plan_samples: int           # candidates per CEM iteration
    plan_elites: int
    plan_iterations: int
    plan_envs: tuple            # E for plan_batch
    plan_reps: int              # timed calls per variant (median)
    random_horizon: int         # random shooting: this H, one env (and the largest E)
    random_batched: bool        # also random shooting over the largest E
    update_methods: tuple
    fit_steps: int              # gradient steps per task
    batch_size: int
    update_tasks: int           # warm tasks timed after the first (median)
    memory_suite: str
    memory_methods: tuple
    memory_tasks: int           # tasks run through (the suite's first ones)
    memory_fit_steps: int       # short training per task (values change, shapes must not)
    capacities: tuple           # state bytes vs the capacity num_tasks (eval_shape only)


FULL = Sizes(data_steps=2000, plan_horizons=(15, 30), plan_samples=500, plan_elites=50,
             plan_iterations=5, plan_envs=(1, 8, 32), plan_reps=3, random_horizon=15,
             random_batched=True,
             update_methods=UPDATE_METHODS, fit_steps=1000, batch_size=64, update_tasks=2,
             memory_suite="pendulum-gravity-11",
             memory_methods=("hnet", "hnet-chunked", "ewc", "coreset", "multitask"),
             memory_tasks=11, memory_fit_steps=100, capacities=(5, 11, 50))
QUICK = Sizes(data_steps=300, plan_horizons=(10,), plan_samples=100, plan_elites=10,
              plan_iterations=2, plan_envs=(4,), plan_reps=2, random_horizon=10,
              random_batched=False, update_methods=("hnet", "finetune"), fit_steps=50,
              batch_size=64, update_tasks=1, memory_suite="pendulum-gravity",
              memory_methods=("hnet", "finetune"), memory_tasks=5, memory_fit_steps=50,
              capacities=(5, 11))


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _block(x):
    return jax.block_until_ready(x)


@functools.cache
def _make(name: str, obs_dim: int, act_dim: int, num_tasks: int):
    """One method object per (name, dims, capacity): ``fit`` compiles once per method object
    and step count, so the sections share what an earlier one compiled (first calls are timed
    in the update section, which runs before the memory section)."""
    return make_method(name, obs_dim, act_dim, num_tasks)


def _collect(seq, steps: int, tasks: int) -> list[Transitions]:
    """``steps`` random transitions of each of the first ``tasks`` tasks."""
    keys = jax.random.split(jax.random.PRNGKey(1), tasks)
    return [collect_random(seq, t, keys[t], steps).transitions() for t in range(tasks)]


def tree_bytes(tree) -> int:
    """Sum of the leaves' nbytes (arrays or ``jax.ShapeDtypeStruct``)."""
    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def _field_bytes(state) -> dict[str, int]:
    """Bytes per top-level field of a method state (a flax struct dataclass)."""
    return {f.name: tree_bytes(getattr(state, f.name)) for f in dataclasses.fields(state)}


def _is_embedding(path) -> bool:
    """The task-embedding array ``emb`` and its optimiser moments (not the chunk embeddings)."""
    last = path[-1] if path else None
    name = getattr(last, "name", None) or getattr(last, "key", None)
    return name == "emb"


def _embedding_bytes(state) -> tuple[int, int]:
    """(bytes of ``state.emb``, bytes of every ``emb`` leaf: the array and its Adam moments)."""
    if not hasattr(state, "emb"):
        return 0, 0
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    related = sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize
                  for path, x in leaves if _is_embedding(path))
    return tree_bytes(state.emb), related


def _signature(state) -> str:
    """A short hash of the state's tree structure, shapes and dtypes."""
    leaves, treedef = jax.tree.flatten(state)
    text = str(treedef) + repr([(tuple(x.shape), str(x.dtype)) for x in leaves])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# --- 1. planning ---------------------------------------------------------------------------


def _planner_fn(planner: str, batched: bool, predict, reward_fn, config: MPCConfig):
    plan = {"cem": cem_plan, "random": random_shooting_plan}[planner]

    def single(params, obs, key, mean):
        action, next_mean, info = plan(predict, params, reward_fn, obs, key, mean, config)
        return action, next_mean, info.best_return

    def batch(params, obs, keys, means):
        action, next_mean, info = plan_batch(predict, params, reward_fn, obs, keys, means, config,
                                             method=planner)
        return action, next_mean, info.best_return

    return jax.jit(batch if batched else single)


def _plan_row(planner: str, horizon: int, envs: int | None, model, obs_pool, sizes: Sizes,
              seq) -> dict:
    """One planner variant: ``envs=None`` is the single-env planner, else plan_batch over E."""
    method, params = model
    config = MPCConfig(horizon=horizon, num_samples=sizes.plan_samples,
                       num_elites=sizes.plan_elites, iterations=sizes.plan_iterations,
                       action_low=seq.action_low, action_high=seq.action_high)
    fn = _planner_fn(planner, envs is not None, method.predict, seq.reward_fn, config)
    mean0 = initial_mean(config, seq.act_dim)
    e = 1 if envs is None else envs

    def inputs(rep):
        keys = jax.random.split(jax.random.PRNGKey(100 + rep), e)
        if envs is None:
            return params, obs_pool[0], keys[0], mean0
        return params, obs_pool[:e], keys, jnp.broadcast_to(mean0, (e, *mean0.shape))

    compile_s, compiled = _timed(lambda: fn.lower(*inputs(0)).compile())
    _block(compiled(*inputs(0)))  # one untimed call (allocations, thread pools)
    times, returns = [], []
    for rep in range(sizes.plan_reps):
        args = inputs(rep + 1)
        call_s, out = _timed(lambda a=args: _block(compiled(*a)))
        times.append(call_s)
        returns.append(float(jnp.mean(out[2])))
    call_s = statistics.median(times)
    rollouts = sizes.plan_samples * sizes.plan_iterations  # sequences scored per plan
    return {"planner": planner, "horizon": horizon, "envs": e,
            "call": "single" if envs is None else "plan_batch",
            "samples": sizes.plan_samples, "elites": sizes.plan_elites,
            "iterations": sizes.plan_iterations,
            "compile_s": compile_s, "call_s": call_s, "call_s_all": times,
            "plans_per_s": e / call_s, "model_steps_per_s": e * rollouts * horizon / call_s,
            "predicted_best_return": statistics.fmean(returns)}


def bench_planning(sizes: Sizes, seq, data: list[Transitions]) -> tuple[list[dict], dict]:
    """The learned model: hnet after init + begin_task(0) on task 0's random transitions."""
    method = make_method(PLAN_METHOD, seq.obs_dim, seq.act_dim, seq.num_tasks)  # its own
    state = method.begin_task(method.init(jax.random.PRNGKey(0)), 0, data[0])
    params = _block(method.params_for(state, 0))
    model = (method, params)
    largest = max(sizes.plan_envs)
    obs_pool = data[0].obs[:: max(1, data[0].obs.shape[0] // largest)][:largest]
    rows = []
    for horizon in sizes.plan_horizons:
        rows.append(_plan_row("cem", horizon, None, model, obs_pool, sizes, seq))
        rows += [_plan_row("cem", horizon, e, model, obs_pool, sizes, seq) for e in sizes.plan_envs]
    rows.append(_plan_row("random", sizes.random_horizon, None, model, obs_pool, sizes, seq))
    if sizes.random_batched:
        rows.append(_plan_row("random", sizes.random_horizon, largest, model, obs_pool, sizes, seq))
    info = {"method": PLAN_METHOD, "model_weights": tree_bytes(params.weights) // 4,
            "sizes": hnet_sizes(seq.obs_dim, seq.act_dim, seq.num_tasks)}
    return rows, info


# --- 2. model update per task -----------------------------------------------------------------


def _one_task(method, state, task: int, data: Transitions, sizes: Sizes) -> tuple[dict, object]:
    key = jax.random.PRNGKey(10 + task)
    begin_s, state = _timed(lambda: _block(method.begin_task(state, task, data)))
    fit_s, (state, metrics) = _timed(lambda: _block(fit(
        method, state, data, task, sizes.fit_steps, sizes.batch_size, key)))
    end_s, state = _timed(lambda: _block(method.end_task(state, task, data)))
    loss = np.asarray(metrics["task_loss"])
    return {"task": task, "begin_s": begin_s, "fit_s": fit_s, "end_s": end_s,
            "total_s": begin_s + fit_s + end_s, "first_loss": float(loss[0]),
            "last_loss": float(loss[-10:].mean())}, state


def _update_row(name: str, seq, data: list[Transitions], sizes: Sizes) -> dict:
    method = _make(name, seq.obs_dim, seq.act_dim, seq.num_tasks)
    state = _block(method.init(jax.random.PRNGKey(0)))
    first, state = _one_task(method, state, 0, data[0], sizes)
    warm = []
    for task in range(1, 1 + sizes.update_tasks):
        row, state = _one_task(method, state, task, data[task], sizes)
        warm.append(row)

    def med(k):
        return statistics.median(r[k] for r in warm)

    fit_s = med("fit_s")
    return {"method": name, "name": method.name, "fit_steps": sizes.fit_steps,
            "batch_size": sizes.batch_size, "data_per_task": int(data[0].obs.shape[0]),
            "begin_s": med("begin_s"), "fit_s": fit_s, "end_s": med("end_s"),
            "begin_end_s": med("begin_s") + med("end_s"), "per_task_s": med("total_s"),
            "steps_per_s": sizes.fit_steps / fit_s,
            "first_begin_s": first["begin_s"], "first_fit_s": first["fit_s"],
            "first_end_s": first["end_s"],
            # tracing + compiling (+ first-run slack) of the three calls, the warm run removed
            "compile_s": max(first["total_s"] - med("total_s"), 0.0),
            "tasks": [first] + warm, "state_bytes": tree_bytes(state),
            "last_task_loss": warm[-1]["last_loss"]}


def bench_updates(sizes: Sizes, seq, data: list[Transitions]) -> list[dict]:
    return [_update_row(name, seq, data, sizes) for name in sizes.update_methods]


# --- 3. memory vs tasks seen ------------------------------------------------------------------


def _update_memory(method, state, batch: Transitions, task: int) -> dict:
    """``memory_analysis()`` of the compiled ``update`` (task traced) and its program's hash."""
    lowered = jax.jit(method.update).lower(state, batch, jnp.int32(task))
    compile_s, compiled = _timed(lowered.compile)
    try:
        stats = compiled.memory_analysis()
    except Exception:  # noqa: BLE001  (not every backend / version implements it)
        stats = None
    out = {k.replace("_size_in_bytes", "_bytes"): (int(getattr(stats, k)) if stats is not None
                                                   and hasattr(stats, k) else None)
           for k in MEMORY_FIELDS}
    out["program_sha"] = hashlib.sha256(lowered.as_text().encode()).hexdigest()[:12]
    out["update_compile_s"] = compile_s
    return out


def _memory_method(name: str, seq, data: list[Transitions], sizes: Sizes) -> dict:
    method = _make(name, seq.obs_dim, seq.act_dim, seq.num_tasks)
    state = _block(method.init(jax.random.PRNGKey(0)))
    rows = []
    for task in range(sizes.memory_tasks):
        d = data[task]
        state = method.begin_task(state, task, d)
        state, _ = fit(method, state, d, task, sizes.memory_fit_steps, sizes.batch_size,
                       jax.random.PRNGKey(20 + task))
        state = _block(method.end_task(state, task, d))
        batch = Transitions(*(x[:sizes.batch_size] for x in d))
        emb, emb_related = _embedding_bytes(state)
        total = tree_bytes(state)
        rows.append({"tasks_seen": task + 1, "state_bytes": total,
                     "field_bytes": _field_bytes(state), "signature": _signature(state),
                     "emb_bytes": emb, "emb_share": emb / total,
                     "emb_with_adam_bytes": emb_related, "emb_with_adam_share": emb_related / total,
                     "seen": int(np.asarray(state.seen).sum()),
                     **_update_memory(method, state, batch, task)})
    keys = ("state_bytes", "signature", "program_sha",
            *(k.replace("_size_in_bytes", "_bytes") for k in MEMORY_FIELDS))
    distinct = {k: sorted({str(r[k]) for r in rows}) for k in keys}
    available = rows[0]["temp_bytes"] is not None
    return {"method": name, "name": method.name, "capacity": method.num_tasks,
            "tasks": sizes.memory_tasks, "rows": rows,
            "distinct_values": {k: len(v) for k, v in distinct.items()},
            "memory_analysis_available": available,
            "constant": all(len(v) == 1 for v in distinct.values())}


def _capacity_rows(name: str, obs_dim: int, act_dim: int, capacities: tuple) -> list[dict]:
    """State bytes for each capacity (``jax.eval_shape`` of ``init``: nothing allocated)."""
    rows = []
    for cap in capacities:
        method = _make(name, obs_dim, act_dim, cap)
        shapes = jax.eval_shape(method.init, jax.random.PRNGKey(0))
        emb, emb_related = _embedding_bytes(shapes)
        rows.append({"method": name, "capacity": cap, "state_bytes": tree_bytes(shapes),
                     "field_bytes": _field_bytes(shapes), "emb_bytes": emb,
                     "emb_with_adam_bytes": emb_related})
    for lo, hi in itertools.pairwise(rows):
        slots = hi["capacity"] - lo["capacity"]
        hi["bytes_per_slot"] = (hi["state_bytes"] - lo["state_bytes"]) / slots
        hi["field_bytes_per_slot"] = {k: (hi["field_bytes"][k] - lo["field_bytes"][k]) / slots
                                      for k in hi["field_bytes"]
                                      if hi["field_bytes"][k] != lo["field_bytes"][k]}
    return rows


def bench_memory(sizes: Sizes) -> tuple[list[dict], list[dict], dict]:
    seq = suite(sizes.memory_suite)
    data = _collect(seq, sizes.data_steps, sizes.memory_tasks)
    methods = [_memory_method(name, seq, data, sizes) for name in sizes.memory_methods]
    capacity = [row for name in sizes.memory_methods
                for row in _capacity_rows(name, seq.obs_dim, seq.act_dim, sizes.capacities)]
    hnet = next((m for m in methods if m["method"] == "hnet"), None)
    verdict = {"suite": sizes.memory_suite, "tasks": sizes.memory_tasks,
               "all_constant": all(m["constant"] for m in methods),
               "hnet_constant": None if hnet is None else hnet["constant"]}
    return methods, capacity, verdict


# --- report ---------------------------------------------------------------------------------


def _b(x) -> str:
    return "n/a" if x is None else f"{x:,}"


def _kib(x) -> str:
    return "n/a" if x is None else f"{x / 1024:,.1f}"


def format_table(results: dict) -> str:
    s = results["sizes"]
    lines = [(f"| planner ({results['suite']}, model {results['plan_model']['method']}) | H | E "
              f"| call | compile s | s / call (median) | plans/s | model steps/s "
              f"| predicted best return |"),
             "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in results["planning"]:
        label = (f"CEM {r['samples']} x {r['iterations']} it, {r['elites']} elites"
                 if r["planner"] == "cem" else
                 f"random shooting {r['samples'] * r['iterations']}")
        lines.append(f"| {label} | {r['horizon']} | {r['envs']} | {r['call']} | "
                     f"{r['compile_s']:.2f} | {r['call_s']:.4f} | {r['plans_per_s']:,.1f} | "
                     f"{r['model_steps_per_s']:.2e} | {r['predicted_best_return']:.1f} |")
    lines += ["", (f"| method | begin_task s | fit {s['fit_steps']:,} steps s | steps/s "
                   f"| end_task s | begin + end s | per task s | 1st task s (compile) "
                   f"| compile s | loss (last task) |"),
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["updates"]:
        first = r["first_begin_s"] + r["first_fit_s"] + r["first_end_s"]
        lines.append(f"| {r['method']} | {r['begin_s']:.4f} | {r['fit_s']:.3f} | "
                     f"{r['steps_per_s']:,.0f} | {r['end_s']:.4f} | {r['begin_end_s']:.4f} | "
                     f"{r['per_task_s']:.3f} | {first:.2f} | {r['compile_s']:.2f} | "
                     f"{r['last_task_loss']:.4f} |")
    v = results["memory_verdict"]
    lines += ["", (f"| memory ({v['suite']}, tasks 1..{v['tasks']}) | capacity | state bytes "
                   f"| distinct over t | update temp bytes | argument bytes | output bytes "
                   f"| distinct compiled programs | emb share of state | constant in t |"),
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in results["memory"]:
        r, d = m["rows"][0], m["distinct_values"]
        emb = (f"{r['emb_bytes']:,} B = {100 * r['emb_share']:.2f}% "
               f"({100 * r['emb_with_adam_share']:.2f}% with Adam)") if r["emb_bytes"] else "-"
        lines.append(f"| {m['method']} | {m['capacity']} | {r['state_bytes']:,} | "
                     f"{d['state_bytes']} | {_b(r['temp_bytes'])} | {_b(r['argument_bytes'])} | "
                     f"{_b(r['output_bytes'])} | {d['program_sha']} | {emb} | "
                     f"{'yes' if m['constant'] else 'NO'} |")
    hnet = next((m for m in results["memory"] if m["method"] == "hnet"), None)
    if hnet is not None:
        fields = list(hnet["rows"][0]["field_bytes"])
        lines += ["", ("| hnet after task t | seen | state bytes | "
                       + " | ".join(fields) + " | update temp | argument | output | program |"),
                  "|---:|---:|---:|" + "---:|" * len(fields) + "---:|---:|---:|---|"]
        for r in hnet["rows"]:
            lines.append(f"| {r['tasks_seen']} | {r['seen']} | {r['state_bytes']:,} | "
                         + " | ".join(f"{r['field_bytes'][f]:,}" for f in fields)
                         + f" | {_b(r['temp_bytes'])} | {_b(r['argument_bytes'])} | "
                         f"{_b(r['output_bytes'])} | {r['program_sha']} |")
    lines += ["", ("| state vs capacity (eval_shape of init) | capacity | state bytes "
                   "| bytes per extra task slot | of which emb (+ Adam) | fields that grow "
                   "(bytes per slot) |"),
              "|---|---:|---:|---:|---:|---|"]
    for r in results["capacity"]:
        per = r.get("bytes_per_slot")
        grow = ", ".join(f"{k} {v:,.0f}" for k, v in r.get("field_bytes_per_slot", {}).items())
        emb = "-"
        if r["emb_bytes"] and per is not None:
            emb = f"{r['emb_with_adam_bytes'] / r['capacity']:,.0f}"
        lines.append(f"| {r['method']} | {r['capacity']} | {r['state_bytes']:,} | "
                     f"{'' if per is None else f'{per:,.0f}'} | {emb} | {grow} |")
    lines += ["", (f"Memory in the tasks seen: {'every' if v['all_constant'] else 'NOT every'} "
                   f"method's state bytes, state shapes, compiled update program and its "
                   f"memory_analysis sizes are identical after each of tasks 1..{v['tasks']} "
                   f"(hnet: {'constant' if v['hnet_constant'] else 'NOT constant'}). Every array "
                   f"is allocated at init for the capacity (num_tasks slots, masks mark the seen "
                   f"ones), so what grows with tasks is the capacity, not the tasks seen: see the "
                   f"per-slot bytes above.")]
    return "\n".join(lines)


def main(quick: bool = False, out: str = "runs/bench_continual.json",
         progress: bool = True) -> dict:
    """Run the benchmark, print the tables, write JSON to ``out``; return the results."""
    sizes = QUICK if quick else FULL
    machine = machine_info()
    start = time.perf_counter()
    seq = suite(SUITE)
    tasks = max(1 + sizes.update_tasks, 1)
    with PartBar(4, "bench continual", progress) as part:
        data = part("data", _collect, seq, sizes.data_steps, tasks)
        planning, plan_model = part("planning", bench_planning, sizes, seq, data)
        updates = part("updates", bench_updates, sizes, seq, data)
        memory, capacity, verdict = part("memory", bench_memory, sizes)
    results = {"benchmark": "continual", "suite": SUITE, "quick": quick,
               "sizes": dataclasses.asdict(sizes), "machine": machine,
               "plan_model": plan_model, "planning": planning, "updates": updates,
               "memory": memory, "capacity": capacity, "memory_verdict": verdict}
    return finish(results, format_table(results), start, out)


def cli(argv: list[str] | None = None) -> int:
    return bench_cli(main, "continual", __doc__, argv)


if __name__ == "__main__":
    sys.exit(cli())
