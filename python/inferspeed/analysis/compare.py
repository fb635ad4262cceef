"""Comparisons of latency results with statistics: is B faster or slower than A, by how much,
and is the difference more than noise?

For each candidate against the baseline:

- the ratio of medians with a 95% interval: log ratio +- 1.96 standard errors, each median's
  standard error the Maritz-Jarrett estimate (scipy.stats.mstats.mjci; from a seeded subsample
  of COMPARE_SUBSAMPLE samples, scaled by sqrt(subsample / n), for a longer run); and the ratio
  of p99s with a conservative interval from each run's distribution-free p99 interval (inf when
  a run is too short to bound its p99); when either run's samples are correlated in time
  (``stats.time_correlated``), the median ratio's interval is widened to a bootstrap over 20
  consecutive batches of each run;
- the Mann-Whitney U test (scipy.stats.mannwhitneyu, two-sided) on the samples;
- the Hodges-Lehmann shift (median of all pairwise differences B - A, found without forming
  them; up to COMPARE_SUBSAMPLE samples per side) with its interval from the Mann-Whitney
  distribution (normal approximation, ties corrected);
- for interleaved measurements, the median ratio is paired instead: the median over rounds of
  the ratio within each round, with its distribution-free interval, and the p-value is the
  sign test on those ratios (scipy.stats.binomtest), the test that interval inverts;
- for separate runs on a machine whose speed changes for seconds at a time, the interval is
  widened to at least ratio / (1 + v) .. ratio * (1 + v), where v is the larger of the two
  runs' own variation in time: the slowest over the fastest of STATE_BATCHES consecutive
  batch medians, minus 1, counted when it is more than twice what the same samples in random
  order give (``variation_in_time``). A run's level is a draw from the machine's states, so two
  runs cannot show a difference smaller than what one run saw the machine do
  (bench/run_to_run.py measures this);
- for interleaved measurements the p99 ratio (and a decided p90 or p99) is paired too, over
  blocks of consecutive rounds that each hold TAIL_CALLS / (1 - q) calls a side
  (:func:`paired_tail`; a round of 5-80 calls has no p99 of its own): the median of the
  blocks' ratios with the same interval and sign test; ``p99_quantile`` says which quantile
  the blocks really estimate when the rounds hold too few calls, and a decided tail they
  cannot hold is refused (InputError). Each run's own p99 interval, unpaired, is far too
  narrow there: a run's p99 is made by a few bursts that fall in one side's rounds by chance;
- ``statistic`` other than the median ("p90", "p99", "mean"): the verdict is on that
  statistic's ratio instead; paired as above when interleaved (sign test on the per-round
  means, or on the per-block tails); for separate runs, from each run's distribution-free
  interval of that percentile (conservative: the ratio of the extremes), or for the mean its
  standard error, significant when the interval excludes 1;
- the pairing of an interleaved run is read from the results themselves
  (``loop["interleave"]``: the run's id and each round's statistics), so two results read
  back from one run's JSON are compared exactly as the run compared them;
- a verdict: "slower" / "faster" when the test is significant (p < alpha), the ratio's interval
  excludes 1 and the ratio differs from 1 by more than the noise threshold; otherwise
  "no significant difference";
- two decoders' generations (:class:`GenerationComparison`, :func:`generation_comparison`):
  their decode steps compared as above (the time per output token), their times to first
  token beside them, and the verdict on either, or on output tokens per second (a rate: the
  candidate is slower when it is lower).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from ..config import DEFAULT_THRESHOLD, STATISTICS
from ..errors import InputError
from ..results.pool import round_record
from ..results.result import Result
from ..stats.summary import CI_BATCHES, MIN_BATCH

__all__ = [
    "DEFAULT_THRESHOLD",
    "STATISTICS",
    "Comparison",
    "GenerationComparison",
    "PairedTail",
    "by_state",
    "check_comparable",
    "compare",
    "generation_comparison",
    "paired_ratios",
    "paired_rounds",
    "paired_tail",
    "ratio_summary",
    "round_samples",
    "same_model",
    "tail_calls",
]

ALPHA = 0.05
#: Normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054
#: Resamples of the bootstrap over batch medians (samples correlated in time).
BOOTSTRAP = 1000
#: Fewest interleaved rounds for the paired ratio (its interval needs at least 6).
PAIRED_MIN_ROUNDS = 6
#: A paired tail quantile q is taken over blocks of consecutive rounds that hold at least
#: TAIL_CALLS / (1 - q) calls a side (p99: 200, p90: 20): each block's q-quantile then lies
#: between two of its calls (TAIL_CALLS calls above it, on average), not at its maximum.
TAIL_CALLS = 2
#: The tail statistics, by name: their quantile.
TAIL_QUANTILES = {"p90": 0.90, "p99": 0.99}
#: Most samples per side for the medians' standard errors and the pairwise differences; a
#: longer run uses a seeded random subsample of this size (see the module's docstring).
COMPARE_SUBSAMPLE = 50_000
#: Consecutive batches a run is cut into to see how the machine's speed varied during it.
STATE_BATCHES = 40
#: Percentiles of the batch medians whose ratio is a run's variation: the whole range.
STATE_PERCENTILES = (0.0, 100.0)


@dataclass(frozen=True)
class Comparison:
    """One candidate against the baseline (ratios are candidate / baseline)."""

    #: The metric of the results compared (a row of ``inferspeed.metrics.METRICS``).
    metric: ClassVar[str] = "latency"

    baseline: str
    candidate: str
    ratio_median: float
    ratio_median_ci: tuple[float, float]
    ratio_p99: float
    ratio_p99_ci: tuple[float, float]
    p_value: float
    hl_shift_ns: float
    hl_shift_ci_ns: tuple[float, float]
    threshold: float
    verdict: str
    #: How the median ratio's interval was found: "independent" (each median's Maritz-Jarrett
    #: standard error),
    #: "blocks" (widened by a bootstrap of consecutive batches), "machine-variation" (widened to
    #: the variation the runs saw in time, see the module's docstring) or "paired" (the ratio
    #: over interleaved rounds).
    method: str = "independent"
    #: Ratio of the medians of all samples (differs from ratio_median when paired).
    ratio_median_all: float | None = None
    #: The larger of the two runs' variation in time (method "machine-variation").
    machine_variation: float | None = None
    #: The statistic the verdict is on ("median", "p90", "p99" or "mean"), its ratio, the
    #: ratio's 95% interval and the p-value of its test (None: significance is the interval's).
    statistic: str = "median"
    ratio: float | None = None
    ratio_ci: tuple[float, float] | None = None
    statistic_p_value: float | None = None
    #: Interleaved rounds the paired ratio came from (None: not paired).
    rounds: int | None = None
    #: How the p99 ratio was paired: the blocks of consecutive rounds it is the median over,
    #: and the quantile it really estimates (0.99 when every block holds TAIL_CALLS / 0.01
    #: calls a side; less when the rounds were too short, e.g. 0.978: the "p97.8"). None: the
    #: results were not interleaved, and the p99 interval is each run's own (unpaired).
    p99_blocks: int | None = None
    p99_quantile: float | None = None
    #: The same of the decided statistic when it is a tail (p90, p99); None otherwise.
    statistic_blocks: int | None = None
    statistic_quantile: float | None = None
    #: The paired ratio of the decided statistic within each machine state the monitor's
    #: per-round readings fall into (``by_state``), when the rounds span two states or more
    #: (None for a decided tail, paired over blocks of rounds rather than rounds):
    #: each ``{"state", "probe_ns", "rounds", "ratio", "ratio_ci"}``.
    by_state: tuple[dict[str, Any], ...] | None = None
    #: Other figures of the same two results, compared the same way, by name: for
    #: generations, the time to first token (``"ttft"``). The verdict is not on them.
    also: tuple[tuple[str, Comparison], ...] = ()

    @property
    def decided_ratio(self) -> tuple[float, tuple[float, float], float | None]:
        """(ratio, 95% interval, p-value or None) of the statistic the verdict is on."""
        if self.statistic == "median" or self.ratio is None or self.ratio_ci is None:
            return self.ratio_median, self.ratio_median_ci, self.p_value
        return self.ratio, self.ratio_ci, self.statistic_p_value

    @property
    def significant(self) -> bool:
        _, (lo, hi), p = self.decided_ratio
        return (p is None or p < ALPHA) and (lo > 1.0 or hi < 1.0)

    @property
    def higher_is_better(self) -> bool:
        """Whether the decided figure is a rate (more is faster); False: a time."""
        return False

    def slower_by_more_than(self, fraction: float) -> bool:
        """Significantly slower, with the decided statistic's ratio above 1 + ``fraction``
        (below 1 - ``fraction`` for a rate: :attr:`higher_is_better`)."""
        ratio = self.decided_ratio[0]
        worse = ratio < 1.0 - fraction if self.higher_is_better else ratio > 1.0 + fraction
        return self.significant and worse

    def worse_by_more_than(self, fraction: float) -> bool:
        """What a gate fails on, whatever the metric: here :meth:`slower_by_more_than`."""
        return self.slower_by_more_than(fraction)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["significant"] = self.significant
        d["also"] = {name: c.to_dict() for name, c in self.also}
        return d


@dataclass(frozen=True)
class GenerationComparison(Comparison):
    """Two decoders' generations compared. The figures are the time per output token's (their
    samples, the decode steps, compared as latencies); ``also`` holds the time to first
    token's comparison (``"ttft"``). :func:`generation_comparison` makes one."""

    metric: ClassVar[str] = "generation"

    #: What the verdict is on (config.GENERATION_STATISTICS): "tpot", the decode steps'
    #: ``statistic`` (the median: the time per output token); "ttft", the time to first
    #: token's median (``also``'s comparison); "output_tokens_per_s", the batch over the decode
    #: steps' median (higher is better: the candidate is slower when it is below 1). For the
    #: last two, ``ratio``, ``ratio_ci`` and ``statistic_p_value`` are that figure's.
    on: str = "tpot"
    #: Generation requests under load ("server" or "offline"; None: single-stream generations):
    #: the figures are then each completed request's time per output token, and ``also``
    #: holds their times to first token (``"ttft"``, from the schedule) and their inter-token
    #: latencies (``"itl"``).
    requests: str | None = None

    @property
    def decided_ratio(self) -> tuple[float, tuple[float, float], float | None]:
        if self.on == "tpot" or self.ratio is None or self.ratio_ci is None:
            return super().decided_ratio
        return self.ratio, self.ratio_ci, self.statistic_p_value

    @property
    def higher_is_better(self) -> bool:
        return self.on == "output_tokens_per_s"


