"""The commands' instruction-count paths (``--metric instructions``): ``run`` counts each model
under Valgrind, one after the other (a count needs no interleaving) and compares them with the
first; ``gate`` counts both sides and fails on ``--fail-if-more``; ``compare`` reads counts
from JSON files and does the same."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import ConfigError
from .common import EXIT_SLOWER, shown, write_document

if TYPE_CHECKING:
    from ..analysis.instructions import InstructionComparison
    from ..results.result import Result

__all__ = ["check_gate_flags", "cmd_compare_counted", "cmd_gate_counted", "cmd_run_counted"]

#: About how long one count of a small model takes here (Valgrind, Python and session start).
EXPECTED_SECONDS = 15


def _count(model: str, config: Config, label: str, quiet: bool) -> Result:
    from ..measure.instructions import count_instructions

    if not quiet:
        print(
            f"counting the instructions of {label} under Valgrind (about {EXPECTED_SECONDS} s)",
            file=sys.stderr,
        )
    return count_instructions(model, config)


def cmd_run_counted(args: argparse.Namespace, config: Config) -> int:
    """``run --metric instructions``: each model counted, printed, compared with the first."""
    from ..analysis.instructions import compare_instructions
    from ..facts.models import demo_model_path
    from ..report.instructions import render_counted, render_instruction_comparisons
    from ..results.result import write_json

    if config.processes > 1 or len(args.concurrency or ()) > 1 or len(args.ort_lib or ()) > 1:
        raise ConfigError(
            "--metric instructions counts one configuration of each model: no --processes, "
            "no list of --concurrency or --ort-lib"
        )
    models = args.model or [demo_model_path()]
    quiet = args.quiet or args.json == "-"
    results = []
    for model in models:
        results.append(_count(model, config, os.path.basename(model), quiet))
        if not quiet:
            print(render_counted(results[-1]) + ("\n" if len(models) > 1 else ""))
    if len(results) > 1 and not quiet:
        names = [os.path.basename(m) for m in models]
        comparisons = [
            compare_instructions(results[0], r, baseline_label=names[0], candidate_label=name)
            for name, r in zip(names[1:], results[1:], strict=True)
        ]
        print(render_instruction_comparisons(comparisons))
    if args.json:
        write_json(results, args.json)
        if not quiet:
            print(f"result written to {shown(args.json)}", file=sys.stderr)
    return 0


def check_gate_flags(
    metric: str | None, fail_if_more: float | None, fail_if_slower: float | None
) -> str | None:
    """The gate flags that do not go with the metric, as a usage error; None when they do."""
    if metric == "instructions" and fail_if_slower is not None:
        return "--fail-if-slower gates on latency: with --metric instructions use --fail-if-more"
    if metric != "instructions" and fail_if_more is not None:
        return (
            "--fail-if-more gates on instruction counts: give --metric instructions (or use --fail-if-slower)"
        )
    return None


def _decide(comparison: InstructionComparison, quiet: bool) -> int:
    """The gate's last line (stderr) and exit status."""
    c = comparison
    if c.fail_if_more is None:
        return 0
    figures = (
        f"{c.candidate_instructions:,.0f} against {c.baseline_instructions:,.0f} instructions per call, "
        f"ratio {c.ratio:.4f}"
    )
    if c.failed:
        print(
            f"gate: FAIL: {c.candidate}: {figures}, more than the {c.fail_if_more:.1%} allowed",
            file=sys.stderr,
        )
        return EXIT_SLOWER
    if not quiet:
        print(f"gate: pass: {figures}; fails above {1 + c.fail_if_more:.4f}", file=sys.stderr)
    return 0


def cmd_gate_counted(args: argparse.Namespace, sides: Sequence[Any]) -> int:
    """``gate --metric instructions``: each side counted once (``sides``: GateSides)."""
    from ..analysis.instructions import compare_instructions
    from ..report.instructions import render_counted, render_instruction_comparisons
    from ..results.result import results_document

    quiet = args.quiet or args.json == "-"
    base, cand = (_count(str(s.model), s.config, s.label, quiet) for s in sides)
    c = compare_instructions(
        base,
        cand,
        fail_if_more=args.fail_if_more,
        baseline_label=sides[0].label,
        candidate_label=sides[1].label,
    )
    if not quiet:
        for label, result in ((c.baseline, base), (c.candidate, cand)):
            print(f"== {label}\n{render_counted(result)}\n")
        print(render_instruction_comparisons([c]))
    if args.json:
        doc = results_document([base, cand])
        doc["gate"] = c.to_dict()
        write_document(args.json, doc)
        if args.json != "-" and not quiet:
            print(f"results written to {shown(args.json)}", file=sys.stderr)
    return _decide(c, args.quiet)


def cmd_compare_counted(args: argparse.Namespace, entries: Sequence[tuple[str, Result]]) -> int:
    """``compare`` of instruction counts: ratios against the first; ``--fail-if-more``."""
    from ..analysis.instructions import compare_instructions
    from ..report.instructions import render_instruction_comparisons

    if args.fail_if_slower is not None:
        raise ConfigError("--fail-if-slower gates on latency: for instruction counts use --fail-if-more")
    base_label, base = entries[0]
    comparisons = [
        compare_instructions(
            base, result, fail_if_more=args.fail_if_more, baseline_label=base_label, candidate_label=label
        )
        for label, result in entries[1:]
    ]
    if args.json:
        print(json.dumps([c.to_dict() for c in comparisons], indent=2))
    elif not args.quiet:
        print(render_instruction_comparisons(comparisons))
    status = [_decide(c, args.quiet or args.json) for c in comparisons]
    return max(status)
