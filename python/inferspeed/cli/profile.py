"""``inferspeed profile``: time per operator type and per node, from ONNX Runtime's profiler.

One model, one thread count, one process, single stream: no scenario, process or rounds flags.
The output leads with the unprofiled latency (the model's); the profiled calls, slowed by the
profiler, come second with how much slower they were. --json writes the unprofiled result with
the profile attached.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import flags
from .common import check_writable, expected_seconds
from .values import int_at_least

__all__ = ["add_parser", "cmd_profile"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("profile", help="time per operator type and per node (ONNX Runtime's profiler)")
    p.add_argument(
        "model", nargs="?", help="ONNX model file (default: the demo model shipped with inferspeed)"
    )
    flags.add_session_flags(p, thread_list=False)
    flags.add_input_flags(p)
    m = p.add_argument_group("measurement")
    flags.add_call_flags(m)
    flags.add_loop_flags(m)
    flags.add_statistics_flags(m)
    flags.add_deadline_flag(m)
    r = p.add_argument_group("profile")
    r.add_argument(
        "--top", type=int_at_least(1), default=15, metavar="N", help="rows of each table (default 15)"
    )
    r.add_argument("--trace", metavar="PATH", help="keep ONNX Runtime's trace (Perfetto, chrome://tracing)")
    flags.add_output_flags(p)
    p.set_defaults(func=cmd_profile, check=flags.check_loop_flags)


def cmd_profile(args: argparse.Namespace) -> int:
    from ..facts.models import demo_model_path
    from ..report.terminal import print_summary, progress
    from ..report.text import render_profile, render_profile_latency, render_result
    from ..results.result import write_json
    from ..tools.profile import profile

    config = flags.config_from_args(args)
    for path, flag in ((args.json, "--json"), (args.trace, "--trace")):
        if path:
            check_writable(path, flag)
    model = args.model or demo_model_path()
    each = expected_seconds(config)
    with progress(None if each is None else 2 * each, f"profiling {os.path.basename(model)}", not args.quiet):
        found = profile(model, config, trace=args.trace)
    if not args.quiet:
        # The model's latency first (profiler off), the profiled calls' only second.
        print_summary("\n".join(render_profile_latency(found.unprofiled)))
        print()
        print_summary(render_result(found.unprofiled))
        print()
        print(render_profile(found.unprofiled, top=args.top, latency=False))
    if args.json:
        write_json([found.unprofiled], args.json)
        if not args.quiet:
            print(f"result written to {args.json}", file=sys.stderr)
    return 0
