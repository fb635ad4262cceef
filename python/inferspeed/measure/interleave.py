"""Several sessions measured in interleaved rounds, so drift and noise hit them alike.

Each round measures every session once, for its share of the loop limits. The order within a
round is either rotated (A B, B A, ...) or drawn at random each round from a seeded generator
(randomised multiple interleaved trials, RMIT: no session is always measured right after
another, so a periodic disturbance cannot line up with one of them). Each session warms up
fully before its first round and re-warms for a share of its round before the others (the
others evicted its caches). Every pooled result carries the pairing in ``loop["interleave"]``:
an id shared by the sessions of one run, the order of each round and each round's summary
(:func:`inferspeed.results.pool.round_record`) with a reading of the machine-speed monitor
taken as the round started (:func:`inferspeed.measure.monitor.reading`), so a comparison read
back from JSON is paired as the run was, and rounds can be grouped by machine state.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import DEFAULT_ROUNDS, WARMUP_MAX_TIME, Config
from ..errors import BenchmarkInterrupted
from ..results.pool import pool_results, round_record
from ..results.result import Result
from .history import machine_history, parts_of_one_run, remember
from .monitor import reading
from .session import Session

__all__ = [
    "DEFAULT_ROUNDS",
    "REWARM_FRACTION",
    "Interleaved",
    "InterleavedInterrupted",
    "expected_interleaved_seconds",
    "measure_interleaved",
]


#: Share of a round spent re-warming a session after the first round.
REWARM_FRACTION = 0.1

#: Fixed cost of one round of one session beyond its loop (statistics, diagnostics), for the
#: estimate of the total time; measured here at 6-15 ms.
ROUND_OVERHEAD_S = 0.015


@dataclasses.dataclass(frozen=True)
class Interleaved:
    """An interleaved measurement: each session's pooled result (carrying the pairing in
    ``loop["interleave"]``), its per-round results, and the order of each round (indices of
    the sessions, in the order they ran)."""

    results: list[Result]
    per_round: list[list[Result]]
    orders: list[list[int]]


def _shares(config: Config, rounds: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The loop limits of one round, and the re-warm limits of every round after the first."""
    iterations, seconds = config.loop_limits
    share: dict[str, Any] = {
        "iterations": max(1, iterations // rounds) if iterations else None,
        "max_time": seconds / rounds if seconds else None,
    }
    w_iters, w_time = config.warmup_limits
    rewarm: dict[str, Any] = {
        "warmup_iterations": None if w_iters is None else max(0, min(w_iters, 1 + w_iters // rounds)),
        "warmup_time": None,
    }
    if w_time is not None:
        round_time = share["max_time"] if share["max_time"] is not None else w_time
        rewarm["warmup_time"] = min(w_time, max(round_time * REWARM_FRACTION, 1e-4))
    return share, rewarm


def expected_interleaved_seconds(sessions: int, rounds: int, config: Config) -> tuple[float, float] | None:
    """About how long an interleaved measurement takes (timed loops, warm-ups, the per-round
    overhead), as (shortest, longest): the default warm-up runs until steady, between
    DEFAULT_WARMUP_TIME and WARMUP_MAX_TIME per session; None when the loop is bounded by
    iterations only."""
    share, rewarm = _shares(config, rounds)
    if share["max_time"] is None:
        return None
    _, w_time = config.warmup_limits
    adaptive = config.warmup_time is None and config.warmup_iterations is None
    per_session = share["max_time"] * rounds + (rewarm["warmup_time"] or 0.0) * (rounds - 1)
    per_session += ROUND_OVERHEAD_S * rounds
    low = sessions * (per_session + (w_time or 0.0))
    high = sessions * (per_session + (WARMUP_MAX_TIME if adaptive else (w_time or 0.0)))
    return float(low), float(high)


def _orders(count: int, rounds: int, order: str, seed: int) -> list[list[int]]:
    """The order of the sessions in each round: rotated, or a seeded random permutation."""
    if order == "rotate":
        base = list(range(count))
        return [base[r % count :] + base[: r % count] for r in range(rounds)]
    if order != "random":
        raise ValueError(f"order must be 'rotate' or 'random', not {order!r}")
    rng = np.random.default_rng(seed)
    return [[int(i) for i in rng.permutation(count)] for _ in range(rounds)]


def measure_interleaved(
    sessions: Sequence[Session],
    rounds: int,
    config: Config,
    *,
    order: str = "rotate",
    seed: int = 0,
) -> Interleaved:
    """Measure each session in ``rounds`` rounds, each round a share of ``config``'s loop
    limits, in the ``order`` ("rotate" or "random", seeded by ``seed``) of the module's
    docstring. Short rounds pair better: every session of a round sees the machine in one
    state."""
    share, rewarm = _shares(config, rounds)
    orders = _orders(len(sessions), rounds, order, seed)
    runs: list[list[Result]] = [[] for _ in sessions]
    probes: list[float] = []
    pairing = {"id": uuid.uuid4().hex, "order": order, "seed": seed, "orders": orders}
    try:
        with parts_of_one_run():
            for r, round_order in enumerate(orders):
                probes.append(reading())  # the machine's speed as the round starts: its state's label
                for i in round_order:
                    runs[i].append(sessions[i].measure(**share, **(rewarm if r else {})))
    except BenchmarkInterrupted as exc:
        runs[i].append(exc.result)
        partial = [
            dataclasses.replace(_pooled_rounds(parts, {**pairing, "session": k}, probes), interrupted=True)
            for k, parts in enumerate(runs)
            if parts
        ]
        raise InterleavedInterrupted(partial, len(probes), rounds) from None
    pooled = [_pooled_rounds(parts, {**pairing, "session": i}, probes) for i, parts in enumerate(runs)]
    known = machine_history()
    for result in pooled:
        remember(known, result, "interleaved")
    return Interleaved(pooled, runs, orders)


class InterleavedInterrupted(BenchmarkInterrupted):
    """Ctrl-C during an interleaved measurement: ``results`` holds each session measured so
    far, pooled (``interrupted``; the last round is partial), ``result`` the first of them."""

    def __init__(self, results: list[Result], round_reached: int, rounds: int) -> None:
        super().__init__(results[0] if results else None)
        self.results = results
        self.round_reached = round_reached
        self.rounds = rounds


def _pooled_rounds(parts: Sequence[Result], pairing: dict[str, Any], probes: Sequence[float]) -> Result:
    """One session's rounds pooled; ``loop.rounds`` says how many, ``loop.interleave`` holds the
    pairing and each round's record, with the monitor's reading as the round started
    (``probe_ns``)."""
    pooled = pool_results(parts)
    records = [{**round_record(p), "probe_ns": probe} for p, probe in zip(parts, probes, strict=False)]
    interleave = {**pairing, "rounds": records}
    return dataclasses.replace(pooled, loop={**pooled.loop, "rounds": len(parts), "interleave": interleave})
