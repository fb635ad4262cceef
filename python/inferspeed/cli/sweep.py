"""``inferspeed sweep``: a grid of configurations, each cell measured in its own process."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..config import CACHE_MODES, CALL_MODES, GRAPH_OPTIMIZATION_LEVELS, Config
from ..errors import ConfigError
from ..metrics import METRICS, metric_named, rankings
from . import flags
from .cluster import add_cluster_flags, check_cluster_flags, sweep_on_cluster
from .common import check_writable
from .values import choice_list, collect, dim_value, int_at_least, parse_int_list, parse_seconds

if TYPE_CHECKING:
    from ..results.sweepfile import SweepLine
    from ..tools.sweep import SweepResult

__all__ = ["add_parser", "cmd_sweep"]

#: Flag destinations that are sweep axes: lists, one value per cell, never the base Config's.
AXIS_DESTS = (
    "threads", "opt_level", "mode", "cache", "dim", "batch", "prompt_tokens", "gen_tokens", "streams"
)  # fmt: skip


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sweep", help="measure a grid of configurations, each in its own process")
    p.add_argument("model", help="ONNX model file")
    # "resolve": the axes --dim and --batch (lists) take the place of the input group's (one size).
    axes = p.add_argument_group(
        "sweep axes (each a list; every combination is one cell)", conflict_handler="resolve"
    )
    axes.add_argument("--threads", type=parse_int_list, metavar="N[,N...]", help="intra-op threads")
    axes.add_argument("--opt-level", type=choice_list(list(GRAPH_OPTIMIZATION_LEVELS)), metavar="L[,L...]")
    axes.add_argument("--mode", type=choice_list(CALL_MODES), metavar="M[,M...]")
    axes.add_argument("--cache", type=choice_list(CACHE_MODES), metavar="C[,C...]")
    axes.add_argument(
        "--prompt-tokens",
        type=parse_int_list,
        metavar="P[,P...]",
        help="a decoder's prompt lengths (each cell's generations; docs/generation.md)",
    )
    axes.add_argument(
        "--gen-tokens",
        type=parse_int_list,
        metavar="G[,G...]",
        help="a decoder's output lengths, each at least 2",
    )
    axes.add_argument(
        "--streams",
        type=parse_int_list,
        metavar="K[,K...]",
        help="streams sharing one session, back to back (the offline scenario's concurrency; a "
        "decoder's streams each generate with their own cache; docs/scenarios.md)",
    )
    p.add_argument(
        "--out", metavar="FILE.jsonl", help="results, one line per cell, each written once measured"
    )
    p.add_argument("--resume", action="store_true", help="skip the cells already in --out")
    p.add_argument(
        "--markdown",
        nargs="?",
        const="-",
        metavar="PATH",
        help="the table in Markdown, to PATH (default: standard output, instead of the text table)",
    )
    p.add_argument(
        "--csv",
        nargs="?",
        const="-",
        metavar="PATH",
        help="the table in CSV, times in ns (default: standard output, instead of the text table)",
    )
    p.add_argument("--by", choices=tuple(rankings()), help=f"what 'best' means ({_by_defaults()})")
    flags.add_metric_flags(p)
    p.add_argument("--iterations", "-n", type=int_at_least(1), metavar="N", help="timed iterations per cell")
    p.add_argument(
        "--max-time", "-t", type=parse_seconds, metavar="SECONDS", help="time per cell (default 2s)"
    )
    p.add_argument("--warmup", type=parse_seconds, metavar="SECONDS", help="warm-up per cell (default 0.2s)")
    flags.add_ort_lib_flag(p)
    flags.add_quiet_flag(p)
    flags.add_input_flags(p)  # as `run` takes them, the same in every cell
    axes.add_argument(
        "--dim",
        action="append",
        metavar="SYMBOL=N[,N...]",
        help="sizes of a dynamic dim, by its name or as INPUT:AXIS=N[,N...] (repeatable)",
    )
    axes.add_argument(
        "--batch",
        type=parse_int_list,
        metavar="N[,N...]",
        help="sizes of the batch dim of every input that has one (cells labelled batch=N)",
    )
    add_cluster_flags(p)
    p.set_defaults(func=cmd_sweep)


def _by_defaults() -> str:
    """``default: the first of the cells' metric: median (latency), ...``: each metric's first
    ranking (a decoder's cells measure generations under the default metric)."""
    firsts = [f"{m.rankings[0].name} ({m.name})" for m in METRICS.values()]
    return "default: the first of the cells' metric: " + ", ".join(firsts)


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
    if args.batch:
        grid["batch"] = args.batch
    if args.prompt_tokens:
        grid["prompt_tokens"] = args.prompt_tokens
    if args.gen_tokens:
        grid["gen_tokens"] = args.gen_tokens
    if args.streams:
        grid["streams"] = args.streams
    if not grid:
        raise ConfigError(
            "sweep needs at least one axis (--threads, --dim, --batch, --opt-level, --mode, --cache, "
            "--prompt-tokens, --gen-tokens, --streams)"
        )
    return grid


def _base_config(args: argparse.Namespace) -> Config:
    """Every cell's Config before its axes: the flags that are not axes."""
    fixed = {dest: value for dest, value in vars(args).items() if dest not in AXIS_DESTS}
    return flags.config_from_args(argparse.Namespace(**fixed))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _failures(found: SweepResult) -> str | None:
    """The last line of a sweep with failed cells: which, and why; None when none failed."""
    failed = [e for e in found.entries if e.error is not None]
    if not failed:
        return None
    first = f"{failed[0].label}: {_one_line(failed[0].error or '')}"
    if len(failed) == 1:
        return f"inferspeed: error: sweep: 1 of {len(found.entries)} cells failed: {first}"
    names = [e.label for e in failed[:4]]
    if len(failed) > 4:
        names.append(f"{len(failed) - 4} more")
    return (
        f"inferspeed: error: sweep: {len(failed)} of {len(found.entries)} cells failed "
        f"({'; '.join(names)}); the first: {first}"
    )


def _check_outputs(args: argparse.Namespace) -> None:
    """The output flags, checked before anything is measured."""
    if args.out is None and (args.resume or args.cluster):
        flag = "--resume" if args.resume else "--cluster"
        raise ConfigError(f"{flag} needs --out (the sweep's file, one line per cell)")
    if args.out is not None:
        check_writable(args.out, "--out")
    if args.markdown == "-" and args.csv == "-":
        raise ConfigError("--markdown and --csv both write to standard output: give one of them a PATH")
    for path, flag in ((args.markdown, "--markdown"), (args.csv, "--csv")):
        if path is not None:
            check_writable(path, flag)


def _print_tables(args: argparse.Namespace, found: SweepResult) -> None:
    """The text table (unless --quiet, or a table goes to standard output), the Markdown and
    CSV tables where asked."""
    from ..report.exports import sweep_csv, sweep_markdown
    from ..report.text import render_sweep

    if not args.quiet and "-" not in (args.markdown, args.csv):
        print(render_sweep(found))
        if args.cluster:
            from ..report.cluster import render_hosts

            print("\n" + render_hosts(found.entries))
    for path, render in ((args.markdown, sweep_markdown), (args.csv, sweep_csv)):
        if path == "-":
            sys.stdout.write(render(found))
        elif path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(render(found))
            print(f"wrote {path}", file=sys.stderr)


def _progress(line: SweepLine) -> str:
    """A measured cell's line of progress: its metric's headline, or its error."""
    if line.error is not None:
        return f"error: {_one_line(line.error)}"
    metric = metric_named(line.metric)
    return metric.describe(line.value(metric.headline))


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..facts.modelfile import check_model_path

    check_model_path(args.model)  # a bad path is one usage error, not a failure in every cell
    grid = _grid(args)
    check_cluster_flags(args)
    config = _base_config(args)
    _check_outputs(args)
    from ..tools.sweep import sweep

    def progress(done: int, total: int, line: SweepLine) -> None:
        if not args.quiet:
            print(f"[{done}/{total}] {line.label}: {_progress(line)}", file=sys.stderr)

    if args.cluster:  # the same cells as Ray tasks, each owning a whole node (cli/cluster.py)
        by = args.by or metric_named(config.metric).rankings[0].name
        found = sweep_on_cluster(args, grid, config, by, progress)
    else:  # by: the first ranking of the cells' metric unless given (a decoder's: tpot)
        found = sweep(
            args.model, grid, args.out, config=config, resume=args.resume, by=args.by, progress=progress
        )
    _print_tables(args, found)
    failures = _failures(found)
    if failures is None:
        return 0
    sys.stdout.flush()
    print(failures, file=sys.stderr)
    return 1
