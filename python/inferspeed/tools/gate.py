"""Gates: is the candidate worse than the baseline by more than allowed?

Two gates, two names:

- :func:`gate`, the **same-session gate**: the baseline is an artifact (a model file, with its
  own ONNX Runtime library and configuration when they differ) measured again now, beside the
  candidate. A baseline measured last week on a machine whose speed moves 10-25% between
  sessions cannot tell a 5% slowdown from the machine (docs/measurement.md has the figures),
  so for latency both are measured in one process in randomised interleaved rounds (RMIT,
  :func:`inferspeed.measure.interleave.measure_interleaved` with ``order="random"``), short
  enough that both halves of a round see the machine in one state, and the gate decides on the
  paired per-round ratios of a chosen statistic (median, p90, p99 or mean). A deterministic
  metric (instruction counts) needs no rounds: each side is measured once and compared.
- :func:`saved_result_gate`, the **saved-result gate**: a fresh result against a result saved
  by an earlier session (the pytest plugin's callables, which leave no artifact to measure
  again); a slowdown fails only once re-measurements confirm it.

Everything the same-session gate will do is worked out once, before it measures, by
:func:`plan_gate` (:class:`GatePlan`): the configuration it runs (GATE_TIME seconds per side
unless told), the rounds when given, the time it should take. The CLI's progress bar and the
pytest plugin read that plan; nothing else applies the gate's defaults.

Rounds: each side's time is cut into rounds of about ROUND_TIME each, at least ROUND_CALLS
calls of the slower side, between MIN_ROUNDS and MAX_ROUNDS rounds (:func:`gate_rounds`).
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..analysis.compare import (
    PAIRED_MIN_ROUNDS,
    TAIL_QUANTILES,
    Comparison,
    GenerationComparison,
    tail_calls,
)
from ..analysis.verdicts import Verdict, compare_results, one_threshold, paired_slowdowns
from ..config import GENERATION_STATISTICS, STATISTICS, Config
from ..errors import ConfigError
from ..metrics import Metric, metric_named, threshold_mismatch

if TYPE_CHECKING:
    from ..measure.session import Session
    from ..results.result import Result

__all__ = [
    "GATE_TIME",
    "GatePlan",
    "GateSide",
    "GateVerdict",
    "SavedResultVerdict",
    "fresh_seed",
    "gate",
    "gate_rounds",
    "generation_rounds",
    "plan_gate",
    "saved_result_gate",
    "side_label",
]

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
#: Seconds of the pilot that times each side before the rounds are chosen.
PILOT_TIME = 0.05


@dataclass(frozen=True)
class GateSide:
    """One side of the gate: a model file, its label, and the configuration it runs with
    (its own ``ort_lib`` and session options when they differ from the other side's)."""

    model: str
    config: Config
    label: str


@dataclass(frozen=True)
class GatePlan:
    """What the same-session gate will do, worked out before it measures.

    Attributes
    ----------
    config : Config
        The configuration the gate runs (the baseline's, with GATE_TIME seconds per side when
        it sets neither ``max_time`` nor ``iterations``).
    metric : Metric
        The metric's row: a deterministic one is measured once per side, without rounds.
    rounds : int or None
        The rounds when given; None: chosen after a short pilot of each side (latency), or
        none at all (a deterministic metric).
    expected_s : (float, float) or None
        The shortest and longest time the whole gate should take, pilots included; None when
        unknown (a loop bounded by iterations, or a deterministic metric).
    """

    config: Config
    metric: Metric
    rounds: int | None
    expected_s: tuple[float, float] | None

    @property
    def seconds_per_side(self) -> float | None:
        """Timed seconds per side (None: bounded by iterations, or a deterministic metric)."""
        return None if self.metric.deterministic else self.config.loop_limits[1]


def plan_gate(config: Config, rounds: int | None = None) -> GatePlan:
    """The plan of a gate whose baseline runs with ``config`` (``rounds``: None to choose
    them after the pilot). Raises ConfigError for a setting the gate cannot use (another
    scenario, processes, adaptive stopping)."""
    metric = metric_named(config.metric)
    if metric.deterministic:
        return GatePlan(config, metric, None, None)
    cfg = _gate_config(config)
    each = cfg.loop_limits[1]
    if each is None:
        return GatePlan(cfg, metric, rounds, None)
    from ..measure.interleave import expected_interleaved_seconds

    # Without given rounds, the most rounds (a fast model) cost the most per-round overhead.
    found = expected_interleaved_seconds(2, rounds or gate_rounds(each, 0.0), cfg)
    pilots = 2 * (PILOT_TIME + PILOT_TIME)  # each side's pilot: a warm-up and a timed loop
    span = None if found is None else (found[0] + pilots, found[1] + pilots)
    return GatePlan(cfg, metric, rounds, span)


@dataclass(frozen=True)
class GateVerdict:
    """What the same-session gate measured and decided.

    ``limit``: the fraction the candidate may be worse by (the metric's threshold:
    ``fail_if_slower`` for latency, ``fail_if_more`` for instruction counts; None: report
    only). ``failed``: the candidate is worse than the baseline by more than ``limit`` on the
    decided statistic (for latency: the decided ratio's interval excludes 1, and the ratio
    exceeds 1 + ``limit``; the comparison's verdict then says "slower", its threshold being the
    same ``limit``). ``rounds``: interleaved rounds (0 for a deterministic metric, measured once
    per side). ``notes``: what the verdict does not say (a tail significantly slower while the
    median gate passed; rounds too few for the gate to fail at ``limit``). ``seed``: the seed
    of the rounds' random order (None for a deterministic metric): the same seed gives the
    same order. ``statistic``: what was asked to decide on (``"ttft"``: the comparison's
    ``on`` says how a generation's verdict was reached)."""

    baseline: Result
    candidate: Result
    comparison: Verdict
    limit: float | None
    rounds: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    seed: int | None = None
    #: The statistic asked for (None: the comparison's).
    statistic: str | None = None

    @property
    def fail_if_slower(self) -> float | None:
        """``limit`` of a latency gate (None for another metric's)."""
        return self.limit if isinstance(self.comparison, Comparison) else None

    @property
    def failed(self) -> bool:
        return self.limit is not None and self.comparison.worse_by_more_than(self.limit)

    def to_dict(self) -> dict[str, Any]:
        """The ``gate`` object of the gate's JSON document. A deterministic metric's gate is
        its one comparison (which holds the limit and whether it failed)."""
        if metric_named(self.comparison.metric).deterministic:
            return self.comparison.to_dict()
        return {
            "baseline": self.comparison.baseline,
            "candidate": self.comparison.candidate,
            "statistic": self.statistic or getattr(self.comparison, "statistic", "median"),
            "fail_if_slower": self.limit,
            "threshold": getattr(self.comparison, "threshold", None),
            "rounds": self.rounds,
            "seed": self.seed,
            "failed": self.failed,
            "comparison": self.comparison.to_dict(),
            "notes": list(self.notes),
        }


def gate_rounds(max_time: float, latency_s: float, calls: int = ROUND_CALLS) -> int:
    """Rounds for ``max_time`` timed seconds per side, when a call of the slower side takes
    ``latency_s``: rounds of about ROUND_TIME, at least ``calls`` calls, MIN_ROUNDS to
    MAX_ROUNDS of them; for a model so slow that MIN_ROUNDS calls exceed ``max_time``, as many
    rounds as calls fit (at least PAIRED_MIN_ROUNDS), so the gate keeps to its time."""
    per_round = max(ROUND_TIME, calls * latency_s)
    rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, math.floor(max_time / per_round))))
    if latency_s > 0 and rounds * latency_s > max_time:
        # A slow model: one call per round already fills the time; fewer rounds, not more time
        # (at least the PAIRED_MIN_ROUNDS the paired interval needs).
        rounds = max(PAIRED_MIN_ROUNDS, math.floor(max_time / latency_s))
    return rounds


