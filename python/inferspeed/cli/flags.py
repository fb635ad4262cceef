"""Flag groups shared by the commands, each a small function that adds its flags to a parser or
an argument group, and :func:`config_from_args`, which reads whichever of them a command took.

A flag whose value must be told apart from "not given" (to refuse it where it would be ignored)
defaults to None here; :class:`~inferspeed.config.Config` supplies the default.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..config import (
    ARRIVALS,
    CACHE_MODES,
    CALL_MODES,
    DEFAULT_ROUNDS,
    EXECUTION_MODES,
    GRAPH_OPTIMIZATION_LEVELS,
    METRICS,
    SCENARIOS,
    Config,
    length_spread,
    slo_key,
)
from ..errors import ConfigError
from .values import (
    collect,
    dim_value,
    int_at_least,
    parse_bytes,
    parse_fraction,
    parse_int_list,
    parse_percentile,
    parse_provider,
    parse_rate,
    parse_seconds,
    parse_shape,
    parse_slo,
    parse_slowdown,
    range_value,
)

__all__ = [
    "CONFIG_FIELDS",
    "Group",
    "add_call_flags",
    "add_deadline_flag",
    "add_generation_flags",
    "add_input_flags",
    "add_loop_flags",
    "add_metric_flags",
    "add_ort_lib_flag",
    "add_output_flags",
    "add_quiet_flag",
    "add_rounds_flag",
    "add_scenario_flags",
    "add_seed_flag",
    "add_server_flags",
    "add_session_flags",
    "add_statistics_flags",
    "check_loop_flags",
    "check_threshold_flags",
    "config_from_args",
]

#: A parser or one of its argument groups. argparse has no public name for their common base.
Group = argparse._ActionsContainer  # noqa: SLF001


def add_session_flags(p: argparse.ArgumentParser, *, thread_list: bool) -> None:
    """ONNX Runtime session options. ``thread_list``: --threads takes a list (run measures each)."""
    s = p.add_argument_group("session")
    if thread_list:
        s.add_argument(
            "--threads",
            type=parse_int_list,
            metavar="N[,N...]",
            help="intra-op threads (default: ONNX Runtime's); a list measures each, interleaved",
        )
    else:
        s.add_argument(
            "--threads", type=int_at_least(1), metavar="N", help="intra-op threads (default: ONNX Runtime's)"
        )
    s.add_argument("--inter-op-threads", type=int_at_least(1), metavar="N", help="inter-op threads")
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
    add_ort_lib_flag(s, several=thread_list)


def add_ort_lib_flag(g: Group, *, several: bool = False) -> None:
    """--ort-lib; ``several``: repeatable, each library measured (interleaved, in one process)."""
    if several:
        g.add_argument(
            "--ort-lib",
            action="append",
            metavar="PATH",
            help="libonnxruntime to load (default: $INFERSPEED_ORT_LIB, then the onnxruntime wheel's); "
            "repeated: each is measured, interleaved in one process (e.g. two ONNX Runtime versions)",
        )
        return
    g.add_argument(
        "--ort-lib",
        metavar="PATH",
        help="libonnxruntime to load (default: $INFERSPEED_ORT_LIB, then the onnxruntime wheel's)",
    )


def add_input_flags(p: argparse.ArgumentParser, *, input_sets: bool = True, fresh_seed: bool = False) -> None:
    """How the inputs are made. ``input_sets``: offer --input-sets (a command that fixes the
    number of input sets itself does not); ``fresh_seed``: --seed also seeds a random round
    order and defaults to a fresh seed (:func:`add_seed_flag`)."""
    i = p.add_argument_group("inputs")
    i.add_argument(
        "--shape", action="append", metavar="NAME=1x3x224x224", help="shape of an input (repeatable)"
    )
    i.add_argument(
        "--dim",
        action="append",
        metavar="SYMBOL=N",
        help="size of a dynamic dim, by its name or as INPUT:AXIS=N (repeatable)",
    )
    i.add_argument(
        "--batch",
        type=int_at_least(1),
        metavar="N",
        help="the batch dim of every input that has one (throughput is then also per item)",
    )
    i.add_argument("--input", action="append", metavar="NAME=VALUE", help="fill an input with a constant")
    i.add_argument(
        "--range", action="append", metavar="NAME=LOW:HIGH", help="draw an input uniformly from [LOW, HIGH)"
    )
    i.add_argument("--inputs", metavar="FILE.npz", help="input arrays by name")
    i.add_argument(
        "--cast",
        action="store_true",
        help="convert --inputs arrays of another dtype to the input's type (with a notice) "
        "rather than refuse them",
    )
    add_seed_flag(i, fresh=fresh_seed)
    i.add_argument(
        "--max-input-bytes",
        type=parse_bytes,
        default=Config().max_input_bytes,
        metavar="SIZE",
        help="refuse inputs larger than this in total (default 4G)",
    )
    if input_sets:
        i.add_argument(
            "--input-sets",
            type=int_at_least(1),
            default=1,
            metavar="N",
            help="N distinct input sets, bound ahead and cycled through (default 1)",
        )


def add_seed_flag(g: Group, *, fresh: bool = False) -> None:
    """--seed; ``fresh``: it also seeds the rounds' random order, and without it each
    invocation draws a fresh seed (left None here; the command draws and records it)."""
    if fresh:
        g.add_argument(
            "--seed",
            type=int_at_least(0),
            metavar="N",
            help="seed of the random round order and of generated inputs (default: a fresh one each "
            "invocation, printed and saved in --json; give it to repeat an order)",
        )
        return
    g.add_argument("--seed", type=int_at_least(0), default=0, help="seed of generated inputs (default: 0)")


def add_call_flags(g: Group) -> None:
    """How each call is made: the call API, the measuring thread's CPU, ORT's spinning."""
    g.add_argument(
        "--mode",
        choices=CALL_MODES,
        default="binding",
        help="binding: RunWithBinding, outputs preallocated (default; on a device provider the "
        "inputs are copied to the device when bound, not in the timed call); run: OrtApi::Run "
        "(every call copies; see docs/measurement.md)",
    )
    g.add_argument("--pin", type=int_at_least(0), metavar="CPU", help="pin the measuring thread to this CPU")
    g.add_argument(
        "--spin",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let ORT's thread pools spin while waiting (default: ORT's choice)",
    )


def add_loop_flags(g: Group) -> None:
    """The closed loop's limits (timed and warm-up) and its cache state."""
    g.add_argument("--iterations", "-n", type=int_at_least(1), metavar="N", help="timed iterations (at most)")
    g.add_argument(
        "--max-time",
        "-t",
        type=parse_seconds,
        metavar="SECONDS",
        help="time limit of the timed loop (default: 2s unless --iterations is given)",
    )
    g.add_argument("--warmup", type=parse_seconds, metavar="SECONDS", help="warm-up time (default: 0.2s)")
    g.add_argument(
        "--warmup-iterations", type=int_at_least(0), metavar="N", help="warm-up iterations (at most)"
    )
    g.add_argument(
        "--cache",
        choices=CACHE_MODES,
        help="warm: back-to-back calls (default); cold: evict the CPU caches before every call",
    )
    g.add_argument(
        "--flush-bytes",
        type=parse_bytes,
        metavar="SIZE",
        help="cold-cache flush buffer (default: twice the last-level cache)",
    )


