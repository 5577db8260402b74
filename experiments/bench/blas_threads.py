"""How many threads the OpenBLAS libraries loaded in this process use, read and set through
ctypes (Linux).

jax's CPU linear algebra (e.g. the [k, k] solve of every FTL update: LU, then triangular
solves) calls the LAPACK/BLAS that scipy ships (OpenBLAS). Its multi-threaded triangular solve
with several right-hand sides is very slow on a small, busy machine (threads spin while the
cores are taken), so a benchmark may run with OpenBLAS limited to one thread
(:func:`set_blas_threads`) and :func:`solve_timings` measures a solve both ways.
"""

from __future__ import annotations

import ctypes
import os
import statistics

import jax
import jax.numpy as jnp
import numpy as np

from hystax.experiments.bench.bench_tools import repeat

_SETTERS = ("scipy_openblas_set_num_threads", "scipy_openblas_set_num_threads64_",
            "openblas_set_num_threads", "openblas_set_num_threads64_")
_GETTERS = ("scipy_openblas_get_num_threads", "scipy_openblas_get_num_threads64_",
            "openblas_get_num_threads", "openblas_get_num_threads64_")


def _openblas_libraries() -> list[tuple[str, object, object]]:
    """(path, setter, getter) of every OpenBLAS library loaded in this process (Linux)."""
    paths = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:
        return []
    found = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        if setter is not None and getter is not None:
            setter.argtypes, getter.restype = [ctypes.c_int], ctypes.c_int
            found.append((path, setter, getter))
    return found


def set_blas_threads(threads: int | dict | None) -> dict[str, int]:
    """Set every loaded OpenBLAS to ``threads`` (an int, or {path: threads} as returned before);
    returns {path: threads before}. None leaves them alone."""
    before = {}
    for path, setter, getter in _openblas_libraries():
        before[path] = int(getter())
        wanted = threads.get(path) if isinstance(threads, dict) else threads
        if wanted is not None:
            setter(int(wanted))
    return before


def _solve_us(k: int, d: int, reps: int) -> float:
    rng = np.random.default_rng(0)
    r = rng.standard_normal((k, k)).astype(np.float32)
    a, b = r @ r.T / k + np.eye(k, dtype=np.float32), rng.standard_normal((k, d)).astype(np.float32)
    solve = jax.jit(jnp.linalg.solve)
    jax.block_until_ready(solve(a, b))
    return statistics.median(repeat(lambda: solve(a, b), reps)[0]) * 1e6


def solve_timings(k: int, d: int, reps: int) -> dict:
    """A jitted [k, k] x [k, d] ``jnp.linalg.solve`` (median microseconds of ``reps`` calls)
    with the BLAS threads as found and with one thread; the libraries and their threads."""
    jax.block_until_ready(jnp.linalg.solve(jnp.eye(2), jnp.ones(2)))  # loads jax's LAPACK
    found = set_blas_threads(None)
    default_us = _solve_us(k, d, reps)
    set_blas_threads(1)
    one_us = _solve_us(k, d, reps)
    set_blas_threads(found)
    return {"libraries": {os.path.basename(p): t for p, t in found.items()},
            "controllable": bool(found), "solve_shape": [k, k, d],
            "solve_us_threads_as_found": default_us, "solve_us_one_thread": one_us}