def generation_rounds(max_time: float, generation_s: float, rounds: int | None = None) -> tuple[int, int]:
    """(rounds, whole generations in each) for ``max_time`` timed seconds per side of two
    decoders whose generation takes ``generation_s`` (the slower side's): a round cannot split a
    generation, so it holds as many as last ROUND_TIME or more (at least one), and the rounds
    are :func:`gate_rounds` of that length; ``rounds`` given: as many generations each as fill
    ``max_time``."""
    if generation_s <= 0:
        return rounds or MIN_ROUNDS, 1
    if rounds:
        return rounds, max(1, round(max_time / rounds / generation_s))
    each = max(1, math.ceil(ROUND_TIME / generation_s))
    return gate_rounds(max_time, each * generation_s, calls=1), each


def gate(
    baseline: GateSide | str | os.PathLike[str],
    candidate: GateSide | str | os.PathLike[str],
    config: Config | None = None,
    *,
    fail_if_slower: float | None = None,
    fail_if_more: float | None = None,
    statistic: str = "median",
    threshold: float | None = None,
    rounds: int | None = None,
    seed: int | None = None,
    plan: GatePlan | None = None,
    opened: Callable[[list[Session]], None] | None = None,
    starting: Callable[[str], None] | None = None,
) -> GateVerdict:
    """The same-session gate: measure ``baseline`` and ``candidate`` now and compare them.

    Parameters
    ----------
    baseline, candidate : GateSide, str or os.PathLike
        A model file (measured with ``config``, labelled by its file name) or a
        :class:`GateSide` (its own configuration: another ``ort_lib``, other session options).
        The baseline's configuration is the gate's: its ``metric`` decides how the gate
        measures (interleaved rounds for latency; once per side for a deterministic metric)
        and its loop settings are both sides'.
    config : Config, optional
        The configuration of the sides given as files (default ``Config()``).
    fail_if_slower : float, optional
        Latency: fail when the decided statistic's paired ratio has a 95% interval that
        excludes 1 and exceeds 1 + this fraction; None (the default): report only.
    fail_if_more : float, optional
        Instruction counts: fail when the candidate needs more than this fraction more
        instructions per call; None: report only. The threshold of another metric than the
        gate's is a ConfigError.
    statistic : str, default "median"
        "median" or "mean" per round, "p90" or "p99" per block of rounds holding the quantile
        (a tail the calls cannot hold: ConfigError); generations also "tpot", "ttft" and
        "output_tokens_per_s" (``GenerationComparison.on``; ConfigError for a side that does
        not generate).
    threshold : float, optional
        The table's "no significant difference" band, +-threshold: ``fail_if_slower`` when
        given (another value is a ConfigError: the table's "slower" is what fails), else 2%.
    rounds : int, optional
        Interleaved rounds; None: chosen (:func:`gate_rounds`) after a short pilot of each side.
    seed : int, optional
        Seed of the rounds' random order (recorded in the verdict); None draws a fresh one.
    plan : GatePlan, optional
        :func:`plan_gate`'s plan for the baseline's configuration (it holds the rounds), made
        first by the CLI to size its progress bar; by default made here.
    opened, starting : callable, optional
        Called with the two sessions once they exist (latency); with a side's label before a
        deterministic metric measures it. Returns a :class:`GateVerdict`.

    Raises
    ------
    ConfigError
        A setting the gate cannot use (another scenario, adaptive stopping, processes), the
        threshold of another metric, a ``threshold`` other than ``fail_if_slower``.
    BenchmarkInterrupted
        On Ctrl-C (``InterleavedInterrupted`` for latency: every side's rounds so far).
    """
    baseline, candidate = _side(baseline, config), _side(candidate, config)
    if baseline.label == candidate.label:
        baseline = GateSide(baseline.model, baseline.config, f"{baseline.label} (baseline)")
    plan = plan or plan_gate(baseline.config, rounds)
    given = {"fail_if_slower": fail_if_slower, "fail_if_more": fail_if_more}
    _check_decision(plan.metric, given, statistic)
    limit = given.get(plan.metric.threshold)
    if plan.metric.deterministic:
        return _measured_once(baseline, candidate, limit, starting)
    threshold = one_threshold(threshold, limit)
    seed = fresh_seed() if seed is None else seed
    base, cand, chosen = _interleaved(baseline, candidate, plan, opened, (seed, statistic))
    c = compare_results(
        base, cand, baseline_label=baseline.label, candidate_label=candidate.label, threshold=threshold,
        statistic=statistic,
    )  # fmt: skip
    return GateVerdict(base, cand, c, limit, chosen, tuple(_notes(c, base, cand, limit)), seed, statistic)