def generation_comparison(
    tpot: Comparison, ttft: Comparison | None, on: str = "tpot", batches: tuple[int, int] = (1, 1)
) -> GenerationComparison:
    """Two decoders' generations compared, their verdict on ``on`` (what
    :attr:`GenerationComparison.on` says): ``tpot``, the comparison of their decode steps (the
    time per output token), ``ttft`` that of their times to first token (None: too few
    generations to compare them; InputError when ``on`` is "ttft"). Output tokens per second
    are ``batches`` (baseline's, candidate's) over the decode steps' median: their ratio is the
    batches' over the median ratio, with its interval inverted, and the median's p-value when
    the batches agree (otherwise the interval decides)."""
    fields = {f.name: getattr(tpot, f.name) for f in dataclasses.fields(tpot)}
    c = GenerationComparison(**{**fields, "also": () if ttft is None else (("ttft", ttft),), "on": on})
    if on == "ttft":
        if ttft is None:
            raise InputError(
                "deciding on the time to first token needs two whole generations or more on each side"
            )
        ratio, ci, p_value = ttft.decided_ratio
    elif on == "output_tokens_per_s":
        scale = batches[1] / batches[0]
        lo, hi = tpot.ratio_median_ci
        ratio = scale / tpot.ratio_median
        ci = (scale / hi if hi > 0 else 0.0, scale / lo if lo > 0 else math.inf)
        p_value = tpot.p_value if batches[0] == batches[1] else None
    elif on == "tpot":
        return c
    else:
        raise InputError(f"a generation's verdict is on tpot, ttft or output_tokens_per_s, not {on!r}")
    c = dataclasses.replace(c, ratio=ratio, ratio_ci=ci, statistic_p_value=p_value)
    return dataclasses.replace(c, verdict=_verdict(c))


