"""The median's interval over time: what one run knows of the machine's other states.

On a shared VM latency is not one level: the machine switches between speed states every
0.1 s to a few seconds, and a 2 s run sees whatever mix of them it happened to get. The
order-statistic interval (:func:`~inferspeed.stats.summary.median_ci`) answers "where is the
median of *these* samples' distribution"; a user asks "where would the median of *another* run
of this model on this machine fall". This module answers the second, from three sources:

1. **The run's variation in time.** The run is cut into windows of WINDOW_TIME seconds (at
   least WINDOW_MIN_SAMPLES samples each); ``sd_windows`` is the standard deviation of their
   log medians. It is what a different mix of the states this run saw could do to a median.
2. **Batch means over a span long enough to see the switching.** The windows' integrated
   autocorrelation time (``switching_time_s``) sets the batch length; the standard error of
   the batch means, with Student's t, is the time-series uncertainty of this run's median
   (``se_time``). A run shorter than three switching times has no such figure.
3. **The machine's history** (:mod:`inferspeed.facts.history`): the variance of session
   medians of one measurement beyond what each session's own interval explains, pooled over
   every model measured on this machine (Kalibera and Jones's between-session variance),
   with its degrees of freedom.

The between-session variance used is the history's, pooled with the run's own ``sd_windows``
as a prior worth PRIOR_DF degrees of freedom (so a machine with no history still gets an
interval from what the run saw, and the history takes over as it grows). The interval is meant
to hold the median of another run of the same measurement on this machine, so it counts the
variance of both runs' medians: ``median * exp(±t(df) * sqrt(2 * between + se_time²))``, df the
pooled degrees of freedom; never narrower than the within-run interval.

A run that saw one state only (its windows all within STATE_GAP of each other) has an
``sd_windows`` near 0: with no history its interval cannot include states it never saw, and
the summary says so.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from .states import STATE_GAP

__all__ = [
    "PRIOR_DF",
    "WINDOW_TIME",
    "Between",
    "between_sessions",
    "session_interval",
    "switching_time",
    "t_quantile",
    "window_log_medians",
]

#: Windows of the run whose medians show its variation in time (seconds)...
WINDOW_TIME = 0.1
#: ...of at least this many samples each (a slow model's window spans more time).
WINDOW_MIN_SAMPLES = 25
#: Degrees of freedom the run's own window spread counts for against the machine's history.
PRIOR_DF = 4
#: Fewest batches for the batch-means standard error.
MIN_BATCHES = 3


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile (scipy.stats.t.ppf, without scipy): exact for df 1 and 2, the
    Cornish-Fisher expansion (Abramowitz and Stegun 26.7.5) above, within 0.3% for df >= 3."""
    if df <= 0:
        return math.inf
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def window_log_medians(samples_ns: np.ndarray, window_s: float = WINDOW_TIME) -> tuple[np.ndarray, float]:
    """Log medians of consecutive windows of the run (in the order measured; a sample's time is
    the sum of the latencies before it) and the windows' mean length in seconds. Windows hold
    at least WINDOW_MIN_SAMPLES samples; the last, partial one is left out."""
    x = np.asarray(samples_ns, dtype=np.float64)
    total = float(x.sum()) / 1e9
    if x.size < 2 * WINDOW_MIN_SAMPLES or total <= 0:
        return np.zeros(0), 0.0
    count = max(1, min(int(total / window_s), x.size // WINDOW_MIN_SAMPLES))
    edges = np.searchsorted(np.cumsum(x) / 1e9, np.arange(1, count + 1) * (total / count))
    edges = np.unique(np.concatenate(([0], np.minimum(edges, x.size))))
    parts = [x[a:b] for a, b in itertools.pairwise(edges) if b - a >= WINDOW_MIN_SAMPLES]
    logs = np.log(np.maximum([float(np.median(p)) for p in parts], 1.0))
    return logs, total / max(len(parts), 1)


def switching_time(logs: np.ndarray, window_s: float) -> float | None:
    """The machine's switching time as this run saw it: the integrated autocorrelation time of
    the window log medians (1 + 2 * the sum of their autocorrelations, up to the first below
    0.05), in seconds. None with fewer than 8 windows."""
    if logs.size < 8:
        return None
    y = logs - logs.mean()
    var = float((y * y).mean())
    if var == 0.0:
        return window_s
    tau = 1.0
    for k in range(1, logs.size // 2):
        r = float((y[:-k] * y[k:]).mean()) / var
        if r <= 0.05:
            break
        tau += 2.0 * r
    return tau * window_s


@dataclass(frozen=True)
class Between:
    """Between-session variance of log medians on this machine (Kalibera and Jones): ``var``,
    with ``df`` degrees of freedom, from ``sessions`` runs of ``keys`` measurements."""

    var: float = 0.0
    df: int = 0
    sessions: int = 0
    keys: int = 0
    switching_time_s: float | None = None


def between_sessions(entries: Iterable[Mapping[str, Any]]) -> Between:
    """The between-session variance of the history's entries (:mod:`inferspeed.facts.history`):
    per measurement (``key``) with two sessions or more, the squared deviations of each
    session's log median from their mean, pooled over measurements (sum / (sessions - keys)),
    less the mean of the sessions' own (within-run) variance of the log median; and the median
    switching time the sessions saw."""
    by_key: dict[str, list[tuple[float, float]]] = {}
    switching: list[float] = []
    for e in entries:
        try:
            median, se = float(e["median_ns"]), float(e.get("log_se_within") or 0.0)
            key = str(e["key"])
        except (KeyError, TypeError, ValueError):
            continue
        if median > 0 and math.isfinite(median):
            by_key.setdefault(key, []).append((math.log(median), se))
        if isinstance(e.get("switching_time_s"), (int, float)):
            switching.append(float(e["switching_time_s"]))
    squares = within = 0.0
    sessions = keys = 0
    for runs in by_key.values():
        if len(runs) < 2:
            continue
        ys = np.array([y for y, _ in runs])
        squares += float(((ys - ys.mean()) ** 2).sum())
        within += sum(se * se for _, se in runs)
        sessions += len(runs)
        keys += 1
    df = sessions - keys
    var = max(squares / df - within / sessions, 0.0) if df > 0 else 0.0
    return Between(var, df, sessions, keys, float(np.median(switching)) if switching else None)


def _batch_se(logs: np.ndarray, tau_windows: float) -> tuple[float, int] | None:
    """Standard error of the mean of ``logs`` from batches of ``tau_windows`` windows or more,
    and its degrees of freedom; None when fewer than MIN_BATCHES batches fit."""
    size = max(1, math.ceil(tau_windows))
    batches = logs.size // size
    if batches < MIN_BATCHES:
        return None
    means = logs[: batches * size].reshape(batches, size).mean(axis=1)
    return float(means.std(ddof=1)) / math.sqrt(batches), batches - 1


def session_interval(
    samples_ns: np.ndarray,
    median_ns: float,
    within: tuple[float | None, float | None],
    between: Between | None = None,
) -> dict[str, Any]:
    """The median's interval for another run of this measurement on this machine (the module's
    docstring has the method), and its parts.

    Parameters
    ----------
    samples_ns : numpy.ndarray
        The run's samples in the order measured.
    median_ns : float
        Their median.
    within : (lo, hi)
        The within-run interval of the median (order statistics, batch-widened).
    between : Between, optional
        The machine's history; None or empty: the run's own spread in time only.
    """
    between = between or Between()
    logs, window_s = window_log_medians(samples_ns)
    sd_w = float(logs.std(ddof=1)) if logs.size >= 2 else 0.0
    switch = switching_time(logs, window_s) if logs.size else None
    span = logs.size * window_s
    batch = _batch_se(logs, switch / window_s) if switch and window_s > 0 else None
    se_time = batch[0] if batch is not None else 0.0
    df = PRIOR_DF + between.df
    var_between = (PRIOR_DF * sd_w**2 + between.df * between.var) / df
    t = t_quantile(0.975, df)
    # Two runs' medians: this one's and the other run's, each off by the between variance.
    half = t * math.sqrt(2.0 * var_between + se_time**2)
    lo, hi = median_ns * math.exp(-half), median_ns * math.exp(half)
    wlo, whi = within
    one_state = logs.size >= 2 and float(logs.max() - logs.min()) <= math.log1p(STATE_GAP)
    return {
        "interval_ns": (
            min(lo, wlo) if wlo is not None else lo,
            max(hi, whi) if whi is not None else hi,
        ),
        "relative_halfwidth": math.expm1(half),
        "windows": int(logs.size),
        "window_s": round(window_s, 4),
        "sd_windows": round(sd_w, 5),
        "switching_time_s": None if switch is None else round(switch, 4),
        "span_s": round(span, 3),
        "se_time": round(se_time, 5),
        "between_var": round(between.var, 6),
        "between_df": between.df,
        "history_sessions": between.sessions,
        "df": df,
        "t": round(t, 4),
        "one_state": bool(one_state),
    }
