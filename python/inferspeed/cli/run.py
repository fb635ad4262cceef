"""``inferspeed run``: measure a model (or several, interleaved in rounds, then compared)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_ROUNDS, Config
from ..errors import BenchmarkInterrupted, ConfigError
from ..events import listening
from ..metrics import metric_named
from . import flags
from .common import (
    about,
    check_writable,
    expected_seconds,
    interleaved_interrupted,
    interrupted_status,
    shown,
)
from .values import int_at_least

if TYPE_CHECKING:
    from ..results.result import Result

__all__ = ["add_parser", "check", "cmd_interleaved", "cmd_measure_each", "cmd_run", "counting_progress"]

_SERVER = ("server",), "the server scenario only (--scenario server)"
_LOADED = ("server", "offline"), "the server and offline scenarios only (--scenario server or offline)"
_SINGLE = ("single-stream",), "the single-stream scenario only"

#: Flags only some load scenarios use: flag -> (its destination, those scenarios, how to say so).
SCENARIO_ONLY: dict[str, tuple[str, tuple[str, ...], str]] = {
    "--qps": ("qps", *_SERVER),
    "--arrival": ("arrival", *_SERVER),
    "--scheduler-spin": ("scheduler_spin", *_SERVER),
    "--slo": ("slo", *_SERVER),
    "--duration": ("duration", *_LOADED),
    "--concurrency": ("concurrency", *_LOADED),
    "--request-lengths": ("request_lengths", *_LOADED),
    "--iterations": ("iterations", _SINGLE[0], _SINGLE[1] + " (a server or offline run lasts --duration)"),
    "--cache": ("cache", *_SINGLE),
}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="benchmark a model (single stream, closed loop)")
    p.add_argument(
        "model",
        nargs="*",
        help="ONNX model file(s) (default: the demo model shipped with inferspeed); several are "
        "measured interleaved in rounds and compared",
    )
    flags.add_session_flags(p, thread_list=True)
    flags.add_input_flags(p)
    flags.add_generation_flags(p)
    m = p.add_argument_group("measurement")
    flags.add_call_flags(m)
    flags.add_loop_flags(m)
    flags.add_statistics_flags(m)
    flags.add_metric_flags(m)
    m.add_argument(
        "--processes",
        type=int_at_least(1),
        default=1,
        metavar="N",
        help="repeat the measurement in N fresh processes and pool them",
    )
    flags.add_rounds_flag(m)
    flags.add_scenario_flags(p)
    flags.add_output_flags(p)
    p.set_defaults(func=cmd_run, check=check)


def check(args: argparse.Namespace) -> str | None:
    """A flag given where this run would not use it, said as a usage error; None when all are used."""
    for flag, (dest, scenarios, where) in SCENARIO_ONLY.items():
        if getattr(args, dest) is not None and args.scenario not in scenarios:
            return f"{flag} applies to {where}"
    if (problem := flags.check_loop_flags(args)) is not None:
        return problem
    if args.rounds is not None and not _several(args):
        return "--rounds applies to several models, thread counts or --ort-lib (measured interleaved)"
    return None


def cmd_run(args: argparse.Namespace) -> int:
    from ..facts.modelfile import check_model_path

    for path in args.model:  # a bad path is answered before numpy and the rest load
        check_model_path(path)
    from ..facts.models import demo_model_path
    from ..results.result import write_json

    config = flags.config_from_args(args)
    if args.json:
        check_writable(args.json, "--json")
    if metric_named(config.metric).deterministic:  # no rounds: model after model, once each
        return cmd_measure_each(args, config)
    if _several(args):
        return cmd_interleaved(args, config)
    model = args.model[0] if args.model else demo_model_path()
    if not args.model and not args.quiet:
        print(f"(no model given: measuring the demo model {model})", file=sys.stderr)
    results: list[Result] = []
    try:
        _measure(args, config, model, results)
    except BenchmarkInterrupted as exc:
        return _interrupted(args, [*results, exc.result])
    except KeyboardInterrupt as exc:
        # Before the first call was timed: the file still says what happened.
        if args.json:
            write_json(results, args.json, interrupted=True)
            print(f"partial result written to {shown(args.json)} ({len(results)} results)", file=sys.stderr)
        print(f"inferspeed: interrupted: {str(exc) or 'before anything was measured'}", file=sys.stderr)
        return interrupted_status()
    if not args.quiet:
        from ..report.text import render_concurrency_table, render_result

        if config.processes > 1:
            print(render_result(results[0]))
        if len(results) > 1:
            print(render_concurrency_table(results))
    if args.json:
        write_json(results, args.json)
        if not args.quiet:
            print(f"result written to {args.json}", file=sys.stderr)
    return 0


def _several(args: argparse.Namespace) -> bool:
    """Several models, thread counts or runtime libraries: measured interleaved."""
    return len(args.model) > 1 or len(args.threads or ()) > 1 or len(args.ort_lib or ()) > 1


def _measure(args: argparse.Namespace, config: Config, model: str, results: list[Result]) -> None:
    """Measure ``model`` (in worker processes, or once per --concurrency value), appending each
    result to ``results`` as it comes."""
    concurrencies = args.concurrency or [1]
    if config.processes > 1:
        from ..measure.processes import measure_in_processes

        if len(concurrencies) > 1:
            raise ConfigError("--processes takes one --concurrency value")
        results.append(measure_in_processes(model, config))
        for notice in results[0].notices:
            print(f"note: {notice}", file=sys.stderr)
        return
    from ..measure.session import Session
    from ..report.terminal import print_summary, progress
    from ..report.text import render_result

    with Session(model, config) as session:
        for notice in session.notices:
            print(f"note: {notice}", file=sys.stderr)
        for concurrency in concurrencies:
            label = f"measuring {os.path.basename(model)}" + (
                f" (concurrency {concurrency})" if len(concurrencies) > 1 else ""
            )
            with progress(expected_seconds(config), label, enabled=not args.quiet):
                result = session.measure(concurrency=concurrency)
            results.append(result)
            if not args.quiet:
                print_summary(render_result(result) + ("\n" if len(concurrencies) > 1 else ""))


def _interrupted(args: argparse.Namespace, results: list[Result]) -> int:
    """Ctrl-C during a measurement: print and save what there is (the last result partial)."""
    from ..report.text import render_result
    from ..results.result import write_json

    if not args.quiet:
        print(render_result(results[-1]))
    if args.json:
        write_json(results, args.json)
        print(f"partial result written to {shown(args.json)}", file=sys.stderr)
    print("inferspeed: interrupted; the result above is partial", file=sys.stderr)
    return interrupted_status()


def cmd_interleaved(args: argparse.Namespace, config: Config) -> int:
    """Several models, thread counts or runtime libraries measured in rounds in one process
    (each round in a random order, seeded by --seed), then compared with the first."""
    from ..measure.interleave import InterleavedInterrupted, expected_interleaved_seconds, measure_interleaved
    from ..measure.session import Session
    from ..report.terminal import progress
    from ..results.result import write_json

    if config.scenario != "single-stream" or config.processes > 1 or len(args.concurrency or ()) > 1:
        raise ConfigError(
            "several models, thread counts or libraries are measured interleaved in the single-stream "
            "scenario only"
        )
    if config.target_ci is not None:
        raise ConfigError("--target-ci applies to one model at a time")
    rounds = args.rounds or DEFAULT_ROUNDS
    labels, configs, models = _cells(args, config)
    span = expected_interleaved_seconds(len(configs), rounds, config)
    total = None if span is None else span[1]
    if not args.quiet and span is not None:
        print(f"measuring {len(configs)} interleaved in {rounds} rounds: {about(span)}", file=sys.stderr)
    sessions = []
    try:
        for m, cell_config in zip(models, configs, strict=True):
            sessions.append(Session(m, cell_config))
        with progress(total, f"measuring {len(sessions)} interleaved in {rounds} rounds", not args.quiet):
            done = measure_interleaved(sessions, rounds, config, order="random", seed=config.seed)
    except InterleavedInterrupted as exc:
        return interleaved_interrupted(exc, args.json)
    finally:
        for s in sessions:
            s.close()
    if not args.quiet:
        _print_interleaved(labels, done.results, rounds)
    if args.json:
        write_json(done.results, args.json)
    return 0


def _cells(args: argparse.Namespace, config: Config) -> tuple[list[str], list[Config], list[str]]:
    """The interleaved cells: every model with every thread count and library, as (labels,
    configs, model paths)."""
    from ..facts.models import demo_model_path

    models = args.model or [demo_model_path()]
    names = [os.path.basename(m) if models.count(m) == 1 else f"{m}#{i}" for i, m in enumerate(models)]
    threads = args.threads or [None]
    libs = args.ort_lib or [None]
    labels, configs, paths = [], [], []
    for name, m in zip(names, models, strict=True):
        for t in threads:
            for lib in libs:
                label = name + (f" threads={t}" if len(threads) > 1 else "")
                label += f" [{os.path.basename(lib)}]" if len(libs) > 1 and lib else ""
                labels.append(label)
                configs.append(config.replace(threads=t, ort_lib=lib))
                paths.append(m)
    return labels, configs, paths


def _print_interleaved(labels: list[str], results: list[Result], rounds: int) -> None:
    from ..analysis.compare import compare
    from ..report.text import render_comparisons, render_result

    for label, result in zip(labels, results, strict=True):
        print(f"== {label}")
        print(render_result(result) + "\n")
    comparisons = [
        compare(results[0], r, baseline_label=labels[0], candidate_label=label)
        for label, r in zip(labels[1:], results[1:], strict=True)
    ]
    print(f"interleaved in {rounds} rounds (random order); ratios against {labels[0]}:")
    print(render_comparisons(comparisons))


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.0f} min"


def counting_progress(label: str) -> Callable[[Mapping[str, Any]], None]:
    """Print an instruction count's progress events on stderr, one line each: the count and its
    estimated time, the session made under Valgrind, the counted calls done."""

    def show(e: Mapping[str, Any]) -> None:
        if e["event"] == "counting":
            when = (
                f"about {_seconds(e['estimate_s'])} ({e['macs']:,} MACs a call)"
                if e.get("estimate_s") is not None
                else "time unknown until the session is made (no MACs counted)"
            )
            line = (
                f"counting the instructions of {label} under Valgrind: {e['warmup']} uncounted and "
                f"{e['calls']} counted calls, {when}"
            )
        elif e["event"] == "counting_session":
            line = (
                f"session made under Valgrind, its first run {e['first_run_s']:.1f} s: "
                f"about {_seconds(e['left_s'])} of calls to go"
            )
        elif e["event"] == "counted":
            left = (
                f": about {_seconds(e['left_s'])} left" if e["done"] < e["calls"] and e.get("left_s") else ""
            )
            each = f" ({e['call_s']:.1f} s each)" if e.get("call_s") is not None else ""
            line = f"counted {e['done']} of {e['calls']} calls{each}{left}"
        else:
            return
        print(line, file=sys.stderr, flush=True)

    return show


def cmd_measure_each(args: argparse.Namespace, config: Config) -> int:
    """A deterministic metric (instruction counts): each model measured once, one after the
    other (a deterministic value needs no interleaving), printed, and compared with the first."""
    from ..analysis.verdicts import compare_results
    from ..facts.models import demo_model_path
    from ..measure.benchmark import benchmark
    from ..report.text import render_comparisons, render_result
    from ..results.result import write_json

    metric = metric_named(config.metric)
    if len(args.concurrency or ()) > 1 or len(args.ort_lib or ()) > 1 or len(args.threads or ()) > 1:
        raise ConfigError(
            f"--metric {metric.name} measures one configuration of each model: "
            "no list of --concurrency, --threads or --ort-lib"
        )
    models = args.model or [demo_model_path()]
    names = [os.path.basename(m) for m in models]
    quiet = args.quiet or args.json == "-"
    results = []
    for name, model in zip(names, models, strict=True):
        if not quiet and metric.announce and metric.name != "instructions":
            print(metric.announce.format(label=name), file=sys.stderr)
        with listening(counting_progress(name) if not quiet else lambda _: None):
            results.append(benchmark(model, config))
        if not quiet:
            print(render_result(results[-1]) + ("\n" if len(models) > 1 else ""))
    if len(results) > 1 and not quiet:
        comparisons = [
            compare_results(results[0], r, baseline_label=names[0], candidate_label=name)
            for name, r in zip(names[1:], results[1:], strict=True)
        ]
        print(render_comparisons(comparisons))
    if args.json:
        write_json(results, args.json)
        if not quiet:
            print(f"result written to {shown(args.json)}", file=sys.stderr)
    return 0