def _check_decision(metric: Metric, given: dict[str, float | None], statistic: str) -> None:
    """A ConfigError for the threshold of another metric than the gate's, a statistic no gate
    knows, or a generation's on a deterministic metric."""
    problem = threshold_mismatch(metric.name, given)
    if problem:
        raise ConfigError(problem)
    known = (*STATISTICS, *GENERATION_STATISTICS)
    if statistic not in known:
        raise ConfigError(f"--statistic must be one of {', '.join(known)}, not {statistic!r}")
    if metric.deterministic and statistic in GENERATION_STATISTICS:
        raise ConfigError(f"--statistic {statistic} is a generation's figure, not {metric.noun}")


def fresh_seed() -> int:
    """A fresh seed for a gate's round order: each invocation runs its own random order."""
    return secrets.randbelow(2**31)


def _interleaved(
    baseline: GateSide,
    candidate: GateSide,
    plan: GatePlan,
    opened: Callable[[list[Session]], None] | None,
    how: tuple[int, str],
) -> tuple[Result, Result, int]:
    """Both sides measured in randomised interleaved rounds, in the order of ``how``'s seed,
    after checking that they can hold its statistic: (baseline, candidate, rounds)."""
    from ..measure.interleave import measure_interleaved
    from ..measure.session import Session

    seed, statistic = how
    sessions: list[Session] = []
    try:
        for side in (baseline, candidate):
            sessions.append(Session(side.model, _gate_config(side.config)))
            _check_generates(statistic, side, sessions[-1])
        if opened is not None:
            opened(sessions)
        generating = all(s.config.metric == "generation" for s in sessions)
        pilots = _pilots(sessions) if plan.rounds is None or statistic in TAIL_QUANTILES or generating else []
        latency = max((p.stats.median_ns for p in pilots), default=0.0) / 1e9
        _check_tail(statistic, plan, latency)
        config, chosen = _rounds(plan, latency, pilots if generating else [])
        done = measure_interleaved(sessions, chosen, config, order="random", seed=seed)
    finally:
        for s in sessions:
            s.close()
    base, cand = done.results
    return base, cand, chosen


