"""Dynamical linear bandits: every algorithm on a DLB preset, seeds vmapped, regret curves and tables.

``python -m hystax.experiments.dlb --preset synthetic-0.01 --horizon 100000 --seeds 20
[--settings textbook|reference] [--algorithms ...] [--record-every N] [--out-dir runs/dlb]
[--name NAME] [--overwrite]`` (or ``hystax bandit dlb ...``)

``--settings`` picks the default algorithm set (:data:`hystax.agents.bandits.ALGORITHM_SETS`):
``textbook`` (the default: each baseline's published constants) or ``reference`` (the DLB
authors' constants row by row, quirks included: the paper's comparison; see
:mod:`hystax.agents.bandits.dlb_baselines`). ``--algorithms`` overrides the set.

Each algorithm is one jitted ``run_seeds`` (``lax.scan`` over rounds, ``vmap`` over seeds, float64).
Seed s uses ``PRNGKey(s)`` for every algorithm, so all of them see the same noise sequence
(common random numbers). The paper's setting is ``--horizon 1000000 --seeds 10``. Writes:

* ``regret.csv``: long form ``algorithm,seed,round,regret,pseudo_regret`` on the recorded
  (subsampled) rounds; ``regret`` is the realised expected regret T J* - sum E[y_t | x_t, u_t],
  ``pseudo_regret`` the steady-state pseudo-regret sum (J* - <h, u_t>) of the paper's plots;
* ``regret.png`` (pseudo-regret) and ``regret_realised.png`` (realised expected regret): mean ±
  s.e. over seeds, all algorithms, linear and log-log axes;
* ``final.md`` / ``final.json``: final regret per algorithm (mean ± s.e., min, max over seeds,
  both regrets), sorted by final pseudo-regret.
"""

from __future__ import annotations

import csv
import datetime
import sys
import time
from pathlib import Path

import numpy as np
from hystax.agents.bandits import ALGORITHM_SETS, ALGORITHMS, SETTINGS, make_policy, run_seeds
from hystax.agents.bandits.policy import record_interval
from hystax.envs.dlb import PRESETS
from hystax.envs.dlb import preset as make_preset
from hystax.experiments.common import (
    OneLineParser,
    add_run_dir_args,
    positive_int,
    run_or_exit,
    write_summary,
)

import hystax  # noqa: F401  (before jax: the XLA:CPU workaround)
from hystax.core.errors import require, unknown_name
from hystax.plots import plot_regret
from hystax.rundir import create_run_dir
from hystax.core.stats import mean_and_standard_error

EXPERT_PRESETS = ("real",)
"""Presets where the constant "Expert" (the real system's human allocation) makes sense."""


def default_algorithms(preset: str, settings: str = "textbook") -> list[str]:
    """The ``settings`` set's algorithms that apply to ``preset`` (the Expert only on the real
    system)."""
    if settings not in ALGORITHM_SETS:
        raise unknown_name("settings", str(settings), ALGORITHM_SETS)
    return [a for a in ALGORITHM_SETS[settings] if a != "expert" or preset in EXPERT_PRESETS]


def validate(preset: str, algorithms=None, seeds=10, horizon=10**6, record_every=None,
             settings: str = "textbook"):
    """Check every argument (nothing is compiled); returns ``(problem, algorithms, seeds,
    horizon, record_every)`` normalised. Raises HystaxError with a one-line message."""
    require(isinstance(preset, str), f"preset must be a name, got {preset!r}")
    problem = make_preset(preset)  # unknown preset: HystaxError with suggestions
    if settings not in SETTINGS:
        raise unknown_name("settings", str(settings), SETTINGS)
    if algorithms is None:
        algorithms = default_algorithms(preset, settings)
    algorithms = [algorithms] if isinstance(algorithms, str) else list(algorithms)
    require(len(algorithms) > 0, "no algorithms given")
    for name in algorithms:
        if name not in ALGORITHMS:
            raise unknown_name("bandit algorithm", str(name), ALGORITHMS)
        require(name != "expert" or preset in EXPERT_PRESETS,
                f"algorithm 'expert' is the real advertising system's human allocation: only for "
                f"preset {', '.join(repr(p) for p in EXPERT_PRESETS)}, not {preset!r}")
    require(len(set(algorithms)) == len(algorithms), f"algorithms repeated: {algorithms}")
    seeds = positive_int("seeds", seeds)
    horizon = positive_int("horizon", horizon)
    if record_every is None:
        record_every = record_interval(horizon)
    record_every = positive_int("record_every", record_every)
    require(horizon % record_every == 0,
            f"record_every must divide the horizon {horizon}, got {record_every}")
    return problem, algorithms, seeds, horizon, record_every


