"""``inferspeed tradeoff``: speed against output error of a model's variants (quantised, fp16).

The base and its variants are measured interleaved in rounds, single stream, on a fixed number
of input sets (the same ones the outputs are compared on; with --inputs FILE.npz, the file's
arrays as one input set): no scenario, process, target-CI or --input-sets flags. --save DIR keeps
the variants it makes.
"""

from __future__ import annotations

import argparse

from ..config import DEFAULT_ROUNDS
from . import flags
from .common import check_writable, write_document

__all__ = ["add_parser", "check", "cmd_tradeoff"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tradeoff", help="speed against output error of model variants (quantised, fp16)")
    p.add_argument(
        "model",
        nargs="+",
        help="the base ONNX model, then any variants of it to measure and compare with it",
    )
    flags.add_session_flags(p, thread_list=False)
    flags.add_input_flags(p, input_sets=False)
    m = p.add_argument_group("measurement")
    flags.add_call_flags(m)
    flags.add_loop_flags(m)
    flags.add_statistics_flags(m, adaptive=False)
    flags.add_rounds_flag(m)
    v = p.add_argument_group("variants")
    v.add_argument("--quantize", choices=("dynamic", "static"), help="make an int8 variant")
    v.add_argument("--fp16", action="store_true", help="make a float16 variant")
    v.add_argument("--calibration", metavar="FILE.npz", help="static quantisation: calibration inputs")
    v.add_argument(
        "--save",
        metavar="DIR",
        help="keep the variants made here in DIR (created if missing) as <model>.int8-dynamic.onnx, "
        "<model>.int8-static.onnx, <model>.fp16.onnx",
    )
    flags.add_output_flags(p, document="the table of variants")
    p.set_defaults(func=cmd_tradeoff, check=check)


def check(args: argparse.Namespace) -> str | None:
    if args.calibration is not None and args.quantize != "static":
        return "--calibration applies to --quantize static only"
    if args.save is not None and args.quantize is None and not args.fp16:
        return "--save applies to the variants made with --quantize or --fp16"
    return flags.check_loop_flags(args)


def cmd_tradeoff(args: argparse.Namespace) -> int:
    from ..report.text import render_tradeoff
    from ..tools.tradeoff import speedup_notes, tradeoff

    config = flags.config_from_args(args)
    if args.json:
        check_writable(args.json, "--json")
    base, *variants = args.model
    found = tradeoff(
        base,
        variants,
        config=config,
        quantize=args.quantize,
        fp16=args.fp16,
        calibration_file=args.calibration,
        rounds=args.rounds or DEFAULT_ROUNDS,
        save=args.save,
    )
    if not args.quiet:
        print(render_tradeoff(found))
        for note in speedup_notes(found):
            print(note)
    if args.json:
        write_document(args.json, found.to_dict())
    return 0
