"""Sets of runs under the runner (one ``hystax train`` run per model or method, in one folder):
stopped as a whole when one run is interrupted, and resumed run by run."""

from __future__ import annotations

import shutil
from pathlib import Path

from hystax.core.errors import require
from hystax.experiments.experiment import SetInterrupted
from hystax.stopping import exit_code_of


def stop_set_if_interrupted(result, resume_hint: str):
    """Raise :class:`SetInterrupted` if ``result`` (a ``RunResult``) was stopped before its end,
    so that a set of runs does not go on to the next one; returns ``result`` otherwise."""
    if result.interrupted:
        raise SetInterrupted(f"interrupted; {result.run_dir} is saved: continue with {resume_hint}",
                             exit_code_of(result))
    return result


def train_or_resume(parent: Path, name: str, agent: str, env: str, *, seeds: int, config,
                    progress: bool, resume_hint: str):
    """One run of an experiment set under the runner, in ``parent/name``: trained; or, when an
    earlier call of the set left it there, checked to have the same settings and resumed from
    its last checkpoint (a finished run is only read back). Returns the ``RunResult``; an
    interrupted run stops the set (:class:`SetInterrupted`)."""
    from hystax import checkpoints, rundir
    from hystax.runner import resolve, saved_config, train

    run_dir = Path(parent) / name
    if run_dir.exists() and checkpoints.has_checkpoint(run_dir):
        saved = rundir.read_config(run_dir)
        same = saved.get("agent") == agent and saved.get("env") == env and saved.get(
            "seeds") == list(range(seeds)) and resolve(  # the config that run resumes with
            agent, env, config=saved_config(agent, saved.get("config", {})), check=False
        ).config == config
        require(same,
                f"{run_dir} was run with other settings; use another --name or --out-dir")
        result = train(resume=run_dir, progress=progress)
    else:
        if run_dir.exists():  # stopped before its first checkpoint: nothing in it to keep
            shutil.rmtree(run_dir)
        result = train(agent, env, seeds=seeds, config=config, name=name, out_dir=parent,
                       progress=progress)
    return stop_set_if_interrupted(result, resume_hint)


def set_dir(out_dir, name: str | None, stem: str, *, overwrite: bool, resume: bool) -> Path:
    """An experiment set's folder: a new one (:func:`hystax.rundir.create_run_dir`), or with
    ``resume`` the existing ``out_dir/name`` whose runs :func:`train_or_resume` continues."""
    from hystax.rundir import create_run_dir, make_writable_dir

    if not resume:
        return create_run_dir(out_dir, name, stem=stem, overwrite=overwrite)
    require(name is not None and not overwrite, "--resume continues the set named by --name "
            "(and never overwrites it)")
    path = Path(out_dir) / name
    require(path.is_dir(), f"{path} does not exist: nothing to resume")
    return make_writable_dir(path)
