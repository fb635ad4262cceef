"""``inferspeed capacity``: the highest arrival rate whose latency percentile meets an SLO.

The search sets the scenario, the rate, each step's length and warm-up itself, and reads the
raw latencies: it takes no loop, statistics or scenario flags, only the server's own
(arrival process, workers, scheduler spin).
"""

from __future__ import annotations

import argparse
import sys

from . import flags
from .common import check_writable, write_document
from .values import parse_seconds, parse_slo

__all__ = ["add_parser", "cmd_capacity"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("capacity", help="find the highest arrival rate that meets a latency SLO")
    p.add_argument(
        "model", nargs="?", help="ONNX model file (default: the demo model shipped with inferspeed)"
    )
    flags.add_session_flags(p, thread_list=False)
    flags.add_input_flags(p)
    m = p.add_argument_group("measurement")
    flags.add_call_flags(m)
    flags.add_server_flags(m, concurrency_list=False)
    c = p.add_argument_group("search")
    c.add_argument("--slo", type=parse_slo, required=True, metavar="pNN=TIME", help="e.g. p99=5ms")
    c.add_argument(
        "--step-time", type=parse_seconds, default=2.0, metavar="SECONDS", help="seconds per rate tried"
    )
    flags.add_output_flags(p, document="the search (each rate tried, the rate found)")
    p.set_defaults(func=cmd_capacity)


def cmd_capacity(args: argparse.Namespace) -> int:
    from ..facts.models import demo_model_path
    from ..measure.session import Session
    from ..report.text import render_capacity
    from ..tools.capacity import find_capacity

    percentile, slo = args.slo
    config = flags.config_from_args(args)
    if args.json:
        check_writable(args.json, "--json")
    model = args.model or demo_model_path()
    with Session(model, config) as session:
        for notice in session.notices:
            print(f"note: {notice}", file=sys.stderr)
        found = find_capacity(
            session, percentile, slo * 1e9, step_time=args.step_time, max_step_time=4 * args.step_time
        )
    if not args.quiet:
        print(render_capacity(found))
    if args.json:
        write_document(args.json, found.to_dict())
    return 0
