"""``inferspeed compare``: results (JSON files) against the first, with significance; a gate."""

from __future__ import annotations

import argparse
import sys

from ..config import DEFAULT_THRESHOLD, GENERATION_STATISTICS, STATISTICS
from ..errors import ConfigError
from . import flags
from .common import EXIT_SLOWER
from .values import parse_fraction, parse_slowdown

__all__ = ["add_parser", "check", "cmd_compare"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "compare",
        help="compare results (JSON files) with significance",
        description="Compare results with the first. A result is 'slower' (and fails "
        "--fail-if-slower PCT) when the decided statistic's ratio has a 95%% interval that excludes "
        "1 and exceeds 1 + PCT; one threshold stands behind the table and the exit. Percentages "
        "take their %% sign: 3%%, never a bare 3.",
    )
    p.add_argument("results", nargs="+", metavar="RESULT.json", help="the first is the baseline")
    p.add_argument(
        "--threshold",
        type=parse_fraction,
        metavar="PCT",
        help="report only: ratios within 1 +- PCT are 'no significant difference' "
        f"(default {DEFAULT_THRESHOLD * 100:g}%%); with --fail-if-slower, its PCT",
    )
    p.add_argument(
        "--fail-if-slower",
        type=parse_slowdown,
        metavar="PCT",
        help="exit 1 when a result's ratio to the baseline has a 95%% interval that excludes 1 and "
        "exceeds 1 + PCT (e.g. 3%%); also the table's threshold",
    )
    p.add_argument(
        "--fail-if-more",
        type=parse_slowdown,
        metavar="PCT",
        help="instruction counts (--metric instructions): exit 1 when a result needs more than PCT "
        "more instructions per call than the baseline",
    )
    p.add_argument(
        "--statistic",
        choices=(*STATISTICS, *GENERATION_STATISTICS),
        default="median",
        help="what the verdict and --fail-if-slower decide on; generations also tpot (the median "
        "decode step, as median), ttft and output_tokens_per_s (slower when it drops) (default: median)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="compare different models anyway (by graph and weights: doc strings do not count)",
    )
    p.add_argument(
        "--any-machine",
        action="store_true",
        help="compare results from different machines (their difference is then the machines')",
    )
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print JSON")
    shown.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors and the gate")
    p.set_defaults(func=cmd_compare, check=check)


def check(args: argparse.Namespace) -> str | None:
    return flags.check_threshold_flags(args)


def cmd_compare(args: argparse.Namespace) -> int:
    import json

    from ..analysis.compare import check_comparable
    from ..analysis.verdicts import compare_results
    from ..metrics import metric_named, threshold_mismatch
    from ..report.text import gate_decision, render_comparisons
    from ..results.result import load_json

    entries = []
    for path in args.results:
        loaded = load_json(path)
        for k, result in enumerate(loaded):
            entries.append((path if len(loaded) == 1 else f"{path}#{k}", result))
    if len(entries) < 2:
        raise ConfigError("compare needs at least two results (give two or more JSON files)")
    base_label, base = entries[0]
    metric = metric_named(base.metric)
    given = {"fail_if_slower": args.fail_if_slower, "fail_if_more": args.fail_if_more}
    problem = threshold_mismatch(metric.name, given)
    if problem:
        raise ConfigError(f"{problem} (these results hold {metric.name})")
    limit = given[metric.threshold]
    # One threshold behind the table and the exit: --fail-if-slower's, when given.
    threshold = args.fail_if_slower if args.fail_if_slower is not None else args.threshold
    comparisons = []
    for label, result in entries[1:]:
        # A deterministic count holds across machines: other models are what it compares.
        why = None
        if not metric.deterministic:
            why = check_comparable(base, result, models=not args.force, machines=not args.any_machine)
        if why:
            flag = "--force" if "different models" in why else "--any-machine"
            raise ConfigError(
                f"refusing to compare {base_label} with {label}: {why} ({flag} compares anyway)"
            )
        comparisons.append(
            compare_results(
                base,
                result,
                threshold=threshold,
                baseline_label=base_label,
                candidate_label=label,
                statistic=args.statistic,
                limit=limit,
            )
        )
    if args.json:
        print(json.dumps([c.to_dict() for c in comparisons], indent=2))
    elif not args.quiet:
        print(render_comparisons(comparisons))
    if limit is None:
        return 0
    decisions = [gate_decision(c, limit) for c in comparisons]
    for failed, line in decisions:
        if failed or not (args.quiet or args.json):
            print(line, file=sys.stderr)
    return EXIT_SLOWER if any(failed for failed, _ in decisions) else 0
