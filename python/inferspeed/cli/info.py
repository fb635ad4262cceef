"""``inferspeed info``: a model's inputs, outputs, size and operators, without running it."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "cmd_info"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("info", help="show a model's inputs, outputs, size and operators")
    p.add_argument("model", help="ONNX model file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    import json

    from ..facts.modelfile import check_model_path

    check_model_path(args.model)  # a bad path is answered before numpy and the rest load
    from ..facts.info import model_info
    from ..report.text import render_info

    info = model_info(args.model)
    print(json.dumps(info, indent=2) if args.json else render_info(info))
    return 0
