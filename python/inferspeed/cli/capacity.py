"""``inferspeed capacity``: the highest arrival rate whose latency percentile meets an SLO (for
a decoder: the highest rate of generation requests whose TTFT and TPOT percentiles meet theirs).

The search sets the scenario, the rate, each step's length and warm-up itself, and reads the
raw latencies: it takes no loop, statistics or scenario flags, only the server's own
(arrival process, workers, scheduler spin) and the search's. Exit 0 with a rate found, 1 when
no rate meets the SLO (one line when even light load misses it), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from . import flags
from .common import check_writable, write_document
from .values import int_at_least, parse_seconds

__all__ = ["add_parser", "cmd_capacity"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("capacity", help="find the highest arrival rate that meets a latency SLO")
    p.add_argument(
        "model", nargs="?", help="ONNX model file (default: the demo model shipped with inferspeed)"
    )
    flags.add_session_flags(p, thread_list=False)
    flags.add_input_flags(p)
    flags.add_generation_flags(p)
    m = p.add_argument_group("measurement")
    flags.add_call_flags(m)
    flags.add_server_flags(m, concurrency_list=False)
    c = p.add_argument_group("search")
    c.add_argument(
        "--slo",
        dest="search_slo",
        type=flags.parse_capacity_slo,
        required=True,
        metavar="pNN=TIME",
        help="e.g. p99=5ms; a decoder's requests: ttft-p99=500ms,tpot-p99=50ms (each a percentile of "
        "the time to first token, from the scheduled arrival, or of the time per output token)",
    )
    c.add_argument(
        "--step-time",
        type=parse_seconds,
        default=2.0,
        metavar="SECONDS",
        help="shortest time per rate tried (default: 2 s); a step is lengthened to hold --min-requests",
    )
    c.add_argument(
        "--max-step-time",
        type=parse_seconds,
        default=60.0,
        metavar="SECONDS",
        help="longest time per rate tried (default: 60 s); a rate whose step could not hold the "
        "minimum requests within it is not tried",
    )
    c.add_argument(
        "--min-requests",
        type=int_at_least(1),
        metavar="N",
        help="fewest requests per step (default: from the percentile, about 10 beyond it: 1000 for p99)",
    )
    flags.add_output_flags(p, document="the search (each rate tried, the rate found)")
    p.set_defaults(func=cmd_capacity)


def cmd_capacity(args: argparse.Namespace) -> int:
    from ..facts.models import demo_model_path
    from ..measure.session import Session

    slo = args.search_slo
    _check_min_requests(args.min_requests, _percentiles(slo))
    config = flags.config_from_args(args)
    if args.json:
        check_writable(args.json, "--json")
    model = args.model or demo_model_path()
    with Session(model, config) as session:
        _check_kind(session, slo, model)
        for notice in session.notices:
            print(f"note: {notice}", file=sys.stderr)
        found, text = _search(session, slo, args)
    if not args.quiet or not found.met_at_light_load:
        print(text)
    if args.json:
        write_document(args.json, found.to_dict())
    return 0 if found.capacity_qps else 1


def _search(
    session: Any, slo: tuple[float, float] | dict[str, float], args: argparse.Namespace
) -> tuple[Any, str]:
    """The capacity search the SLO asks for (a single call's latency percentile, or a decoder's
    request limits) and its report."""
    limits = {
        "step_time": args.step_time,
        "max_step_time": max(args.max_step_time, args.step_time),
        "min_requests": args.min_requests,
    }
    if isinstance(slo, dict):
        from ..report.generation_requests import render_generation_capacity
        from ..tools.capacity import find_generation_capacity

        found = find_generation_capacity(session, slo, **limits)
        return found, render_generation_capacity(found)
    from ..report.text import render_capacity
    from ..tools.capacity import find_capacity

    percentile, seconds = slo
    single = find_capacity(session, percentile, seconds * 1e9, **limits)
    return single, render_capacity(single)


def _check_kind(session: Any, slo: tuple[float, float] | dict[str, float], model: str) -> None:
    """Request limits need a decoder's generations; a latency percentile, one call at a time."""
    from ..errors import ConfigError

    name = os.path.basename(model)
    if isinstance(slo, dict) and session.decoder is None:
        raise ConfigError(
            f"--slo {','.join(slo)} limits a decoder's generation requests; {name} is timed one call "
            "at a time (give pNN=TIME)"
        )
    if not isinstance(slo, dict) and session.decoder is not None:
        raise ConfigError(
            f"{name} is a decoder: its capacity is in generation requests (--slo "
            "ttft-p99=TIME,tpot-p99=TIME), or --single-call for one decode step's latency"
        )


def _percentiles(slo: tuple[float, float] | dict[str, float]) -> list[float]:
    """The percentiles the SLO judges (ConfigError for a request limit without one)."""
    if not isinstance(slo, dict):
        return [slo[0]]
    from ..analysis.capacity import generation_limits

    return [lim.percentile for lim in generation_limits(slo)]


def _check_min_requests(count: int | None, percentiles: list[float]) -> None:
    """--min-requests below the count that bounds a percentile's interval on both sides
    leaves steps that cannot be judged: refused."""
    from ..errors import ConfigError
    from ..stats.summary import min_samples_for_ci

    for percentile in percentiles:
        least = min_samples_for_ci(percentile / 100.0)
        if count is not None and count < least:
            raise ConfigError(
                f"--min-requests {count} is too few for a p{percentile:g}: "
                f"its 95% interval needs at least {least}"
            )