def add_metric_flags(g: Group, *, gate: bool = False) -> None:
    """--metric; ``gate``: also --fail-if-more, the gate on instruction counts."""
    g.add_argument(
        "--metric",
        choices=METRICS,
        help="latency: wall-clock time per call (default; a decoder's whole generations when the "
        "model has a KV cache); generation: a decoder's generations, time to first token and per "
        "output token (docs/generation.md); instructions: the instructions of each call counted "
        "under Valgrind's Callgrind, deterministic (docs/instructions.md)",
    )
    if gate:
        g.add_argument(
            "--fail-if-more",
            type=parse_slowdown,
            metavar="PCT",
            help="--metric instructions: exit 1 when the candidate needs more than PCT more "
            "instructions per call (e.g. 1%%)",
        )


def check_threshold_flags(args: argparse.Namespace) -> str | None:
    """--threshold and --fail-if-slower disagreeing (a usage error): the table's 'slower' is
    what fails the gate, so one threshold stands behind both."""
    threshold, limit = getattr(args, "threshold", None), getattr(args, "fail_if_slower", None)
    if threshold is None or limit is None or abs(threshold - limit) < 1e-12:
        return None
    return (
        f"--threshold {threshold:.1%} and --fail-if-slower {limit:.1%} disagree: the table's 'slower' is "
        "what fails, so give --fail-if-slower alone (it sets the table's threshold too)"
    )


