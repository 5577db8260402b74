"""MMER of memory models on POPGym tasks: one run per (task, model), seeds vmapped.

``python -m hystax.experiments.popgym_mmer [--tasks ...] [--models ...] [--seeds 3]
[--total-timesteps 2e5] [--paper] [--out-dir runs/popgym_mmer]`` (``--paper`` without
``--total-timesteps`` runs the paper's 15M steps)

Each run is ``hystax.train("ppo", "popgym/<task>", memory=<model>)`` from the
``ppo.POPGYM_CPU`` config (``--paper``: ``ppo.POPGYM_PAPER``, GPU-sized), so every run
directory has its metrics CSV, checkpoints and ``returns.png``. Afterwards:

* ``mmer.csv``: task, model, seed, MMER (POPGym's max-mean episodic return per seed);
* ``mmer.md``: mean ± standard error over seeds per task and model (the README table);
* ``<task>/returns.png``: the models' return curves overlaid (mean, 95% bootstrap CI).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from pathlib import Path

import hystax
from hystax.agents import ppo
from hystax.errors import HystaxError
from hystax.plots import plot_run_dirs
from hystax.stats import max_mean_episodic_return, mean_and_standard_error

TASKS = ("RepeatPreviousEasy", "RepeatFirstEasy", "CountRecallEasy", "AutoencodeEasy",
         "HigherLowerEasy", "ConcentrationEasy")
MODELS = ("s5", "gru", "lstm", "mlp")


def run(tasks=TASKS, models=MODELS, seeds: int = 3, total_timesteps: int | None = 200_000,
        paper: bool = False, out_dir: str | Path = "runs/popgym_mmer",
        progress: bool = True) -> dict:
    """Train every (task, model), write the MMER CSV/markdown and overlays; return MMERs.

    ``total_timesteps=None`` keeps the config's own budget (1M CPU, 15M paper). Every task
    and model is validated before the first run starts.
    """
    out_dir = Path(out_dir)
    base = ppo.POPGYM_PAPER if paper else ppo.POPGYM_CPU
    if total_timesteps is not None:
        base = dataclasses.replace(base, total_timesteps=int(total_timesteps))
    for task in tasks:
        hystax.make(f"popgym/{task}")  # unknown task: HystaxError with suggestions, now
    for model in models:
        dataclasses.replace(base, memory=model)  # unknown model: HystaxError, now
    scores: dict[str, dict[str, list[float]]] = {}
    for task in tasks:
        run_dirs = []
        for model in models:
            name = f"{task}-{model}"
            config = dataclasses.replace(base, memory=model)
            result = hystax.train("ppo", f"popgym/{task}", seeds=seeds, config=config,
                                  name=name, out_dir=out_dir / task, progress=progress)
            scores.setdefault(task, {})[model] = \
                max_mean_episodic_return(result.metrics["episode_return"]).tolist()
            run_dirs.append(result.run_dir)
        plot_run_dirs(run_dirs, out_dir=out_dir / task)
    write_tables(scores, base, seeds, out_dir)
    return scores


def write_tables(scores: dict, config: ppo.Config, seeds: int, out_dir: Path) -> None:
    """``mmer.csv`` (per seed), ``mmer.md`` (mean ± s.e.) and ``mmer.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "mmer.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["task", "model", "seed", "mmer"])
        for task, by_model in scores.items():
            for model, values in by_model.items():
                writer.writerows([task, model, s, f"{v:.6f}"] for s, v in enumerate(values))
    models = list(next(iter(scores.values())))
    lines = [f"MMER, mean ± s.e. over {seeds} seeds, {config.total_timesteps:,} env steps per "
             f"seed ({config.num_envs} envs × {config.num_steps} steps, {config.d_model}-wide "
             f"{config.memory_layers}-layer models)", "",
             "| task | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for task, by_model in scores.items():
        cells = []
        for model in models:
            mean, se = mean_and_standard_error(by_model[model])
            cells.append(f"{mean:.3f} ± {se:.3f}")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    (out_dir / "mmer.md").write_text("\n".join(lines) + "\n")
    (out_dir / "mmer.json").write_text(json.dumps(
        {"scores": scores, "config": dataclasses.asdict(config), "seeds": seeds}, indent=2))
    print("\n".join(lines))


def _cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hystax.experiments.popgym_mmer",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS))
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--total-timesteps", type=float, default=None,
                        help="env steps per seed (default: 2e5, or the paper's 15M with --paper)")
    parser.add_argument("--paper", action="store_true", help="the paper's GPU-sized config")
    parser.add_argument("--out-dir", default="runs/popgym_mmer")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        return _main(args)
    except HystaxError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")


def _main(args) -> int:
    steps = args.total_timesteps
    if steps is None and not args.paper:
        steps = 200_000
    run(args.tasks, args.models, args.seeds, None if steps is None else int(steps), args.paper,
        args.out_dir, not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(_cli())
