"""The median's interval over time: what one run knows of the machine's other states.

On a shared VM latency is not one level: the machine switches between speed states every
0.1 s to a few seconds, and a run sees whatever mix of them it happened to get; a new process
also lands a little differently (its threads, its memory). The order-statistic interval
(:func:`~inferspeed.stats.summary.median_ci`) answers "where is the median of *these* samples'
distribution"; a user asks "where would the median of *another* run of this measurement, as
long as this one, on this machine fall". This module answers the second.

The log median of a run of length L is the measurement's level, plus what the run saw in time
(variance ``v``: the mix of states within the run), plus what it could not see (variance
``u(L)``: the session's own offset, states the run never visited). Two runs' medians differ by
``2u(L) + 2v``.

- ``v`` comes from the run itself. It is cut into windows of WINDOW_TIME seconds (at least
  WINDOW_MIN_SAMPLES samples each); their log medians' integrated autocorrelation time is the
  machine's switching time as the run saw it, and a moving-block bootstrap of the windows in
  blocks that long gives the variance of the run's median (a run too short for MIN_BATCHES
  blocks: the windows' spread scaled by its switching time over its length). Never below the
  order-statistic interval's own variance.
- The history (:mod:`inferspeed.facts.history`) gives *pairs*: each run of this measurement
  with the run before it of about its length (within LENGTH_FACTOR; at most PAIR_GAP_S
  earlier). A pair counts for a run of length L by recency (half-life HALF_LIFE_S: the machine
  changes) and by how near its length is to L.
- With pairs worth 19 or more (:meth:`Between.quantile`), the half-width is the smallest
  |difference| that 95% of the pairs and the next one fall within: a distribution-free
  prediction interval (the medians of a machine with speed states are far from normal), never
  narrower than the order-statistic part of ``v`` gives.
- With fewer, ``u(L)`` is the pairs' excess over their own ``v`` (:meth:`Between.unseen`),
  the machine's other measurements a prior worth at most MACHINE_PRIOR_DF degrees of
  freedom, and the no-history prior NO_HISTORY_U filling up to NO_HISTORY_DF (this VM's
  figure, docs/measurement.md); the interval is ``median * exp(±t(df) * sqrt(2u(L) + 2v))``,
  ``df`` Welch-Satterthwaite's over the run's batches and the prior; with n >= 1 recent
  pairs, at least as wide as their largest difference m, widened to m (1 + 1/n)
  (:meth:`Between.largest`). The machine's speed states, as recent runs long enough to see
  them saw them (their windows' spread and switching time), bound from below what a shorter
  run cannot see (:meth:`Between.unseen_states`).

A run that saw one state only (its windows all within STATE_GAP of each other) says so: with
no history its interval cannot include states it never saw.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from .states import STATE_GAP

__all__ = [
    "HALF_LIFE_S",
    "NO_HISTORY_U",
    "WINDOW_TIME",
    "Between",
    "Pair",
    "between_sessions",
    "run_variance",
    "session_interval",
    "switching_time",
    "t_quantile",
    "window_log_medians",
]

#: Windows of the run whose medians show its variation in time (seconds)...
WINDOW_TIME = 0.1
#: ...of at least this many samples each (a slow model's window spans more time).
WINDOW_MIN_SAMPLES = 25
#: Fewest blocks of the switching time for the run's own variance by the block bootstrap.
MIN_BATCHES = 3
#: History: two runs of one measurement further apart than this are not a pair (seconds).
PAIR_GAP_S = 12 * 3600.0
#: History: a pair's weight halves with every HALF_LIFE_S of its age (seconds).
HALF_LIFE_S = 24 * 3600.0
#: History: a pair of runs this many times longer or shorter than a run counts half for it.
LENGTH_FACTOR = 4.0
#: The machine's other measurements count for at most this many degrees of freedom.
MACHINE_PRIOR_DF = 4.0
#: With no history: the variance of a run's log median that it cannot see itself...
NO_HISTORY_U = 0.007**2
#: ...worth this many degrees of freedom.
NO_HISTORY_DF = 8.0


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile (scipy.stats.t.ppf, without scipy): exact for df 1 and 2, the
    Cornish-Fisher expansion (Abramowitz and Stegun 26.7.5) above, within 0.3% for df >= 3."""
    if df <= 0:
        return math.inf
    if df < 3 and df not in (1, 2):  # between integers: linear in 1/df
        lo, hi = max(math.floor(df), 1), max(math.floor(df), 1) + 1
        f = (1 / df - 1 / hi) / (1 / lo - 1 / hi) if df > 1 else 1.0
        return f * t_quantile(p, lo) + (1 - f) * t_quantile(p, hi) if df > 1 else t_quantile(p, 1)
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


