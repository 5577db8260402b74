"""Stopping a run on request: Ctrl-C (SIGINT) or SIGTERM (a cluster's scheduler, ``kill``).

The first signal asks the host loop to finish its chunk, save a checkpoint and stop; the run
then reports ``stop_signal`` and the command exits with ``128 + signal`` (130, 143). A second
signal exits at once, with one line and no traceback (the latest checkpoint is kept).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequests:
    """Context manager: while inside, SIGINT/SIGTERM set ``signum`` instead of killing."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.requested:
            print(f"\nhystax: {signal.Signals(signum).name} again: exiting now; the run resumes "
                  "from its latest checkpoint", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.signum = signum
        how = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\nhystax: stopping after this chunk and saving a checkpoint ({how} again to "
              "exit at once)", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()
        return False


def exit_code_of(result) -> int:
    """A run's exit code: 0 when it ran to its end, else 128 + the signal that stopped it
    (130 for Ctrl-C or a callback, 143 for SIGTERM)."""
    if not result.interrupted:
        return 0
    return 128 + int(result.stop_signal or signal.SIGINT)
