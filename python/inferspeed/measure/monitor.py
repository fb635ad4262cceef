"""The machine-speed monitor: a fixed reference workload timed between slices of a run.

The core's probe (``_core.speed_probe``: 128 steps of a 64x64 float matrix-vector product,
30-50 µs, on the calling thread, GIL released) does the same arithmetic on every machine and
in every run, so its time moves only when the machine's speed does: a hypervisor sharing the
core, a sibling hyper-thread, the clock frequency. A *reading* is the median of a few probes
(:func:`reading`). :class:`Monitor` takes one before the timed phase and one after each slice
of it (``MONITOR_SLICE_TIME``, 0.25 s: the readings cost well under 1% of the run) and keeps,
per slice, where its samples start and end; :meth:`Monitor.record` is the Result's
``monitor``: the readings over time, each slice's model median, how much the machine's speed
moved during the run, and the states the readings fall into
(:func:`inferspeed.stats.states.speed_states`).

The interleaved rounds of a same-session comparison call :func:`reading` between rounds to
label each round with the machine's state.

Whether the probe's states are the model's states is a question of fact for each machine and
model: ``bench/monitor_states.py`` measures it (docs/measurement.md has this VM's figures).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _core
from ..config import MONITOR_PROBES
from ..stats.states import reading_states

__all__ = ["Monitor", "reading"]


def reading(probes: int = MONITOR_PROBES) -> float:
    """One reading of the machine's speed: the median time, in ns, of ``probes`` runs of the
    core's fixed probe workload on the calling thread (lower: faster machine). Call it between
    timed phases, never inside one (it takes about ``probes`` x 40 µs)."""
    return float(np.median(_core.speed_probe(probes)))


@dataclass
class Monitor:
    """Readings of the machine's speed between slices of one timed phase.

    Attributes
    ----------
    origin_ns : int
        The core's clock when the monitor started: every time below is relative to it.
    times_s, readings_ns : list of float
        When each reading was taken (its end) and its value (:func:`reading`).
    slice_starts_s, slice_ends_s : list of float
        Each slice's first and last clock read.
    slice_bounds : list of int
        Index of each slice's first sample in the phase's samples (one more entry at the end).
    """

    origin_ns: int = field(default_factory=_core.now_ns)
    times_s: list[float] = field(default_factory=list)
    readings_ns: list[float] = field(default_factory=list)
    slice_starts_s: list[float] = field(default_factory=list)
    slice_ends_s: list[float] = field(default_factory=list)
    slice_bounds: list[int] = field(default_factory=lambda: [0])

    def read(self) -> None:
        """Take a reading now."""
        value = reading()
        self.times_s.append((_core.now_ns() - self.origin_ns) / 1e9)
        self.readings_ns.append(value)

    def add_slice(self, start_ns: int, end_ns: int, samples: int) -> None:
        """A slice of the timed phase ran from ``start_ns`` to ``end_ns`` (the core's clock)
        and took ``samples`` samples."""
        self.slice_starts_s.append((start_ns - self.origin_ns) / 1e9)
        self.slice_ends_s.append((end_ns - self.origin_ns) / 1e9)
        self.slice_bounds.append(self.slice_bounds[-1] + samples)

    def elapsed_s(self) -> float:
        return (_core.now_ns() - self.origin_ns) / 1e9

    def record(self, samples_ns: np.ndarray) -> dict[str, Any]:
        """The Result's ``monitor`` (JSON-ready), with each slice's median of ``samples_ns``
        (the phase's samples, in order)."""
        bounds = self.slice_bounds
        medians = [
            float(np.median(samples_ns[a:b])) if b > a else None for a, b in itertools.pairwise(bounds)
        ]
        return {
            "probe_steps": int(_core.PROBE_STEPS),
            "probes_per_reading": MONITOR_PROBES,
            "times_s": [round(t, 4) for t in self.times_s],
            "readings_ns": [round(v, 1) for v in self.readings_ns],
            **reading_states(self.readings_ns),
            "slices": {
                "start_s": [round(t, 4) for t in self.slice_starts_s],
                "end_s": [round(t, 4) for t in self.slice_ends_s],
                "samples": [b - a for a, b in itertools.pairwise(bounds)],
                "median_ns": medians,
            },
        }