def _subsample(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x if x.size <= COMPARE_SUBSAMPLE else rng.choice(x, COMPARE_SUBSAMPLE, replace=False)


def _median_se(x: np.ndarray, rng: np.random.Generator) -> float:
    """Standard error of the median of ``x``: Maritz-Jarrett (scipy.stats.mstats.mjci), from a
    subsample of COMPARE_SUBSAMPLE for a longer ``x``, scaled by sqrt(subsample / n) (the
    median's standard error goes as 1 / sqrt(n)). NaN for fewer than 3 samples."""
    from scipy.stats import mstats

    if x.size < 3:
        return math.nan
    sub = _subsample(x, rng)
    # Centred: mjci takes sqrt(E[X^2] - E[X]^2) under weights packed around the median, which
    # cancels catastrophically when the samples there are many equal whole nanoseconds (a 5 us
    # model: sqrt of a negative, NaN). The standard error does not depend on the centre.
    with np.errstate(invalid="ignore"):
        se = float(mstats.mjci(sub - np.median(sub), prob=[0.5])[0])
    return (se if math.isfinite(se) else 0.0) * math.sqrt(sub.size / x.size)


def _median_ratio_ci(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95% interval of median(b) / median(a) for independent samples: exp(log ratio +- Z95 *
    se), se the delta-method standard error of the log ratio from each median's Maritz-Jarrett
    standard error. With fewer than 3 samples on a side, the ratio of the extremes."""
    ma, mb = float(np.median(a)), float(np.median(b))
    rel = math.hypot(_median_se(a, rng) / ma, _median_se(b, rng) / mb) if ma > 0 and mb > 0 else math.nan
    if not math.isfinite(rel):
        return (float(b.min() / a.max()), float(b.max() / a.min()) if a.min() > 0 else math.inf)
    return (mb / ma * math.exp(-Z95 * rel), mb / ma * math.exp(Z95 * rel))


def _paired_ratio(
    base_rounds: Sequence[dict[str, Any]], cand_rounds: Sequence[dict[str, Any]], statistic: str = "median"
) -> tuple[float, tuple[float, float], float]:
    """Median of the per-round ratios of ``statistic`` (round records, ``round_record``), with
    its distribution-free 95% interval and sign test (:func:`ratio_summary`)."""
    key = f"{statistic}_ns"
    ratios = [c[key] / b[key] for b, c in zip(base_rounds, cand_rounds, strict=True) if b[key] > 0]
    return ratio_summary(np.asarray(ratios, dtype=np.float64))


def ratio_summary(ratios: np.ndarray) -> tuple[float, tuple[float, float], float]:
    """The median of paired ratios (per round or per block of rounds), its distribution-free 95%
    interval, and the two-sided sign test of "as many above 1 as below" (the test that the
    interval inverts: the interval excludes 1 exactly when p < 0.05; ratios of exactly 1 are
    left out of the test)."""
    from scipy import stats as sps

    from ..stats.summary import quantile_ci

    ratios = np.sort(ratios[np.isfinite(ratios)])
    if ratios.size == 0:
        raise InputError("the rounds hold no positive times to pair")
    lo, hi = quantile_ci(ratios, 0.5)
    above, below = int((ratios > 1.0).sum()), int((ratios < 1.0).sum())
    p_value = float(sps.binomtest(above, above + below, 0.5).pvalue) if above + below else 1.0
    return (
        float(np.median(ratios)),
        (
            float(lo) if lo is not None else float(ratios[0]),
            float(hi) if hi is not None else float(ratios[-1]),
        ),
        p_value,
    )


@dataclass(frozen=True)
class PairedTail:
    """A tail quantile paired over blocks of consecutive rounds (:func:`paired_tail`):
    ``ratios`` one per block (candidate / baseline), their median with its interval and sign
    test, the ``blocks``, and the ``quantile`` the blocks really estimate (the one asked when
    each block holds TAIL_CALLS / (1 - q) calls a side)."""

    ratios: np.ndarray
    ratio: float
    ci: tuple[float, float]
    p_value: float
    blocks: int
    quantile: float


def tail_calls(q: float) -> int:
    """Calls a side a block of rounds needs for its ``q``-quantile (TAIL_CALLS above it)."""
    return math.ceil(round(TAIL_CALLS / (1.0 - q), 6))


def _tail_blocks(counts_a: Sequence[int], counts_b: Sequence[int], need: int) -> list[range]:
    """Consecutive rounds cut into blocks of at least ``need`` calls on each side (the rest
    joins the last block); one block of every round when they hold fewer."""
    blocks, start, held_a, held_b = [], 0, 0, 0
    for r, (na, nb) in enumerate(zip(counts_a, counts_b, strict=True)):
        held_a, held_b = held_a + na, held_b + nb
        if held_a >= need and held_b >= need:
            blocks.append(range(start, r + 1))
            start, held_a, held_b = r + 1, 0, 0
    if start < len(counts_a):
        if blocks:
            blocks[-1] = range(blocks[-1].start, len(counts_a))
        else:
            blocks.append(range(0, len(counts_a)))
    return blocks


def paired_tail(
    samples_a: Sequence[np.ndarray], samples_b: Sequence[np.ndarray], q: float
) -> PairedTail | None:
    """The ``q``-quantile ratio paired over blocks of consecutive rounds (each side's samples,
    one array per round): blocks of TAIL_CALLS / (1 - q) calls a side when that leaves
    PAIRED_MIN_ROUNDS blocks or more, else PAIRED_MIN_ROUNDS blocks of what there is (the
    quantile estimated is then lower: each block's is an order statistic near its maximum,
    whose expected level n / (n + 1) is what ``quantile`` reports). Each block's quantile is
    Hyndman and Fan's definition 6 (numpy's "weibull": position q (n + 1)), unbiased in level.
    None with fewer than PAIRED_MIN_ROUNDS rounds."""
    rounds = len(samples_a)
    if rounds < PAIRED_MIN_ROUNDS:
        return None
    counts_a, counts_b = [x.size for x in samples_a], [x.size for x in samples_b]
    blocks = _tail_blocks(counts_a, counts_b, tail_calls(q))
    if len(blocks) < PAIRED_MIN_ROUNDS:
        cut = np.array_split(np.arange(rounds), PAIRED_MIN_ROUNDS)
        blocks = [range(int(c[0]), int(c[-1]) + 1) for c in cut]
    ratios, levels = [], []
    for block in blocks:
        xa = np.concatenate([samples_a[r] for r in block]).astype(np.float64)
        xb = np.concatenate([samples_b[r] for r in block]).astype(np.float64)
        qa, qb = (float(np.quantile(x, q, method="weibull")) for x in (xa, xb))
        ratios.append(qb / qa if qa > 0 else math.nan)
        levels += [min(q, x.size / (x.size + 1.0)) for x in (xa, xb)]
    found = np.asarray(ratios)
    ratio, ci, p_value = ratio_summary(found)
    return PairedTail(found, ratio, ci, p_value, len(blocks), float(np.mean(levels)))


def round_samples(result: Result, records: Sequence[dict[str, Any]]) -> list[np.ndarray] | None:
    """A pooled interleaved result's samples cut back into its rounds (by each round record's
    ``count``; the pooled samples are the rounds' in order); None when the counts do not add up
    to the samples (outliers dropped from the counts)."""
    counts = [int(r.get("count", 0)) for r in records]
    if sum(counts) != result.samples_ns.size or not counts:
        return None
    return list(np.split(result.samples_ns, np.cumsum(counts)[:-1]))


def by_state(
    base_rounds: Sequence[dict[str, Any]], cand_rounds: Sequence[dict[str, Any]], statistic: str = "median"
) -> tuple[dict[str, Any], ...] | None:
    """The paired ratio of ``statistic`` within each machine state: the rounds grouped by the
    monitor's reading as each started (``probe_ns``; ``stats.states.speed_states``), each
    state with PAIRED_MIN_ROUNDS rounds or more. None when the rounds have no readings or fall
    into one state (the overall ratio is that state's)."""
    from ..stats.states import speed_states

    probes = [b.get("probe_ns") for b in base_rounds]
    if not probes or any(p is None for p in probes):
        return None
    labels, levels = speed_states([float(p) for p in probes if p is not None])
    if len(levels) < 2:
        return None
    out = []
    for state, level in enumerate(levels):
        chosen = [k for k, label in enumerate(labels) if label == state]
        if len(chosen) < PAIRED_MIN_ROUNDS:
            continue
        ratio, ci, _ = _paired_ratio(
            [base_rounds[k] for k in chosen], [cand_rounds[k] for k in chosen], statistic
        )
        out.append({"state": state, "probe_ns": level, "rounds": len(chosen), "ratio": ratio, "ratio_ci": ci})
    return tuple(out)


def paired_rounds(
    baseline: Result, candidate: Result
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """The round records of two results measured interleaved in one run (the same
    ``loop["interleave"]["id"]``, as many rounds), paired; None otherwise."""
    a, b = baseline.loop.get("interleave"), candidate.loop.get("interleave")
    if (
        not isinstance(a, dict)
        or not isinstance(b, dict)
        or a.get("id") is None
        or a.get("id") != b.get("id")
    ):
        return None
    ra, rb = a.get("rounds") or [], b.get("rounds") or []
    if len(ra) != len(rb) or not ra or a.get("session") == b.get("session"):
        return None
    return list(ra), list(rb)


def _unpaired_statistic_ci(
    baseline: Result, candidate: Result, statistic: str
) -> tuple[float, tuple[float, float]]:
    """Ratio of ``statistic`` (p90, p99 or mean) of two separate runs and its conservative 95%
    interval: each percentile's distribution-free interval (the ratio of the extremes), or the
    mean's standard error (delta method)."""
    sa, sb = baseline.stats, candidate.stats
    if statistic == "mean":
        ratio = sb.mean_ns / sa.mean_ns
        rel = math.hypot(
            sa.std_ns / sa.mean_ns / math.sqrt(sa.count), sb.std_ns / sb.mean_ns / math.sqrt(sb.count)
        )
        return ratio, (ratio * math.exp(-Z95 * rel), ratio * math.exp(Z95 * rel))
    ratio = float(getattr(sb, f"{statistic}_ns") / getattr(sa, f"{statistic}_ns"))
    alo, ahi = getattr(sa, f"ci95_{statistic}_ns")
    blo, bhi = getattr(sb, f"ci95_{statistic}_ns")
    lo = blo / ahi if blo is not None and ahi else 0.0
    hi = bhi / alo if bhi is not None and alo else math.inf
    return ratio, (min(lo, ratio), max(hi, ratio))


def _tail_ratio_ci(baseline: Result, candidate: Result, point: float) -> tuple[float, float]:
    """Interval of the p99 ratio from each run's distribution-free p99 interval (conservative:
    the ratio of the extremes). A subsample bootstrap is biased in the tail, so not that."""
    alo, ahi = baseline.stats.ci95_p99_ns
    blo, bhi = candidate.stats.ci95_p99_ns
    lo = blo / ahi if blo is not None and ahi else 0.0
    hi = bhi / alo if bhi is not None and alo else math.inf
    return (min(lo, point), max(hi, point))


def _block_ratio_ci(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[float, float] | None:
    """Bootstrap interval of the median ratio from CI_BATCHES consecutive batches of each run
    (samples in the order measured): honest when samples are correlated in time, where the
    sample-by-sample bootstrap is far too narrow. None when a run is too short for batches."""
    medians = []
    for x in (a, b):
        size = x.size // CI_BATCHES
        if size < MIN_BATCH:
            return None
        medians.append(np.median(x[: size * CI_BATCHES].reshape(CI_BATCHES, size), axis=1))
    return _bootstrap_median_ratio(medians[0], medians[1], rng)


def _bootstrap_median_ratio(ma: np.ndarray, mb: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """Bootstrap interval of median(mb) / median(ma), resampling each side's batch medians."""
    ia = rng.integers(0, ma.size, size=(BOOTSTRAP, ma.size))
    ib = rng.integers(0, mb.size, size=(BOOTSTRAP, mb.size))
    ratios = np.median(mb[ib], axis=1) / np.median(ma[ia], axis=1)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def variation_in_time(x: np.ndarray, rng: np.random.Generator) -> float | None:
    """How much a run's speed varied in time beyond chance: the slowest over the fastest of the
    medians of STATE_BATCHES consecutive batches of ``x`` (in the order measured), minus 1,
    when that is more than twice the same figure for the samples shuffled (no order in time);
    else None, as when the run is too short for batches of MIN_BATCH samples."""
    size = x.size // STATE_BATCHES
    if size < MIN_BATCH:
        return None

    def spread(y: np.ndarray) -> float:
        medians = np.median(y[: size * STATE_BATCHES].reshape(STATE_BATCHES, size), axis=1)
        lo, hi = np.percentile(medians, STATE_PERCENTILES)
        return float(hi / lo - 1.0) if lo > 0 else 0.0

    seen = spread(x)
    return seen if seen > 2.0 * spread(rng.permutation(x)) else None


def _pairwise_order_stats(a: np.ndarray, b: np.ndarray, ranks: Sequence[int]) -> np.ndarray:
    """The ``ranks``-th smallest (1-based) of the n*m differences b_j - a_i, without forming them:
    ``a`` and ``b`` sorted, integer-valued (nanoseconds), so each difference is an integer and a
    bisection over integers finds it exactly, counting the differences <= t with searchsorted
    (O(m log n) a step, about log2 of the range of the differences steps)."""
    r = np.asarray(ranks, dtype=np.int64)[:, None]
    lo = np.full(r.shape, b[0] - a[-1] - 1.0)  # fewer than r differences <= lo
    hi = np.full(r.shape, b[-1] - a[0])  # at least r differences <= hi
    total = a.size * b.size
    while np.any(hi - lo > 1.0):
        mid = np.floor((lo + hi) / 2.0)
        # For each b_j, the differences <= mid are those with a_i >= b_j - mid.
        below = np.searchsorted(a, (b[None, :] - mid).ravel(), side="left").reshape(r.shape[0], -1)
        enough = total - below.sum(axis=1, keepdims=True) >= r
        hi, lo = np.where(enough, mid, hi), np.where(enough, lo, mid)
    return hi.ravel()


def _hodges_lehmann(a: np.ndarray, b: np.ndarray) -> tuple[float, tuple[float, float]]:
    """Median of all differences b_j - a_i and its 95% interval: the differences of ranks C and
    n*m + 1 - C, C = n*m/2 - Z95 * sd(U) rounded (Mann-Whitney U, normal approximation, sd
    corrected for ties); ``a`` and ``b`` integer-valued."""
    a, b = np.sort(a), np.sort(b)
    n, m = a.size, b.size
    total = n * m
    _, ties = np.unique(np.concatenate([a, b]), return_counts=True)
    tie_term = float((ties.astype(np.float64) ** 3 - ties).sum()) / ((n + m) * (n + m - 1))
    sd_u = math.sqrt(n * m / 12.0 * ((n + m + 1) - tie_term))
    c = min(max(round(total / 2.0 - Z95 * sd_u), 1), (total + 1) // 2)
    mid = [(total + 1) // 2, total // 2 + 1]
    lo, hi, m1, m2 = _pairwise_order_stats(a, b, [c, total + 1 - c, *mid])
    return float((m1 + m2) / 2.0), (float(lo), float(hi))


def compare(
    baseline: Result,
    candidate: Result,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    baseline_label: str = "A",
    candidate_label: str = "B",
    seed: int = 0,
    rounds: tuple[Sequence[Result], Sequence[Result]] | None = None,
    statistic: str = "median",
) -> Comparison:
    """Compare ``candidate`` with ``baseline`` (see the module's docstring). The median ratio
    and its interval are paired when the two were measured interleaved: from ``rounds`` (the
    per-round results, in pairs) or from the pairing the results carry; the median over rounds
    of median(candidate) / median(baseline) in the same round, which a machine that changes
    speed between rounds cannot bias.

    Parameters
    ----------
    baseline : Result
        The reference: a latency result (``metric="latency"``) of at least 2 samples.
    candidate : Result
        The result judged against it, likewise; every ratio is candidate / baseline.
    threshold : float, default DEFAULT_THRESHOLD (0.02)
        A fraction: a ratio of the decided statistic within 1 +- ``threshold`` is "no
        significant difference" even when the test finds it significant.
    baseline_label, candidate_label : str, default "A" and "B"
        The two sides' names in the :class:`Comparison` and its text.
    seed : int, default 0
        Seed of every random draw (the subsamples of a run longer than COMPARE_SUBSAMPLE
        samples, the batch bootstrap, the shuffles of ``variation_in_time``): the same inputs
        give the same comparison.
    rounds : (sequence of Result, sequence of Result), optional
        The per-round results of an interleaved run, the baseline's and the candidate's, one
        of each per round in the same order. With at least PAIRED_MIN_ROUNDS (6) rounds the
        ratios are paired over them. None (the default): the pairing the two results carry
        (``loop["interleave"]``, same run), or, without one, the two are separate runs.
    statistic : str, default "median"
        What the verdict is on: "median", "p90", "p99" or "mean" (config.STATISTICS); per
        round when paired.

    Returns
    -------
    Comparison
        The median and p99 ratios with their intervals, the Mann-Whitney p-value, the
        Hodges-Lehmann shift, the decided statistic's ratio and test, and the verdict
        ("slower", "faster" or "no significant difference").

    Raises
    ------
    InputError
        An unknown ``statistic``, a result of another metric
        (:func:`inferspeed.analysis.verdicts.compare_results` compares any metric), or a
        result of fewer than 2 samples.
    """
    return _compared(
        baseline, candidate, threshold, (baseline_label, candidate_label), seed, rounds, statistic
    )


def _compared(
    baseline: Result,
    candidate: Result,
    threshold: float,
    labels: tuple[str, str],
    seed: int,
    rounds: tuple[Sequence[Result], Sequence[Result]] | None,
    statistic: str,
) -> Comparison:
    """:func:`compare`'s work (its docstring says what each argument is)."""
    from scipy import stats as sps  # slow to import: only here

    baseline_label, candidate_label = labels
    if statistic not in STATISTICS:
        raise InputError(f"statistic must be one of {', '.join(STATISTICS)}, not {statistic!r}")
    # A generation's samples are its decode steps' latencies: they compare as latencies do.
    held = sorted({baseline.metric, candidate.metric} - {Comparison.metric, "generation"})
    if baseline.metric != candidate.metric and not held:
        held = [f"{baseline.metric} and {candidate.metric}"]
    if held:
        raise InputError(
            f"compare() compares latencies; these results hold {', '.join(held)}: "
            "inferspeed.analysis.verdicts.compare_results compares any metric"
        )
    rng = np.random.default_rng(seed)
    a_all = baseline.samples_ns.astype(np.float64)
    b_all = candidate.samples_ns.astype(np.float64)
    if a_all.size < 2 or b_all.size < 2:
        raise InputError("each result needs at least 2 samples to compare")
    ratio_all = float(np.median(b_all) / np.median(a_all))
    p_value = float(sps.mannwhitneyu(a_all, b_all, alternative="two-sided").pvalue)
    ratio, ratio_ci = ratio_all, _median_ratio_ci(a_all, b_all, rng)
    method, variation = "independent", None
    records = (
        ([round_record(r) for r in rounds[0]], [round_record(r) for r in rounds[1]])
        if rounds is not None
        else paired_rounds(baseline, candidate)
    )
    split = None
    if records is not None and len(records[0]) >= PAIRED_MIN_ROUNDS:
        method = "paired"
        ratio, ratio_ci, p_value = _paired_ratio(*records)
        split = _split_rounds(baseline, candidate, rounds, records)
    else:
        records = None
        ratio_ci, method, variation = _widened_for_time(
            a_all, b_all, baseline, candidate, ratio, ratio_ci, rng
        )
    p99, p99_ci, p99_tail = _p99_ratio(baseline, candidate, records, split)
    shift, shift_ci = _hodges_lehmann(_subsample(a_all, rng), _subsample(b_all, rng))
    decided, tail = _decided_statistic(baseline, candidate, statistic, records, split)
    c = Comparison(
        baseline=baseline_label,
        candidate=candidate_label,
        ratio_median=ratio,
        ratio_median_ci=ratio_ci,
        ratio_p99=p99,
        ratio_p99_ci=p99_ci,
        p_value=p_value,
        hl_shift_ns=shift,
        hl_shift_ci_ns=shift_ci,
        threshold=threshold,
        verdict="",
        method=method,
        ratio_median_all=ratio_all,
        machine_variation=variation,
        statistic=statistic,
        ratio=decided[0],
        ratio_ci=decided[1],
        statistic_p_value=decided[2],
        rounds=None if records is None else len(records[0]),
        by_state=None if records is None or tail is not None else by_state(*records, statistic=statistic),
        p99_blocks=None if p99_tail is None else p99_tail.blocks,
        p99_quantile=None if p99_tail is None else p99_tail.quantile,
        statistic_blocks=None if tail is None else tail.blocks,
        statistic_quantile=None if tail is None else tail.quantile,
    )
    return dataclasses.replace(c, verdict=_verdict(c))


def _verdict(c: Comparison) -> str:
    """ "slower" / "faster" when the decided statistic differs significantly and by more than
    the threshold (a rate, ``higher_is_better``, is slower when it is lower), else "no
    significant difference"."""
    ratio = c.decided_ratio[0]
    above, below = ratio > 1.0 + c.threshold, ratio < 1.0 - c.threshold
    if c.significant and (below if c.higher_is_better else above):
        return "slower"
    if c.significant and (above if c.higher_is_better else below):
        return "faster"
    return "no significant difference"


def _widened_for_time(
    a: np.ndarray,
    b: np.ndarray,
    baseline: Result,
    candidate: Result,
    ratio: float,
    ratio_ci: tuple[float, float],
    rng: np.random.Generator,
) -> tuple[tuple[float, float], str, float | None]:
    """The median ratio's interval of separate runs, widened for samples correlated in time
    (batch bootstrap) and for the machine's variation the runs saw: (interval, method,
    variation or None)."""
    method, variation = "independent", None
    if baseline.stats.time_correlated or candidate.stats.time_correlated:
        # Samples correlated in time: only whole stretches of the run are independent.
        blocks = _block_ratio_ci(a, b, rng)
        if blocks is not None:
            method = "blocks"
            ratio_ci = (min(ratio_ci[0], blocks[0]), max(ratio_ci[1], blocks[1]))
    found = [v for v in (variation_in_time(a, rng), variation_in_time(b, rng)) if v is not None]
    if found:
        method, variation = "machine-variation", max(found)
        ratio_ci = (min(ratio_ci[0], ratio / (1.0 + variation)), max(ratio_ci[1], ratio * (1.0 + variation)))
    return ratio_ci, method, variation


def _split_rounds(
    baseline: Result,
    candidate: Result,
    rounds: tuple[Sequence[Result], Sequence[Result]] | None,
    records: tuple[Sequence[dict[str, Any]], Sequence[dict[str, Any]]],
) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """Each side's samples, one array per round: the per-round results' when given, else the
    pooled samples cut by the round records (None when they cannot be)."""
    if rounds is not None:
        return [r.samples_ns for r in rounds[0]], [r.samples_ns for r in rounds[1]]
    a, b = round_samples(baseline, records[0]), round_samples(candidate, records[1])
    return None if a is None or b is None else (a, b)


def _tail(
    records: tuple[Sequence[dict[str, Any]], Sequence[dict[str, Any]]],
    split: tuple[list[np.ndarray], list[np.ndarray]] | None,
    name: str,
) -> PairedTail:
    """The tail statistic ``name`` paired: over blocks of the rounds' samples, or, when the
    samples cannot be cut into rounds, over the rounds' own figures (numpy's default
    percentile of n calls: level (q (n - 1) + 1) / (n + 1), reported)."""
    q = TAIL_QUANTILES[name]
    if split is not None:
        found = paired_tail(*split, q)
        if found is not None:
            return found
    key = f"{name}_ns"
    ratios = np.asarray([c[key] / b[key] if b[key] > 0 else math.nan for b, c in zip(*records, strict=True)])
    counts = [int(r.get("count", 1)) for side in records for r in side]
    level = float(np.mean([min(q, (q * (n - 1) + 1) / (n + 1)) for n in counts]))
    ratio, ci, p_value = ratio_summary(ratios)
    return PairedTail(ratios, ratio, ci, p_value, len(ratios), level)


def paired_ratios(baseline: Result, candidate: Result, statistic: str = "median") -> np.ndarray | None:
    """The ratios a paired verdict on ``statistic`` takes the median of: one per round (median,
    mean), or per block of rounds (p90, p99: :func:`paired_tail`); None when the two results
    were not measured interleaved in one run with PAIRED_MIN_ROUNDS rounds or more."""
    records = paired_rounds(baseline, candidate)
    if records is None or len(records[0]) < PAIRED_MIN_ROUNDS:
        return None
    if statistic in TAIL_QUANTILES:
        return _tail(records, _split_rounds(baseline, candidate, None, records), statistic).ratios
    key = f"{statistic}_ns"
    return np.asarray([c[key] / b[key] if b[key] > 0 else math.nan for b, c in zip(*records, strict=True)])


def _p99_ratio(
    baseline: Result,
    candidate: Result,
    records: tuple[Sequence[dict[str, Any]], Sequence[dict[str, Any]]] | None,
    split: tuple[list[np.ndarray], list[np.ndarray]] | None,
) -> tuple[float, tuple[float, float], PairedTail | None]:
    """The p99 ratio with its interval: paired over blocks of rounds when interleaved
    (:func:`paired_tail`), else the ratio of the two runs' p99s with each run's own interval."""
    if records is not None:
        tail = _tail(records, split, "p99")
        return tail.ratio, tail.ci, tail
    p99 = float(candidate.stats.p99_ns / baseline.stats.p99_ns)
    return p99, _tail_ratio_ci(baseline, candidate, p99), None


def _decided_statistic(
    baseline: Result,
    candidate: Result,
    statistic: str,
    records: tuple[Sequence[dict[str, Any]], Sequence[dict[str, Any]]] | None,
    split: tuple[list[np.ndarray], list[np.ndarray]] | None,
) -> tuple[tuple[float | None, tuple[float, float] | None, float | None], PairedTail | None]:
    """(ratio, interval, p-value or None) of a statistic other than the median, and its
    blocks when it is a paired tail: paired over the rounds when there are (a tail over blocks
    of rounds; InputError when the rounds hold too few calls for its quantile), else from each
    run's own interval; (None, None, None) for the median (the median's own figures decide)."""
    if statistic == "median":
        return (None, None, None), None
    if records is None:
        ratio, ci = _unpaired_statistic_ci(baseline, candidate, statistic)
        return (ratio, ci, None), None
    if statistic not in TAIL_QUANTILES:
        return _paired_ratio(*records, statistic=statistic), None
    tail = _tail(records, split, statistic)
    q = TAIL_QUANTILES[statistic]
    if tail.quantile < q - 1e-9:
        calls = min(baseline.stats.count, candidate.stats.count)
        raise InputError(
            f"too few calls for a paired {statistic}: it needs {PAIRED_MIN_ROUNDS} blocks of rounds "
            f"of {tail_calls(q)} calls a side, and {calls} calls give the p{100 * tail.quantile:.1f} at "
            f"best; measure longer (--max-time) or decide on the median"
        )
    return (tail.ratio, tail.ci, tail.p_value), tail


def same_model(baseline: Result, candidate: Result) -> bool | None:
    """Whether two results measure the same model: by graph and weights (``graph_sha256``:
    documentation left out) when both have it, else by the file's hash; None when unknown."""
    for key in ("graph_sha256", "sha256"):
        a, b = baseline.model.get(key), candidate.model.get(key)
        if a and b:
            return bool(a == b)
    return None


def check_comparable(
    baseline: Result, candidate: Result, *, models: bool = True, machines: bool = True
) -> str | None:
    """Why two results should not be compared, or None: different models (by graph and
    weights, ``models``) or machines (CPU model and cores, ``machines``). Results measured
    interleaved in one run are comparable: one machine, and different models on purpose."""
    if paired_rounds(baseline, candidate) is not None:
        return None
    if models and same_model(baseline, candidate) is False:
        return (
            f"they measure different models ({baseline.model.get('name')} vs {candidate.model.get('name')})"
        )
    if not machines:
        return None
    cpu_a = baseline.environment.get("cpu", {})
    cpu_b = candidate.environment.get("cpu", {})
    for key in ("model", "logical_cores"):
        if cpu_a.get(key) != cpu_b.get(key):
            return f"they come from different machines (CPU {key}: {cpu_a.get(key)} vs {cpu_b.get(key)})"
    return None
