"""What every flag parser must do with any text: return a sensible value or refuse it cleanly
(argparse.ArgumentTypeError or an InferspeedError), never crash. Shared by the hypothesis test
(tests/test_hardening.py) and the atheris fuzz target (tests/fuzz/fuzz_flags.py)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from inferspeed.cli import values
from inferspeed.errors import InferspeedError

PARSERS = (
    values.parse_shape, values.parse_seconds, values.parse_bytes, values.parse_fraction,
    values.parse_slowdown, values.parse_percentile, values.parse_int_list, values.parse_rate,
    values.parse_slo,
)  # fmt: skip
#: Parsers of a non-negative amount (seconds may be 0; sizes and rates are positive).
AMOUNTS = (
    values.parse_seconds, values.parse_bytes, values.parse_rate, values.parse_fraction, values.parse_slowdown,
)  # fmt: skip


def _sensible(parse: Any, value: Any) -> bool:
    if parse is values.parse_shape:
        return all(isinstance(d, int) and d > 0 for d in value)
    if parse in AMOUNTS:
        if not (isinstance(value, (int, float)) and math.isfinite(float(value)) and value >= 0):
            return False
        return value > 0 or parse in (values.parse_seconds, values.parse_fraction)
    return True


def check_parsers(text: str) -> None:
    """Raise AssertionError when a parser returns something it should not; the refusals a
    parser may raise pass. Also a NAME=SPEC pair split as the CLI splits it."""
    for parse in PARSERS:
        try:
            value = parse(text)
        except (argparse.ArgumentTypeError, InferspeedError):
            continue
        if not _sensible(parse, value):
            raise AssertionError(f"{parse.__name__}({text!r}) = {value!r}")
    try:
        _, spec = values.split_pair("--shape", text)
        values.parse_shape(spec)
    except (argparse.ArgumentTypeError, InferspeedError):
        pass
