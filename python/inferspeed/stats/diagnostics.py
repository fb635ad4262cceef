"""Stability diagnostics of one latency measurement, in plain words with advice.

Each check is a small pure function over the timed samples (in the order they were taken), the
:class:`~inferspeed.stats.summary.Stats` summarizing them, or facts about the machine captured around the
run; it returns a :class:`Diagnostic` when it sees something that makes the result less
trustworthy, else None. :func:`diagnose` runs them all. The machine facts come from
:func:`cpu_snapshot` / :func:`other_load` (CPU time other processes used during the run) and
:func:`read_governor` (the cpufreq governor), all Linux-only and None elsewhere.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from .summary import PERCENTILES, Stats, min_samples_for_ci, quantile_ci

__all__ = [
    "BIMODAL_DIP",
    "BIMODAL_MIN_SAMPLES",
    "BIMODAL_MIN_SEPARATION",
    "BIMODAL_MIN_SHARE",
    "DRIFT_MIN_CHANGE",
    "HIGH_CV",
    "OTHER_LOAD_CORES",
    "SAMPLE_CODES",
    "WARMUP_MIN_EXCESS",
    "WARMUP_MIN_SAMPLES",
    "WARMUP_SETTLE_TOLERANCE",
    "Diagnostic",
    "check_bimodal",
    "check_drift",
    "check_few_samples",
    "check_governor",
    "check_high_cv",
    "check_load",
    "check_steal",
    "check_warmup",
    "diagnose",
    "format_diagnostics",
    "settle_iterations",
    "steady_state",
]

# --- warm-up ---------------------------------------------------------------------------------
#: Fewer timed samples than this: no warm-up check (a handful of blocks of 25 cannot show a trend).
WARMUP_MIN_SAMPLES = 200
#: The samples are cut into about this many consecutive blocks...
WARMUP_BLOCKS = 20
#: ...of at least this many samples each, so that a block's median ignores a few slow calls
#: (the first call after warm-up is often slow on its own; that is not a warm-up problem)...
WARMUP_MIN_BLOCK = 25
#: ...and at most this many, so that a long run still sees a warm-up of a few hundred calls (a
#: block much longer than the warm-up would bury it in its median); the noise of these smaller
#: blocks is accounted for by WARMUP_NOISE_Z.
WARMUP_MAX_BLOCK = 100
#: The first block's median must exceed the reference (median of the last half) by more than
#: this: smaller start-up effects are within what reruns of one benchmark typically differ by.
WARMUP_MIN_EXCESS = 0.10
#: Latency has settled once every later block median stays below reference * (1 + this): within
#: the difference that the drift check (DRIFT_MIN_CHANGE) would also let pass.
WARMUP_SETTLE_TOLERANCE = 0.05
#: Consecutive block medians within the tolerance that mark the end of the warm-up.
WARMUP_SETTLED_BLOCKS = 3
#: Both thresholds above grow to this many standard errors of a block median when the samples
#: are so noisy that block medians alone wander further: noise is not a warm-up.
WARMUP_NOISE_Z = 4.0

# --- drift -----------------------------------------------------------------------------------
#: Medians of the first and last DRIFT_PART of the run must differ by more than this (and their
#: 95% confidence intervals must not overlap, so that noise alone does not fire it).
DRIFT_MIN_CHANGE = 0.05
DRIFT_PART = 0.20
#: Fewer samples than this (after the warm-up region): no drift check.
DRIFT_MIN_SAMPLES = 100

# --- bimodal ---------------------------------------------------------------------------------
#: Fewer samples than this: no mode search (a histogram of fewer samples is mostly noise).
BIMODAL_MIN_SAMPLES = 200
#: Histogram of log(latency) between these percentiles: the extreme 1% on each side would
#: stretch the axis and squeeze the body into a few bins.
BIMODAL_RANGE = (1.0, 99.0)
#: At most this many bins, and at least BIMODAL_SAMPLES_PER_BIN samples per bin on average.
BIMODAL_BINS = 60
BIMODAL_SAMPLES_PER_BIN = 20
#: Bins of the same width added beyond each end of the range.
BIMODAL_MARGIN_BINS = 3
#: Two neighbouring peaks are two modes when the lowest point between them is below the lower
#: peak by at least this fraction of its height (shallower dips are flat tops and shoulders)...
BIMODAL_DIP = 0.20
#: ...and by at least this many standard deviations of the counting noise of the bins: dozens of
#: bins give noise many chances, and 4 sigma kept 8,000 simulated unimodal runs (lognormal,
#: normal, heavy-tailed; 200 to 30,000 samples) from firing even once.
BIMODAL_NOISE_Z = 4.0
#: A second mode must hold at least this share of the samples (counted between the valleys on
#: either side of it): smaller bumps barely move the percentiles people read.
BIMODAL_MIN_SHARE = 0.05
#: Modes closer than this (relative) are one mode: the shoulder of a peak, not a second speed.
BIMODAL_MIN_SEPARATION = 0.10

# --- noise, machine --------------------------------------------------------------------------
#: Coefficient of variation (std / mean) above this: the run is noisy. Quiet machines running
#: one model usually stay within a few percent; 10% means something is interfering.
HIGH_CV = 0.10
#: Other processes using more than a quarter of a core on average: beyond the background of an
#: idle desktop or server (daemons, the terminal, the kernel's own threads usually total a few
#: percent of one core) and enough to take a core from ONNX Runtime's threads now and then.
OTHER_LOAD_CORES = 0.25
#: Steal time above this many cores on average: the hypervisor took a tenth of a core from this
#: VM (a quiet host steals next to nothing).
STEAL_CORES = 0.1


@dataclass(frozen=True)
class Diagnostic:
    """One finding about a measurement.

    Attributes
    ----------
    code : str
        Stable machine-readable id: "warmup", "drift", "bimodal", "high_cv", "governor",
        "load", "steal" or "few_samples".
    message : str
        What was seen, with numbers, and what to do about it, in plain words.
    details : Mapping
        The numbers behind the message (JSON-ready: floats, ints, strings and lists).
    """

    code: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": dict(self.details)}


def _duration(ns: float) -> str:
    # Imported here: report.text may come to import this module.
    from ..units import format_duration

    return format_duration(ns)


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _round_up(n: int) -> int:
    """``n`` rounded up to two significant digits (1234 -> 1300): advice, not a measurement."""
    if n <= 0:
        return 0
    step: int = 10 ** max(len(str(n)) - 2, 0)
    return -(-n // step) * step


# --- checks on the samples -------------------------------------------------------------------


def check_warmup(samples_ns: np.ndarray, warmup_iterations: int = 0) -> Diagnostic | None:
    """Latency still falling at the start of the timed samples: the warm-up was too short.

    The samples are cut into about WARMUP_BLOCKS consecutive blocks (WARMUP_MIN_BLOCK to
    WARMUP_MAX_BLOCK samples each: more blocks in long runs) and each block's median is compared
    with the reference, the median of the last half of the run. The check fires when the first
    block is more than WARMUP_MIN_EXCESS above the reference; latency has settled after the last
    block of the first half whose median is above reference * (1 + WARMUP_SETTLE_TOLERANCE).
    Both thresholds widen to WARMUP_NOISE_Z standard errors of a block median in noisy runs.
    When latency never settles within the first half, this is not a warm-up but a drift (see
    :func:`check_drift`), and nothing is reported.

    Parameters
    ----------
    samples_ns : numpy.ndarray
        Latencies in the order they were measured.
    warmup_iterations : int
        Untimed warm-up iterations run before the samples (for the advice).

    Returns
    -------
    Diagnostic or None
        ``details["settle_iterations"]`` is how many timed samples the warm-up still took.
    """
    x = np.asarray(samples_ns, dtype=np.float64)
    n = x.size
    if n < WARMUP_MIN_SAMPLES or x.min() <= 0:
        return None
    # In log space: latency is skewed to the right, and ratios are what the thresholds are about.
    logs = np.log(x)
    size = min(max(WARMUP_MIN_BLOCK, n // WARMUP_BLOCKS), WARMUP_MAX_BLOCK)
    blocks = n // size  # the few samples past the last whole block only count in the reference
    medians = np.median(logs[: blocks * size].reshape(blocks, size), axis=1)
    half = n // 2
    ref = float(np.median(logs[half:]))
    noise = _block_median_noise(logs[half:], medians[-(blocks // 2) :], ref, size)
    if medians[0] - ref <= max(math.log1p(WARMUP_MIN_EXCESS), WARMUP_NOISE_Z * noise):
        return None
    first_half = max(half // size, 1)
    limit = ref + max(math.log1p(WARMUP_SETTLE_TOLERANCE), WARMUP_NOISE_Z * noise)
    # Settled at the first block that starts WARMUP_SETTLED_BLOCKS blocks in a row at or below
    # the limit: a slow block later on is noise or a second mode (other checks report those),
    # not the warm-up.
    within = medians <= limit
    settle_block = next(
        (i for i in range(1, first_half) if within[i : i + WARMUP_SETTLED_BLOCKS].all()),
        first_half,
    )
    if settle_block >= first_half:
        return None
    settle = settle_block * size
    start = float(np.median(x[:settle]))
    rest = float(np.median(x[settle:]))
    slower = start / rest - 1.0
    if slower <= WARMUP_MIN_EXCESS:
        return None  # the slow start is too short or too mixed to matter
    suggest = _round_up(warmup_iterations + settle)
    message = (
        f"latency was still falling when timing began: the first {settle} timed iterations were "
        f"{_pct(slower)} slower than the rest (median {_duration(start)} vs {_duration(rest)}), "
        f"after {warmup_iterations} warm-up iterations. Use a longer warm-up: "
        f"--warmup-iterations {suggest} or a longer --warmup."
    )
    details = {
        "settle_iterations": settle,
        "warmup_iterations": int(warmup_iterations),
        "suggested_warmup_iterations": suggest,
        "start_median_ns": start,
        "rest_median_ns": rest,
        "slower": slower,
        "block_size": size,
        "block_medians_ns": [float(math.exp(m)) for m in medians],
    }
    return Diagnostic("warmup", message, details)


def _block_median_noise(tail: np.ndarray, tail_medians: np.ndarray, ref: float, size: int) -> float:
    """Standard error of (block median - reference) in log space, from the settled part of the
    run (``tail``, its block medians and median ``ref``): the larger of what independent samples
    predict (1.2533 sigma / sqrt(size), sigma from the MAD) and the spread block medians actually
    show (larger when samples are correlated in time), widened by the reference's own error."""
    sigma = 1.4826 * float(np.median(np.abs(tail - ref)))
    predicted = 1.2533 * sigma / math.sqrt(size)
    seen = 0.0
    if tail_medians.size >= 3:
        seen = 1.4826 * float(np.median(np.abs(tail_medians - np.median(tail_medians))))
    return max(predicted, seen) * math.sqrt(1.0 + size / tail.size)


