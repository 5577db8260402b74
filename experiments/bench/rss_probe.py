"""The peak resident memory (RSS) of a stretch of a benchmark, on Linux: VmHWM reset through
``/proc/self/clear_refs`` at the start, minus VmRSS then; plus ``ru_maxrss`` before and after
(a high-water mark over the process, which the same reset clears on Linux)."""

from __future__ import annotations

import gc
import resource
import sys


def _status_kib() -> dict[str, int]:
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":")
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def _maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # Linux reports KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class RssProbe:
    """Peak RSS while a row runs: VmHWM reset through /proc/self/clear_refs, minus VmRSS at the
    start; plus ``ru_maxrss`` before and after (a high-water mark over the process, which the
    same reset clears on Linux)."""

    def __enter__(self):
        gc.collect()
        self.maxrss_before = _maxrss_bytes()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.rss_before = _status_kib().get("VmRSS")
        return self

    def __exit__(self, *exc):
        status = _status_kib()
        self.maxrss_after = _maxrss_bytes()
        self.hwm = status.get("VmHWM")
        return False

    def record(self) -> dict:
        clean = self.reset and self.hwm is not None and self.rss_before is not None
        return {"rss_before_bytes": None if self.rss_before is None else self.rss_before * 1024,
                "rss_peak_bytes": None if self.hwm is None else self.hwm * 1024,
                "rss_peak_growth_bytes": (self.hwm - self.rss_before) * 1024 if clean else None,
                "rss_peak_reset": self.reset,
                "ru_maxrss_before_bytes": self.maxrss_before,
                "ru_maxrss_after_bytes": self.maxrss_after,
                "ru_maxrss_growth_bytes": self.maxrss_after - self.maxrss_before}
