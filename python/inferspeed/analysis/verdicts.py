"""Comparisons whatever the metric: the one place the analysis layer dispatches on what two
Results hold.

:func:`compare_results` compares two Results of one metric (``Result.metric``, a row of
:data:`inferspeed.metrics.METRICS`) by that metric's comparison, found in :data:`COMPARERS`:
latencies by :func:`~inferspeed.analysis.compare.compare` (statistics of noise, paired over
interleaved rounds when the results carry their pairing), instruction counts by
:func:`~inferspeed.analysis.instructions.compare_instructions` (a ratio of deterministic
counts). A command needs the same of either comparison (:data:`Verdict`): the two labels,
``verdict`` in words, ``worse_by_more_than(fraction)`` (what a gate fails on) and
``to_dict()``; the text of each is the report layer's (``report.text``).

:func:`runtime_differences` says what differs between the runtimes of two results that their
metric is sensitive to: a deterministic metric's saved result compares directly with a new one
only when nothing does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from ..config import DEFAULT_THRESHOLD, GENERATION_STATISTICS
from ..errors import ConfigError, InputError
from ..results.result import Result
from ..stats.generation_requests import is_load, request_figures
from ..stats.summary import summarize
from .compare import (
    PAIRED_MIN_ROUNDS,
    Comparison,
    compare,
    generation_comparison,
    paired_ratios,
    paired_rounds,
)
from .instructions import InstructionComparison, compare_instructions, environment_differences

__all__ = [
    "COMPARERS",
    "CompareOptions",
    "Verdict",
    "compare_results",
    "one_threshold",
    "paired_slowdowns",
    "runtime_differences",
    "ttft_samples",
]

#: A comparison of two results of one metric.
Verdict = Comparison | InstructionComparison


@dataclass(frozen=True)
class CompareOptions:
    """What a comparison may be told; each metric's comparison reads the options it has.

    ``threshold``: differences within +-threshold are "no significant difference" (latency);
    ``statistic``: what a latency verdict is on (config.STATISTICS), or for generations also
    config.GENERATION_STATISTICS; ``rounds``: interleaved per-round results in
    pairs (latency); ``limit``: the gate's fraction, recorded in the comparison where the
    metric records it (instruction counts: ``fail_if_more``)."""

    baseline_label: str = "A"
    candidate_label: str = "B"
    threshold: float = DEFAULT_THRESHOLD
    statistic: str = "median"
    rounds: tuple[Sequence[Result], Sequence[Result]] | None = None
    limit: float | None = None


def _latency(a: Result, b: Result, o: CompareOptions) -> Verdict:
    _refuse_generation_statistic(a, o)
    return compare(
        a,
        b,
        threshold=o.threshold,
        baseline_label=o.baseline_label,
        candidate_label=o.candidate_label,
        rounds=o.rounds,
        statistic=o.statistic,
    )


def _refuse_generation_statistic(a: Result, o: CompareOptions) -> None:
    """A ConfigError when ``o`` decides on a generation's figure (tpot, ttft, output tokens/s)
    and the results hold another metric."""
    if o.statistic not in GENERATION_STATISTICS:
        return
    what = "latencies of single calls" if a.metric == "latency" else a.metric
    raise ConfigError(
        f"--statistic {o.statistic} is a generation's figure and {o.baseline_label} holds {what} (a model "
        "without a KV cache, or --single-call): decide on the median, p90, p99 or mean"
    )


def _generations(r: Result) -> tuple[np.ndarray, np.ndarray]:
    """A generation result's per-step call times and sampling times, [generations, G]."""
    g = r.generation or {}
    steps = np.asarray(g.get("step_ns") or [], dtype=np.int64).reshape(-1, int(g.get("gen_tokens") or 1))
    return steps, np.asarray(g.get("sample_ns") or [], dtype=np.int64).reshape(steps.shape)


def ttft_samples(r: Result, generations: slice = slice(None)) -> np.ndarray:
    """A generation result's times to first token: one per whole generation, in order (the
    prefill's call and the first token's sampling; ``generations``: those of one round); for
    generation requests under load (:func:`~inferspeed.stats.generation_requests.is_load`) one
    per completed request, from its scheduled arrival (server) or its start (offline)."""
    if is_load(r.generation):
        load: np.ndarray = request_figures(r.generation or {})["ttft"]
        return load
    steps, picks = (x[generations] for x in _generations(r))
    done = steps[:, 0] >= 0
    ttft: np.ndarray = steps[done, 0] + np.maximum(picks[done, 0], 0)
    return ttft


def _as_latency(r: Result, samples: np.ndarray) -> Result:
    """``r`` as a latency result of ``samples`` (one figure per generation or request, in
    order): what compares them."""
    x = np.asarray(samples, dtype=np.int64)
    if x.size == 0:
        x = np.zeros(1, np.int64)
    return dataclasses.replace(
        r, samples_ns=x, stats=summarize(x), monitor=None, generation=None, loop={}, config={}
    )


