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

import numpy as np

from ..config import DEFAULT_THRESHOLD
from ..errors import ConfigError
from ..results.result import Result
from ..stats.summary import summarize
from .compare import Comparison, GenerationComparison, compare
from .instructions import InstructionComparison, compare_instructions, environment_differences

__all__ = [
    "COMPARERS",
    "CompareOptions",
    "Verdict",
    "compare_results",
    "one_threshold",
    "runtime_differences",
]

#: A comparison of two results of one metric.
Verdict = Comparison | InstructionComparison


@dataclass(frozen=True)
class CompareOptions:
    """What a comparison may be told; each metric's comparison reads the options it has.

    ``threshold``: differences within +-threshold are "no significant difference" (latency);
    ``statistic``: what a latency verdict is on; ``rounds``: interleaved per-round results in
    pairs (latency); ``limit``: the gate's fraction, recorded in the comparison where the
    metric records it (instruction counts: ``fail_if_more``)."""

    baseline_label: str = "A"
    candidate_label: str = "B"
    threshold: float = DEFAULT_THRESHOLD
    statistic: str = "median"
    rounds: tuple[Sequence[Result], Sequence[Result]] | None = None
    limit: float | None = None


def _latency(a: Result, b: Result, o: CompareOptions) -> Verdict:
    return compare(
        a,
        b,
        threshold=o.threshold,
        baseline_label=o.baseline_label,
        candidate_label=o.candidate_label,
        rounds=o.rounds,
        statistic=o.statistic,
    )


def _ttft_of(r: Result) -> Result:
    """A generation result as a latency result of its times to first token (one per whole
    generation, in order): what compares them."""
    g = r.generation or {}
    steps = np.asarray(g.get("step_ns") or [], dtype=np.int64).reshape(-1, int(g.get("gen_tokens") or 1))
    picks = np.asarray(g.get("sample_ns") or [], dtype=np.int64).reshape(steps.shape)
    done = steps[:, 0] >= 0
    ttft = steps[done, 0] + np.maximum(picks[done, 0], 0)
    if ttft.size == 0:
        ttft = np.zeros(1, np.int64)
    return dataclasses.replace(
        r, samples_ns=ttft, stats=summarize(ttft), monitor=None, generation=None, loop={}, config={}
    )


def _compare_ttft(a: Result, b: Result, o: CompareOptions) -> Comparison:
    """The two results' times to first token compared as latencies (paired per round where
    the rounds are given)."""
    rounds = None
    if o.rounds is not None:
        rounds = (tuple(map(_ttft_of, o.rounds[0])), tuple(map(_ttft_of, o.rounds[1])))
    return compare(
        _ttft_of(a),
        _ttft_of(b),
        threshold=o.threshold,
        baseline_label=o.baseline_label,
        candidate_label=o.candidate_label,
        rounds=rounds,
    )


def _generation(a: Result, b: Result, o: CompareOptions) -> Verdict:
    """Generations: the time per output token (their samples) decides, as latencies; the time
    to first token is compared beside it when each side has two whole generations or more."""
    tpot = compare(
        a,
        b,
        threshold=o.threshold,
        baseline_label=o.baseline_label,
        candidate_label=o.candidate_label,
        rounds=o.rounds,
        statistic=o.statistic,
    )
    also: tuple[tuple[str, Comparison], ...] = ()
    if min(len((r.generation or {}).get("step_ns") or []) for r in (a, b)) >= 2:
        also = (("ttft", _compare_ttft(a, b, o)),)
    fields = {f.name: getattr(tpot, f.name) for f in dataclasses.fields(tpot)}
    return GenerationComparison(**{**fields, "also": also})


def _instructions(a: Result, b: Result, o: CompareOptions) -> Verdict:
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
