"""Machine states: levels that a series of readings (the speed monitor's probe times, or a
model's latency over windows of a run) falls into.

A shared VM does not drift smoothly: its speed jumps between a few levels and stays at each
for 0.1 s to a few seconds. :func:`speed_states` finds those levels in a series of readings,
:func:`state_changes` where the series moves from one to another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["STATE_GAP", "reading_states", "speed_states", "state_changes"]

#: Two readings belong to different states when, in sorted order, a gap of more than this
#: (relative) separates them: the probe's readings of one state scatter by 1-2% here, its
#: states on the development VM lie 15-60% apart.
STATE_GAP = 0.06


def speed_states(
    values: Sequence[float] | np.ndarray, gap: float = STATE_GAP
) -> tuple[list[int], list[float]]:
    """The state of each value and each state's level.

    The values are sorted and cut wherever one is more than ``gap`` (relative) above the one
    before it; each group is a state, numbered from the lowest (fastest), its level its median.

    Returns
    -------
    (labels, levels)
        ``labels[i]``: the state of ``values[i]``; ``levels[k]``: the median of state k.
        Both empty for no values.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return [], []
    order = np.argsort(x, kind="stable")
    xs = x[order]
    cuts = np.flatnonzero(xs[1:] > xs[:-1] * (1.0 + gap)) + 1
    group_of_sorted = np.zeros(x.size, dtype=np.int64)
    for c in cuts:
        group_of_sorted[c:] += 1
    labels = np.empty(x.size, dtype=np.int64)
    labels[order] = group_of_sorted
    levels = [float(np.median(g)) for g in np.split(xs, cuts)]
    return [int(v) for v in labels], levels


def state_changes(labels: Sequence[int]) -> list[int]:
    """Indices i where ``labels[i] != labels[i - 1]``."""
    return [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]


def reading_states(readings: Sequence[float]) -> dict[str, Any]:
    """A monitor's readings as its record keeps them: each reading's state, the states'
    levels, and how far the speed moved (largest / smallest reading - 1; None under two)."""
    values = np.asarray(readings, dtype=np.float64)
    moved = float(values.max() / values.min() - 1.0) if values.size >= 2 and values.min() > 0 else None
    labels, levels = speed_states(values)
    return {
        "reading_states": labels,
        "state_levels_ns": [round(v, 1) for v in levels],
        "speed_moved": None if moved is None else round(moved, 4),
    }