def _ttft_of(r: Result, generations: slice = slice(None)) -> Result:
    """A generation result as a latency result of its times to first token (:func:`ttft_samples`)."""
    return _as_latency(r, ttft_samples(r, generations))


def _ttft_by_round(r: Result, records: Sequence[dict[str, Any]]) -> tuple[Result, ...] | None:
    """A pooled interleaved generation result's times to first token, one result per round:
    each round holds whole generations, its record's ``count`` their decode steps (G - 1 a
    generation). None when the counts do not add up to the generations (a round cut short)."""
    steps, _ = _generations(r)
    per = steps.shape[1] - 1
    counts = [int(rec.get("count", 0)) for rec in records]
    if per < 1 or any(c % per for c in counts) or sum(counts) != per * steps.shape[0]:
        return None
    ends = np.cumsum([c // per for c in counts])
    return tuple(_ttft_of(r, slice(int(e - c // per), int(e))) for e, c in zip(ends, counts, strict=True))


def _ttft_rounds(a: Result, b: Result, o: CompareOptions) -> tuple[Sequence[Result], Sequence[Result]] | None:
    """The times to first token of each interleaved round, both sides': from the per-round
    results when given, else from the rounds the pooled results carry; None: not paired."""
    if o.rounds is not None:
        return tuple(map(_ttft_of, o.rounds[0])), tuple(map(_ttft_of, o.rounds[1]))
    records = paired_rounds(a, b)
    if records is None:
        return None
    ra, rb = _ttft_by_round(a, records[0]), _ttft_by_round(b, records[1])
    return None if ra is None or rb is None else (ra, rb)


def _compare_ttft(a: Result, b: Result, o: CompareOptions) -> Comparison:
    """The two results' times to first token compared as latencies (their medians; paired per
    round where the generations were interleaved)."""
    return compare(
        _ttft_of(a),
        _ttft_of(b),
        threshold=o.threshold,
        baseline_label=o.baseline_label,
        candidate_label=o.candidate_label,
        rounds=_ttft_rounds(a, b, o),
    )


def _generation(a: Result, b: Result, o: CompareOptions) -> Verdict:
    """Generations: the time per output token (their samples) compared as latencies, the time
    to first token beside it when each side has two whole generations or more; the verdict on
    ``o.statistic`` (tpot or a latency statistic: the decode steps'; ttft; output tokens/s)."""
    on = o.statistic if o.statistic in GENERATION_STATISTICS else "tpot"
    if is_load(a.generation) or is_load(b.generation):
        return _generation_load(a, b, o, on)
    tpot = compare(
        a,
        b,
        threshold=o.threshold,
        baseline_label=o.baseline_label,
        candidate_label=o.candidate_label,
        rounds=o.rounds,
        statistic="median" if o.statistic in GENERATION_STATISTICS else o.statistic,
    )
    ttft = None
    if min(_generations(r)[0].shape[0] for r in (a, b)) >= 2:
        ttft = _compare_ttft(a, b, o)
    batches = (int((a.generation or {}).get("batch") or 1), int((b.generation or {}).get("batch") or 1))
    return generation_comparison(tpot, ttft, on, batches)


def _load_scenario(r: Result, label: str) -> str:
    """The scenario of a generation result: "server" or "offline" for requests under load;
    ConfigError for single-stream generations (they compare with each other only)."""
    if not is_load(r.generation):
        raise ConfigError(
            f"{label} holds single-stream generations and the other generation requests under load: "
            "compare results of one scenario (--scenario)"
        )
    return r.scenario


def _generation_load(a: Result, b: Result, o: CompareOptions, on: str) -> Verdict:
    """Generation requests under load (server or offline): the time per output token of each
    completed request compared as latencies (the verdict's, unless ``on`` says otherwise),
    their times to first token (from the schedule: the scheduled arrival, or offline the
    request's start) and inter-token latencies beside it. Output tokens/s are the batch over
    the median request's TPOT, times the streams offline (all of them busy). Never paired: a
    load runs on its own."""
    scenarios = (_load_scenario(a, o.baseline_label), _load_scenario(b, o.candidate_label))
    if scenarios[0] != scenarios[1]:
        raise ConfigError(
            f"{o.baseline_label} holds generation requests of the {scenarios[0]} scenario and "
            f"{o.candidate_label} of the {scenarios[1]}: compare results of one scenario"
        )
    figures = [request_figures(r.generation or {}) for r in (a, b)]
    if min(f["tpot"].size for f in figures) < 2:
        raise InputError("each result needs at least 2 completed requests to compare")
    statistic = "median" if o.statistic in GENERATION_STATISTICS else o.statistic

    def compared(name: str, decided: str = "median") -> Comparison:
        return compare(
            *(_as_latency(r, f[name]) for r, f in zip((a, b), figures, strict=True)),
            threshold=o.threshold,
            baseline_label=o.baseline_label,
            candidate_label=o.candidate_label,
            statistic=decided,
        )

    also = (("ttft", compared("ttft")), ("itl", compared("itl")))
    batches = tuple(_load_batch(r) for r in (a, b))
    found = generation_comparison(compared("tpot", statistic), also[0][1], on, (batches[0], batches[1]))
    return dataclasses.replace(found, also=also, requests=scenarios[0])


def _load_batch(r: Result) -> int:
    """The sequences a load's request TPOT serves at once: the batch, times the streams offline."""
    g = r.generation or {}
    streams = int(g.get("streams") or 1) if r.scenario == "offline" else 1
    return int(g.get("batch") or 1) * streams


def paired_slowdowns(baseline: Result, candidate: Result, statistic: str = "median") -> np.ndarray | None:
    """The ratios (candidate / baseline, as times: above 1 is slower) whose median a paired
    verdict on ``statistic`` is: one per round (per block of rounds for a tail,
    :func:`~inferspeed.analysis.compare.paired_ratios`); for generations the decode steps'
    medians (tpot, and output tokens/s, the inverse of theirs) or the times to first token
    (ttft). None when the two were not interleaved in PAIRED_MIN_ROUNDS rounds or more."""
    if statistic != "ttft":
        decode = "median" if statistic in GENERATION_STATISTICS else statistic
        return paired_ratios(baseline, candidate, decode)
    rounds = _ttft_rounds(baseline, candidate, CompareOptions())
    if rounds is None or len(rounds[0]) < PAIRED_MIN_ROUNDS:
        return None
    medians = [(a.stats.median_ns, b.stats.median_ns) for a, b in zip(*rounds, strict=True)]
    return np.asarray([b / a if a > 0 else math.nan for a, b in medians])


def _instructions(a: Result, b: Result, o: CompareOptions) -> Verdict:
    _refuse_generation_statistic(a, o)
    return compare_instructions(
        a, b, fail_if_more=o.limit, baseline_label=o.baseline_label, candidate_label=o.candidate_label
    )


#: Each metric's comparison, by the metric's name.
COMPARERS: Mapping[str, Callable[[Result, Result, CompareOptions], Verdict]] = MappingProxyType(
    {"latency": _latency, "generation": _generation, "instructions": _instructions}
)

#: What differs between two results' runtimes that each metric is sensitive to (each a note).
_RUNTIME_DIFFERENCES: Mapping[str, Callable[[Result, Result], list[str]]] = MappingProxyType(
    {"latency": lambda a, b: [], "generation": lambda a, b: [], "instructions": environment_differences}
)


def compare_results(
    baseline: Result,
    candidate: Result,
    *,
    baseline_label: str = "A",
    candidate_label: str = "B",
    threshold: float | None = None,
    statistic: str = "median",
    rounds: tuple[Sequence[Result], Sequence[Result]] | None = None,
    limit: float | None = None,
) -> Verdict:
    """``candidate`` against ``baseline`` by their metric's comparison (see the module's
    docstring for the options); ConfigError when the two hold different metrics."""
    if baseline.metric != candidate.metric:
        raise ConfigError(
            f"{baseline_label} holds {baseline.metric} and {candidate_label} holds {candidate.metric}: "
            "a result compares only with another of the same metric (--metric)"
        )
    options = CompareOptions(
        baseline_label=baseline_label,
        candidate_label=candidate_label,
        threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
        statistic=statistic,
        rounds=rounds,
        limit=limit,
    )
    return COMPARERS[baseline.metric](baseline, candidate, options)


def one_threshold(threshold: float | None, limit: float | None) -> float:
    """The one threshold of a latency comparison that gates: the table's "slower" is what fails
    the gate, so its band is the gate's ``limit`` (``fail_if_slower``) when one is given,
    which ``threshold`` may only repeat (another value is a ConfigError); else ``threshold``,
    else DEFAULT_THRESHOLD."""
    if limit is not None and threshold is not None and not math.isclose(threshold, limit):
        raise ConfigError(
            f"a threshold of {threshold:.1%} and a fail-if-slower of {limit:.1%} disagree: the "
            "table's 'slower' is what fails the gate, so give one (fail-if-slower sets both)"
        )
    if limit is not None:
        return limit
    return DEFAULT_THRESHOLD if threshold is None else threshold


def runtime_differences(baseline: Result, candidate: Result) -> list[str]:
    """What differs between the two results' runtimes that their metric is sensitive to (the
    ONNX Runtime version, the CPU extensions it saw), each a note; none for latencies, whose
    saved results are never compared directly by a gate."""
    return _RUNTIME_DIFFERENCES[baseline.metric](baseline, candidate)