def _check_generates(statistic: str, side: GateSide, session: Session) -> None:
    """A ConfigError, before anything is measured, when ``statistic`` is a generation's figure
    and ``side`` times single calls."""
    if statistic in GENERATION_STATISTICS and session.config.metric != "generation":
        raise ConfigError(
            f"--statistic {statistic} is a generation's figure and {side.label} is timed one call at a "
            "time (no KV cache, or --single-call): decide on the median, p90, p99 or mean"
        )


def _rounds(plan: GatePlan, latency_s: float, pilots: list[Result]) -> tuple[Config, int]:
    """The configuration of the rounds and how many: for two decoders' generations measured
    by time, whole generations a round (:func:`generation_rounds`, from the pilots' end-to-end
    times), each round bounded by their decode steps as well as its share of the time (a
    machine slower than in the pilot ends a round after fewer generations, at least one);
    otherwise :func:`gate_rounds` from the slower side's call, or the rounds given."""
    each = plan.seconds_per_side
    if not pilots or each is None:
        return plan.config, plan.rounds or gate_rounds(each or GATE_TIME, latency_s)
    figures = [p.generation or {} for p in pilots]
    whole = max(float((g.get("end_to_end") or {}).get("median_ns") or 0.0) for g in figures) / 1e9
    rounds, generations = generation_rounds(each, whole, plan.rounds)
    steps = max(int(g.get("gen_tokens") or 2) - 1 for g in figures)
    return plan.config.replace(iterations=rounds * generations * steps), rounds


def _check_tail(statistic: str, plan: GatePlan, latency_s: float) -> None:
    """A ConfigError when the gate's calls a side cannot hold a paired tail ``statistic``:
    PAIRED_MIN_ROUNDS blocks of ``tail_calls(q)`` calls (a call of the slower side taking
    ``latency_s``, from the pilot)."""
    q = TAIL_QUANTILES.get(statistic)
    iterations, seconds = plan.config.loop_limits
    if q is None or latency_s <= 0:
        return
    need = PAIRED_MIN_ROUNDS * tail_calls(q)
    calls = seconds / latency_s if seconds is not None else float(iterations or 0)
    if iterations is not None:
        calls = min(calls, iterations)
    if calls >= need:
        return
    from ..units import format_duration

    # Blocks end on a round's edge: a little more than the bare need.
    more = math.ceil(1.25 * need * latency_s)
    raise ConfigError(
        f"--statistic {statistic} needs {need} calls a side ({PAIRED_MIN_ROUNDS} blocks of "
        f"{tail_calls(q)}, each holding its {statistic}); at {format_duration(latency_s * 1e9)} a call "
        f"this gate makes about {int(calls)}: give --max-time {more}s or more, or decide on the median"
    )


def _measured_once(
    baseline: GateSide, candidate: GateSide, limit: float | None, starting: Callable[[str], None] | None
) -> GateVerdict:
    """A deterministic metric: each side measured once, one after the other, and compared."""
    from ..measure.benchmark import benchmark

    measured = []
    for side in (baseline, candidate):
        if starting is not None:
            starting(side.label)
        measured.append(benchmark(side.model, side.config))
    base, cand = measured
    c = compare_results(
        base, cand, baseline_label=baseline.label, candidate_label=candidate.label, limit=limit
    )
    return GateVerdict(base, cand, c, limit, 0)


