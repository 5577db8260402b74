"""Continual world models on a task suite: the offline forgetting benchmark and online MBRL.

``hystax continual --suite pendulum-gravity --method hnet [--method finetune ...] --seeds 3
[--mode online|offline] [--out-dir runs/continual] [--name NAME] [--overwrite] [--resume]``
(the run goes to ``<out-dir>/<name>``, default ``<suite>[-offline]-<date>-<time>``)
(or ``python -m hystax.experiments.continual ...``)

- ``--mode offline``: random-action data per task (``--points`` transitions), each method
  trained on the tasks in sequence (``--steps`` gradient steps per task); writes the one-step
  prediction-error matrix E[t, j] (task t, model after task j) per method, "during" (E[t, t])
  and "after" (E[t, T-1]) errors and forgetting (after - during), ``errors.csv``,
  ``summary.md`` / ``summary.json`` and ``errors.png`` (heat maps).
  (:mod:`hystax.experiments.continual_offline`)
- ``--mode online`` (default): continual MBRL (:mod:`hystax.agents.mbrl`: random warm-up,
  CEM-MPC on the model, refits on the current task only), one ``hystax train mbrl`` run per
  method in ``runs/<method>`` (seeds vmapped, checkpoints, ``--resume`` continues an
  interrupted set: finished runs are read back, the stopped one resumes exactly);
  writes the reward matrix R[t, j] and the prediction-error matrix (means over seeds,
  ``rewards.csv`` / ``errors.csv``), forgetting ratios (normalised by the random policy),
  forward transfer against a from-scratch single-task run (``--single``),
  ``summary.md`` / ``summary.json``, ``rewards.png`` (heat maps of R) and ``curves.png``
  (MPC returns while learning, per task). (:mod:`hystax.experiments.continual_online`)
"""

from __future__ import annotations

import sys

from hystax.agents.mbrl import ContinualConfig
from hystax.core.errors import require
from hystax.envs.continual_suites import suite_names
from hystax.experiments import continual_offline, continual_online
from hystax.experiments.continual_matrices import DEFAULT_METHODS
from hystax.experiments.experiment import (
    Experiment,
    add_run_dir_args,
    finite_at_least,
    positive_int,
)


def add_arguments(parser) -> None:
    """``--suite``, ``--method`` (repeatable), ``--mode``, ``--seeds``, ``--beta``,
    ``--single``, ``--mpc-steps``, ``--points``, ``--steps``, the run folder and
    ``--resume``."""
    parser.add_argument("--suite", default="pendulum-gravity",
                        help=f"task suite: {', '.join(suite_names())} (default: %(default)s)")
    parser.add_argument("--method", action="append", default=None,
                        help=f"repeatable (default: {', '.join(DEFAULT_METHODS)})")
    parser.add_argument("--mode", choices=["online", "offline"], default="online")
    parser.add_argument("--seeds", default="3")
    parser.add_argument("--beta", default=None,
                        help="the hypernetworks' regulariser weight (default 0.05)")
    parser.add_argument("--single", action="store_true",
                        help="online: also learn every task from scratch (forward transfer)")
    parser.add_argument("--mpc-steps", default=None, help="online: MPC steps per task")
    parser.add_argument("--points", default="2000", help="offline: random transitions per task")
    parser.add_argument("--steps", default="2000", help="offline: gradient steps per task")
    add_run_dir_args(parser, "runs/continual", "<suite>[-offline]")
    parser.add_argument("--resume", action="store_true",
                        help="online: continue the interrupted set named by --name")


def validate(args):
    """The mode's plan (:func:`continual_offline.plan` or :func:`continual_online.plan`)."""
    options = {}
    if args.beta is not None:
        beta = finite_at_least("beta", args.beta)
        options = {"hnet": {"beta": beta}, "hnet-chunked": {"beta": beta}}
    if args.mode == "offline":
        require(not args.resume, "--resume is for --mode online (an offline set is not saved "
                "along the way)")
        return continual_offline.plan(args.suite, args.method, args.seeds, args.points,
                                      args.steps, args.out_dir, options,
                                      progress=args.progress, name=args.name,
                                      overwrite=args.overwrite)
    config = ContinualConfig() if args.mpc_steps is None else ContinualConfig(
        mpc_steps=positive_int("mpc_steps", args.mpc_steps))
    return continual_online.plan(args.suite, args.method, args.seeds, config, args.single,
                                 args.out_dir, options, progress=args.progress,
                                 name=args.name, overwrite=args.overwrite, resume=args.resume)


def _mode(plan):
    return continual_offline if isinstance(plan, continual_offline.Plan) else continual_online


EXPERIMENT = Experiment(
    prog="python -m hystax.experiments.continual", description=__doc__.splitlines()[0],
    add_arguments=add_arguments, validate=validate,
    run=lambda plan: _mode(plan).run_plan(plan),
    summarise=lambda plan, results: _mode(plan).summarise(plan, results),
    write=lambda plan, results, summary: _mode(plan).write_outputs(plan, results, summary))
cli = EXPERIMENT.cli

if __name__ == "__main__":
    sys.exit(cli())