def check_loop_flags(args: argparse.Namespace) -> str | None:
    """The loop flags given where they would be ignored (a usage error), or None."""
    if args.flush_bytes is not None and args.cache != "cold":
        return "--flush-bytes applies to --cache cold only"
    return None


def add_statistics_flags(g: Group, *, adaptive: bool = True) -> None:
    """What the statistics keep; ``adaptive``: also stop the loop on a target CI."""
    if adaptive:
        g.add_argument(
            "--target-ci",
            type=parse_fraction,
            metavar="PCT",
            help="stop once the run's own 95%% CI of the median (its samples and its variation in time) "
            "is within +-PCT (e.g. 1%%), or at the time limit",
        )
        g.add_argument(
            "--target-percentile",
            type=parse_percentile,
            metavar="P",
            help="with --target-ci: also narrow the CI of this percentile (e.g. 99)",
        )
    g.add_argument(
        "--drop-outliers",
        action="store_true",
        help="leave MAD outliers out of the statistics (they are counted either way)",
    )


def add_rounds_flag(g: Group) -> None:
    g.add_argument(
        "--rounds",
        type=int_at_least(1),
        metavar="N",
        help=f"several models: interleaved rounds (default {DEFAULT_ROUNDS})",
    )


def add_scenario_flags(p: argparse.ArgumentParser) -> None:
    """The load scenario: single stream, server (scheduled arrivals) or offline."""
    sc = p.add_argument_group("load scenario")
    sc.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="single-stream",
        help="single-stream: one call after another (default); server: requests at scheduled "
        "arrival times (--qps); offline: --concurrency workers back to back",
    )
    sc.add_argument("--qps", type=parse_rate, metavar="RATE", help="server: offered arrival rate, requests/s")
    sc.add_argument(
        "--duration", type=parse_seconds, metavar="SECONDS", help="server/offline: how long (default 5s)"
    )
    add_server_flags(sc, concurrency_list=True)
    add_deadline_flag(sc)
    sc.add_argument(
        "--slo",
        type=parse_request_slo,
        metavar="ttft=TIME,tpot=TIME",
        help="server, a decoder: limits on each request's time to first token and time per output "
        "token; reports goodput (requests/s within both) and which limit each miss broke; "
        "ttft-p99=TIME also judges the run's p99",
    )
    sc.add_argument(
        "--request-lengths",
        type=parse_request_lengths,
        metavar="spread=R|FILE.jsonl",
        help="server/offline, a decoder: each request's own prompt and output tokens, drawn "
        "uniformly from [L(1-R), L(1+R)] around --prompt-tokens and --gen-tokens (spread=0.5), "
        'or a JSONL file\'s lines {"prompt_tokens": P, "output_tokens": G} in order, cycled',
    )


def add_server_flags(g: Group, *, concurrency_list: bool) -> None:
    """Server workers: arrival process, how many, how they wait. ``concurrency_list``: a list of
    worker counts, each measured (otherwise one)."""
    g.add_argument("--arrival", choices=ARRIVALS, help="server: arrival process")
    if concurrency_list:
        g.add_argument(
            "--concurrency",
            type=parse_int_list,
            metavar="K[,K...]",
            help="server/offline: worker threads sharing the session; a list runs each",
        )
    else:
        g.add_argument(
            "--concurrency",
            type=int_at_least(1),
            metavar="K",
            help="worker threads sharing the session (default 1)",
        )
    g.add_argument(
        "--scheduler-spin",
        type=parse_seconds,
        metavar="TIME",
        help="server: idle workers spin (rather than sleep) this long before each arrival (default 10ms)",
    )


def add_deadline_flag(g: Group) -> None:
    g.add_argument(
        "--deadline", type=parse_seconds, metavar="TIME", help="count requests slower than this (e.g. 2ms)"
    )


def add_output_flags(
    p: argparse.ArgumentParser, *, document: str = "the result (schema inferspeed/1)"
) -> None:
    """--json and --quiet; ``document``: what --json writes."""
    o = p.add_argument_group("output")
    o.add_argument(
        "--json",
        metavar="PATH",
        help=f"write {document} as JSON; '-' writes it to standard output and prints nothing else there",
    )
    add_quiet_flag(o)


