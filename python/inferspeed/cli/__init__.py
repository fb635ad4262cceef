"""The ``inferspeed`` command line.

Every error a user can cause ends as one line on stderr and exit status 2; Ctrl-C during a
measurement prints and saves the partial result and exits with 130 (143 after SIGTERM).

One module per command (``run``, ``capacity``, ...), each declaring its subparser from the flag
groups it uses (:mod:`.flags`, values parsed by :mod:`.values`) and its ``cmd_*`` function. A
command takes only the flags it uses; one given where it would be ignored is a usage error.
Building the parser imports nothing heavy (no numpy, onnx): the commands import what they
measure with when they run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from ..errors import InferspeedError
from ..version import __version__
from . import capacity, compare, gate, genai, info, profile, report, run, sweep, tradeoff
from .common import EXIT_USAGE, Parser, interrupted_status

__all__ = [
    "COMMANDS",
    "build_parser",
    "main",
]

#: Command name -> the module (in this package) that declares its flags (``add_parser``) and
#: runs it, in the order ``inferspeed --help`` lists them.
COMMANDS: dict[str, ModuleType] = {
    "run": run,
    "capacity": capacity,
    "tradeoff": tradeoff,
    "compare": compare,
    "gate": gate,
    "sweep": sweep,
    "profile": profile,
    "genai": genai,
    "report": report,
    "info": info,
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="inferspeed", description="Latency of ONNX models under ONNX Runtime, timed in C++.")
    parser.add_argument("--version", action="version", version=f"inferspeed {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    check = getattr(args, "check", None)
    problem = check(args) if check is not None else None
    if problem:
        parser.exit(EXIT_USAGE, f"{parser.prog} {args.command}: error: {problem}\n")
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
        return interrupted_status()


def _one_line(message: str) -> str:
    return " ".join(message.split())
