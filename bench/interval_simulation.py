"""Is the "another run" interval of the median calibrated? A simulation with a known truth.

Simulated machines run a model of 1 ms a call (lognormal noise of 3% a call); each run is a
new process, whose level is offset a little (the session's own offset, SD ``session``):

- ``calm``: one speed state;
- ``switching``: two speed states 25% apart, each held for an exponential time (mean
  ``dwell`` seconds: 3 s in the fast state, 1 s in the slow one, as this VM's vCPUs do);
- ``fast``: the same states held 0.6 s and 0.2 s;
- ``even``: the same states held 1.5 s each: the machine is slow half of the time, so the
  median of a run is bimodal (it lands in whichever state held the run longer): the hard case;
- ``drifting``: one state whose level walks (2% per hour).

For each machine, run length (2 s, 8 s, 30 s) and history case, ``--trials`` trials each make
a run, compute its printed interval with inferspeed's own code
(:func:`inferspeed.stats.timeseries.session_interval`, the history read by
:func:`~inferspeed.stats.timeseries.between_sessions`), then make *another run* of the same
length right after it (the speed state carries on; a new session offset) and check whether the
other run's median falls inside. History cases: ``none``; ``few``: 2 earlier runs of this
measurement and length, 5 minutes apart (one pair: a machine's second and third run);
``matching``: 20 such runs over the last two hours; ``mismatched``: 20 earlier runs of another
length (2 s for a run of 8 or 30 s, 30 s for a run of 2 s).

The oracle is the narrowest interval of one fixed relative width that holds 95% of the other
runs: the 95th percentile of |log(other / this)| over the trials. Printed per case: coverage,
the median half-width, and its ratio to the oracle's (1.00: as narrow as the truth allows).

    python bench/interval_simulation.py                     # every case, 400 trials each
    python bench/interval_simulation.py --trials 100 --machines calm,switching --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inferspeed.stats.summary import median_ci
from inferspeed.stats.timeseries import between_sessions, run_variance, session_interval

#: Seconds a call of the simulated model takes.
CALL_S = 1e-3
NOISE = 0.03
GAP = math.log(1.25)
KEY = "model"


@dataclass(frozen=True)
class Machine:
    name: str
    states: bool = False
    dwell: tuple[float, float] = (3.0, 1.0)
    session: float = 0.004
    drift_per_hour: float = 0.0


MACHINES = {
    "calm": Machine("calm"),
    "switching": Machine("switching", states=True),
    "fast": Machine("fast", states=True, dwell=(0.6, 0.2)),
    "even": Machine("even", states=True, dwell=(1.5, 1.5)),
    "drifting": Machine("drifting", drift_per_hour=0.02),
}
LENGTHS = (2.0, 8.0, 30.0)
HISTORIES = ("none", "few", "matching", "mismatched")


class Timeline:
    """One simulated machine over time: its state (carried between runs made back to back)
    and its level (a random walk for a drifting machine)."""

    def __init__(self, machine: Machine, rng: np.random.Generator) -> None:
        self.m, self.rng = machine, rng
        self.state = self._draw() if machine.states else 0
        self.level = 0.0
        self.clock = 0.0

    def wait(self, seconds: float) -> None:
        """Time passes with no run: the level walks, the state forgets past a few dwells."""
        if self.m.drift_per_hour:
            self.level += self.rng.normal(0.0, self.m.drift_per_hour * math.sqrt(seconds / 3600))
        if self.m.states and seconds > 3 * sum(self.m.dwell):
            self.state = self._draw()
        elif self.m.states:
            self._advance(seconds)
        self.clock += seconds

    def _draw(self) -> int:
        """A state drawn as often as the machine holds it."""
        return int(self.rng.random() < self.m.dwell[1] / sum(self.m.dwell))

    def _advance(self, seconds: float) -> list[tuple[float, int]]:
        """The state's changes over ``seconds``: (time from now, state) from now on."""
        changes = [(0.0, self.state)]
        t = 0.0
        while True:
            t += float(self.rng.exponential(self.m.dwell[self.state]))
            if t >= seconds:
                break
            self.state = 1 - self.state
            changes.append((t, self.state))
        return changes

    def run(self, seconds: float) -> np.ndarray:
        """The per-call samples (ns) of one run of ``seconds``, in a new process."""
        n = int(seconds / CALL_S)
        log = np.full(n, math.log(CALL_S * 1e9) + self.level + self.rng.normal(0.0, self.m.session))
        if self.m.states:
            changes = self._advance(seconds)
            at = np.searchsorted([t for t, _ in changes], np.arange(n) * CALL_S, side="right") - 1
            log += GAP * np.array([s for _, s in changes])[at]
        self.clock += seconds
        return np.exp(log + self.rng.normal(0.0, NOISE, n))