def _windows(samples_ns: np.ndarray, window_s: float) -> tuple[list[np.ndarray], float]:
    """Consecutive windows of the run (a sample's time is the sum of the latencies before it)
    of at least WINDOW_MIN_SAMPLES samples, the last partial one left out, and their mean
    length in seconds."""
    x = np.asarray(samples_ns, dtype=np.float64)
    total = float(x.sum()) / 1e9
    if x.size < 2 * WINDOW_MIN_SAMPLES or total <= 0:
        return [], 0.0
    count = max(1, min(int(total / window_s), x.size // WINDOW_MIN_SAMPLES))
    edges = np.searchsorted(np.cumsum(x) / 1e9, np.arange(1, count + 1) * (total / count))
    edges = np.unique(np.concatenate(([0], np.minimum(edges, x.size))))
    parts = [x[a:b] for a, b in itertools.pairwise(edges) if b - a >= WINDOW_MIN_SAMPLES]
    return parts, total / max(len(parts), 1)


def window_log_medians(samples_ns: np.ndarray, window_s: float = WINDOW_TIME) -> tuple[np.ndarray, float]:
    """Log medians of consecutive windows of the run (in the order measured) and the windows'
    mean length in seconds (:func:`_windows`)."""
    parts, length = _windows(samples_ns, window_s)
    return _log_medians(parts), length


def _log_medians(parts: list[np.ndarray]) -> np.ndarray:
    return np.log(np.maximum([float(np.median(p)) for p in parts], 1.0))


#: Quantiles that stand for a window's samples in the block bootstrap of the run's median...
SKETCH_POINTS = 25
#: ...and the bootstrap's resamples.
BOOTSTRAP_REPS = 200


def _bootstrap_var(parts: list[np.ndarray], block: int) -> float:
    """The variance of the run's log median under a moving-block bootstrap of its windows
    (``parts``, :func:`_windows`; blocks of ``block`` windows: the switching time), each window
    standing as SKETCH_POINTS of its quantiles. A median of a machine that holds one state most
    of the time barely moves when the mix of states does; the windows' mean (batch means)
    would say it does."""
    levels = (np.arange(SKETCH_POINTS) + 0.5) / SKETCH_POINTS
    sketch = np.log(np.maximum(np.array([np.quantile(p, levels) for p in parts]), 1.0))
    n = len(parts)
    blocks = math.ceil(n / block)
    rng = np.random.default_rng(0)  # the same run gives the same interval
    starts = rng.integers(0, n - block + 1, size=(BOOTSTRAP_REPS, blocks))
    rows = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(BOOTSTRAP_REPS, -1)[:, :n]
    medians = np.median(sketch[rows].reshape(BOOTSTRAP_REPS, -1), axis=1)
    return float(medians.var(ddof=1))


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
class Pair:
    """Two consecutive runs of one measurement in the history: their log medians' difference,
    both runs' own variance of it, the pair's length (the geometric mean of the runs') and its
    recency weight."""

    difference: float
    own_var: float
    length_s: float
    weight: float


@dataclass(frozen=True)
class Between:
    """What the machine's history says of runs of one measurement (the module's docstring):
    consecutive runs of this measurement (``pairs``), and of the machine's other measurements
    (``machine_pairs``, a prior); among ``sessions`` runs read; and the switching time the
    runs saw. ``Between()``: no history (the prior of NO_HISTORY_U)."""

    pairs: tuple[Pair, ...] = ()
    machine_pairs: tuple[Pair, ...] = ()
    sessions: int = 0
    switching_time_s: float | None = None
    state_var: float = 0.0

    def unseen_states(self, length_s: float) -> float:
        """The variance of a run's log median from the machine's speed states that a run of
        ``length_s`` seconds averages too little: the states' spread (the window medians'
        variance of recent runs long enough to see them) times switching time / length, up
        to all of it for a run shorter than one switching time."""
        if not self.switching_time_s or self.state_var <= 0:
            return 0.0
        return self.state_var * min(1.0, self.switching_time_s / max(length_s, 1e-3))

    def unseen(self, length_s: float) -> tuple[float, float]:
        """(variance, degrees of freedom) of what a run of ``length_s`` seconds cannot see of
        its median: the pairs' excess over their own variance, weighted by recency and by how
        near their length is to ``length_s``; the machine's pairs up to MACHINE_PRIOR_DF
        degrees of freedom; the prior filling up to NO_HISTORY_DF."""
        ku, kdf = _excess(self.pairs, length_s)
        mu, mdf = _excess(self.machine_pairs, length_s)
        mdf = min(mdf, MACHINE_PRIOR_DF)
        pdf = max(NO_HISTORY_DF - kdf - mdf, 0.0)
        df = kdf + mdf + pdf
        return max((ku * kdf + mu * mdf + NO_HISTORY_U * pdf) / df, self.unseen_states(length_s)), df

    def quantile(self, length_s: float, level: float = 0.95) -> float | None:
        """The distribution-free half-width (log) of the interval for another run: the
        smallest |difference| of this measurement's pairs (weighted as in :meth:`unseen`) that
        ``level`` of them and of the next one fall within; None with too little weight for it
        (fewer than about ``1 / (1 - level) - 1`` pairs of runs of about this length)."""
        if not self.pairs:
            return None
        w = np.array([p.weight * _near(p.length_s, length_s) for p in self.pairs])
        d = np.abs([p.difference for p in self.pairs])
        total = float(w.sum())
        if total + 1.0 < level / (1.0 - level):  # 19 pairs for 95% (weights a little below 1)
            return None
        order = np.argsort(d)
        reach = np.cumsum(w[order]) / (total + float(w.max()))
        k = min(int(np.searchsorted(reach, level)), d.size - 1)
        return float(d[order][k])

    def largest(self, length_s: float, weight: float = 0.75) -> float | None:
        """The largest |difference| m of this measurement's n pairs of about ``length_s``
        (near it by a factor of LENGTH_FACTOR), when they weigh ``weight`` or more (one pair
        of the last ten hours does), widened to m (1 + 1/n): runs that recently differed by
        that much may again. With n pairs the next falls within m itself with probability
        only n / (n + 1) (50% for one, 75% for 3), whatever its distribution; m (1 + 1/n) is
        the unbiased estimate of the bound of a spread that m is the largest of n draws from
        (the German tank estimate), so a machine whose differences sit at 0 and at its
        states' gap gets the gap and the noise around it (this VM: a run 44.7% wide from 3
        near pairs missed a 45.0% jump; a third run, +34.5% from the calm prior after one
        pair 49% apart, missed a 38% jump). None with less weight."""
        near = [p for p in self.pairs if _near(p.length_s, length_s) >= 0.5]
        if sum(p.weight for p in near) < weight:
            return None
        return max(abs(p.difference) for p in near) * (1.0 + 1.0 / len(near))


def _near(pair_s: float, length_s: float) -> float:
    """How much a pair of runs of ``pair_s`` seconds says of runs of ``length_s``: 1 at the
    same length, 0.5 at a factor of LENGTH_FACTOR, little beyond."""
    x = math.log(max(pair_s, 1e-3) / max(length_s, 1e-3)) / math.log(LENGTH_FACTOR)
    return float(0.5 ** (x * x))


def _excess(pairs: Sequence[Pair], length_s: float) -> tuple[float, float]:
    """(variance, degrees of freedom) of the pairs' differences beyond their own variance,
    per run; consecutive pairs share a run, so each counts two thirds of a degree of freedom,
    times its weight."""
    if not pairs:
        return 0.0, 0.0
    w = np.array([p.weight * _near(p.length_s, length_s) for p in pairs])
    if w.sum() <= 0:
        return 0.0, 0.0
    c = np.array([p.difference**2 - p.own_var for p in pairs])
    return max(float((w * c).sum() / w.sum()) / 2, 0.0), float(w.sum()) * 2 / 3


def _entry(e: Mapping[str, Any]) -> tuple[str, float, float, float, float] | None:
    """(key, time, log median, own variance, length) of a history entry; None when malformed."""
    try:
        key, when = str(e["key"]), float(e["time"])
        median, own, span = float(e["median_ns"]), float(e["log_var_run"]), float(e["span_s"])
    except (KeyError, TypeError, ValueError):
        return None
    ok = median > 0 and span > 0 and own >= 0 and all(map(math.isfinite, (when, median, own, span)))
    return (key, when, math.log(median), own, span) if ok else None


def _pairs(entries: Iterable[Mapping[str, Any]], now: float) -> dict[str, list[Pair]]:
    """Each run of a key with the run of that key just before it, and with the one before it
    whose length is within a factor of 2 of its own (among the 8 before it, at most
    PAIR_GAP_S earlier), as pairs weighted by recency."""
    by_key: dict[str, list[tuple[float, float, float, float]]] = {}
    for e in entries:
        got = _entry(e)
        if got is not None:
            by_key.setdefault(got[0], []).append(got[1:])
    out: dict[str, list[Pair]] = {}
    for key, runs in by_key.items():
        runs.sort()
        for i, (t1, y1, v1, l1) in enumerate(runs):
            weight = 0.5 ** (max(now - t1, 0.0) / HALF_LIFE_S)
            # The run just before it, and the one before it of about its length (runs of other
            # lengths may come between).
            for j, (t0, y0, v0, l0) in enumerate(reversed(runs[max(0, i - 8) : i])):
                if t1 - t0 > PAIR_GAP_S:
                    break
                if j == 0 or max(l0, l1) <= 2 * min(l0, l1):
                    out.setdefault(key, []).append(Pair(y1 - y0, v0 + v1, math.sqrt(l0 * l1), weight))
                if max(l0, l1) <= 2 * min(l0, l1):
                    break
    return out


def between_sessions(
    entries: Iterable[Mapping[str, Any]], key: str | None = None, now: float | None = None
) -> Between:
    """What the history's ``entries`` (:mod:`inferspeed.facts.history`) say of runs of ``key``
    (None: of any measurement on this machine) as of ``now`` (epoch seconds; default: the
    newest entry's time): the module's docstring has the method."""
    entries = list(entries)
    times = [float(e["time"]) for e in entries if isinstance(e.get("time"), (int, float))]
    by_key = _pairs(entries, max(times, default=0.0) if now is None else now)
    switching = [
        float(e["switching_time_s"]) for e in entries if isinstance(e.get("switching_time_s"), (int, float))
    ]
    return Between(
        pairs=tuple(by_key.get(key, [])) if key is not None else (),
        machine_pairs=tuple(p for k, ps in by_key.items() if k != key for p in ps),
        sessions=len(times),
        switching_time_s=float(np.median(switching)) if switching else None,
        state_var=_state_var(entries, max(times, default=0.0) if now is None else now),
    )


def _state_var(entries: Sequence[Mapping[str, Any]], now: float) -> float:
    """The machine's speed states as recent runs saw them: the median variance of window log
    medians of the runs of the last PAIR_GAP_S long enough to see them (three switching times
    or more); 0 when there are none."""
    seen = []
    for e in entries:
        try:
            sd, tau, span, when = (float(e[k]) for k in ("sd_windows", "switching_time_s", "span_s", "time"))
        except (KeyError, TypeError, ValueError):
            continue
        if span >= 3 * tau and now - when <= PAIR_GAP_S and math.isfinite(sd):
            seen.append(sd * sd)
    return float(np.median(seen)) if seen else 0.0


def _log_var(median: float, interval: tuple[float | None, float | None]) -> float:
    """The variance of the log median an interval of it (95%) implies; 0 when it has none."""
    lo, hi = interval
    if lo is None or hi is None or lo <= 0 or hi <= lo or median <= 0:
        return 0.0
    return ((math.log(hi) - math.log(lo)) / (2 * 1.96)) ** 2


def run_variance(
    samples_ns: np.ndarray, median_ns: float, within: tuple[float | None, float | None]
) -> dict[str, Any]:
    """What the run sees of its own median's variance in time (``v``, the module's
    docstring), with its degrees of freedom and the figures it came from."""
    parts, window_s = _windows(samples_ns, WINDOW_TIME)
    logs = _log_medians(parts)
    sd_w = float(logs.std(ddof=1)) if logs.size >= 2 else 0.0
    switch = switching_time(logs, window_s) if logs.size else None
    span = float(np.asarray(samples_ns, dtype=np.float64).sum()) / 1e9
    block = max(1, math.ceil(switch / window_s)) if switch and window_s > 0 else 0
    if block and logs.size // block >= MIN_BATCHES:
        v_time, df = _bootstrap_var(parts, block), float(logs.size // block - 1)
    elif switch is None:  # too few windows to see any switching: as if independent
        v_time, df = (sd_w**2 / logs.size if logs.size >= 2 else 0.0), float(max(logs.size - 1, 1))
    else:  # shorter than MIN_BATCHES switching times: the median is about one window's
        v_time, df = sd_w**2 * min(1.0, switch / max(span, 1e-9)), float(max(logs.size - 1, 1))
    order = _log_var(median_ns, within)
    return {
        "v": max(v_time, order),
        "v_order": order,
        "v_df": df if v_time >= order else math.inf,
        "se_time": math.sqrt(v_time),
        "windows": int(logs.size),
        "window_s": round(window_s, 4),
        "sd_windows": round(sd_w, 5),
        "switching_time_s": None if switch is None else round(switch, 4),
        "span_s": round(span, 3),
        "one_state": bool(logs.size >= 2 and float(logs.max() - logs.min()) <= math.log1p(STATE_GAP)),
    }


def session_interval(
    samples_ns: np.ndarray,
    median_ns: float,
    within: tuple[float | None, float | None],
    between: Between | None = None,
) -> dict[str, Any]:
    """The median's interval for another run of this measurement, as long as this one, on
    this machine (the module's docstring has the method), and its parts.

    Parameters
    ----------
    samples_ns : numpy.ndarray
        The run's samples in the order measured.
    median_ns : float
        Their median.
    within : (lo, hi)
        The within-run interval of the median (order statistics, batch-widened).
    between : Between, optional
        The machine's history of this measurement; None or empty: the no-history prior.
    """
    between = between or Between()
    seen = run_variance(samples_ns, median_ns, within)
    u, u_df = between.unseen(seen["span_s"])
    v, v_df = seen["v"], seen["v_df"]
    # Welch-Satterthwaite: each part's share of the variance with its own degrees of freedom.
    parts = (u * u / u_df if u_df > 0 else 0.0) + (v * v / v_df if math.isfinite(v_df) else 0.0)
    df = (u + v) ** 2 / parts if parts > 0 else math.inf
    t = t_quantile(0.975, max(df, 1.0)) if math.isfinite(df) else 1.959964
    empirical = between.quantile(seen["span_s"])
    if empirical is not None:
        # The pairs' differences hold their runs' variation in time; this run's own samples
        # still bound it from below.
        half = max(empirical, 1.959964 * math.sqrt(2.0 * seen["v_order"]))
    else:  # heavy tails (speed states) are missed by a variance: at least the largest pair's
        half = max(t * math.sqrt(2.0 * (u + v)), between.largest(seen["span_s"]) or 0.0)
    lo, hi = median_ns * math.exp(-half), median_ns * math.exp(half)
    wlo, whi = within
    return {
        "interval_ns": (min(lo, wlo) if wlo is not None else lo, max(hi, whi) if whi is not None else hi),
        "relative_halfwidth": math.expm1(half),
        **{
            k: seen[k]
            for k in ("windows", "window_s", "sd_windows", "switching_time_s", "span_s", "one_state")
        },
        "se_time": round(seen["se_time"], 5),
        "log_var_run": seen["v"],
        "unseen_var": round(u, 8),
        "history_sessions": between.sessions,
        "history_pairs": len(between.pairs),
        "method": "history quantile" if empirical is not None else "variance",
        "df": round(df, 2) if math.isfinite(df) else None,
        "t": round(t, 4),
    }
