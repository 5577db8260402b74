"""A run's orbax checkpoints: ``runs/<name>/checkpoints/<update>/``, the latest two kept.

``restore_latest`` resumes from the newest checkpoint that reads back: an unreadable one (a
run killed while writing it, a damaged disk) is moved aside to ``runs/<name>/unreadable/``,
never deleted, and the one before it is used, with a one-line warning.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

from hystax.core.errors import HystaxError
from hystax.rundir import CHECKPOINT_DIR

UNREADABLE_DIR = "unreadable"


def _ocp():
    import orbax.checkpoint as ocp

    return ocp


def manager(run_dir: Path):
    """An orbax ``CheckpointManager`` over ``run_dir/checkpoints`` (keeps the latest two)."""
    ocp = _ocp()
    options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True)
    return ocp.CheckpointManager((Path(run_dir) / CHECKPOINT_DIR).absolute(), options=options)


def save(checkpoints, step: int, state: Any) -> None:
    """Write ``state`` as checkpoint ``step`` (asynchronously; ``close`` waits for it)."""
    checkpoints.save(step, args=_ocp().args.StandardSave(state))


def close(checkpoints) -> None:
    """Wait for pending writes, then release the manager."""
    checkpoints.wait_until_finished()
    checkpoints.close()


def has_checkpoint(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds at least one checkpoint step folder."""
    return any(p.name.isdigit() for p in (Path(run_dir) / CHECKPOINT_DIR).glob("[0-9]*"))


def restore_latest(run_dir: Path, template: Any) -> tuple[Any, Any, int]:
    """``(manager, state, step)`` from the newest readable checkpoint of ``run_dir``, shaped
    like ``template``; ``(manager, template, 0)`` when there is none. Unreadable ones are moved
    to ``run_dir/unreadable/<step>``; HystaxError when none of them reads back."""
    run_dir = Path(run_dir)
    with _quiet_orbax():
        checkpoints = manager(run_dir)
        steps = sorted(checkpoints.all_steps(), reverse=True)
    if not steps:
        return checkpoints, template, 0
    for i, step in enumerate(steps):
        try:
            with _quiet_orbax():
                state = checkpoints.restore(step, args=_ocp().args.StandardRestore(template))
        except Exception as err:  # orbax raises many types for unreadable files
            reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            later = steps[i + 1] if i + 1 < len(steps) else None
            _move_aside(run_dir, step)
            if later is None:
                close(checkpoints)
                raise HystaxError(f"no checkpoint in {run_dir} reads back (the last, {step}: "
                                  f"{reason}); it was moved to {run_dir / UNREADABLE_DIR}") from None
            print(f"hystax: warning: checkpoint {step} in {run_dir} is unreadable ({reason}); "
                  f"moved it to {UNREADABLE_DIR}/ and resuming from checkpoint {later}",
                  file=sys.stderr, flush=True)
            continue
        if i:  # the manager listed the steps moved aside: open it afresh
            close(checkpoints)
            with _quiet_orbax():
                checkpoints = manager(run_dir)
        return checkpoints, state, int(step)
    raise AssertionError("unreachable")


def read(run_dir: Path, template: Any, step: int | None = None) -> tuple[Any, int]:
    """``(state, step)``: checkpoint ``step`` of ``run_dir`` (None: the newest), shaped like
    ``template`` (arrays or ``jax.ShapeDtypeStruct``s). Read-only: nothing in the folder is
    moved or written. HystaxError when there is no such checkpoint or it does not read."""
    run_dir = Path(run_dir)
    folder = (run_dir / CHECKPOINT_DIR).absolute()
    with _quiet_orbax():
        checkpoints = _ocp().CheckpointManager(
            folder, options=_ocp().CheckpointManagerOptions(read_only=True))
        steps = sorted(checkpoints.all_steps()) if folder.is_dir() else []
    try:
        if not steps:
            raise HystaxError(f"{run_dir} has no checkpoint yet (nothing to load)")
        if step is None:
            step = steps[-1]
        if step not in steps:
            raise HystaxError(f"{run_dir} has no checkpoint at update {step}; it has "
                              f"{', '.join(map(str, steps))}")
        try:
            with _quiet_orbax():
                state = checkpoints.restore(step, args=_ocp().args.StandardRestore(template))
        except Exception as err:  # orbax raises many types for unreadable files
            raise HystaxError(f"checkpoint {step} of {run_dir} does not read back "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
                              ) from None
    finally:
        checkpoints.close()
    return state, int(step)


@contextlib.contextmanager
def _quiet_orbax():
    """Orbax logs an unreadable file through absl before raising; the warning says it once."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _move_aside(run_dir: Path, step: int) -> None:
    source = run_dir / CHECKPOINT_DIR / str(step)
    target_dir = run_dir / UNREADABLE_DIR
    target_dir.mkdir(exist_ok=True)
    target, n = target_dir / str(step), 1
    while target.exists():  # never overwrite an earlier unreadable copy
        target, n = target_dir / f"{step}-{n}", n + 1
    source.rename(target)
