"""Several sessions measured in interleaved rounds, so drift and noise hit them alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ..config import DEFAULT_ROUNDS, Config
from ..results.pool import pool_results
from ..results.result import Result
from .session import Session

__all__ = ["DEFAULT_ROUNDS", "REWARM_FRACTION", "measure_interleaved"]


#: Share of a round spent re-warming a session after the first round.
REWARM_FRACTION = 0.1


def measure_interleaved(
    sessions: Sequence[Session], rounds: int, config: Config
) -> tuple[list[Result], list[list[Result]]]:
    """Measure each session in ``rounds`` rounds (A B, B A, ...: who goes first rotates), each
    round a share of ``config``'s loop limits: drift and noise hit every session alike.

    Each session warms up fully before its first round; in later rounds it re-warms for
    REWARM_FRACTION of its round (the others evicted its caches), at most the configured
    warm-up. Short rounds pair better: both halves of a round see the machine in one state.
    Returns each session's pooled result and its per-round results."""
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
    runs: list[list[Result]] = [[] for _ in sessions]
    for r in range(rounds):
        order = list(range(len(sessions)))
        order = order[r % len(order) :] + order[: r % len(order)]
        for i in order:
            runs[i].append(sessions[i].measure(**share, **(rewarm if r else {})))
    return [_pooled_rounds(parts) for parts in runs], runs


def _pooled_rounds(parts: Sequence[Result]) -> Result:
    """One session's rounds pooled; ``loop.rounds`` says how many."""
    pooled = pool_results(parts)
    return dataclasses.replace(pooled, loop={**pooled.loop, "rounds": len(parts)})
