"""``inferspeed gate``: re-measure the baseline beside the candidate, now, and gate on the ratio."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from ..config import DEFAULT_THRESHOLD, STATISTICS
from ..errors import ConfigError
from . import flags
from .common import EXIT_SLOWER, about, check_writable, interleaved_interrupted, shown, write_document
from .values import int_at_least, parse_fraction, parse_slowdown

if TYPE_CHECKING:
    from ..results.result import Result
    from ..tools.gate import GateVerdict

__all__ = ["add_parser", "cmd_gate"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "gate",
        help="is the candidate slower than the baseline? both measured now, interleaved (a CI gate)",
        description="Measure the baseline and the candidate interleaved in randomised rounds in "
        "one process and decide on the paired per-round ratios: the comparison that holds on a "
        "machine whose speed changes between sessions. One model with --base-ort-lib compares "
        "two ONNX Runtime libraries. Exit 1 when the candidate is significantly slower by more "
        "than --fail-if-slower.",
    )
    p.add_argument("baseline", help="the baseline model file (re-measured now)")
    p.add_argument("candidate", nargs="?", help="the candidate model file (default: the baseline's file)")
    flags.add_session_flags(p, thread_list=False)
    p.add_argument(
        "--base-ort-lib",
        metavar="PATH",
        help="libonnxruntime for the baseline (default: the one --ort-lib names, or the wheel's)",
    )
    flags.add_input_flags(p)
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
        choices=STATISTICS,
        default="median",
        help="what the gate decides on, per round (default: median)",
    )
    d.add_argument(
        "--fail-if-slower",
        type=parse_slowdown,
        metavar="PCT",
        help="exit 1 when the candidate is significantly slower by more than PCT (e.g. 3%%)",
    )
    flags.add_metric_flags(d, gate=True)
    d.add_argument(
        "--threshold",
        type=parse_fraction,
        metavar="PCT",
        help="differences within +-PCT are 'no significant difference' "
        f"(default {DEFAULT_THRESHOLD * 100:g}%%)",
    )
    flags.add_output_flags(p, document="both results (schema inferspeed/1, with the rounds' pairing)")
    p.set_defaults(func=cmd_gate, check=check)


def check(args: argparse.Namespace) -> str | None:
    if args.candidate is None and args.base_ort_lib is None:
        return "give a candidate model, or --base-ort-lib to compare two runtimes on one model"
    from .counting import check_gate_flags

    problem = check_gate_flags(args.metric, args.fail_if_more, args.fail_if_slower)
    return problem or flags.check_loop_flags(args)


def cmd_gate(args: argparse.Namespace) -> int:
    from ..facts.modelfile import check_model_path

    check_model_path(args.baseline)
    if args.candidate is not None:
        check_model_path(args.candidate)
    from ..report.terminal import progress
    from ..tools.gate import GATE_TIME, GateSide, gate, gate_rounds, side_label

    config = flags.config_from_args(args)
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
    if config.metric == "instructions":  # deterministic: each side counted once, no rounds
        from .counting import cmd_gate_counted

        return cmd_gate_counted(args, sides)
    quiet = args.quiet or args.json == "-"
    from ..measure.interleave import InterleavedInterrupted, expected_interleaved_seconds

    each = config.max_time or (None if config.iterations else GATE_TIME)
    span = None
    if each is not None:
        # The most rounds (a fast model) cost the most per-round overhead; plus the pilots.
        found = expected_interleaved_seconds(2, gate_rounds(each, 0.0), config.replace(max_time=each))
        span = None if found is None else (found[0] + 0.2, found[1] + 0.2)
    if not quiet and each is not None:
        total = "" if span is None else f"; {about(span)} in all"
        print(
            f"gate: {sides[0].label} vs {sides[1].label}, interleaved in randomised rounds, "
            f"{each:g} s timed each{total}",
            file=sys.stderr,
        )
    try:
        with progress(None if span is None else span[1], "gate: measuring both, interleaved", not quiet):
            verdict = gate(
                *sides,
                fail_if_slower=args.fail_if_slower,
                statistic=args.statistic,
                threshold=args.threshold,
                rounds=args.rounds,
            )
    except InterleavedInterrupted as exc:
        return interleaved_interrupted(exc, args.json)
    _report(args, verdict, quiet)
    return EXIT_SLOWER if verdict.failed else 0


def _side_line(label: str, result: Result) -> str:
    """One side in a line: median with its interval, p99, samples, what was noticed."""
    from ..units import format_duration

    s = result.stats
    lo, hi = s.ci95_median_ns
    ci = f" (95% CI {format_duration(lo)}-{format_duration(hi)})" if lo is not None and hi is not None else ""
    codes = ", ".join(w.code for w in result.warnings)
    return (
        f"{label}: median {format_duration(s.median_ns)}{ci}, p99 {format_duration(s.p99_ns)}, "
        f"{s.count} samples" + (f"; noticed: {codes}" if codes else "")
    )


def _report(args: argparse.Namespace, verdict: GateVerdict, quiet: bool) -> None:
    """The two results, the paired comparison and the gate's decision; the JSON document."""
    from ..report.text import render_comparisons
    from ..results.result import results_document

    c = verdict.comparison
    if not quiet:
        for label, result in ((c.baseline, verdict.baseline), (c.candidate, verdict.candidate)):
            print(_side_line(label, result))
        print(f"paired over {verdict.rounds} interleaved rounds (random order); ratios against {c.baseline}:")
        print(render_comparisons([c]))
        for note in verdict.notes:
            print(f"note: {note}")
    if args.json:
        doc = results_document([verdict.baseline, verdict.candidate])
        doc["gate"] = verdict.to_dict()
        write_document(args.json, doc)
        if args.json != "-" and not quiet:
            print(f"results written to {shown(args.json)}", file=sys.stderr)
    if args.fail_if_slower is None:
        return
    ratio, (lo, hi), _ = c.decided_ratio
    figures = f"{c.statistic} ratio {ratio:.3f} (95% CI {lo:.3f}-{hi:.3f})"
    if verdict.failed:
        print(
            f"gate: FAIL: {c.candidate} is slower than {c.baseline}: {figures}, "
            f"more than the {args.fail_if_slower:.1%} allowed",
            file=sys.stderr,
        )
    elif not args.quiet:
        print(f"gate: pass: {figures}; fails above {1 + args.fail_if_slower:.3f}", file=sys.stderr)