def settle_iterations(samples_ns: np.ndarray, tolerance: float = WARMUP_SETTLE_TOLERANCE) -> int | None:
    """Iterations until latency reached its steady state: the start of the first run of
    WARMUP_SETTLED_BLOCKS consecutive blocks (about 50 blocks in all) whose medians are within
    ``tolerance`` of the median of the last quarter. None with fewer than 20 samples."""
    x = np.asarray(samples_ns, dtype=np.float64)
    if x.size < 20:
        return None
    size = max(1, x.size // 50)
    blocks = x.size // size
    medians = np.median(x[: blocks * size].reshape(blocks, size), axis=1)
    reference = float(np.median(x[-max(1, x.size // 4) :]))
    within = medians <= reference * (1.0 + tolerance)
    for i in range(blocks):
        if within[i : i + WARMUP_SETTLED_BLOCKS].all():
            return i * size
    return None


def steady_state(
    warm_ns: np.ndarray, found: Sequence[Diagnostic], per_sample: int = 1
) -> dict[str, int | None]:
    """Iterations until latency reached its steady state, for the cold-start figures.

    Within the warm-up (:func:`settle_iterations`) unless the warm-up check (in ``found``) saw
    latency still falling once timing began: then the whole warm-up plus that many timed
    iterations, so the figure never says "steady" where a warning says it was not.
    ``per_sample``: calls per sample (timeit's batches).

    Returns
    -------
    dict
        ``settle_iterations`` (warm-up and timed, ``None`` when not measured) and
        ``settle_timed_iterations`` (how many of them were timed).
    """
    late = next((d for d in found if d.code == "warmup"), None)
    if late is not None:
        timed = int(late.details["settle_iterations"])
        return {
            "settle_iterations": (int(np.size(warm_ns)) + timed) * per_sample,
            "settle_timed_iterations": timed * per_sample,
        }
    settle = settle_iterations(warm_ns)
    return {
        "settle_iterations": None if settle is None else settle * per_sample,
        "settle_timed_iterations": 0,
    }


def check_drift(samples_ns: np.ndarray, skip: int = 0) -> Diagnostic | None:
    """Latency at the end of the run differs from the start: throttling, load, speed changes.

    Compares the medians of the first and last DRIFT_PART of ``samples_ns[skip:]`` (``skip``:
    the warm-up region that :func:`check_warmup` found). Fires when they differ by more than
    DRIFT_MIN_CHANGE and their distribution-free 95% confidence intervals do not overlap.

    Parameters
    ----------
    samples_ns : numpy.ndarray
        Latencies in the order they were measured.
    skip : int
        Leading samples to leave out.

    Returns
    -------
    Diagnostic or None
    """
    x = np.asarray(samples_ns, dtype=np.float64)[max(skip, 0) :]
    if x.size < DRIFT_MIN_SAMPLES:
        return None
    m = int(x.size * DRIFT_PART)
    first, last = np.sort(x[:m]), np.sort(x[-m:])
    a, b = float(np.median(first)), float(np.median(last))
    if a <= 0:
        return None
    change = b / a - 1.0
    if abs(change) <= DRIFT_MIN_CHANGE:
        return None
    (a_lo, a_hi), (b_lo, b_hi) = quantile_ci(first, 0.5), quantile_ci(last, 0.5)
    if a_lo is None or a_hi is None or b_lo is None or b_hi is None:
        return None
    if a_lo <= b_hi and b_lo <= a_hi:
        return None  # the intervals overlap: noise could explain the difference
    message = (
        f"latency went from {_duration(a)} to {_duration(b)} ({change * 100:+.0f}%) between the start "
        "and the end of the run: thermal throttling, other load, or the machine changing speed. "
        "Rerun, pin the measuring thread to one CPU (--pin CPU) and check what else is running."
    )
    details = {
        "start_median_ns": a,
        "end_median_ns": b,
        "change": change,
        "start_ci95_ns": [a_lo, a_hi],
        "end_ci95_ns": [b_lo, b_hi],
        "part_size": m,
        "skipped": int(max(skip, 0)),
    }
    return Diagnostic("drift", message, details)


def check_bimodal(samples_ns: np.ndarray) -> Diagnostic | None:
    """Two or more modes in the latency distribution.

    A histogram of log(latency) over the BIMODAL_RANGE percentiles (at most BIMODAL_BINS bins,
    lightly smoothed) is searched for peaks (scipy.signal.find_peaks) that stand
    BIMODAL_NOISE_Z times the counting noise above their surroundings. Neighbouring peaks are
    two modes when the dip between them is at least BIMODAL_DIP of the lower one's height (and
    beyond the noise); each mode's share is the samples between the dips on either side of it.
    Fires when at least two modes hold BIMODAL_MIN_SHARE each and lie BIMODAL_MIN_SEPARATION
    apart.

    Parameters
    ----------
    samples_ns : numpy.ndarray
        Latencies (order does not matter).

    Returns
    -------
    Diagnostic or None
        ``details["modes_ns"]`` and ``details["shares"]``: the modes, fastest first.
    """
    x = np.asarray(samples_ns)
    if x.size < BIMODAL_MIN_SAMPLES:
        return None
    modes = _modes(x)
    if len(modes) < 2:
        return None
    locs = [loc for loc, _ in modes]
    shares = [share for _, share in modes]
    listed = _join(
        [
            f"{_duration(loc)} ({_pct(share)}{' of samples' * (i == 0)})"
            for i, (loc, share) in enumerate(modes)
        ]
    )
    message = (
        f"the latency distribution has {len(modes)} modes: {listed}, e.g. ONNX Runtime's threads "
        "spinning vs sleeping, or the machine switching between speeds; percentiles between the "
        "modes are unstable. Try --no-spin, fewer --threads or --pin CPU, and rerun."
    )
    return Diagnostic("bimodal", message, {"modes_ns": locs, "shares": shares})


def find_peaks(y: np.ndarray, prominence: np.ndarray) -> list[int]:
    """Indices of the local maxima of ``y`` whose prominence is at least ``prominence`` at
    their index: scipy.signal.find_peaks(y, prominence=...)[0] for the 1-D case, without
    importing scipy.signal (a second of start-up, paid after every run otherwise). A flat top
    is one peak at its middle; the prominence is the height above the higher of the lowest
    points on either side before a higher sample (or the end)."""
    n = y.size
    peaks: list[int] = []
    i = 1
    while i < n - 1:
        if y[i - 1] < y[i]:
            ahead = i + 1
            while ahead < n - 1 and y[ahead] == y[i]:
                ahead += 1
            if y[ahead] < y[i]:
                peaks.append((i + ahead - 1) // 2)
                i = ahead
        i += 1
    kept = []
    for p in peaks:
        top = y[p]
        left = right = top
        j = p
        while j >= 0 and y[j] <= top:
            left = min(left, y[j])
            j -= 1
        j = p
        while j < n and y[j] <= top:
            right = min(right, y[j])
            j += 1
        if top - max(left, right) >= prominence[p]:
            kept.append(p)
    return kept


def _modes(x: np.ndarray) -> list[tuple[float, float]]:
    """(location in ns, share of samples) of each mode that counts, fastest first."""
    xf = x.astype(np.float64)
    if x.dtype.kind in "iu":
        # Integer nanoseconds sit on a grid; log-spaced bins would take 1 or 2 grid points each
        # and turn the histogram into a comb of false peaks. Spreading each value uniformly over
        # its grid step (seeded: the same samples always give the same answer) removes the comb.
        steps = np.diff(np.unique(x))
        step = float(steps.min()) if steps.size else 1.0
        xf = xf + np.random.default_rng(0).uniform(-step / 2, step / 2, size=xf.size)
    xf = xf[xf > 0]
    if xf.size < BIMODAL_MIN_SAMPLES:
        return []
    logs = np.log(xf)
    lo, hi = np.percentile(logs, BIMODAL_RANGE)
    if hi - lo < math.log1p(BIMODAL_MIN_SEPARATION):
        return []  # the whole body is narrower than two modes could be apart
    bins = max(min(BIMODAL_BINS, xf.size // BIMODAL_SAMPLES_PER_BIN), 10)
    # A few more bins of the same width on either side: a mode cut by the range (the smaller
    # mode of a mixture often holds the 1st or 99th percentile) keeps its far flank there, and
    # so is a peak find_peaks can see, not a rise at the edge.
    width = (hi - lo) / bins
    margin = BIMODAL_MARGIN_BINS * width
    counts, edges = np.histogram(logs, bins=bins + 2 * BIMODAL_MARGIN_BINS, range=(lo - margin, hi + margin))
    # [1, 2, 1] / 4 smoothing: halves the counting noise of single bins (variance 6/16 of it).
    padded = np.pad(counts.astype(np.float64), 1, mode="edge")
    smooth = np.convolve(padded, np.array([0.25, 0.5, 0.25]), mode="valid")
    # Counting noise of a smoothed bin holding c samples: sqrt(0.375 c); of a difference of two
    # bins, the root of the sum of their variances.
    peaks = find_peaks(smooth, BIMODAL_NOISE_Z * np.sqrt(0.375 * smooth))
    centers = (edges[:-1] + edges[1:]) / 2
    # find_peaks gives two near-equal neighbours both the full height as prominence (each one's
    # window runs past the other), so the dip between neighbours is checked as well. One peak is
    # dropped at a time until every pair of neighbours is separated by a real dip, each holds a
    # real share of the samples and they lie far enough apart: dropping one merges its samples
    # into its neighbours', which changes their shares.
    while len(peaks) >= 2:
        dips = []
        for p, q in itertools.pairwise(peaks):
            low = float(smooth[p : q + 1].min())
            top = min(float(smooth[p]), float(smooth[q]))
            needed = max(BIMODAL_DIP * top, BIMODAL_NOISE_Z * math.sqrt(0.375 * (top + low)))
            dips.append((top - low) / needed)
        i = int(np.argmin(dips))
        if dips[i] < 1.0:
            peaks.remove(_lower(smooth, peaks[i], peaks[i + 1]))
            continue
        # Each peak owns the samples between the lowest points separating it from its neighbours.
        valleys = [p + int(np.argmin(smooth[p : q + 1])) for p, q in itertools.pairwise(peaks)]
        cuts = np.concatenate(([-np.inf], edges[np.array(valleys) + 1], [np.inf]))
        shares = np.histogram(logs, bins=cuts)[0] / logs.size
        if shares.min() < BIMODAL_MIN_SHARE:
            del peaks[int(np.argmin(shares))]
            continue
        gaps = np.diff(centers[peaks])
        i = int(np.argmin(gaps))
        if gaps[i] < math.log1p(BIMODAL_MIN_SEPARATION):
            peaks.remove(_lower(smooth, peaks[i], peaks[i + 1]))  # a shoulder of the higher one
            continue
        return [(float(math.exp(centers[p])), float(s)) for p, s in zip(peaks, shares, strict=True)]
    return []


def _lower(heights: np.ndarray, p: int, q: int) -> int:
    return p if heights[p] < heights[q] else q


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


# --- checks on the summary and the machine ---------------------------------------------------


def check_high_cv(stats: Stats) -> Diagnostic | None:
    """Coefficient of variation (std / mean) above HIGH_CV."""
    if stats.cv <= HIGH_CV:
        return None
    message = (
        f"the run is noisy: the standard deviation is {_pct(stats.cv)} of the mean "
        f"({_duration(stats.std_ns)} of {_duration(stats.mean_ns)}). Close other programs, "
        "pin the measuring thread to one CPU (--pin CPU) and rerun with more iterations."
    )
    return Diagnostic("high_cv", message, {"cv": stats.cv, "threshold": HIGH_CV})


def check_governor(governor: str | None) -> Diagnostic | None:
    """A cpufreq governor other than "performance" (None: unknown, e.g. in a VM: no finding)."""
    if governor is None or governor == "performance":
        return None
    message = (
        f"the CPU frequency governor is '{governor}', not 'performance': the clock speed may change "
        "during the run. Set it with 'sudo cpupower frequency-set -g performance', or expect "
        "frequency scaling noise."
    )
    return Diagnostic("governor", message, {"governor": governor})


def check_load(other_load_cores: float | None, logical_cores: int | None = None) -> Diagnostic | None:
    """Other processes used more than OTHER_LOAD_CORES cores on average during the run."""
    if other_load_cores is None or other_load_cores <= OTHER_LOAD_CORES:
        return None
    of = f" (of {logical_cores} logical cores)" if logical_cores else ""
    message = (
        f"other processes used {other_load_cores:.2f} CPU cores on average during the run{of}; "
        "results may be noisy: rerun on an idle machine."
    )
    details = {"other_load_cores": other_load_cores, "logical_cores": logical_cores}
    return Diagnostic("load", message, {k: v for k, v in details.items() if v is not None})


def check_steal(steal_cores: float | None, logical_cores: int | None = None) -> Diagnostic | None:
    """The hypervisor ran other guests on this VM's CPUs for more than STEAL_CORES cores on
    average during the run (steal time, /proc/stat): not a process of this machine."""
    if steal_cores is None or steal_cores <= STEAL_CORES:
        return None
    of = f" (of {logical_cores} logical cores)" if logical_cores else ""
    message = (
        f"the hypervisor gave {steal_cores:.2f} CPU cores' worth of this VM's time to other guests "
        f"on average during the run{of} (steal time): the host is shared and busy, so this "
        "machine's speed changes with it; compare interleaved in one process (inferspeed gate)."
    )
    details = {"steal_cores": steal_cores, "logical_cores": logical_cores}
    return Diagnostic("steal", message, {k: v for k, v in details.items() if v is not None})


def check_few_samples(stats: Stats) -> Diagnostic | None:
    """Too few samples for some reported percentile's 95% interval to have both bounds."""
    unbounded = stats.unbounded_percentiles()
    if not unbounded:
        return None
    q_of = {label: q / 100.0 for _, q, label in PERCENTILES}
    needs = [min_samples_for_ci(q_of[label]) for label in unbounded]
    worst = unbounded[-1]  # PERCENTILES is in increasing order: the last needs the most samples
    if len(unbounded) == 1:
        what = f"{worst}'s 95% confidence interval (needs at least {needs[-1]})"
    else:
        what = f"the 95% confidence intervals of {_join(unbounded)} ({worst} needs at least {needs[-1]})"
    message = f"too few samples ({stats.count}) to bound {what}: use more iterations or a longer --max-time."
    details = {"count": stats.count, "unbounded": list(unbounded), "min_samples": needs}
    return Diagnostic("few_samples", message, details)


# --- the machine -----------------------------------------------------------------------------


# --- all together ----------------------------------------------------------------------------


def diagnose(
    samples_ns: np.ndarray,
    stats: Stats,
    *,
    warmup_iterations: int,
    other_load_cores: float | None = None,
    logical_cores: int | None = None,
    governor: str | None = None,
    steal_cores: float | None = None,
    of: str | None = None,
) -> list[Diagnostic]:
    """Every finding about one measurement, most specific first.

    Parameters
    ----------
    samples_ns : numpy.ndarray
        The timed latencies, in the order they were measured.
    stats : Stats
        Their summary (:func:`~inferspeed.stats.summary.summarize`).
    warmup_iterations : int
        Untimed warm-up iterations run before the samples.
    other_load_cores : float, optional
        CPU cores other processes used during the run (:func:`other_load`).
    logical_cores : int, optional
        Logical cores of the machine, for the load message.
    governor : str, optional
        The cpufreq governor (:func:`read_governor`); None: unknown, nothing said.
    steal_cores : float, optional
        CPU cores' worth of steal time during the run (:func:`~inferspeed.facts.machine.steal`).
    of : str, optional
        What ``samples_ns`` are when not the latencies a report's table shows (a server's
        "service times"): the findings about the samples (SAMPLE_CODES) then say so, since
        their figures are not the table's.

    Returns
    -------
    list of Diagnostic
        Empty when nothing was seen.
    """
    found: list[Diagnostic | None] = []
    warmup = check_warmup(samples_ns, warmup_iterations)
    found.append(warmup)
    skip = int(warmup.details["settle_iterations"]) if warmup is not None else 0
    found += [
        check_drift(samples_ns, skip),
        check_bimodal(samples_ns),
        check_high_cv(stats),
        check_governor(governor),
        check_load(other_load_cores, logical_cores),
        check_steal(steal_cores, logical_cores),
        check_few_samples(stats),
    ]
    return [_of(d, of) for d in found if d is not None]


#: The findings about the samples themselves (their trend, modes and spread), whose figures are
#: those of the samples diagnosed (few_samples counts them: one count for every view of a run).
SAMPLE_CODES = ("warmup", "drift", "bimodal", "high_cv")


def _of(d: Diagnostic, of: str | None) -> Diagnostic:
    """``d`` saying which samples its figures are of, for a finding about other samples than a
    report's table shows (``of``: what they are); the machine's findings as they are."""
    if of is None or d.code not in SAMPLE_CODES:
        return d
    return Diagnostic(d.code, f"in the {of}: {d.message}", {**d.details, "of": of})


def format_diagnostics(diags: Iterable[Diagnostic]) -> str:
    """One "WARNING: ..." line per diagnostic, for the terminal; "" when there are none."""
    return "\n".join(f"WARNING: {d.message}" for d in diags)