def add_generation_flags(p: argparse.ArgumentParser, *, single_call: bool = True) -> None:
    """A decoder's generation (measured by itself for a model with a KV cache): its lengths,
    and ``single_call``: --single-call (a command that only ever generates takes none)."""
    g = p.add_argument_group("generation (a decoder: a model with KV-cache inputs and outputs)")
    g.add_argument(
        "--prompt-tokens",
        type=int_at_least(1),
        metavar="P",
        help="tokens of each generation's prompt (default 128, fewer for a shorter context)",
    )
    g.add_argument(
        "--gen-tokens",
        type=int_at_least(2),
        metavar="G",
        help="tokens each generation outputs: the prompt's call gives the first, one call each "
        "the others (default 128, fewer for a shorter context)",
    )
    if not single_call:
        return
    g.add_argument(
        "--single-call",
        action="store_true",
        default=None,
        help="time one call of a decoder instead of whole generations: one decode step after a past "
        "of --prompt-tokens positions",
    )


def parse_request_slo(text: str) -> dict[str, float]:
    """'ttft=500ms,tpot-p99=50ms' -> {'ttft': 0.5, 'tpot-p99': 0.05}: limits in seconds on a
    decoder's requests (Config.slo), a key with -pNN also judging that percentile."""
    out: dict[str, float] = {}
    for part in text.split(","):
        key, found, limit = part.partition("=")
        if not found:
            raise argparse.ArgumentTypeError(f"{text!r} is not an SLO (e.g. ttft=500ms,tpot=50ms)")
        try:
            slo_key(key)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        out[key.strip().lower()] = parse_seconds(limit)
    return out


def parse_request_lengths(text: str) -> str:
    """--request-lengths: 'spread=R' with R in [0, 1), or a file's path (read when the run is
    planned: a bad line is a ConfigError naming it)."""
    try:
        length_spread(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not text.strip():
        raise argparse.ArgumentTypeError("give spread=R or a JSONL file of lengths")
    return text


def parse_capacity_slo(text: str) -> tuple[float, float] | dict[str, float]:
    """A capacity's SLO: 'p99=5ms' for single calls (percentile, seconds), or a decoder's
    request limits 'ttft-p99=500ms,tpot-p99=50ms' (:func:`parse_request_slo`)."""
    if text.strip().lower().startswith(("ttft", "tpot")):
        return parse_request_slo(text)
    return parse_slo(text)


def add_quiet_flag(g: Group) -> None:
    g.add_argument("--quiet", "-q", action="store_true", help="print nothing but errors")


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def _same(value: Any) -> Any:
    return value


#: Flags whose destination is the Config field of the same name, the value unchanged.
_SAME_NAME = (
    "seed", "batch", "cast", "max_input_bytes", "input_sets", "mode", "iterations", "max_time",
    "warmup_iterations",
    "cache", "flush_bytes", "target_ci", "target_percentile", "drop_outliers", "pin", "spin",
    "processes", "scenario", "qps", "arrival", "duration", "deadline", "scheduler_spin", "metric",
    "prompt_tokens", "gen_tokens", "single_call", "slo", "request_lengths",
)  # fmt: skip

#: Flag destination -> (Config field, how its value becomes the field's). A flag a command did
#: not take is absent from its namespace; a flag left at None takes Config's default.
CONFIG_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    **{name: (name, _same) for name in _SAME_NAME},
    "threads": ("threads", _first),
    "inter_op_threads": ("inter_op_threads", _same),
    "opt_level": ("graph_optimization", _same),
    "execution_mode": ("execution_mode", _same),
    "provider": ("providers", lambda v: tuple(parse_provider(p) for p in v)),
    "session_config": ("session_config", lambda v: collect("--session-config", v, str)),
    "ort_lib": ("ort_lib", _first),
    "no_arena": ("arena", lambda v: not v),
    "no_mem_pattern": ("mem_pattern", lambda v: not v),
    "shape": ("shapes", lambda v: collect("--shape", v, parse_shape)),
    "dim": ("dims", lambda v: collect("--dim", v, dim_value)),
    "input": ("values", lambda v: collect("--input", v, str)),
    "range": ("ranges", lambda v: collect("--range", v, range_value)),
    "inputs": ("inputs_file", _same),
    "warmup": ("warmup_time", _same),
    "concurrency": ("concurrency", _first),
}


def config_from_args(args: argparse.Namespace) -> Config:
    """The Config of the flags a command took (its namespace holds no others)."""
    options = {
        field: convert(value)
        for dest, value in vars(args).items()
        if dest in CONFIG_FIELDS and value is not None
        for field, convert in [CONFIG_FIELDS[dest]]
    }
    return Config(**options)
