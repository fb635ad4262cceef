"""Statistics of latency samples: small pure functions over int64 nanosecond arrays."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["PERCENTILES", "Stats", "summarize"]

#: Percentiles every result reports, and the key each has in JSON (``p999_ns`` is p99.9).
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("median_ns", 50.0),
    ("p90_ns", 90.0),
    ("p95_ns", 95.0),
    ("p99_ns", 99.0),
    ("p999_ns", 99.9),
)


@dataclass(frozen=True)
class Stats:
    """Summary of one set of latency samples, all times in nanoseconds.

    Percentiles use numpy's default (linear interpolation between order statistics).
    ``std_ns`` is the sample standard deviation (ddof=1; 0 for one sample).
    ``throughput_per_s`` is inferences per second of one stream: count / sum of latencies
    (None when every sample is 0).
    ``timer_overhead_ns`` is what one empty timed region costs on this machine; it is
    included in every sample and not subtracted.
    """

    count: int
    min_ns: float
    max_ns: float
    mean_ns: float
    std_ns: float
    median_ns: float
    p90_ns: float
    p95_ns: float
    p99_ns: float
    p999_ns: float
    throughput_per_s: float | None
    timer_overhead_ns: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(samples_ns: np.ndarray, timer_overhead_ns: float = 0.0) -> Stats:
    """Stats of ``samples_ns`` (a non-empty 1-D array of latencies in nanoseconds)."""
    x = np.asarray(samples_ns)
    if x.ndim != 1 or x.size == 0:
        raise ValueError("samples must be a non-empty 1-D array")
    xf = x.astype(np.float64)
    qs = np.percentile(xf, [q for _, q in PERCENTILES])
    total = float(xf.sum())
    return Stats(
        count=int(x.size),
        min_ns=float(xf.min()),
        max_ns=float(xf.max()),
        mean_ns=float(xf.mean()),
        std_ns=float(xf.std(ddof=1)) if x.size > 1 else 0.0,
        median_ns=float(qs[0]),
        p90_ns=float(qs[1]),
        p95_ns=float(qs[2]),
        p99_ns=float(qs[3]),
        p999_ns=float(qs[4]),
        throughput_per_s=x.size / total * 1e9 if total > 0 else None,
        timer_overhead_ns=float(timer_overhead_ns),
    )
