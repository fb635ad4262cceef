"""The same-session gate: is the candidate slower than the baseline, both measured now?

A baseline measured last week on a machine whose speed moves 10-25% between sessions cannot
tell a 5% slowdown from the machine (docs/measurement.md has the figures). So the gate
re-measures the baseline, an artifact (a model file, with its own ONNX Runtime library and
configuration when they differ), beside the candidate in one process: randomised interleaved
rounds (RMIT, :func:`inferspeed.measure.interleave.measure_interleaved` with
``order="random"``), short enough that both halves of a round see the machine in one state,
and decides on the paired per-round ratios of a chosen statistic (median, p90, p99 or mean;
:func:`inferspeed.analysis.compare.compare`).

Rounds: each side's time (``config.max_time``, default GATE_TIME) is cut into rounds of about
ROUND_TIME each, at least ROUND_CALLS calls of the slower side, between MIN_ROUNDS and
MAX_ROUNDS rounds.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..analysis.compare import PAIRED_MIN_ROUNDS
from ..config import Config
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..analysis.compare import Comparison
    from ..measure.session import Session
    from ..results.result import Result

__all__ = ["GATE_TIME", "GateSide", "GateVerdict", "gate", "gate_rounds", "side_label"]

#: Timed seconds per side unless told: a gate of two small models takes about twice this,
#: plus the sessions' creation and warm-up.
GATE_TIME = 8.0
#: Seconds of one side's share of a round (short rounds pair best on a machine that changes
#: speed every fraction of a second).
ROUND_TIME = 0.08
#: Fewest calls of the slower side in one round's share.
ROUND_CALLS = 5
MIN_ROUNDS = 12
MAX_ROUNDS = 150


@dataclass(frozen=True)
class GateSide:
    """One side of the gate: a model file, its label, and the configuration it runs with
    (its own ``ort_lib`` and session options when they differ from the other side's)."""

    model: str
    config: Config
    label: str


@dataclass(frozen=True)
class GateVerdict:
    """What the gate measured and decided.

    ``failed``: the candidate is significantly slower than the baseline by more than
    ``fail_if_slower`` on the chosen statistic. ``notes``: what the verdict does not say (a
    tail significantly slower while the median gate passed, an estimate of the machine's
    speed change)."""

    baseline: Result
    candidate: Result
    comparison: Comparison
    fail_if_slower: float | None
    rounds: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> bool:
        return self.fail_if_slower is not None and self.comparison.slower_by_more_than(self.fail_if_slower)

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.comparison.baseline,
            "candidate": self.comparison.candidate,
            "statistic": self.comparison.statistic,
            "fail_if_slower": self.fail_if_slower,
            "rounds": self.rounds,
            "failed": self.failed,
            "comparison": self.comparison.to_dict(),
            "notes": list(self.notes),
        }


def gate_rounds(max_time: float, latency_s: float) -> int:
    """Rounds for ``max_time`` timed seconds per side, when a call of the slower side takes
    ``latency_s``: rounds of about ROUND_TIME, at least ROUND_CALLS calls, MIN_ROUNDS to
    MAX_ROUNDS of them; for a model so slow that MIN_ROUNDS calls exceed ``max_time``, as many
    rounds as calls fit (at least PAIRED_MIN_ROUNDS), so the gate keeps to its time."""
    per_round = max(ROUND_TIME, ROUND_CALLS * latency_s)
    rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, math.floor(max_time / per_round))))
    if latency_s > 0 and rounds * latency_s > max_time:
        # A slow model: one call per round already fills the time; fewer rounds, not more time
        # (at least the PAIRED_MIN_ROUNDS the paired interval needs).
        rounds = max(PAIRED_MIN_ROUNDS, math.floor(max_time / latency_s))
    return rounds


