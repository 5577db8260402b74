"""What every benchmark shares: where the numbers came from, writing the JSON, the CLI."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jaxlib


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


def finish(results: dict, table: str, start: float, out: str | Path) -> dict:
    """Close a benchmark: total time, ``table`` printed and stored, the machine line, the JSON."""
    machine = results["machine"]
    results["total_s"] = time.perf_counter() - start
    results["table"] = table
    print(table)
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


def bench_cli(main: Callable[..., dict], name: str, doc: str,
              argv: list[str] | None = None) -> int:
    """``python -m hystax.experiments.bench.bench_<name> [--quick] [--out PATH]``."""
    parser = argparse.ArgumentParser(prog=f"python -m hystax.experiments.bench.bench_{name}",
                                     description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    parser.add_argument("--out", default=f"runs/bench_{name}.json", help="where the JSON goes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    main(quick=args.quick, out=args.out, progress=not args.no_progress)
    return 0
