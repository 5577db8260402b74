"""The continual methods' state (``hystax bench continual``, :mod:`.bench_continual`): the
model-update time per task (``begin_task``, ``fit``, ``end_task``; the first task's calls
compile) and the memory against the number of tasks seen (state bytes and shapes, the compiled
``update``'s memory analysis and program hash after each task; bytes per extra task slot from
``jax.eval_shape`` of ``init`` at several capacities).

``sizes`` is a :class:`.bench_continual.Sizes`; ``seq`` the task suite.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import statistics

import jax
import jax.numpy as jnp
import numpy as np

from hystax.core.transitions import Transitions
from hystax.envs.continual_suites import collect_random, suite
from hystax.experiments.bench.bench_tools import memory_analysis, timed, tree_bytes
from hystax.world_models.continual_api import fit
from hystax.world_models.continual_methods import make_method

MEMORY_FIELDS = ("temp", "argument", "output", "alias", "generated_code")


@functools.cache
def _make(name: str, obs_dim: int, act_dim: int, num_tasks: int):
    """One method object per (name, dims, capacity): ``fit`` compiles once per method object
    and step count, so the sections share what an earlier one compiled (first calls are timed
    in the update section, which runs before the memory section)."""
    return make_method(name, obs_dim, act_dim, num_tasks)


def collect_tasks(seq, steps: int, tasks: int) -> list[Transitions]:
    """``steps`` random transitions of each of the first ``tasks`` tasks."""
    keys = jax.random.split(jax.random.PRNGKey(1), tasks)
    return [collect_random(seq, t, keys[t], steps).transitions() for t in range(tasks)]


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
    related = tree_bytes([x for path, x in leaves if _is_embedding(path)])
    return tree_bytes(state.emb), related


def _signature(state) -> str:
    """A short hash of the state's tree structure, shapes and dtypes."""
    leaves, treedef = jax.tree.flatten(state)
    text = str(treedef) + repr([(tuple(x.shape), str(x.dtype)) for x in leaves])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# --- model update per task ---------------------------------------------------------------


def _one_task(method, state, task: int, data: Transitions, sizes) -> tuple[dict, object]:
    key = jax.random.PRNGKey(10 + task)
    begin_s, state = timed(lambda: method.begin_task(state, task, data))
    fit_s, (state, metrics) = timed(lambda: fit(method, state, data, task, sizes.fit_steps,
                                                sizes.batch_size, key))
    end_s, state = timed(lambda: method.end_task(state, task, data))
    loss = np.asarray(metrics["task_loss"])
    return {"task": task, "begin_s": begin_s, "fit_s": fit_s, "end_s": end_s,
            "total_s": begin_s + fit_s + end_s, "first_loss": float(loss[0]),
            "last_loss": float(loss[-10:].mean())}, state


def _update_row(name: str, seq, data: list[Transitions], sizes) -> dict:
    method = _make(name, seq.obs_dim, seq.act_dim, seq.num_tasks)
    state = jax.block_until_ready(method.init(jax.random.PRNGKey(0)))
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


def bench_updates(sizes, seq, data: list[Transitions]) -> list[dict]:
    return [_update_row(name, seq, data, sizes) for name in sizes.update_methods]


# --- memory vs tasks seen ----------------------------------------------------------------


def _update_memory(method, state, batch: Transitions, task: int) -> dict:
    """``memory_analysis()`` of the compiled ``update`` (task traced) and its program's hash."""
    lowered = jax.jit(method.update).lower(state, batch, jnp.int32(task))
    compile_s, compiled = timed(lowered.compile)
    out = memory_analysis(compiled, MEMORY_FIELDS)
    out["program_sha"] = hashlib.sha256(lowered.as_text().encode()).hexdigest()[:12]
    out["update_compile_s"] = compile_s
    return out


def _memory_method(name: str, seq, data: list[Transitions], sizes) -> dict:
    method = _make(name, seq.obs_dim, seq.act_dim, seq.num_tasks)
    state = jax.block_until_ready(method.init(jax.random.PRNGKey(0)))
    rows = []
    for task in range(sizes.memory_tasks):
        d = data[task]
        state = method.begin_task(state, task, d)
        state, _ = fit(method, state, d, task, sizes.memory_fit_steps, sizes.batch_size,
                       jax.random.PRNGKey(20 + task))
        state = jax.block_until_ready(method.end_task(state, task, d))
        batch = Transitions(*(x[:sizes.batch_size] for x in d))
        emb, emb_related = _embedding_bytes(state)
        total = tree_bytes(state)
        rows.append({"tasks_seen": task + 1, "state_bytes": total,
                     "field_bytes": _field_bytes(state), "signature": _signature(state),
                     "emb_bytes": emb, "emb_share": emb / total,
                     "emb_with_adam_bytes": emb_related, "emb_with_adam_share": emb_related / total,
                     "seen": int(np.asarray(state.seen).sum()),
                     **_update_memory(method, state, batch, task)})
    keys = ("state_bytes", "signature", "program_sha", *(f"{k}_bytes" for k in MEMORY_FIELDS))
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


def bench_memory(sizes) -> tuple[list[dict], list[dict], dict]:
    seq = suite(sizes.memory_suite)
    data = collect_tasks(seq, sizes.data_steps, sizes.memory_tasks)
    methods = [_memory_method(name, seq, data, sizes) for name in sizes.memory_methods]
    capacity = [row for name in sizes.memory_methods
                for row in _capacity_rows(name, seq.obs_dim, seq.act_dim, sizes.capacities)]
    hnet = next((m for m in methods if m["method"] == "hnet"), None)
    verdict = {"suite": sizes.memory_suite, "tasks": sizes.memory_tasks,
               "all_constant": all(m["constant"] for m in methods),
               "hnet_constant": None if hnet is None else hnet["constant"]}
    return methods, capacity, verdict
