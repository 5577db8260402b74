"""Dynamical linear bandits: every algorithm on a DLB preset, seeds vmapped, regret curves and tables.

``python -m hystax.experiments.bandit_dlb --preset synthetic-0.01 --horizon 100000 --seeds 20
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
from pathlib import Path

import numpy as np

from hystax.agents.bandits import ALGORITHM_SETS, ALGORITHMS, SETTINGS, make_policy, run_seeds
from hystax.agents.bandits.policy import record_interval
from hystax.core.errors import require, unknown_name
from hystax.core.stats import mean_and_standard_error
from hystax.envs.dlb import PRESETS
from hystax.envs.dlb import preset as make_preset
from hystax.experiments.bandit_plan import BanditPlan, check_algorithms, run_learners
from hystax.experiments.experiment import (
    Experiment,
    add_run_dir_args,
    markdown_table,
    positive_int,
    write_summary,
)
from hystax.plots import plot_regret
from hystax.rundir import create_run_dir

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
    algorithms = check_algorithms(algorithms, ALGORITHMS, "bandit algorithm")
    require("expert" not in algorithms or preset in EXPERT_PRESETS,
            f"algorithm 'expert' is the real advertising system's human allocation: only for "
            f"preset {', '.join(repr(p) for p in EXPERT_PRESETS)}, not {preset!r}")
    seeds = positive_int("seeds", seeds)
    horizon = positive_int("horizon", horizon)
    if record_every is None:
        record_every = record_interval(horizon)
    record_every = positive_int("record_every", record_every)
    require(horizon % record_every == 0,
            f"record_every must divide the horizon {horizon}, got {record_every}")
    return problem, algorithms, seeds, horizon, record_every


def plan(preset: str, algorithms=None, seeds: int = 10, horizon: int = 10**6,
         record_every: int | None = None, out_dir: str | Path | None = None,
         name: str | None = None, overwrite: bool = False, progress: bool = True,
         settings: str = "textbook") -> BanditPlan:
    """:func:`validate`, then the output folder ``out_dir/name`` (default
    ``runs/dlb/<preset>-<date>-<time>``; an existing one only with ``overwrite``)."""
    problem, algorithms, seeds, horizon, record_every = validate(
        preset, algorithms, seeds, horizon, record_every, settings)
    out_dir = create_run_dir(out_dir or "runs/dlb", name, stem=preset, overwrite=overwrite)
    return BanditPlan(preset, problem, algorithms, seeds, horizon, record_every, out_dir,
                      progress, {"settings": settings})


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
    return EXPERIMENT.execute(plan(preset, algorithms, seeds, horizon, record_every, out_dir,
                                   name, overwrite, progress, settings))[1]


def run_plan(plan: BanditPlan) -> dict:
    """``{algorithm: (label, RegretCurves, wall seconds)}``, one jitted ``run_seeds`` each."""
    return run_learners(plan, lambda name: make_policy(name, plan.problem), run_seeds,
                        f"dlb {plan.preset}")


def _stats(final: np.ndarray) -> dict:
    mean, se = mean_and_standard_error(final)
    return {"mean": mean, "se": se, "min": float(final.min()), "max": float(final.max()),
            "per_seed": final.tolist()}


def summarise(plan: BanditPlan, results: dict) -> dict:
    """What ``final.json`` holds: the final regrets per algorithm (sorted by pseudo-regret)."""
    rows = []
    for name, (label, out, secs) in results.items():
        counts = out.arm_counts.mean(axis=0)
        rows.append({"algorithm": name, "label": label,
                     "pseudo_regret": _stats(out.pseudo_regret[:, -1]),
                     "regret": _stats(out.regret[:, -1]),
                     "mean_arm_fraction": (counts / plan.horizon).tolist(), "wall_s": secs})
    rows.sort(key=lambda r: r["pseudo_regret"]["mean"])
    problem = plan.problem
    return {"preset": plan.preset, "horizon": plan.horizon, "seeds": plan.seeds,
            "record_every": plan.record_every,
            "J_star": float(problem.J_star), "u_star": problem.u_star.tolist(),
            "h": problem.h.tolist(), "arms": problem.arms.tolist(),
            "sigma": float(problem.sigma), "rho": float(problem.rho), "phi": float(problem.phi),
            "rows": rows, "wall_s": sum(secs for _, _, secs in results.values()),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "settings": plan.extra["settings"]}


def _cell(s: dict) -> str:
    return f"{s['mean']:,.1f} ± {s['se']:,.1f}"


def format_table(summary: dict) -> str:
    """The markdown table of final regrets (sorted by final pseudo-regret)."""
    T = summary["horizon"]
    settings = f" ({summary['settings']} settings)" if "settings" in summary else ""
    caption = (f"DLB `{summary['preset']}`{settings}: final regret at T = {T:,}, mean ± s.e. "
               f"(min / max) over {summary['seeds']} seeds, the same noise for every algorithm; "
               f"J* = {summary['J_star']:.5f}, u* = {tuple(summary['u_star'])}")
    rows = []
    for r in summary["rows"]:
        p, q = r["pseudo_regret"], r["regret"]
        rows.append([r["label"], _cell(p), f"{p['min']:,.1f} / {p['max']:,.1f}",
                     f"{p['mean'] / T:.4f}", _cell(q), f"{q['min']:,.1f} / {q['max']:,.1f}",
                     f"{r['wall_s']:.1f}"])
    lines = markdown_table(caption, ["algorithm", "pseudo-regret", "min / max", "per round",
                                     "realised expected regret", "min / max", "wall s"], rows)
    lines += ["", ("pseudo-regret = sum_t (J* - <h, u_t>) (the paper's curves); realised "
                   "expected regret = T J* - sum_t E[y_t | x_t, u_t] on the realised state path. "
                   "wall s: compile + run of all seeds.")]
    return "\n".join(lines)


def write_outputs(plan: BanditPlan, results: dict, summary: dict) -> None:
    """``regret.csv``, ``regret.png``, ``regret_realised.png``, ``final.md``, ``final.json``."""
    out_dir = plan.out_dir
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


def add_arguments(parser) -> None:
    """``--preset``, ``--horizon``, ``--seeds``, ``--settings``, ``--algorithms``,
    ``--record-every`` and the run folder."""
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


EXPERIMENT = Experiment(
    prog="python -m hystax.experiments.bandit_dlb", description=__doc__.splitlines()[0],
    add_arguments=add_arguments, validate=lambda args: plan(**vars(args)), run=run_plan,
    summarise=summarise, write=write_outputs)
cli = EXPERIMENT.cli

if __name__ == "__main__":
    sys.exit(cli())
