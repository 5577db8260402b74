"""LSD bandits: the planning table over every preset, and the learners on one preset.

``python -m hystax.experiments.bandit_lsd --preset laforgue-main --seeds 20 [--horizon T]
[--algorithms ...] [--out-dir runs/lsd] [--name NAME] [--overwrite] [--no-planning]`` (or ``hystax bandit lsd ...``)

Planning (full knowledge of the payoffs, every preset at its own horizon): Oracle Greedy, the
LP-rounding planner (mean ± s.e. over 32 draws, and the best of them), the exact optimum by DP,
and the LP bound T * LP. Written to ``planning.md`` / ``planning.json``.

Learners (payoffs unknown; each is one jitted ``run_seeds``, seeds vmapped, common random
numbers): total expected reward / OPT (mean ± s.e. over seeds), with the full-information
planners as reference rows. Regret curves: against OPT, ``(OPT / T) t - reward(t)``, and the
alpha-regret against the full-information LP-rounding planner, ``(V / T) t - reward(t)`` with V
its mean expected reward. Writes ``rewards.md`` / ``rewards.json``, ``regret.csv`` and
``regret.png``, ``alpha_regret.csv`` and ``alpha_regret.png`` (linear and log-log axes, the
log-log legend gives the fitted slope: < 1 is sublinear).
"""

from __future__ import annotations

import datetime
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from hystax.agents.bandits.lsd import ALGORITHMS, greedy_schedule, run_seeds, schedule_value
from hystax.agents.bandits.policy import record_interval
from hystax.core.errors import require
from hystax.core.stats import loglog_slope, mean_and_standard_error
from hystax.envs.lsd import PRESETS
from hystax.envs.lsd import preset as make_preset
from hystax.experiments.bandit_lsd_planning import (
    PLANNER_DRAWS,
    optimum,
    quiet_rounding,
    write_planning,
)
from hystax.experiments.bandit_plan import BanditPlan, check_algorithms, run_learners
from hystax.experiments.experiment import (
    Experiment,
    add_run_dir_args,
    markdown_table,
    positive_int,
    write_summary,
)
from hystax.plots import plot_regret, write_regret_csv
from hystax.rundir import create_run_dir


def validate(preset: str, algorithms=None, seeds=20, horizon=None, record_every=None):
    """Check every argument (nothing is compiled); returns ``(problem, algorithms, seeds,
    horizon, record_every)`` normalised. Raises HystaxError with a one-line message."""
    require(isinstance(preset, str), f"preset must be a name, got {preset!r}")
    problem = make_preset(preset)
    algorithms = check_algorithms(list(ALGORITHMS) if algorithms is None else algorithms,
                                  ALGORITHMS, "LSD algorithm")
    seeds = positive_int("seeds", seeds)
    horizon = PRESETS[preset].horizon if horizon is None else positive_int("horizon", horizon)
    record_every = record_interval(horizon, None if record_every is None
                                   else positive_int("record_every", record_every))
    return problem, algorithms, seeds, horizon, record_every


class Results(NamedTuple):
    """OPT, the full-information planners' values and each learner's (label, curves, seconds)."""

    opt: float
    opt_source: str
    full_info: np.ndarray
    greedy: float
    learners: dict
    wall_s: float


def plan(preset: str = "laforgue-main", algorithms=None, seeds: int = 20,
         horizon: int | None = None, record_every: int | None = None,
         out_dir: str | Path | None = None, name: str | None = None, overwrite: bool = False,
         planning: bool = True, progress: bool = True) -> BanditPlan:
    """:func:`validate`, then the output folder ``out_dir/name`` (default
    ``runs/lsd/<preset>-<date>-<time>``; an existing one only with ``overwrite``)."""
    problem, algorithms, seeds, horizon, record_every = validate(
        preset, algorithms, seeds, horizon, record_every)
    out_dir = create_run_dir(out_dir or "runs/lsd", name, stem=preset, overwrite=overwrite)
    return BanditPlan(preset, problem, algorithms, seeds, horizon, record_every, out_dir,
                      progress, {"planning": planning})


def run(preset: str = "laforgue-main", algorithms=None, seeds: int = 20, horizon: int | None = None,
        record_every: int | None = None, out_dir: str | Path | None = None,
        name: str | None = None, overwrite: bool = False, planning: bool = True,
        progress: bool = True) -> dict:
    """Run the learners on ``preset`` (and the planning table over every preset unless
    ``planning=False``); write everything to ``out_dir/name`` (default
    ``runs/lsd/<preset>-<date>-<time>``; an existing one only with ``overwrite``) and return
    the learners' summary (what ``rewards.json`` holds)."""
    return EXPERIMENT.execute(plan(preset, algorithms, seeds, horizon, record_every, out_dir,
                                   name, overwrite, planning, progress))[1]


def run_plan(plan: BanditPlan) -> Results:
    """OPT and the full-information planners, then each learner (one jitted ``run_seeds``)."""
    start = time.perf_counter()
    problem, horizon = plan.problem, plan.horizon
    opt, source = optimum(problem, horizon)
    full_info = quiet_rounding(problem, horizon)
    greedy = schedule_value(problem, greedy_schedule(problem, horizon))
    learners = run_learners(plan, lambda name: ALGORITHMS[name](PRESETS[plan.preset].block),
                            run_seeds, f"lsd {plan.preset}")
    return Results(opt, source, full_info, greedy, learners, time.perf_counter() - start)


def _ratio_stats(values: np.ndarray, opt: float) -> dict:
    mean, se = mean_and_standard_error(values / opt)
    return {"mean": mean, "se": se, "per_seed": (values / opt).tolist()}