def _side(side: GateSide | str | os.PathLike[str], config: Config | None) -> GateSide:
    if isinstance(side, GateSide):
        return side
    path = os.fspath(side)
    return GateSide(path, config or Config(), os.path.basename(path))


def _pilots(sessions: list[Session]) -> list[Result]:
    """A short pilot of each side, for the time a call (a decoder's: a decode step, and a
    whole generation) takes: untimed for the gate, a part of the gate, not a run of the
    machine's history."""
    from ..measure.history import parts_of_one_run

    with parts_of_one_run():
        return [s.measure(max_time=PILOT_TIME, warmup_time=PILOT_TIME) for s in sessions]


def _gate_config(config: Config) -> Config:
    """``config`` for an interleaved gate: single stream, fixed time (GATE_TIME per side unless
    told)."""
    if config.scenario != "single-stream" or config.processes > 1:
        raise ConfigError("the gate measures the single-stream scenario in one process")
    if config.target_ci is not None:
        raise ConfigError("the gate sets its own rounds: --target-ci does not apply")
    if config.iterations is None and config.max_time is None:
        return config.replace(max_time=GATE_TIME)
    return config


def _notes(c: Verdict, base: Result, cand: Result, limit: float | None) -> list[str]:
    """What the verdict on one statistic leaves out: a tail significantly slower (or faster)
    while the decision was on another statistic (paired over blocks of rounds; said only when
    the blocks hold the p99 itself), a p99 column that is a lower quantile, and rounds too few
    for the gate to fail at its threshold; for generations, first, what was decided on."""
    if not isinstance(c, Comparison):
        return []
    on = c.on if isinstance(c, GenerationComparison) else None
    notes = [_decided_note(c, limit)] if isinstance(c, GenerationComparison) else []
    lo, hi = c.ratio_p99_ci
    quantile = c.p99_quantile
    on_the_tail = c.statistic == "p99" and on in (None, "tpot")
    if quantile is not None and quantile < TAIL_QUANTILES["p99"] - 1e-9:
        notes.append(
            f"the p99 column is the p{100 * quantile:.1f}: the rounds hold too few calls for "
            f"{PAIRED_MIN_ROUNDS} blocks of {tail_calls(0.99)} calls a side"
        )
    elif not on_the_tail and (lo > 1.0 + c.threshold or hi < 1.0 - c.threshold):
        way = "slower" if lo > 1.0 else "faster"
        decided = c.statistic if on is None or (on == "tpot" and c.statistic != "median") else _DECIDED[on]
        notes.append(
            f"the p99 is {way}: ratio {c.ratio_p99:.3f} ({lo:.3f}-{hi:.3f}), paired over {c.p99_blocks} "
            f"blocks of rounds; the gate decided on the {decided} (--statistic p99 gates on the tail)"
        )
    statistic = c.statistic if on in (None, "tpot") else str(on)
    unit = "blocks of rounds" if statistic in TAIL_QUANTILES else "rounds"
    ratios = paired_slowdowns(base, cand, statistic)
    if ratios is not None and c.higher_is_better:
        ratios = 1.0 / ratios  # a rate's, as the verdict's ratio is
    reach = _reach(ratios, c.threshold if limit is None else limit, unit, rate=c.higher_is_better)
    return notes + ([reach] if reach else [])


#: A generation's decided figures in words.
_DECIDED = {
    "tpot": "time per output token (TPOT)",
    "ttft": "time to first token (TTFT)",
    "output_tokens_per_s": "output tokens/s",
}


def _decided_note(c: GenerationComparison, limit: float | None) -> str:
    """What a generation gate decided on, in a line (its ratio when the TPOT table's median
    ratio is not it)."""
    ratio, (lo, hi), _ = c.decided_ratio
    figures = f"ratio {ratio:.3f} (95% CI {lo:.3f}-{hi:.3f})"
    per = f"paired over {c.rounds} rounds" if c.rounds else "unpaired"
    if c.on == "ttft":
        return (
            f"the gate decided on the time to first token (TTFT: the prefill and its sampling, each "
            f"round's median, {per}): {figures}; the verdict on the TPOT line is the TTFT's"
        )
    if c.on == "output_tokens_per_s":
        fails = ""
        if limit is not None:
            fails = f"; it fails when the interval excludes 1 and the ratio is below {1 - limit:.3f}"
        return (
            f"the gate decided on output tokens/s (the batch over the median decode step, {per}; higher "
            f"is better): {figures}{fails}"
        )
    what = "median decode step" if c.statistic == "median" else f"decode steps' {c.statistic}"
    return (
        f"the gate decided on the time per output token (TPOT: the {what}, {per}); the time to first "
        "token is compared beside it"
    )


