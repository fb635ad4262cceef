"""``inferspeed sweep``: a grid of configurations, each cell measured in its own process."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..config import CACHE_MODES, CALL_MODES, GRAPH_OPTIMIZATION_LEVELS, Config
from ..errors import ConfigError
from . import flags
from .values import choice_list, collect, dim_value, int_at_least, parse_int_list, parse_seconds

__all__ = ["add_parser", "cmd_sweep"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sweep", help="measure a grid of configurations, each in its own process")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--threads", type=parse_int_list, metavar="N[,N...]", help="intra-op threads")
    p.add_argument(
        "--dim", action="append", metavar="SYMBOL=N[,N...]", help="sizes of a named dim (repeatable)"
    )
    p.add_argument("--opt-level", type=choice_list(list(GRAPH_OPTIMIZATION_LEVELS)), metavar="L[,L...]")
    p.add_argument("--mode", type=choice_list(CALL_MODES), metavar="M[,M...]")
    p.add_argument("--cache", type=choice_list(CACHE_MODES), metavar="C[,C...]")
    p.add_argument("--out", required=True, metavar="FILE.jsonl", help="results, one line per cell")
    p.add_argument("--resume", action="store_true", help="skip the cells already in --out")
    p.add_argument(
        "--by", choices=("median", "p99", "throughput"), default="median", help="what 'best' means"
    )
    p.add_argument("--iterations", "-n", type=int_at_least(1), metavar="N", help="timed iterations per cell")
    p.add_argument(
        "--max-time", "-t", type=parse_seconds, metavar="SECONDS", help="time per cell (default 2s)"
    )
    p.add_argument("--warmup", type=parse_seconds, metavar="SECONDS", help="warm-up per cell (default 0.2s)")
    flags.add_seed_flag(p)
    flags.add_ort_lib_flag(p)
    flags.add_quiet_flag(p)
    p.set_defaults(func=cmd_sweep)


def _grid(args: argparse.Namespace) -> dict[str, Any]:
    grid: dict[str, Any] = {}
    if args.threads:
        grid["threads"] = args.threads
    if args.opt_level:
        grid["opt_level"] = args.opt_level
    if args.mode:
        grid["mode"] = args.mode
    if args.cache:
        grid["cache"] = args.cache
    if args.dim:
        grid["dims"] = collect("--dim", args.dim, lambda raw: [dim_value(v) for v in raw.split(",")])
    if not grid:
        raise ConfigError("sweep needs at least one axis (--threads, --dim, --opt-level, --mode, --cache)")
    return grid


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..report.text import render_sweep
    from ..tools.sweep import sweep

    grid = _grid(args)
    config = Config(
        ort_lib=args.ort_lib,
        seed=args.seed,
        iterations=args.iterations,
        max_time=args.max_time,
        warmup_time=args.warmup,
    )

    def progress(done: int, total: int, entry: Any) -> None:
        if not args.quiet:
            status = entry.get("error") or f"median {entry['result']['stats']['median_ns'] / 1e3:.2f} µs"
            print(f"[{done}/{total}] {entry['cell']}: {status}", file=sys.stderr)

    found = sweep(
        args.model, grid, args.out, config=config, resume=args.resume, by=args.by, progress=progress
    )
    if not args.quiet:
        print(render_sweep(found))
    return 0
