"""What the commands share besides flags: the argparse class, exit statuses, output paths."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, NoReturn

from .._cli_guard import interrupted_status
from ..config import Config
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..measure.interleave import InterleavedInterrupted

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_SLOWER",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "Parser",
    "about",
    "check_writable",
    "expected_seconds",
    "interleaved_interrupted",
    "interrupted_status",
    "shown",
    "write_document",
]

EXIT_USAGE = 2
EXIT_SLOWER = 1
EXIT_INTERRUPTED = 130
#: SIGTERM: handled like Ctrl-C (partial result kept), this status (128 + 15, as a shell shows).
EXIT_TERMINATED = 143


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def check_writable(path: str, flag: str) -> None:
    """Refuse, before measuring, an output path that cannot be written ("-" is standard output)."""
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


def shown(path: str) -> str:
    """How an output path reads in a message."""
    return "standard output" if path == "-" else path


def write_document(path: str, doc: Mapping[str, object]) -> None:
    """A JSON document to ``path``, or to standard output for "-"."""
    import json

    text = json.dumps(doc, indent=2)
    if path == "-":
        print(text)
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def about(span: tuple[float, float]) -> str:
    """The span as "about 6 s", or "about 6-10 s" when the warm-up (until steady) may take longer."""
    low, high = span
    return f"about {low:.0f} s" if round(high) <= round(low) else f"about {low:.0f}-{high:.0f} s"


def interleaved_interrupted(exc: InterleavedInterrupted, json_path: str | None) -> int:
    """Ctrl-C in an interleaved measurement (``InterleavedInterrupted``): the partial results
    (every session's rounds so far) written to ``json_path`` when given, one line, exit 130."""
    from ..results.result import write_json

    kept = ""
    if json_path == "-" and exc.results:
        print(write_json(exc.results, interrupted=True))
    elif json_path and exc.results:
        write_json(exc.results, json_path, interrupted=True)
        kept = f"; the partial results are in {shown(json_path)}"
    print(
        f"inferspeed: interrupted in round {exc.round_reached} of {exc.rounds}{kept}",
        file=sys.stderr,
    )
    return interrupted_status()


def expected_seconds(config: Config) -> float | None:
    """Roughly how long one measurement with ``config`` takes (warm-up and timed loop), or None
    when it is bounded by a count of iterations only."""
    _, warm = config.warmup_limits
    if config.scenario != "single-stream":
        return (warm or 0.0) + config.scenario_duration
    _, seconds = config.loop_limits
    return None if seconds is None else (warm or 0.0) + seconds