def _reach(ratios: np.ndarray | None, limit: float, unit: str = "rounds", rate: bool = False) -> str | None:
    """A note when the paired ratios are too few for the gate to fail at ``limit``: the sign
    test needs k of n rounds (or blocks) on one side, and the smallest slowdown whose interval
    excludes 1 is 1 / r_(l) - 1, r_(l) the interval's lower order statistic of the ratios
    centred on their median (every ratio times 1 + s moves the interval by 1 + s). ``rate``:
    the ratios are of a rate (higher is better), and the gate fails on a drop: the smallest is
    1 - 1 / r_(h), r_(h) the interval's upper order statistic of the centred ratios."""
    from ..stats.summary import ci_ranks

    if ratios is None:
        return None
    found = np.sort(ratios[np.isfinite(ratios) & (ratios > 0)])
    n = found.size
    low, _ = ci_ranks(n, 0.5, 0.95)
    if low is None:
        return None
    k, median = n - low + 1, float(np.median(found))
    least = 1.0 - median / float(found[n - low]) if rate else median / float(found[low - 1]) - 1.0
    way, change = ("lower", "drop") if rate else ("slower", "slowdown")
    need = f"the sign test needs {k} of the {n} {way}" + (" (all of them)" if k == n else "")
    if least > limit:
        return (
            f"with {n} paired {unit} the gate can fail only on a {change} of about {least:.1%} or more, "
            f"not {limit:.1%}: {need}, and their ratios spread that far; more time (--max-time) gives "
            "more rounds"
        )
    return f"with {n} paired {unit} the gate fails only when all {n} are {way}" if k == n else None


def side_label(model: str, config: Config, other: Config) -> str:
    """A side's label: the model's file name, and its runtime when the two sides' differ."""
    name = os.path.basename(model)
    if config.ort_lib == other.ort_lib or not config.ort_lib:
        return name
    lib = os.path.basename(config.ort_lib)
    return f"{name} ({lib if lib != os.path.basename(other.ort_lib or '') else config.ort_lib})"


@dataclass(frozen=True)
class SavedResultVerdict:
    """What :func:`saved_result_gate` decided: the measurement kept (the last one taken), its
    comparison with the saved result, how many measurements were taken, and why the test fails
    (None: it passes)."""

    result: Result
    comparison: Comparison
    measurements: int
    failure: str | None


def saved_result_gate(
    base: Result,
    first: Result,
    remeasure: Callable[[], Result],
    *,
    fail_if_slower: float | None,
    confirmations: int = 1,
    baseline_label: str = "baseline",
    candidate_label: str = "candidate",
) -> SavedResultVerdict:
    """The saved-result gate: ``first`` compared with ``base``, a result saved by an earlier
    session; when it is significantly slower by more than ``fail_if_slower`` (a fraction;
    None: report only), ``remeasure()`` is called up to ``confirmations`` times, and the first
    re-measurement that is not slower by that much passes. The failure message says by how
    much the last measurement was slower."""
    from ..analysis.compare import compare

    result, taken = first, 1
    threshold = one_threshold(None, fail_if_slower)  # the verdict's "slower" is what fails

    def judged(measured: Result) -> Comparison:
        return compare(
            base,
            measured,
            threshold=threshold,
            baseline_label=baseline_label,
            candidate_label=candidate_label,
        )

    c = judged(result)
    if fail_if_slower is None or not c.slower_by_more_than(fail_if_slower):
        return SavedResultVerdict(result, c, taken, None)
    confirmations = max(0, confirmations)
    for _ in range(confirmations):
        result, taken = remeasure(), taken + 1
        c = judged(result)
        if not c.slower_by_more_than(fail_if_slower):
            return SavedResultVerdict(result, c, taken, None)
    failure = (
        f"inferspeed: {candidate_label} is slower than {c.baseline}: median ratio {c.ratio_median:.3f} "
        f"({c.ratio_median_ci[0]:.3f}-{c.ratio_median_ci[1]:.3f}), more than the {fail_if_slower:.0%} allowed"
    )
    if confirmations:
        failure += f" (confirmed by {confirmations} re-measurement{'s' if confirmations > 1 else ''})"
    return SavedResultVerdict(result, c, taken, failure)
