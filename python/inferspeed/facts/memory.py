"""Resident memory of this process, from /proc/self/status (Linux): the current resident set
(VmRSS) and its peak (VmHWM), which writing "5" to /proc/self/clear_refs resets to the current
size, so a peak can be taken over one stretch of work (session creation, a timed run).

Elsewhere, or where /proc cannot be read or the peak cannot be reset, the figures are None
(and ``peak_reset`` False: the peak then covers the process's whole life)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MemoryProbe", "read_memory"]

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def read_memory() -> tuple[int | None, int | None]:
    """(resident bytes, peak resident bytes) of this process, or (None, None)."""
    rss = peak = None
    try:
        with open(_STATUS, encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None, None
    return rss, peak


def _reset_peak() -> bool:
    try:
        with open(_CLEAR_REFS, "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


@dataclass
class MemoryProbe:
    """Peak resident memory over a stretch of work: ``start()`` resets the peak and records the
    resident size; ``stop()`` returns (peak, resident) bytes at the end."""

    before: int | None = None
    peak_reset: bool = False

    def start(self) -> MemoryProbe:
        self.peak_reset = _reset_peak()
        self.before, _ = read_memory()
        return self

    def stop(self) -> tuple[int | None, int | None]:
        rss, peak = read_memory()
        return peak, rss