def gate(
    baseline: GateSide | str | os.PathLike[str],
    candidate: GateSide | str | os.PathLike[str],
    config: Config | None = None,
    *,
    fail_if_slower: float | None = None,
    statistic: str = "median",
    threshold: float | None = None,
    rounds: int | None = None,
    opened: Callable[[list[Session]], None] | None = None,
) -> GateVerdict:
    """Measure ``baseline`` and ``candidate`` interleaved in randomised rounds and compare them
    on ``statistic``, paired over rounds. Each is a model file (measured with ``config``,
    labelled by its file name) or a :class:`GateSide` (its own configuration: another
    ``ort_lib``, other session options). ``rounds``: None chooses (:func:`gate_rounds`) from
    the baseline config's ``max_time`` (default GATE_TIME) and a short pilot of each side.
    ``opened``: called with the two sessions once they exist (a progress display).

    Raises
    ------
    ConfigError
        A setting the gate cannot use (another scenario, adaptive stopping, processes).
    """
    from ..analysis.compare import DEFAULT_THRESHOLD, compare
    from ..measure.interleave import measure_interleaved
    from ..measure.session import Session

    baseline, candidate = _side(baseline, config), _side(candidate, config)
    if baseline.label == candidate.label:
        baseline = GateSide(baseline.model, baseline.config, f"{baseline.label} (baseline)")
    config = _gate_config(baseline.config)
    sides = [baseline, candidate]
    sessions: list[Session] = []
    try:
        for side in sides:
            sessions.append(Session(side.model, _gate_config(side.config)))
        if opened is not None:
            opened(sessions)
        chosen = rounds or gate_rounds(config.loop_limits[1] or GATE_TIME, _pilot_latency(sessions))
        done = measure_interleaved(sessions, chosen, config, order="random", seed=config.seed)
    finally:
        for s in sessions:
            s.close()
    base, cand = done.results
    c = compare(
        base,
        cand,
        threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
        baseline_label=baseline.label,
        candidate_label=candidate.label,
        statistic=statistic,
    )
    return GateVerdict(base, cand, c, fail_if_slower, chosen, tuple(_notes(c)))


def _side(side: GateSide | str | os.PathLike[str], config: Config | None) -> GateSide:
    if isinstance(side, GateSide):
        return side
    path = os.fspath(side)
    return GateSide(path, config or Config(), os.path.basename(path))


#: Seconds of the pilot that times each side before the rounds are chosen.
PILOT_TIME = 0.05


def _pilot_latency(sessions: list[Session]) -> float:
    """Seconds a call of the slower side takes: a short pilot of each (untimed for the gate)."""
    return max(s.measure(max_time=PILOT_TIME, warmup_time=PILOT_TIME).stats.median_ns for s in sessions) / 1e9


def _gate_config(config: Config) -> Config:
    """``config`` for a gate: single stream, fixed time (GATE_TIME per side unless told)."""
    if config.scenario != "single-stream" or config.processes > 1:
        raise ConfigError("the gate measures the single-stream scenario in one process")
    if config.target_ci is not None:
        raise ConfigError("the gate sets its own rounds: --target-ci does not apply")
    if config.iterations is None and config.max_time is None:
        return config.replace(max_time=GATE_TIME)
    return config


def _notes(c: Comparison) -> list[str]:
    """What the verdict on one statistic leaves out: a tail significantly slower (or faster)
    while the decision was on another statistic."""
    notes = []
    lo, hi = c.ratio_p99_ci
    if c.statistic != "p99" and (lo > 1.0 + c.threshold or hi < 1.0 - c.threshold):
        way = "slower" if lo > 1.0 else "faster"
        notes.append(
            f"the p99 is {way}: ratio {c.ratio_p99:.3f} ({lo:.3f}-{hi:.3f}); the gate decided on the "
            f"{c.statistic} (--statistic p99 gates on the tail)"
        )
    return notes


def side_label(model: str, config: Config, other: Config) -> str:
    """A side's label: the model's file name, and its runtime when the two sides' differ."""
    name = os.path.basename(model)
    if config.ort_lib == other.ort_lib or not config.ort_lib:
        return name
    lib = os.path.basename(config.ort_lib)
    return f"{name} ({lib if lib != os.path.basename(other.ort_lib or '') else config.ort_lib})"
