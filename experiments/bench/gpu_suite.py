"""The GPU suite of issue 20: every GPU figure of the in-context RL part in one call.

``python -m hystax.experiments.bench.gpu_suite [--quick] [--out FOLDER] [--parts abcde]
[--timeout-scale X] [--commit SHA]`` (or ``hystax bench gpu [--quick]``) runs five parts
(:mod:`.gpu_suite_parts` says what each measures):

(a) recurrent PPO at the POPGym paper config: S5 x4, GRU, S5 x1, S4D, LRU, minGRU, S6;
(b) ``hystax bench memory``'s layer timings at L = 128 / 1024 / 4096 and its S5-PPO / GRU-PPO
    ratio at 64 x 1024;
(c) PPO-MLP on CartPole-v1 at 1k and 16k envs against the random policy's env-steps/s;
(d) DynLin-UCB rounds/s at 1,000 seeds x 10^5 rounds;
(e) Losse-FTL's update time at D = 10^3 and 10^5.

Each part runs in its own process (``--part X``) with its own timeout (:data:`TIMEOUTS`, times
``--timeout-scale``), and appends a JSON record per item to ``gpu_suite.jsonl`` as soon as the
item is done; the suite adds the part's status (ok / failed / timeout, with the tail of its
log, ``gpu_suite.<part>.log``), so a slow or failing part loses only itself, or only its items
not yet done. At the end it writes ``gpu_suite.md`` (device, jax version, commit; the four
targets of the issue, each met or missed with its figure, judged on a full GPU run only; a
table per part) and ``gpu_suite.json`` (every record, the targets, the table).
``--quick`` runs every part at tiny sizes (on a CPU, under a minute).

The suite itself never starts a jax backend (on a GPU it would take the memory the parts
need): the device and jax version come from the parts' start records.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from hystax.experiments.bench.gpu_suite_report import by_part, format_report, targets

MODULE = "hystax.experiments.bench.gpu_suite"
PARTS = {"a": "recurrent PPO, paper config", "b": "memory layers, S5/GRU PPO",
         "c": "PPO-MLP vs random policy", "d": "DynLin-UCB", "e": "Losse-FTL"}
TIMEOUTS = {"a": 210, "b": 120, "c": 60, "d": 45, "e": 30}
"""Seconds per part on the GPU (the process's start and jax's import included)."""
QUICK_TIMEOUT = 120


def append_record(path: Path, record: dict) -> None:
    """Append ``record`` as one JSON line (flushed at once)."""
    with open(path, "a") as f:
        f.write(json.dumps(record, default=str) + "\n")


def read_records(path: Path) -> list[dict]:
    """Every record of a JSON-lines file (a line cut short by a kill is skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def git_commit() -> str | None:
    """``git rev-parse HEAD`` of the working directory (``+dirty`` with uncommitted changes to
    tracked files), None where there is no git or no repository."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               check=False, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def run_part(part: str, quick: bool, jsonl: Path, timeout: float) -> dict:
    """Run part ``part`` in its own process (output to its log next to ``jsonl``) under
    ``timeout`` seconds; append and return its status record."""
    log = jsonl.with_name(f"{jsonl.stem}.{part}.log")
    command = [sys.executable, "-m", MODULE, "--part", part, "--jsonl", str(jsonl),
               *(["--quick"] if quick else [])]
    env = {"PYTHONUNBUFFERED": "1"}
    if quick:  # tiny sizes: compile time is all there is, and it is not what quick measures
        env["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
    start = time.perf_counter()
    with open(log, "w") as f:
        try:
            code = subprocess.run(command, check=False, stdout=f, stderr=subprocess.STDOUT,
                                  timeout=timeout, env={**os.environ, **env}).returncode
            status = "ok" if code == 0 else "failed"
        except subprocess.TimeoutExpired:
            code, status = None, "timeout"
    record = {"part": part, "name": "status", "status": status, "returncode": code,
              "seconds": time.perf_counter() - start, "timeout_s": timeout, "log": str(log)}
    if status != "ok":
        record["log_tail"] = log.read_text(errors="replace").splitlines()[-15:]
    append_record(jsonl, record)
    print(f"part ({part}) {PARTS[part]}: {status} in {record['seconds']:.0f} s", flush=True)
    return record


def main(quick: bool = False, out: str = "runs/gpu_suite/gpu_suite.json", progress: bool = True,
         parts: str = "abcde", timeout_scale: float = 1.0, commit: str | None = None) -> dict:
    """Run ``parts``, write the JSON-lines records, the markdown and the JSON next to ``out``
    (the JSON's path); print and return the results."""
    from hystax.progress import PartBar

    start = time.perf_counter()
    out = Path(out)
    jsonl, table_path = out.with_suffix(".jsonl"), out.with_suffix(".md")
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    jsonl.write_text("")
    commit = commit or git_commit()
    with PartBar(len(parts), "bench gpu", progress) as bar:
        for part in parts:
            timeout = (QUICK_TIMEOUT if quick else TIMEOUTS[part]) * timeout_scale
            bar(f"({part}) {PARTS[part]}", run_part, part, quick, jsonl, timeout)
    records = read_records(jsonl)
    table = format_report(records, quick, commit)
    table_path.write_text(table)
    results = {"benchmark": "gpu", "quick": quick, "commit": commit, "parts": list(parts),
               "targets": targets(by_part(records), quick), "records": records,
               "table": table, "total_s": time.perf_counter() - start,
               "jsonl": str(jsonl), "markdown": str(table_path)}
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(table)
    print(f"wrote {out}, {jsonl} and {table_path}; total {results['total_s']:.0f} s")
    return results


def cli(argv: list[str] | None = None) -> int:
    from hystax.experiments.experiment import OneLineParser

    parser = OneLineParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a CPU smoke run)")
    parser.add_argument("--out", default="runs/gpu_suite",
                        help="folder of gpu_suite.jsonl / .md / .json (default: %(default)s)")
    parser.add_argument("--parts", default="abcde", help="which parts, in order (default: "
                        "%(default)s)")
    parser.add_argument("--timeout-scale", type=float, default=1.0,
                        help="multiplies every part's timeout")
    parser.add_argument("--commit", help="the commit to name in the table (default: git's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--part", choices=list(PARTS), help=argparse.SUPPRESS)
    parser.add_argument("--jsonl", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:  # one part, in the process the suite started for it
        if not args.jsonl:
            parser.error("--part needs --jsonl")
        from hystax.experiments.bench.gpu_suite_parts import run_part as measure_part

        measure_part(args.part, args.quick,
                     lambda record: append_record(Path(args.jsonl), {"part": args.part,
                                                                     **record}))
        return 0
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown or not args.parts or args.timeout_scale <= 0:
        parser.error(f"--parts takes letters of {''.join(PARTS)} and --timeout-scale a "
                     f"positive number, got {args.parts!r} and {args.timeout_scale}")
    main(quick=args.quick, out=str(Path(args.out) / "gpu_suite.json"),
         progress=not args.no_progress, parts=args.parts, timeout_scale=args.timeout_scale,
         commit=args.commit)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
