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
import sys
import time

from hystax.envs.continual_suites import suite
from hystax.experiments.bench.bench_continual_planning import bench_planning
from hystax.experiments.bench.bench_continual_state import (
    bench_memory,
    bench_updates,
    collect_tasks,
)
from hystax.experiments.bench.bench_tools import bench_cli, finish, machine_info
from hystax.progress import PartBar

SUITE = "pendulum-gravity"
UPDATE_METHODS = ("hnet", "hnet-chunked", "finetune", "ewc", "si", "coreset", "multitask")


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


# --- report ---------------------------------------------------------------------------------


def _b(x) -> str:
    return "n/a" if x is None else f"{x:,}"


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
        data = part("data", collect_tasks, seq, sizes.data_steps, tasks)
        planning, plan_model = part("planning", bench_planning, sizes, seq, data)
        updates = part("updates", bench_updates, sizes, seq, data)
        memory, capacity, verdict = part("memory", bench_memory, sizes)
    results = {"benchmark": "continual", "suite": SUITE, "quick": quick,
               "sizes": dataclasses.asdict(sizes), "machine": machine,
               "plan_model": plan_model, "planning": planning, "updates": updates,
               "memory": memory, "capacity": capacity, "memory_verdict": verdict}
    return finish(results, format_table(results), start, out)


cli = bench_cli(main, "continual", __doc__)


if __name__ == "__main__":
    sys.exit(cli())