def run(preset: str, algorithms=None, seeds: int = 10, horizon: int = 10**6,
        record_every: int | None = None, out_dir: str | Path | None = None,
        name: str | None = None, overwrite: bool = False,
        progress: bool = True, settings: str = "textbook") -> dict:
    """Run each algorithm on ``preset`` (same seeds for all), write CSV/PNG/tables to ``out_dir``
    (``out_dir/name``, default ``runs/dlb/<preset>-<date>-<time>``; an existing one only with
    ``overwrite``); return the summary (what ``final.json`` holds).

    algorithms: names from :data:`hystax.agents.bandits.ALGORITHMS` (default: the ``settings``
    set, "textbook" or "reference", that applies; the Expert only on ``"real"``).
    record_every: regret is recorded every this many rounds (a divisor of ``horizon``; default
    the smallest giving at most 1000 points). Everything is validated before the first
    compilation.
    """
    problem, algorithms, seeds, horizon, record_every = validate(
        preset, algorithms, seeds, horizon, record_every, settings)
    out_dir = create_run_dir(out_dir or "runs/dlb", name, stem=preset, overwrite=overwrite)
    from tqdm.auto import tqdm

    results, start = {}, time.perf_counter()
    bar = tqdm(algorithms, desc=f"dlb {preset}", unit="alg", disable=not progress)
    for name in bar:
        bar.set_postfix_str(f"{name} ({seeds} seeds x {horizon:,} rounds)")
        policy = make_policy(name, problem)
        t0 = time.perf_counter()
        out = run_seeds(policy, problem, seeds, horizon, record_every=record_every)
        results[name] = (policy.name, out, time.perf_counter() - t0)
    bar.close()
    summary = _summary(preset, problem, results, seeds, horizon, record_every,
                       time.perf_counter() - start)
    summary["settings"] = settings
    write_outputs(summary, results, out_dir)
    return summary


def _stats(final: np.ndarray) -> dict:
    mean, se = mean_and_standard_error(final)
    return {"mean": mean, "se": se, "min": float(final.min()), "max": float(final.max()),
            "per_seed": final.tolist()}


def _summary(preset, problem, results, seeds, horizon, record_every, wall_s) -> dict:
    rows = []
    for name, (label, out, secs) in results.items():
        counts = out.arm_counts.mean(axis=0)
        rows.append({"algorithm": name, "label": label,
                     "pseudo_regret": _stats(out.pseudo_regret[:, -1]),
                     "regret": _stats(out.regret[:, -1]),
                     "mean_arm_fraction": (counts / horizon).tolist(), "wall_s": secs})
    rows.sort(key=lambda r: r["pseudo_regret"]["mean"])
    return {"preset": preset, "horizon": horizon, "seeds": seeds, "record_every": record_every,
            "J_star": float(problem.J_star), "u_star": problem.u_star.tolist(),
            "h": problem.h.tolist(), "arms": problem.arms.tolist(),
            "sigma": float(problem.sigma), "rho": float(problem.rho), "phi": float(problem.phi),
            "rows": rows, "wall_s": wall_s,
            "date": datetime.datetime.now().isoformat(timespec="seconds")}


def _cell(s: dict) -> str:
    return f"{s['mean']:,.1f} ± {s['se']:,.1f}"


