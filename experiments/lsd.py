"""LSD bandits: the planning table over every preset, and the learners on one preset.

``python -m hystax.experiments.lsd --preset laforgue-main --seeds 20 [--horizon T]
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
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from hystax.agents.bandits.policy import record_interval
from hystax.agents.bandits.lsd import (
    ALGORITHMS,
    NonMonotoneWarning,
    dp_value,
    greedy_schedule,
    lp_relaxation,
    lp_rounding_value,
    run_seeds,
    schedule_value,
)
from hystax.agents.bandits.lsd.planning import DEFAULT_MAX_STATES, joint_state_count
from hystax.envs.lsd import PRESETS, is_monotone
from hystax.envs.lsd import preset as make_preset
from hystax.experiments.common import (
    OneLineParser,
    add_run_dir_args,
    positive_int,
    run_or_exit,
    write_summary,
)

import hystax  # noqa: F401  (before jax: the XLA:CPU workaround)
from hystax.core.errors import require, unknown_name
from hystax.plots import plot_regret, write_regret_csv
from hystax.rundir import create_run_dir
from hystax.core.stats import loglog_slope, mean_and_standard_error

PLANNER_DRAWS = 32
"""Independent draws of the LP-rounding planner behind every mean / best figure."""


def _quiet_rounding(problem, horizon, samples=PLANNER_DRAWS) -> np.ndarray:
    """The LP-rounding planner's values (the non-monotone warning is reported in the tables)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonMonotoneWarning)
        return lp_rounding_value(problem, horizon, samples=samples)


def optimum(problem, horizon: int) -> tuple[float, str]:
    """(OPT over ``horizon`` rounds, "DP"), or (T * LP, "LP bound") when the DP is too large."""
    if joint_state_count(problem) <= DEFAULT_MAX_STATES:
        return dp_value(problem, horizon), "DP"
    return float(lp_relaxation(problem).value) * horizon, "LP bound"


def planning_row(name: str) -> dict:
    """Every planner on preset ``name`` at its horizon (values are expected total rewards)."""
    spec = PRESETS[name]
    problem, horizon = spec.build(), spec.horizon
    start = time.perf_counter()
    opt, source = optimum(problem, horizon)
    rounding = _quiet_rounding(problem, horizon)
    mean, se = mean_and_standard_error(rounding)
    return {"preset": name, "horizon": horizon, "arms": problem.num_arms,
            "monotone": is_monotone(problem, strict=True), "opt": opt, "opt_source": source,
            "spec_opt": spec.opt,
            "greedy": schedule_value(problem, greedy_schedule(problem, horizon)),
            "rounding_mean": mean, "rounding_se": se,
            "rounding_best": float(rounding.max()),
            "lp_bound": float(lp_relaxation(problem).value) * horizon,
            "wall_s": time.perf_counter() - start}