def _entry(samples: np.ndarray, when: float) -> dict[str, Any]:
    median = float(np.median(samples))
    seen = run_variance(samples, median, median_ci(samples))
    return {
        "time": when,
        "key": KEY,
        "median_ns": median,
        "log_var_run": seen["v"],
        "span_s": seen["span_s"],
        "switching_time_s": seen["switching_time_s"],
        "sd_windows": seen["sd_windows"],
    }


def _history(line: Timeline, case: str, length: float) -> list[dict[str, Any]]:
    if case == "none":
        return []
    other = length if case in ("few", "matching") else (30.0 if length < 8 else 2.0)
    entries = []
    for _ in range(2 if case == "few" else 20):
        line.wait(300.0)
        entries.append(_entry(line.run(other), line.clock))
    line.wait(600.0)
    return entries


def trial(machine: Machine, length: float, case: str, rng: np.random.Generator) -> tuple[float, float, float]:
    """(log(other / this), the printed interval's log half-widths below and above)."""
    line = Timeline(machine, rng)
    entries = _history(line, case, length)
    between = between_sessions(entries, KEY, now=line.clock)
    this = line.run(length)
    median = float(np.median(this))
    got = session_interval(this, median, median_ci(this), between)
    lo, hi = got["interval_ns"]
    line.wait(2.0)  # a new process starts
    other = float(np.median(line.run(length)))
    return math.log(other / median), math.log(median / lo), math.log(hi / median)


def case_figures(machine: Machine, length: float, case: str, trials: int, seed: int) -> dict[str, Any]:
    """Coverage, median half-width and the oracle's half-width of one case."""
    rng = np.random.default_rng(seed)
    rows = np.array([trial(machine, length, case, rng) for _ in range(trials)])
    d, below, above = rows[:, 0], rows[:, 1], rows[:, 2]
    covered = float(np.mean((d >= -below) & (d <= above)))
    half = float(np.median((below + above) / 2))
    oracle = float(np.quantile(np.abs(d), 0.95))
    return {
        "machine": machine.name,
        "length_s": length,
        "history": case,
        "trials": trials,
        "coverage": round(covered, 4),
        "halfwidth": round(math.expm1(half), 5),
        "oracle_halfwidth": round(math.expm1(oracle), 5),
        "width_ratio": round(half / oracle, 3) if oracle > 0 else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--machines", default=",".join(MACHINES))
    ap.add_argument("--lengths", default=",".join(f"{x:g}" for x in LENGTHS))
    ap.add_argument("--histories", default=",".join(HISTORIES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    rows = []
    start = time.perf_counter()
    head = f"{'machine':>10} {'run':>5} {'history':>10} {'coverage':>9} {'half-width':>11} {'oracle':>8}"
    print(head, "ratio")
    for name in args.machines.split(","):
        for length in (float(x) for x in args.lengths.split(",")):
            for case in args.histories.split(","):
                row = case_figures(MACHINES[name], length, case, args.trials, args.seed)
                rows.append(row)
                print(
                    f"{name:>10} {length:>4g}s {case:>10} {row['coverage']:>9.1%} {row['halfwidth']:>+10.2%} "
                    f"{row['oracle_halfwidth']:>+7.2%} {row['width_ratio']:>6.2f}",
                    flush=True,
                )
    print(f"({time.perf_counter() - start:.0f} s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
