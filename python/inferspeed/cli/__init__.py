"""The ``inferspeed`` command line.

Every error a user can cause ends as one line on stderr and exit status 2; Ctrl-C during a
measurement prints and saves the partial result and exits with 130.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from ..analysis.compare import DEFAULT_THRESHOLD
from ..config import (
    ARRIVALS,
    CACHE_MODES,
    CALL_MODES,
    EXECUTION_MODES,
    GRAPH_OPTIMIZATION_LEVELS,
    SCENARIOS,
    Config,
    ProviderSpec,
)
from ..errors import ConfigError, InferspeedError, InputError
from ..measure.interleave import DEFAULT_ROUNDS
from ..results.result import BenchmarkInterrupted
from ..version import __version__

EXIT_USAGE = 2
EXIT_SLOWER = 1
EXIT_INTERRUPTED = 130

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# ----------------------------------------------------------------------------- flag values


def parse_seconds(text: str) -> float:
    """'2' or '2s' -> 2.0; '500ms' -> 0.5; also ns, us/µs, m/min."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zµ]*)\s*", text)
    if not m or m.group(2) not in ("", *_UNITS):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 2, 2s, 500ms)")
    value = float(m.group(1)) * _UNITS.get(m.group(2), 1.0)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite duration")
    return value


def _int(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {minimum}")
        return value

    parse.__name__ = "integer"
    return parse


def _split_pair(flag: str, text: str, sep: str = "=") -> tuple[str, str]:
    name, found, value = text.partition(sep)
    name = name.strip()
    if not found or not name:
        raise ConfigError(f"{flag} expects NAME{sep}VALUE, got {text!r}")
    return name, value.strip()


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x3x224x224' or '1,3,224,224' -> (1, 3, 224, 224); '' or 'scalar' -> ()."""
    text = text.strip()
    if text in ("", "scalar", "[]", "()"):
        return ()
    parts = re.split(r"[x,×]", text.strip("[]()"))
    dims = []
    for p in parts:
        p = p.strip()
        if not re.fullmatch(r"[0-9]+", p):
            raise ConfigError(f"shape {text!r}: {p!r} is not a dimension (use e.g. 1x3x224x224)")
        d = int(p)
        if d < 1:
            raise ConfigError(f"shape {text!r}: dimensions must be positive")
        dims.append(d)
    return tuple(dims)


def _collect(
    flag: str, items: Sequence[str] | None, convert: Callable[[str], Any], sep: str = "="
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or ():
        name, raw = _split_pair(flag, item, sep)
        value = convert(raw)
        if name in out and out[name] != value:
            raise ConfigError(f"{flag} gives {name!r} twice, with different values")
        out[name] = value
    return out


def _dim_value(raw: str) -> int:
    if not re.fullmatch(r"\s*[0-9]+\s*", raw) or int(raw) < 1:
        raise ConfigError(f"--dim value {raw!r} must be a positive integer")
    return int(raw)


def _range_value(raw: str) -> tuple[float, float]:
    lo, found, hi = raw.partition(":")
    try:
        bounds = (float(lo), float(hi))
    except ValueError:
        bounds = None
    if not found or bounds is None:
        raise ConfigError(f"--range expects NAME=LOW:HIGH, got {raw!r}")
    if not bounds[0] < bounds[1]:
        raise ConfigError(f"--range {raw!r}: LOW must be below HIGH")
    return bounds


def parse_fraction(text: str) -> float:
    """'1%' -> 0.01; '0.01' -> 0.01 (between 0 and 1)."""
    value = _parse_percent(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0% and 100%")
    return value


def parse_slowdown(text: str) -> float:
    """A slowdown allowed by a gate: '5%' -> 0.05; '200%' -> 2.0 (a median ratio of 3)."""
    value = _parse_percent(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive percentage (e.g. 5% or 200%)")
    return value


def _parse_percent(text: str) -> float:
    raw = text.strip()
    try:
        return float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction (e.g. 1% or 0.01)") from None


def parse_percentile(text: str) -> float:
    """'99' or 'p99' -> 99.0; 'p99.9' -> 99.9."""
    raw = text.strip().lower().removeprefix("p")
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentile (e.g. 99 or p99.9)") from None
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 100")
    return value


def parse_bytes(text: str) -> int:
    """'96M' -> 100663296; also K, G (binary units), or plain bytes."""
    m = re.fullmatch(r"\s*([0-9]+)\s*([KMG]i?B?|B)?\s*", text, flags=re.IGNORECASE | re.ASCII)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 96M, 1G, 65536)")
    unit = (m.group(2) or "B")[0].upper()
    value = int(m.group(1)) * {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def parse_int_list(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4] (each at least 1)."""
    values = []
    for part in text.split(","):
        part = part.strip()
        # ASCII digits only: str.isdigit() also passes '³', which int() refuses (found by fuzzing).
        if not re.fullmatch(r"[0-9]+", part) or int(part) < 1:
            raise argparse.ArgumentTypeError(f"{text!r} is not a list of positive integers (e.g. 1,2,4)")
        values.append(int(part))
    return values


def parse_rate(text: str) -> float:
    """'200' or '200/s' -> 200.0 requests per second."""
    raw = text.strip().removesuffix("/s")
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate (e.g. 200 or 200/s)") from None
    if not 0 < value < 1e9 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive rate")
    return value


def parse_slo(text: str) -> tuple[float, float]:
    """'p99=5ms' -> (99.0, 0.005): a percentile and a latency in seconds."""
    name, found, limit = text.partition("=")
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not an SLO (e.g. p99=5ms)")
    return parse_percentile(name), parse_seconds(limit)


def _provider(text: str) -> ProviderSpec:
    name, _, opts = text.partition(":")
    if not name.strip():
        raise ConfigError(f"--provider expects NAME[:key=value,...], got {text!r}")
    options = dict(_split_pair("--provider option", kv) for kv in opts.split(",") if kv.strip())
    return ProviderSpec(name.strip(), options)


def _check_writable(path: str, flag: str) -> None:
    if path == "-":
        return  # standard output
    parent = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        raise ConfigError(f"{flag} {path}: is a directory")
    if not os.path.isdir(parent):
        raise ConfigError(f"{flag} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ConfigError(f"{flag} {path}: not writable")
    # os.access trusts permission bits (and root passes them all): try for real, before measuring.
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".inferspeed-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot write in {parent} ({exc.strerror or exc})") from None


# ----------------------------------------------------------------------------- commands


def _shown(path: str) -> str:
    return "standard output" if path == "-" else path


def _write_document(path: str, doc: Any) -> None:
    """A JSON document to ``path``, or to standard output for "-"."""
    import json

    text = json.dumps(doc, indent=2)
    if path == "-":
        print(text)
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def config_from_args(args: argparse.Namespace) -> Config:
    return Config(
        threads=args.threads[0] if args.threads else None,
        inter_op_threads=args.inter_op_threads,
        graph_optimization=args.opt_level,
        execution_mode=args.execution_mode,
        providers=tuple(_provider(p) for p in args.provider or ()),
        session_config=_collect("--session-config", args.session_config, str),
        ort_lib=args.ort_lib,
        arena=not args.no_arena,
        mem_pattern=not args.no_mem_pattern,
        shapes=_collect("--shape", args.shape, parse_shape),
        dims=_collect("--dim", args.dim, _dim_value),
        values=_collect("--input", args.input, str),
        ranges=_collect("--range", args.range, _range_value),
        inputs_file=args.inputs,
        seed=args.seed,
        max_input_bytes=args.max_input_bytes,
        mode=args.mode,
        warmup_iterations=args.warmup_iterations,
        warmup_time=args.warmup,
        iterations=args.iterations,
        max_time=args.max_time,
        cache=args.cache,
        flush_bytes=args.flush_bytes,
        input_sets=args.input_sets,
        target_ci=args.target_ci,
        target_percentile=args.target_percentile,
        drop_outliers=args.drop_outliers,
        pin=args.pin,
        spin=args.spin,
        processes=args.processes,
        scenario=args.scenario,
        qps=args.qps,
        arrival=args.arrival,
        duration=args.duration,
        concurrency=args.concurrency[0],
        deadline=args.deadline,
        scheduler_spin=args.scheduler_spin,
    )


def expected_seconds(config: Config) -> float | None:
    """Roughly how long one measurement with ``config`` takes (warm-up and timed loop), or None
    when it is bounded by a count of iterations only."""
    _, warm = config.warmup_limits
    if config.scenario != "single-stream":
        return (warm or 0.0) + config.scenario_duration
    _, seconds = config.loop_limits
    return None if seconds is None else (warm or 0.0) + seconds


def cmd_run(args: argparse.Namespace) -> int:
    from ..facts.models import demo_model_path
    from ..measure.session import Session
    from ..report.terminal import print_summary, progress
    from ..report.text import render_concurrency_table, render_result
    from ..results.result import Result, write_json

    config = config_from_args(args)
    if args.json:
        _check_writable(args.json, "--json")
    if len(args.model) > 1 or (args.threads and len(args.threads) > 1):
        return cmd_interleaved(args, config)
    model = args.model[0] if args.model else demo_model_path()
    if not args.model and not args.quiet:
        print(f"(no model given: measuring the demo model {model})", file=sys.stderr)
    results: list[Result] = []
    try:
        if config.processes > 1:
            from ..measure.workers import measure_in_processes

            if len(args.concurrency) > 1:
                raise ConfigError("--processes takes one --concurrency value")
            results.append(measure_in_processes(model, config))
            for notice in results[0].notices:
                print(f"note: {notice}", file=sys.stderr)
        else:
            with Session(model, config) as session:
                for notice in session.notices:
                    print(f"note: {notice}", file=sys.stderr)
                for concurrency in args.concurrency:
                    label = f"measuring {os.path.basename(model)}" + (
                        f" (concurrency {concurrency})" if len(args.concurrency) > 1 else ""
                    )
                    with progress(expected_seconds(config), label, enabled=not args.quiet):
                        result = session.measure(concurrency=concurrency)
                    results.append(result)
                    if not args.quiet:
                        print_summary(render_result(result) + ("\n" if len(args.concurrency) > 1 else ""))
    except BenchmarkInterrupted as exc:
        results.append(exc.result)
        if not args.quiet:
            print(render_result(exc.result))
        if args.json:
            write_json(results, args.json)
            print(f"partial result written to {_shown(args.json)}", file=sys.stderr)
        print("inferspeed: interrupted; the result above is partial", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt as exc:
        # Before the first call was timed: the file still says what happened.
        if args.json:
            write_json(results, args.json, interrupted=True)
            print(f"partial result written to {_shown(args.json)} ({len(results)} results)", file=sys.stderr)
        print(f"inferspeed: interrupted: {str(exc) or 'before anything was measured'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        if config.processes > 1:
            print(render_result(results[0]))
        if len(results) > 1:
            print(render_concurrency_table(results))
    if args.json:
        write_json(results, args.json)
        if not args.quiet:
            print(f"result written to {args.json}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    import json

    from ..analysis.compare import check_comparable, compare
    from ..report.text import render_comparisons
    from ..results.result import load_json

    entries = []
    for path in args.results:
        loaded = load_json(path)
        for k, result in enumerate(loaded):
            entries.append((path if len(loaded) == 1 else f"{path}#{k}", result))
    if len(entries) < 2:
        raise ConfigError("compare needs at least two results (give two or more JSON files)")
    base_label, base = entries[0]
    comparisons = []
    for label, result in entries[1:]:
        why = check_comparable(base, result)
        if why and not args.force:
            raise ConfigError(
                f"refusing to compare {base_label} with {label}: {why} (--force compares anyway)"
            )
        comparisons.append(
            compare(base, result, threshold=args.threshold, baseline_label=base_label, candidate_label=label)
        )
    if args.json:
        print(json.dumps([c.to_dict() for c in comparisons], indent=2))
    elif not args.quiet:
        print(render_comparisons(comparisons))
    slow = [c.candidate for c in comparisons if c.slower_by_more_than(args.fail_if_slower or math.inf)]
    if args.fail_if_slower is not None and slow:
        print(
            f"inferspeed: {', '.join(slow)} significantly slower than {base_label} "
            f"by more than {args.fail_if_slower:.1%}",
            file=sys.stderr,
        )
        return EXIT_SLOWER
    return 0


def cmd_interleaved(args: argparse.Namespace, config: Config) -> int:
    """Several models (or thread counts) measured in rounds (A B A B ...) in one process, then
    compared with the first."""
    from ..analysis.compare import compare
    from ..measure.interleave import measure_interleaved
    from ..measure.session import Session
    from ..report.terminal import progress
    from ..report.text import render_comparisons, render_result
    from ..results.result import write_json

    if config.scenario != "single-stream" or config.processes > 1 or len(args.concurrency) > 1:
        raise ConfigError(
            "several models or thread counts are measured interleaved in the single-stream scenario only"
        )
    if config.target_ci is not None:
        raise ConfigError("--target-ci applies to one model at a time")
    from ..facts.models import demo_model_path

    models = args.model or [demo_model_path()]
    names = [os.path.basename(m) if models.count(m) == 1 else f"{m}#{i}" for i, m in enumerate(models)]
    threads = args.threads or [None]
    cells = [(name, m, t) for name, m in zip(names, models, strict=True) for t in threads]
    labels = [name if len(threads) == 1 else f"{name} threads={t}" for name, _, t in cells]
    sessions = []
    try:
        for _, m, t in cells:
            sessions.append(Session(m, config.replace(threads=t)))
        each = expected_seconds(config)
        total = None if each is None else each * len(sessions)
        with progress(
            total, f"measuring {len(sessions)} interleaved in {args.rounds} rounds", not args.quiet
        ):
            results, per_round = measure_interleaved(sessions, args.rounds, config)
    finally:
        for s in sessions:
            s.close()
    if not args.quiet:
        for label, result in zip(labels, results, strict=True):
            print(f"== {label}")
            print(render_result(result) + "\n")
        comparisons = [
            compare(
                results[0], r, baseline_label=labels[0], candidate_label=label, rounds=(per_round[0], parts)
            )
            for label, r, parts in zip(labels[1:], results[1:], per_round[1:], strict=True)
        ]
        print(f"interleaved in {args.rounds} rounds; ratios against {labels[0]}:")
        print(render_comparisons(comparisons))
    if args.json:
        write_json(results, args.json)
    return 0


def _choice_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(choices)}")
        return values

    return parse


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..report.text import render_sweep
    from ..tools.sweep import sweep

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
        grid["dims"] = _collect("--dim", args.dim, lambda raw: [_dim_value(v) for v in raw.split(",")])
    if not grid:
        raise ConfigError("sweep needs at least one axis (--threads, --dim, --opt-level, --mode, --cache)")
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


def cmd_tradeoff(args: argparse.Namespace) -> int:
    from ..report.text import render_tradeoff
    from ..tools.tradeoff import tradeoff

    config = config_from_args(args)
    if args.json:
        _check_writable(args.json, "--json")
    if not args.model:
        raise ConfigError("tradeoff needs a base model")
    if args.threads and len(args.threads) > 1:
        raise ConfigError("tradeoff takes one thread count")
    base, *variants = args.model
    found = tradeoff(
        base,
        variants,
        config=config,
        quantize=args.quantize,
        fp16=args.fp16,
        calibration_file=args.calibration,
        rounds=args.rounds,
    )
    if not args.quiet:
        print(render_tradeoff(found))
    if args.json:
        _write_document(args.json, found.to_dict())
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
    from ..analysis.capacity import find_capacity
    from ..facts.models import demo_model_path
    from ..measure.session import Session
    from ..report.text import render_capacity

    percentile, slo = args.slo
    config = config_from_args(args)
    if args.json:
        _check_writable(args.json, "--json")
    if len(args.model) > 1 or (args.threads and len(args.threads) > 1):
        raise ConfigError("capacity takes one model and one thread count")
    model = args.model[0] if args.model else demo_model_path()
    with Session(model, config) as session:
        for notice in session.notices:
            print(f"note: {notice}", file=sys.stderr)
        found = find_capacity(
            session, percentile, slo * 1e9, step_time=args.step_time, max_step_time=4 * args.step_time
        )
    if not args.quiet:
        print(render_capacity(found))
    if args.json:
        _write_document(args.json, found.to_dict())
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from ..facts.models import demo_model_path
    from ..report.terminal import print_summary, progress
    from ..report.text import render_profile, render_result
    from ..results.result import write_json
    from ..tools.profile import profile

    config = config_from_args(args)
    for path, flag in ((args.json, "--json"), (args.trace, "--trace")):
        if path:
            _check_writable(path, flag)
    if len(args.model) > 1 or (args.threads and len(args.threads) > 1):
        raise ConfigError("profile takes one model and one thread count")
    if len(args.concurrency) > 1:
        raise ConfigError("profile takes one --concurrency value")
    model = args.model[0] if args.model else demo_model_path()
    each = expected_seconds(config)
    with progress(None if each is None else 2 * each, f"profiling {os.path.basename(model)}", not args.quiet):
        found = profile(model, config, trace=args.trace)
    if not args.quiet:
        print_summary(render_result(found.profiled))
        print()
        print(render_profile(found.profiled, top=args.top))
    if args.json:
        write_json([found.profiled], args.json)
        if not args.quiet:
            print(f"result written to {args.json}", file=sys.stderr)
    return 0


def _read_report_input(path: str) -> tuple[dict[str, Any] | None, list[Any]]:
    """(trade-off or capacity document, []) or (None, results) of one file given to report."""
    from ..results.result import read_json_file, results_from_document

    doc = read_json_file(path, " (a sweep's JSONL is not a report input)")
    if isinstance(doc, dict) and doc.get("scenario") in ("tradeoff", "capacity") and "schema" not in doc:
        return doc, []
    return None, results_from_document(doc, path)


def cmd_report(args: argparse.Namespace) -> int:
    from ..report.exports import to_csv, to_markdown, write_pyperf
    from ..report.text import render_profile, render_result

    for path, flag in ((args.html, "--html"), (args.pyperf, "--pyperf")):
        if path:
            _check_writable(path, flag)
    for path, flag in ((args.markdown, "--markdown"), (args.csv, "--csv")):
        if path and path != "-":
            _check_writable(path, flag)
    inputs = [(path, *_read_report_input(path)) for path in args.results]
    results = [r for _, _, rs in inputs for r in rs]
    if (args.pyperf or args.markdown or args.csv) and not results:
        raise InputError("--pyperf, --markdown and --csv need latency results (from run, profile, ...)")
    wrote = []
    if args.html or args.png:
        from ..report.html import plots_for, render_html, require_matplotlib, write_pngs

        require_matplotlib()
        sections = [plots_for(path, doc, rs) for path, doc, rs in inputs]
        if args.html:
            with open(args.html, "w", encoding="utf-8") as f:
                f.write(render_html(sections))
            wrote.append(f"{args.html} ({sum(len(s.plots) for s in sections)} plots)")
        if args.png:
            wrote.append(f"{len(write_pngs(sections, args.png))} PNG files in {args.png}")
    for path, text in ((args.markdown, to_markdown), (args.csv, to_csv)):
        if path == "-":
            sys.stdout.write(text(results))
        elif path:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text(results))
            wrote.append(path)
    if args.pyperf:
        if args.pyperf_name and len(results) > 1:
            raise ConfigError("--pyperf-name names the benchmark of a single result")
        write_pyperf(results, args.pyperf, args.pyperf_name)
        wrote.append(f"{args.pyperf} (pyperf format)")
    if not (args.html or args.png or args.markdown or args.csv or args.pyperf):
        for r in results:
            print(render_result(r) + "\n")
            if r.profile is not None:  # a saved `inferspeed profile` result: its tables too
                print(render_profile(r) + "\n")
        for path, doc, _ in inputs:
            if doc is not None:
                print(f"{path}: a {doc['scenario']} result: use --html or --png to draw it")
    for line in wrote:
        print(f"wrote {line}", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import json

    from ..facts.info import model_info
    from ..report.text import render_info

    info = model_info(args.model)
    print(json.dumps(info, indent=2) if args.json else render_info(info))
    return 0


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        nargs="*",
        help="ONNX model file(s) (default: the demo model shipped with inferspeed); several are "
        "measured interleaved in rounds and compared",
    )
    s = p.add_argument_group("session")
    s.add_argument(
        "--threads",
        type=parse_int_list,
        metavar="N[,N...]",
        help="intra-op threads (default: ONNX Runtime's); a list (run) measures each, interleaved",
    )
    s.add_argument("--inter-op-threads", type=_int(1), metavar="N", help="inter-op threads")
    s.add_argument(
        "--opt-level",
        choices=list(GRAPH_OPTIMIZATION_LEVELS),
        default="all",
        help="graph optimization level (default: all)",
    )
    s.add_argument("--execution-mode", choices=EXECUTION_MODES, default="sequential")
    s.add_argument(
        "--no-arena", action="store_true", help="no CPU memory arena: ORT buffers come from malloc each run"
    )
    s.add_argument(
        "--no-mem-pattern",
        action="store_true",
        help="no memory pattern: ORT does not plan allocations from the first run's sizes",
    )
    s.add_argument(
        "--provider",
        action="append",
        metavar="NAME[:k=v,...]",
        help="execution provider with options, in order of preference (repeatable)",
    )
    s.add_argument(
        "--session-config",
        action="append",
        metavar="KEY=VALUE",
        help="ONNX Runtime session config entry (repeatable)",
    )
    s.add_argument(
        "--ort-lib",
        metavar="PATH",
        help="libonnxruntime to load (default: $INFERSPEED_ORT_LIB, then the onnxruntime wheel's)",
    )
    i = p.add_argument_group("inputs")
    i.add_argument(
        "--shape",
        action="append",
        metavar="NAME=1x3x224x224",
        help="shape of an input (repeatable)",
    )
    i.add_argument(
        "--dim",
        action="append",
        metavar="SYMBOL=N",
        help="size of a named dynamic dim (repeatable)",
    )
    i.add_argument("--input", action="append", metavar="NAME=VALUE", help="fill an input with a constant")
    i.add_argument(
        "--range",
        action="append",
        metavar="NAME=LOW:HIGH",
        help="draw an input uniformly from [LOW, HIGH)",
    )
    i.add_argument("--inputs", metavar="FILE.npz", help="input arrays by name")
    i.add_argument("--seed", type=_int(0), default=0, help="seed of generated inputs (default: 0)")
    i.add_argument(
        "--max-input-bytes",
        type=parse_bytes,
        default=Config().max_input_bytes,
        metavar="SIZE",
        help="refuse inputs larger than this in total (default 4G)",
    )
    i.add_argument(
        "--input-sets",
        type=_int(1),
        default=1,
        metavar="N",
        help="N distinct input sets, bound ahead and cycled through (default 1)",
    )
    m = p.add_argument_group("measurement")
    m.add_argument(
        "--mode",
        choices=CALL_MODES,
        default="binding",
        help="binding: RunWithBinding, outputs preallocated (default); run: OrtApi::Run",
    )
    m.add_argument("--iterations", "-n", type=_int(1), metavar="N", help="timed iterations (at most)")
    m.add_argument(
        "--max-time",
        "-t",
        type=parse_seconds,
        metavar="SECONDS",
        help="time limit of the timed loop (default: 2s unless --iterations is given)",
    )
    m.add_argument("--warmup", type=parse_seconds, metavar="SECONDS", help="warm-up time (default: 0.2s)")
    m.add_argument("--warmup-iterations", type=_int(0), metavar="N", help="warm-up iterations (at most)")
    m.add_argument(
        "--cache",
        choices=CACHE_MODES,
        default="warm",
        help="warm: back-to-back calls (default); cold: evict the CPU caches before every call",
    )
    m.add_argument(
        "--flush-bytes",
        type=parse_bytes,
        metavar="SIZE",
        help="cold-cache flush buffer (default: twice the last-level cache)",
    )
    m.add_argument(
        "--target-ci",
        type=parse_fraction,
        metavar="PCT",
        help="stop once the median's 95%% CI is within +-PCT (e.g. 1%%), or at the time limit",
    )
    m.add_argument(
        "--target-percentile",
        type=parse_percentile,
        metavar="P",
        help="with --target-ci: also narrow the CI of this percentile (e.g. 99)",
    )
    m.add_argument(
        "--drop-outliers",
        action="store_true",
        help="leave MAD outliers out of the statistics (they are counted either way)",
    )
    m.add_argument(
        "--processes",
        type=_int(1),
        default=1,
        metavar="N",
        help="repeat the measurement in N fresh processes and pool them",
    )
    m.add_argument("--pin", type=_int(0), metavar="CPU", help="pin the measuring thread to this CPU")
    m.add_argument(
        "--spin",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let ORT's thread pools spin while waiting (default: ORT's choice)",
    )
    sc = p.add_argument_group("load scenario")
    sc.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="single-stream",
        help="single-stream: one call after another (default); server: requests at scheduled "
        "arrival times (--qps); offline: --concurrency workers back to back",
    )
    sc.add_argument("--qps", type=parse_rate, metavar="RATE", help="server: offered arrival rate, requests/s")
    sc.add_argument("--arrival", choices=ARRIVALS, default="poisson", help="server: arrival process")
    sc.add_argument(
        "--duration", type=parse_seconds, metavar="SECONDS", help="server/offline: how long (default 5s)"
    )
    sc.add_argument(
        "--concurrency",
        type=parse_int_list,
        default=[1],
        metavar="K[,K...]",
        help="server/offline: worker threads sharing the session; a list runs each",
    )
    sc.add_argument(
        "--deadline", type=parse_seconds, metavar="TIME", help="count requests slower than this (e.g. 2ms)"
    )
    sc.add_argument(
        "--scheduler-spin",
        type=parse_seconds,
        default=Config().scheduler_spin,
        metavar="TIME",
        help="server: idle workers spin (rather than sleep) this long before each arrival (default 10ms)",
    )
    m.add_argument(
        "--rounds",
        type=_int(1),
        default=DEFAULT_ROUNDS,
        metavar="N",
        help=f"several models: interleaved rounds (default {DEFAULT_ROUNDS})",
    )
    o = p.add_argument_group("output")
    o.add_argument(
        "--json",
        metavar="PATH",
        help="write the result as JSON (schema inferspeed/1); '-' writes it to standard output "
        "and prints nothing else there",
    )
    o.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="inferspeed", description="Latency of ONNX models under ONNX Runtime, timed in C++."
    )
    parser.add_argument("--version", action="version", version=f"inferspeed {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = sub.add_parser("run", help="benchmark a model (single stream, closed loop)")
    _add_run_flags(run)
    run.set_defaults(func=cmd_run)
    cap = sub.add_parser("capacity", help="find the highest arrival rate that meets a latency SLO")
    _add_run_flags(cap)
    cap.add_argument("--slo", type=parse_slo, required=True, metavar="pNN=TIME", help="e.g. p99=5ms")
    cap.add_argument(
        "--step-time", type=parse_seconds, default=2.0, metavar="SECONDS", help="seconds per rate tried"
    )
    cap.set_defaults(func=cmd_capacity)
    tr = sub.add_parser("tradeoff", help="speed against output error of model variants (quantised, fp16)")
    _add_run_flags(tr)
    tr.add_argument("--quantize", choices=("dynamic", "static"), help="make an int8 variant")
    tr.add_argument("--fp16", action="store_true", help="make a float16 variant")
    tr.add_argument("--calibration", metavar="FILE.npz", help="static quantisation: calibration inputs")
    tr.set_defaults(func=cmd_tradeoff)
    cmp_ = sub.add_parser("compare", help="compare results (JSON files) with significance")
    cmp_.add_argument("results", nargs="+", metavar="RESULT.json", help="the first is the baseline")
    cmp_.add_argument(
        "--threshold",
        type=parse_fraction,
        default=DEFAULT_THRESHOLD,
        metavar="PCT",
        help="differences within +-PCT are 'no significant difference' "
        f"(default {DEFAULT_THRESHOLD * 100:g}%%)",
    )
    cmp_.add_argument(
        "--fail-if-slower",
        type=parse_slowdown,
        metavar="PCT",
        help="exit 1 when a result is significantly slower than the baseline by more than PCT",
    )
    cmp_.add_argument("--force", action="store_true", help="compare different models or machines anyway")
    cmp_.add_argument("--json", action="store_true", help="print JSON")
    cmp_.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors and the gate")
    cmp_.set_defaults(func=cmd_compare)
    sw = sub.add_parser("sweep", help="measure a grid of configurations, each in its own process")
    sw.add_argument("model", help="ONNX model file")
    sw.add_argument("--threads", type=parse_int_list, metavar="N[,N...]", help="intra-op threads")
    sw.add_argument(
        "--dim", action="append", metavar="SYMBOL=N[,N...]", help="sizes of a named dim (repeatable)"
    )
    sw.add_argument("--opt-level", type=_choice_list(list(GRAPH_OPTIMIZATION_LEVELS)), metavar="L[,L...]")
    sw.add_argument("--mode", type=_choice_list(CALL_MODES), metavar="M[,M...]")
    sw.add_argument("--cache", type=_choice_list(CACHE_MODES), metavar="C[,C...]")
    sw.add_argument("--out", required=True, metavar="FILE.jsonl", help="results, one line per cell")
    sw.add_argument("--resume", action="store_true", help="skip the cells already in --out")
    sw.add_argument(
        "--by", choices=("median", "p99", "throughput"), default="median", help="what 'best' means"
    )
    sw.add_argument("--iterations", "-n", type=_int(1), metavar="N", help="timed iterations per cell")
    sw.add_argument(
        "--max-time", "-t", type=parse_seconds, metavar="SECONDS", help="time per cell (default 2s)"
    )
    sw.add_argument("--warmup", type=parse_seconds, metavar="SECONDS", help="warm-up per cell (default 0.2s)")
    sw.add_argument("--seed", type=_int(0), default=0)
    sw.add_argument("--ort-lib", metavar="PATH")
    sw.add_argument("--quiet", "-q", action="store_true")
    sw.set_defaults(func=cmd_sweep)
    prof = sub.add_parser("profile", help="time per operator type and per node (ONNX Runtime's profiler)")
    _add_run_flags(prof)
    prof.add_argument("--top", type=_int(1), default=15, metavar="N", help="rows of each table (default 15)")
    prof.add_argument(
        "--trace", metavar="PATH", help="keep ONNX Runtime's trace (Perfetto, chrome://tracing)"
    )
    prof.set_defaults(func=cmd_profile)
    rep = sub.add_parser("report", help="plots (HTML, PNG), Markdown, CSV or pyperf files from results")
    rep.add_argument(
        "results", nargs="+", metavar="RESULT.json", help="run, profile, tradeoff or capacity JSON"
    )
    rep.add_argument("--html", metavar="PATH", help="one self-contained HTML file with every plot")
    rep.add_argument("--png", metavar="DIR", help="every plot as a PNG file in DIR")
    rep.add_argument("--markdown", nargs="?", const="-", metavar="PATH", help="a Markdown table (stdout: -)")
    rep.add_argument("--csv", nargs="?", const="-", metavar="PATH", help="a CSV table (stdout: -)")
    rep.add_argument(
        "--pyperf", metavar="PATH", help="pyperf's JSON format (python -m pyperf compare_to ...)"
    )
    rep.add_argument(
        "--pyperf-name", metavar="NAME", help="pyperf benchmark name of a single result (default 'latency')"
    )
    rep.set_defaults(func=cmd_report)
    info = sub.add_parser("info", help="show a model's inputs, outputs, size and operators")
    info.add_argument("model", help="ONNX model file")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if getattr(args, "json", None) == "-" and hasattr(args, "quiet"):
        args.quiet = True  # standard output carries the JSON alone
    try:
        code = int(args.func(args))
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # e.g. `inferspeed info model.onnx | head -1`: not an error
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (InferspeedError, OSError) as exc:
        print(f"inferspeed: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        detail = str(exc)
        print(f"inferspeed: interrupted{': ' + _one_line(detail) if detail else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    sys.exit(main())
