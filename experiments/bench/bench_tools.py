"""What every benchmark shares: timing jitted calls, the bytes of a state and of a compiled
program, where the numbers came from, writing the JSON, the command line.

A benchmark is a thin script over these: ``main(quick, out, progress) -> results`` that ends
with :func:`finish`, and ``cli = bench_cli(main, NAME, __doc__)``;
:data:`hystax.experiments.experiment_registry.BENCHMARKS` lists them for ``hystax bench NAME``.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import jax
import jaxlib
import numpy as np

T = TypeVar("T")


# --- timing ------------------------------------------------------------------------------------


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """``(seconds, fn())`` of one call, its result waited for (``jax.block_until_ready``)."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return time.perf_counter() - start, out


def timed_first(fn: Callable[[], T]) -> tuple[float, T]:
    """:func:`timed` of a first call: every jit cache emptied beforehand, so it traces and
    compiles afresh (otherwise an earlier call with the same shapes would have compiled it)."""
    jax.clear_caches()
    return timed(fn)


def repeat(fn: Callable[[], T], reps: int) -> tuple[list[float], T]:
    """The seconds of each of ``reps`` calls of ``fn()`` (each waited for), and the last
    call's result."""
    times, out = [], None
    for _ in range(reps):
        seconds, out = timed(fn)
        times.append(seconds)
    return times, out


def compile_ahead(fn, *args, donate_argnums=()) -> tuple[float, object]:
    """``(compile seconds, jax.jit(fn).lower(*args).compile())``: compiled ahead of time, so
    that the timed calls run it only."""
    return timed(lambda: jax.jit(fn, donate_argnums=donate_argnums).lower(*args).compile())


# --- bytes -------------------------------------------------------------------------------------


def tree_bytes(tree) -> int:
    """Sum of the leaves' nbytes (arrays or ``jax.ShapeDtypeStruct``)."""
    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


MEMORY_FIELDS = {"temp": "temp_size_in_bytes", "argument": "argument_size_in_bytes",
                 "output": "output_size_in_bytes", "alias": "alias_size_in_bytes",
                 "generated_code": "generated_code_size_in_bytes",
                 "peak": "peak_memory_in_bytes"}


def memory_analysis(compiled, fields: Sequence[str] = ("temp", "argument", "output")
                    ) -> dict[str, int | None]:
    """``{"<field>_bytes": bytes}`` from a compiled program's ``memory_analysis()`` for each
    of ``fields`` (keys of :data:`MEMORY_FIELDS`); None where the backend does not say."""
    try:
        stats = compiled.memory_analysis()
    except Exception:  # noqa: BLE001  (not every backend / version implements it)
        stats = None
    return {f"{field}_bytes": (int(getattr(stats, MEMORY_FIELDS[field]))
                               if stats is not None and hasattr(stats, MEMORY_FIELDS[field])
                               else None) for field in fields}


def kib(x) -> str:
    """Bytes as KiB for a table cell ("n/a" for None)."""
    return "n/a" if x is None else f"{x / 1024:,.1f}"


# --- results -----------------------------------------------------------------------------------


def machine_info() -> dict:
    """Where the numbers came from."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"devices": [str(d) for d in jax.devices()], "backend": jax.default_backend(),
            "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "cpu_count": os.cpu_count(), "usable_cpus": usable,
            "loadavg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "platform": platform.platform(), "python": platform.python_version(),
            "date": datetime.datetime.now().isoformat(timespec="seconds")}


def finish(results: dict, table: str, start: float, out: str | Path,
           notes: Sequence[str] = ()) -> dict:
    """Close a benchmark: total time, ``table`` printed and stored, ``notes`` printed after it,
    the machine line, the JSON."""
    machine = results["machine"]
    results["total_s"] = time.perf_counter() - start
    results["table"] = table
    print(table)
    for note in notes:
        print(note)
    print(f"{machine['backend']} {machine['devices']}, jax {machine['jax']}, "
          f"{machine['usable_cpus']} usable CPUs, load {machine['loadavg_at_start']}; "
          f"total {results['total_s']:.0f} s")
    write_results(results, out)
    return results


def write_results(results: dict, out: str | Path) -> Path:
    """Write ``results`` as JSON to ``out`` (parents created) and say where."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return path


def bench_cli(main: Callable[..., dict], name: str, doc: str) -> Callable[..., int]:
    """``cli(argv=None)`` for ``python -m hystax.experiments.bench.bench_<name> [--quick]
    [--out PATH] [--no-progress]`` (the one parser: one-line usage errors)."""
    from hystax.experiments.experiment import OneLineParser

    def cli(argv: list[str] | None = None) -> int:
        parser = OneLineParser(prog=f"python -m hystax.experiments.bench.bench_{name}",
                               description=doc.splitlines()[0])
        parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
        parser.add_argument("--out", default=f"runs/bench_{name}.json",
                            help="where the JSON goes")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")
        args = parser.parse_args(argv)
        main(quick=args.quick, out=args.out, progress=not args.no_progress)
        return 0

    return cli