def format_planning(rows: list[dict]) -> str:
    lines = [(f"LSD planning, every preset at its horizon T: expected total reward / OPT (exact, "
              f"by DP). LP rounding: mean ± s.e. over {PLANNER_DRAWS} draws and the best draw."), "",
             ("| preset | K | T | monotone | greedy | LP rounding | best of draws | OPT | LP bound "
              "T·LP | OPT (spec) |"), "|---|---:|---:|:---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        o = r["opt"]
        lines.append(
            f"| {r['preset']} | {r['arms']} | {r['horizon']:,} | {'yes' if r['monotone'] else 'no'}"
            f" | {r['greedy'] / o:.4f} | {r['rounding_mean'] / o:.4f} ± {r['rounding_se'] / o:.4f}"
            f" | {r['rounding_best'] / o:.4f} | {o:,.1f} ({r['opt_source']}) | "
            f"{r['lp_bound'] / o:.4f} | {r['spec_opt']:,.1f} |")
    lines += ["", ("monotone: idle side non-decreasing, play side non-increasing and f(1) >= g(2) "
                   "(what the LP-rounding guarantee needs).")]
    return "\n".join(lines)


def write_planning(out_dir: Path, presets=None, progress: bool = True) -> list[dict]:
    """The planning table over ``presets`` (default: all) -> ``planning.md`` / ``planning.json``
    (a tqdm bar over the presets: the DP and LP take about 25 s in all)."""
    from tqdm.auto import tqdm

    rows = [planning_row(name) for name in tqdm(list(presets or PRESETS), desc="lsd planning",
                                                unit="preset", disable=not progress)]
    out_dir.mkdir(parents=True, exist_ok=True)
    table = format_planning(rows)
    (out_dir / "planning.md").write_text(table + "\n")
    (out_dir / "planning.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table)
    return rows


def validate(preset: str, algorithms=None, seeds=20, horizon=None, record_every=None):
    """Check every argument (nothing is compiled); returns ``(problem, algorithms, seeds,
    horizon, record_every)`` normalised. Raises HystaxError with a one-line message."""
    require(isinstance(preset, str), f"preset must be a name, got {preset!r}")
    problem = make_preset(preset)
    algorithms = list(ALGORITHMS) if algorithms is None else (
        [algorithms] if isinstance(algorithms, str) else list(algorithms))
    require(len(algorithms) > 0, "no algorithms given")
    for name in algorithms:
        if name not in ALGORITHMS:
            raise unknown_name("LSD algorithm", str(name), ALGORITHMS)
    require(len(set(algorithms)) == len(algorithms), f"algorithms repeated: {algorithms}")
    seeds = positive_int("seeds", seeds)
    horizon = PRESETS[preset].horizon if horizon is None else positive_int("horizon", horizon)
    record_every = record_interval(horizon, None if record_every is None
                                   else positive_int("record_every", record_every))
    return problem, algorithms, seeds, horizon, record_every


def run(preset: str = "laforgue-main", algorithms=None, seeds: int = 20, horizon: int | None = None,
        record_every: int | None = None, out_dir: str | Path | None = None,
        name: str | None = None, overwrite: bool = False, planning: bool = True,
        progress: bool = True) -> dict:
    """Run the learners on ``preset`` (and the planning table over every preset unless
    ``planning=False``); write everything to ``out_dir/name`` (default ``runs/lsd/<preset>-<date>-<time>``;
    an existing one only with ``overwrite``) and
    return the learners' summary (what ``rewards.json`` holds)."""
    problem, algorithms, seeds, horizon, record_every = validate(
        preset, algorithms, seeds, horizon, record_every)
    out_dir = create_run_dir(out_dir or "runs/lsd", name, stem=preset, overwrite=overwrite)
    from tqdm.auto import tqdm

    start = time.perf_counter()
    opt, source = optimum(problem, horizon)
    full_info = _quiet_rounding(problem, horizon)
    greedy = schedule_value(problem, greedy_schedule(problem, horizon))
    results = {}
    bar = tqdm(algorithms, desc=f"lsd {preset}", unit="alg", disable=not progress)
    for name in bar:
        bar.set_postfix_str(f"{name} ({seeds} seeds x {horizon:,} rounds)")
        policy = ALGORITHMS[name](PRESETS[preset].block)
        t0 = time.perf_counter()
        results[name] = (policy.name, run_seeds(policy, problem, seeds, horizon, record_every),
                         time.perf_counter() - t0)
    bar.close()
    summary = _summary(preset, horizon, seeds, opt, source, full_info, greedy, results)
    summary["wall_s"] = time.perf_counter() - start
    write_outputs(summary, results, opt / horizon, full_info.mean() / horizon, out_dir)
    if planning:
        write_planning(out_dir, progress=progress)
    return summary


def _ratio_stats(values: np.ndarray, opt: float) -> dict:
    mean, se = mean_and_standard_error(values / opt)
    return {"mean": mean, "se": se, "per_seed": (values / opt).tolist()}


def _summary(preset, horizon, seeds, opt, source, full_info, greedy, results) -> dict:
    rows = []
    for name, (label, out, secs) in results.items():
        alpha = out.regret(full_info.mean() / horizon)
        tail = out.rounds >= 0.1 * horizon
        slope = (loglog_slope(out.rounds[tail], alpha.mean(axis=0)[tail])
                 if np.all(alpha.mean(axis=0)[tail] > 0) else float("nan"))
        rows.append({"algorithm": name, "label": label,
                     "reward_over_opt": _ratio_stats(out.reward[:, -1], opt),
                     "alpha_regret": float(alpha[:, -1].mean()), "alpha_regret_slope": slope,
                     "wall_s": secs})
    rows.sort(key=lambda r: -r["reward_over_opt"]["mean"])
    return {"preset": preset, "horizon": horizon, "seeds": seeds, "opt": opt, "opt_source": source,
            "full_info_rounding": _ratio_stats(full_info, opt), "greedy_over_opt": greedy / opt,
            "rows": rows, "date": datetime.datetime.now().isoformat(timespec="seconds")}


def format_rewards(summary: dict) -> str:
    """The markdown table of total expected reward / OPT per learner."""
    lines = [(f"LSD `{summary['preset']}`, T = {summary['horizon']:,}: total expected reward / OPT "
              f"(OPT = {summary['opt']:,.1f}, {summary['opt_source']}), mean ± s.e. over "
              f"{summary['seeds']} seeds (same rewards noise for every learner)"), "",
             "| learner | reward / OPT | alpha-regret at T | log-log slope | wall s |",
             "|---|---:|---:|---:|---:|"]
    for r in summary["rows"]:
        s = r["reward_over_opt"]
        lines.append(f"| {r['label']} | {s['mean']:.4f} ± {s['se']:.4f} | "
                     f"{r['alpha_regret']:,.1f} | {_slope_cell(r['alpha_regret_slope'])} | "
                     f"{r['wall_s']:.1f} |")
    f = summary["full_info_rounding"]
    lines += [(f"| *LP rounding, full information ({PLANNER_DRAWS} draws)* | {f['mean']:.4f} ± "
               f"{f['se']:.4f} | 0 | | |"),
              f"| *Oracle Greedy, full information* | {summary['greedy_over_opt']:.4f} | | | |",
              "", ("alpha-regret: (V / T) t - reward(t) against the full-information LP-rounding "
                   "planner's mean V; slope fitted on log-log axes over t >= T / 10; — where "
                   "the regret is not positive there, so no slope is defined.")]
    return "\n".join(lines)


def _slope_cell(slope: float) -> str:
    return "—" if not np.isfinite(slope) else f"{slope:.2f}"


def write_outputs(summary: dict, results: dict, opt_rate: float, full_info_rate: float,
                  out_dir: Path) -> None:
    """``rewards.md`` / ``rewards.json``, ``regret.csv`` / ``.png``, ``alpha_regret.csv`` / ``.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    order = [r["algorithm"] for r in summary["rows"]]
    rounds = next(iter(results.values()))[1].rounds
    title = f"LSD {summary['preset']}, T = {summary['horizon']:,}"
    for stem, rate, what in (("regret", opt_rate, "regret against OPT"),
                             ("alpha_regret", full_info_rate,
                              "alpha-regret against the full-information LP rounding")):
        curves = {results[n][0]: results[n][1].regret(rate) for n in order}
        write_regret_csv(curves, out_dir / f"{stem}.csv", rounds=rounds)
        plot_regret(curves, out_dir / f"{stem}.png", rounds=rounds, title=f"{title}: {what}")
    write_summary(out_dir, "rewards", summary, format_rewards(summary))
    print(f"wrote {out_dir}/rewards.md, rewards.json, regret.csv, regret.png, alpha_regret.csv, "
          f"alpha_regret.png ({summary['wall_s']:.0f} s)")


def cli(argv: list[str] | None = None, prog: str = "python -m hystax.experiments.lsd") -> int:
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="laforgue-main",
                        help=f"LSD preset: {', '.join(PRESETS)} (default: %(default)s)")
    parser.add_argument("--horizon", default=None, help="rounds T (default: the preset's)")
    parser.add_argument("--seeds", default="20", help="seeds 0..N-1 (default: %(default)s)")
    parser.add_argument("--algorithms", nargs="+", default=None,
                        help=f"default: all ({', '.join(ALGORITHMS)})")
    parser.add_argument("--record-every", default=None,
                        help="record every N rounds (default: <= 1000 points)")
    add_run_dir_args(parser, "runs/lsd", "<preset>")
    parser.add_argument("--no-planning", action="store_true",
                        help="skip the planning table over every preset")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    return run_or_exit(parser, lambda: run(
        args.preset, args.algorithms, args.seeds, args.horizon, args.record_every, args.out_dir,
        args.name, args.overwrite, planning=not args.no_planning, progress=not args.no_progress))



if __name__ == "__main__":
    sys.exit(cli())