def summarise(plan: BanditPlan, results: Results) -> dict:
    """What ``rewards.json`` holds: reward / OPT and the alpha-regret per learner (best first)."""
    rows = []
    horizon, opt = plan.horizon, results.opt
    for name, (label, out, secs) in results.learners.items():
        alpha = out.regret(results.full_info.mean() / horizon)
        tail = out.rounds >= 0.1 * horizon
        slope = (loglog_slope(out.rounds[tail], alpha.mean(axis=0)[tail])
                 if np.all(alpha.mean(axis=0)[tail] > 0) else float("nan"))
        rows.append({"algorithm": name, "label": label,
                     "reward_over_opt": _ratio_stats(out.reward[:, -1], opt),
                     "alpha_regret": float(alpha[:, -1].mean()), "alpha_regret_slope": slope,
                     "wall_s": secs})
    rows.sort(key=lambda r: -r["reward_over_opt"]["mean"])
    return {"preset": plan.preset, "horizon": horizon, "seeds": plan.seeds, "opt": opt,
            "opt_source": results.opt_source,
            "full_info_rounding": _ratio_stats(results.full_info, opt),
            "greedy_over_opt": results.greedy / opt, "rows": rows,
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "wall_s": results.wall_s}


def format_rewards(summary: dict) -> str:
    """The markdown table of total expected reward / OPT per learner."""
    caption = (f"LSD `{summary['preset']}`, T = {summary['horizon']:,}: total expected reward / "
               f"OPT (OPT = {summary['opt']:,.1f}, {summary['opt_source']}), mean ± s.e. over "
               f"{summary['seeds']} seeds (same rewards noise for every learner)")
    rows = [[r["label"], f"{r['reward_over_opt']['mean']:.4f} ± {r['reward_over_opt']['se']:.4f}",
             f"{r['alpha_regret']:,.1f}", _slope_cell(r["alpha_regret_slope"]),
             f"{r['wall_s']:.1f}"] for r in summary["rows"]]
    f = summary["full_info_rounding"]
    rows += [[f"*LP rounding, full information ({PLANNER_DRAWS} draws)*",
              f"{f['mean']:.4f} ± {f['se']:.4f}", "0", "", ""],
             ["*Oracle Greedy, full information*", f"{summary['greedy_over_opt']:.4f}", "", "",
              ""]]
    lines = markdown_table(caption, ["learner", "reward / OPT", "alpha-regret at T",
                                     "log-log slope", "wall s"], rows)
    lines += ["", ("alpha-regret: (V / T) t - reward(t) against the full-information LP-rounding "
                   "planner's mean V; slope fitted on log-log axes over t >= T / 10; — where "
                   "the regret is not positive there, so no slope is defined.")]
    return "\n".join(lines)


def _slope_cell(slope: float) -> str:
    return "—" if not np.isfinite(slope) else f"{slope:.2f}"


def write_outputs(plan: BanditPlan, results: Results, summary: dict) -> None:
    """``rewards.md`` / ``rewards.json``, ``regret.csv`` / ``.png``, ``alpha_regret.csv`` /
    ``.png``; then, unless ``planning`` is off, the planning table over every preset."""
    out_dir, learners = plan.out_dir, results.learners
    order = [r["algorithm"] for r in summary["rows"]]
    rounds = next(iter(learners.values()))[1].rounds
    title = f"LSD {summary['preset']}, T = {summary['horizon']:,}"
    for stem, rate, what in (("regret", results.opt / plan.horizon, "regret against OPT"),
                             ("alpha_regret", results.full_info.mean() / plan.horizon,
                              "alpha-regret against the full-information LP rounding")):
        curves = {learners[n][0]: learners[n][1].regret(rate) for n in order}
        write_regret_csv(curves, out_dir / f"{stem}.csv", rounds=rounds)
        plot_regret(curves, out_dir / f"{stem}.png", rounds=rounds, title=f"{title}: {what}")
    write_summary(out_dir, "rewards", summary, format_rewards(summary))
    print(f"wrote {out_dir}/rewards.md, rewards.json, regret.csv, regret.png, alpha_regret.csv, "
          f"alpha_regret.png ({summary['wall_s']:.0f} s)")
    if plan.extra["planning"]:
        write_planning(out_dir, progress=plan.progress)


def add_arguments(parser) -> None:
    """``--preset``, ``--horizon``, ``--seeds``, ``--algorithms``, ``--record-every``, the run
    folder and ``--no-planning``."""
    parser.add_argument("--preset", default="laforgue-main",
                        help=f"LSD preset: {', '.join(PRESETS)} (default: %(default)s)")
    parser.add_argument("--horizon", default=None, help="rounds T (default: the preset's)")
    parser.add_argument("--seeds", default="20", help="seeds 0..N-1 (default: %(default)s)")
    parser.add_argument("--algorithms", nargs="+", default=None,
                        help=f"default: all ({', '.join(ALGORITHMS)})")
    parser.add_argument("--record-every", default=None,
                        help="record every N rounds (default: <= 1000 points)")
    add_run_dir_args(parser, "runs/lsd", "<preset>")
    parser.add_argument("--no-planning", dest="planning", action="store_false",
                        help="skip the planning table over every preset")


EXPERIMENT = Experiment(
    prog="python -m hystax.experiments.bandit_lsd", description=__doc__.splitlines()[0],
    add_arguments=add_arguments, validate=lambda args: plan(**vars(args)), run=run_plan,
    summarise=summarise, write=write_outputs)
cli = EXPERIMENT.cli

if __name__ == "__main__":
    sys.exit(cli())
