"""Progress for jobs made of a few long parts (benchmarks, experiment stages).

One tqdm bar on stderr, one tick per part, the running part's name beside it:

>>> with PartBar(2, "bench memory", progress=True) as part:
...     layers = part("layer timings", bench_layers, sizes)
...     ppo = part("PPO throughput", bench_ppo_throughput, sizes)

Parts time themselves; the bar is touched only between them. ``progress=False``
(``--no-progress`` on the command line) shows nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class PartBar:
    """A context manager; calling it runs one part: ``part(name, fn, *args) -> fn(*args)``."""

    def __init__(self, parts: int, desc: str, progress: bool = True):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=parts, desc=desc, unit="part", disable=not progress,
                         dynamic_ncols=True, bar_format="{desc}: {n}/{total} parts |{bar}| "
                         "{elapsed}{postfix}")

    def __call__(self, name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self._bar.set_postfix_str(name, refresh=True)
        out = fn(*args, **kwargs)
        self._bar.update(1)
        return out

    def __enter__(self) -> PartBar:
        return self

    def close(self) -> None:
        self._bar.set_postfix_str("", refresh=False)
        self._bar.close()

    def __exit__(self, *exc) -> bool:
        self.close()
        return False
