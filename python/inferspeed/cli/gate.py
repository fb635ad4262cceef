"""``inferspeed gate``: re-measure the baseline beside the candidate, now, and gate on the ratio."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_THRESHOLD, GENERATION_STATISTICS, STATISTICS
from ..errors import ConfigError
from . import flags
from .common import EXIT_SLOWER, about, check_writable, interleaved_interrupted, shown, write_document
from .values import int_at_least, parse_fraction, parse_slowdown

if TYPE_CHECKING:
    from ..tools.gate import GatePlan, GateSide, GateVerdict

__all__ = ["add_parser", "cmd_gate"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gate",
        help="is the candidate slower than the baseline? both measured now, interleaved (a CI gate)",
        description="Measure the baseline and the candidate interleaved in randomised rounds in "
        "one process and decide on the paired per-round ratios: the comparison that holds on a "
        "machine whose speed changes between sessions. One model with --base-ort-lib compares "
        "two ONNX Runtime libraries. Exit 1 when the paired ratio of the decided statistic has a "
        "95%% interval that excludes 1 and exceeds 1 + --fail-if-slower; the table's 'slower' is "
        "the same rule. Each invocation runs its own random round order (its seed is printed and "
        "saved; --seed N repeats it). Percentages take their %% sign: 3%%, never a bare 3.",
    )
    p.add_argument("baseline", help="the baseline model file (re-measured now)")
    p.add_argument("candidate", nargs="?", help="the candidate model file (default: the baseline's file)")
    flags.add_session_flags(p, thread_list=False)
    p.add_argument(
        "--base-ort-lib",
        metavar="PATH",
        help="libonnxruntime for the baseline (default: the one --ort-lib names, or the wheel's)",
    )
    flags.add_input_flags(p, fresh_seed=True)
    flags.add_generation_flags(p)
    m = p.add_argument_group("measurement")
    flags.add_call_flags(m)
    flags.add_loop_flags(m)
    m.add_argument(
        "--rounds",
        type=int_at_least(6),
        metavar="N",
        help="interleaved rounds (default: rounds of about 80 ms from --max-time, 12 to 150)",
    )
    d = p.add_argument_group("decision")
    d.add_argument(
        "--statistic",
        choices=(*STATISTICS, *GENERATION_STATISTICS),
        default="median",
        help="what the gate decides on: median or mean per round; p90 or p99 per block of rounds "
        "holding 200 calls a side for the p99, 20 for the p90 (refused when the gate's calls "
        "cannot make 6 blocks). Two decoders' generations (their samples are the decode steps): "
        "tpot, the time per output token (the median decode step, as median); ttft, the time to "
        "first token; output_tokens_per_s, which fails when it drops by more than "
        "--fail-if-slower (default: median)",
    )
    d.add_argument(
        "--fail-if-slower",
        type=parse_slowdown,
        metavar="PCT",
        help="exit 1 when the paired ratio's 95%% interval excludes 1 and the ratio exceeds 1 + PCT "
        "(e.g. 3%%); also the table's threshold",
    )
    flags.add_metric_flags(d, gate=True)
    d.add_argument(
        "--threshold",
        type=parse_fraction,
        metavar="PCT",
        help="report only: ratios within 1 +- PCT are 'no significant difference' "
        f"(default {DEFAULT_THRESHOLD * 100:g}%%); with --fail-if-slower, its PCT",
    )
    flags.add_output_flags(p, document="both results (schema inferspeed/1, with the rounds' pairing)")
    p.set_defaults(func=cmd_gate, check=check)


def check(args: argparse.Namespace) -> str | None:
    if args.candidate is None and args.base_ort_lib is None:
        return "give a candidate model, or --base-ort-lib to compare two runtimes on one model"
    from ..metrics import DEFAULT_METRIC, threshold_mismatch

    given = {"fail_if_slower": args.fail_if_slower, "fail_if_more": args.fail_if_more}
    problem = threshold_mismatch(args.metric or DEFAULT_METRIC, given)
    problem = problem or _check_statistic(args)
    return problem or flags.check_threshold_flags(args) or flags.check_loop_flags(args)


def _check_statistic(args: argparse.Namespace) -> str | None:
    """A generation's statistic where the flags alone say no generation runs (a model that does
    not generate is refused once its session says so)."""
    if args.statistic not in GENERATION_STATISTICS:
        return None
    if args.single_call:
        return f"--statistic {args.statistic} is a generation's figure: --single-call times one decode step"
    if args.metric not in (None, "latency", "generation"):
        return f"--statistic {args.statistic} is a generation's figure: --metric {args.metric} has none"
    return None


def cmd_gate(args: argparse.Namespace) -> int:
    from ..facts.modelfile import check_model_path

    check_model_path(args.baseline)
    if args.candidate is not None:
        check_model_path(args.candidate)
    from ..events import listening
    from ..measure.interleave import InterleavedInterrupted
    from ..report.terminal import progress
    from ..tools.gate import GateSide, fresh_seed, gate, plan_gate, side_label
    from .run import counting_progress

    seed = fresh_seed() if args.seed is None else args.seed
    config = flags.config_from_args(args).replace(seed=seed)
    if args.json and args.json != "-":
        check_writable(args.json, "--json")
    base_config = config if args.base_ort_lib is None else config.replace(ort_lib=args.base_ort_lib)
    if args.base_ort_lib is not None and not os.path.exists(args.base_ort_lib):
        raise ConfigError(f"--base-ort-lib {args.base_ort_lib}: no such file")
    candidate = args.candidate or args.baseline
    sides = (
        GateSide(args.baseline, base_config, side_label(args.baseline, base_config, config)),
        GateSide(candidate, config, side_label(candidate, config, base_config)),
    )
    plan = plan_gate(base_config, args.rounds)
    quiet = args.quiet or args.json == "-"
    if not quiet:
        print(_plan_line(sides, plan, seed, args.statistic), file=sys.stderr)

    side = {"label": sides[0].label}

    def starting(label: str) -> None:
        side["label"] = label
        if not quiet and plan.metric.announce:
            print(plan.metric.announce.format(label=label), file=sys.stderr)

    def counting(event: dict[str, Any]) -> None:  # a deterministic metric's own progress
        if not quiet and plan.metric.deterministic:
            counting_progress(side["label"])(event)

    span = plan.expected_s
    try:
        with (
            listening(counting),
            progress(None if span is None else span[1], "gate: measuring both, interleaved", not quiet),
        ):
            verdict = gate(
                *sides,
                fail_if_slower=args.fail_if_slower,
                fail_if_more=args.fail_if_more,
                statistic=args.statistic,
                threshold=args.threshold,
                seed=seed,
                plan=plan,
                starting=starting,
            )
    except InterleavedInterrupted as exc:
        return interleaved_interrupted(exc, args.json)
    _report(args, verdict, quiet)
    return EXIT_SLOWER if verdict.failed else 0


def _plan_line(sides: tuple[GateSide, GateSide], plan: GatePlan, seed: int, statistic: str) -> str:
    """What the gate is about to do, the seed of its order, what it decides on (another
    statistic than the median), and about how long it takes."""
    names = f"{sides[0].label} vs {sides[1].label}"
    each = plan.seconds_per_side
    if plan.metric.deterministic:
        return f"gate: {names}, each measured once ({plan.metric.noun} is deterministic)"
    rounds = f"interleaved in randomised rounds (--seed {seed})"
    if statistic != "median":
        rounds += f", deciding on the {_STATISTIC_WORDS.get(statistic, statistic)}"
    if each is None:
        return f"gate: {names}, {rounds}"
    total = "" if plan.expected_s is None else f"; {about(plan.expected_s)} in all"
    return f"gate: {names}, {rounds}, {each:g} s timed each{total}"


#: What the plan line says a statistic is.
_STATISTIC_WORDS = {
    "tpot": "time per output token (TPOT)",
    "ttft": "time to first token (TTFT)",
    "output_tokens_per_s": "output tokens/s",
}


def _report(args: argparse.Namespace, verdict: GateVerdict, quiet: bool) -> None:
    """The two results, their comparison and the gate's decision; the JSON document."""
    from ..report.text import gate_decision, render_gate
    from ..results.result import results_document

    if not quiet:
        print(render_gate(verdict))
    if args.json:
        doc = results_document([verdict.baseline, verdict.candidate])
        doc["gate"] = verdict.to_dict()
        write_document(args.json, doc)
        if args.json != "-" and not quiet:
            print(f"results written to {shown(args.json)}", file=sys.stderr)
    if verdict.limit is None:
        return
    failed, line = gate_decision(verdict.comparison, verdict.limit)
    if failed or not args.quiet:
        print(line, file=sys.stderr)