def format_table(summary: dict) -> str:
    """The markdown table of final regrets (sorted by final pseudo-regret)."""
    T = summary["horizon"]
    settings = f" ({summary['settings']} settings)" if "settings" in summary else ""
    lines = [(f"DLB `{summary['preset']}`{settings}: final regret at T = {T:,}, mean ± s.e. (min / max) "
              f"over {summary['seeds']} seeds, the same noise for every algorithm; J* = "
              f"{summary['J_star']:.5f}, u* = {tuple(summary['u_star'])}"), "",
             ("| algorithm | pseudo-regret | min / max | per round | realised expected regret "
              "| min / max | wall s |"), "|---|---:|---:|---:|---:|---:|---:|"]
    for r in summary["rows"]:
        p, q = r["pseudo_regret"], r["regret"]
        lines.append(f"| {r['label']} | {_cell(p)} | {p['min']:,.1f} / {p['max']:,.1f} | "
                     f"{p['mean'] / T:.4f} | {_cell(q)} | {q['min']:,.1f} / {q['max']:,.1f} | "
                     f"{r['wall_s']:.1f} |")
    lines += ["", ("pseudo-regret = sum_t (J* - <h, u_t>) (the paper's curves); realised "
                   "expected regret = T J* - sum_t E[y_t | x_t, u_t] on the realised state path. "
                   "wall s: compile + run of all seeds.")]
    return "\n".join(lines)


def write_outputs(summary: dict, results: dict, out_dir: Path) -> None:
    """``regret.csv``, ``regret.png``, ``regret_realised.png``, ``final.md``, ``final.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "regret.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["algorithm", "seed", "round", "regret", "pseudo_regret"])
        for name, (_, out, _) in results.items():
            for s in range(out.regret.shape[0]):
                writer.writerows([name, s, int(t), f"{a:.10g}", f"{b:.10g}"]
                                 for t, a, b in zip(out.rounds, out.regret[s], out.pseudo_regret[s]))
    order = [r["algorithm"] for r in summary["rows"]]
    title = f"DLB {summary['preset']}, T = {summary['horizon']:,}"
    rounds = next(iter(results.values()))[1].rounds
    plot_regret({results[n][0]: results[n][1].pseudo_regret for n in order},
                out_dir / "regret.png", rounds=rounds, title=f"{title}: pseudo-regret")
    plot_regret({results[n][0]: results[n][1].regret for n in order},
                out_dir / "regret_realised.png", rounds=rounds,
                title=f"{title}: realised expected regret")
    write_summary(out_dir, "final", summary, format_table(summary))
    print(f"wrote {out_dir}/regret.csv, regret.png, regret_realised.png, final.md, final.json "
          f"({summary['wall_s']:.0f} s)")


def cli(argv: list[str] | None = None, prog: str = "python -m hystax.experiments.dlb") -> int:
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="synthetic-0.01",
                        help=f"DLB preset: {', '.join(PRESETS)} (default: %(default)s)")
    parser.add_argument("--horizon", default="100000", help="rounds T (default: %(default)s)")
    parser.add_argument("--seeds", default="20", help="seeds 0..N-1 (default: %(default)s)")
    parser.add_argument("--settings", default="textbook",
                        help="baseline constants: textbook (default) or reference (the DLB "
                             "authors' code, row by row: the paper's comparison)")
    parser.add_argument("--algorithms", nargs="+", default=None,
                        help=f"default: the --settings set that applies ({', '.join(ALGORITHMS)}; "
                             f"expert only on real)")
    parser.add_argument("--record-every", default=None,
                        help="record the regret every N rounds (default: <= 1000 points)")
    add_run_dir_args(parser, "runs/dlb", "<preset>")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    return run_or_exit(parser, lambda: run(args.preset, args.algorithms, args.seeds, args.horizon,
                                           args.record_every, args.out_dir, args.name,
                                           args.overwrite, progress=not args.no_progress,
                                           settings=args.settings))


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``hystax bandit dlb`` (same as :func:`cli`)."""
    return cli(argv)


if __name__ == "__main__":
    sys.exit(cli())
