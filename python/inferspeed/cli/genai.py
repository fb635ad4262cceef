"""``inferspeed genai``: a builder-made model folder through onnxruntime-genai's generation loop
and through inferspeed's, interleaved (:mod:`inferspeed.tools.genai`)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import flags
from .common import check_writable
from .values import int_at_least

__all__ = ["add_parser", "cmd_genai"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "genai",
        help="onnxruntime-genai's generation loop beside inferspeed's on a model builder's folder",
    )
    p.add_argument("model", help="the folder onnxruntime-genai's model builder wrote (or its model.onnx)")
    flags.add_generation_flags(p, single_call=False)
    p.add_argument(
        "--rounds",
        type=int_at_least(2),
        default=40,
        metavar="N",
        help="rounds, one generation of each loop (default 40)",
    )
    p.add_argument(
        "--threads",
        type=int_at_least(1),
        metavar="N",
        help="intra-op threads of both (default ONNX Runtime's)",
    )
    p.add_argument(
        "--seed",
        type=int_at_least(0),
        default=0,
        metavar="N",
        help="the prompt's and the rounds' order's seed",
    )
    p.add_argument("--json", metavar="PATH", help="write the figures and every round's as JSON")
    flags.add_quiet_flag(p)
    p.set_defaults(func=cmd_genai, check=lambda args: None)


def cmd_genai(args: argparse.Namespace) -> int:
    from ..config import Config
    from ..report.genai import render_beside_genai
    from ..tools.genai import beside_genai, load_genai

    load_genai()  # the missing package is said before anything else is done
    if not os.path.exists(args.model):
        print(f"inferspeed: error: {args.model}: no such file or folder", file=sys.stderr)
        return 2
    if args.json:
        check_writable(args.json, "--json")
    config = Config(
        prompt_tokens=args.prompt_tokens, gen_tokens=args.gen_tokens, threads=args.threads, seed=args.seed
    )
    found = beside_genai(args.model, config, rounds=args.rounds, seed=args.seed)
    if not args.quiet:
        print(render_beside_genai(found))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(found.to_dict(), f, indent=1)
    return 0
