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


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _sensible(parse: Any, value: Any) -> bool:
    """Whether ``value`` is within what ``parse`` promises: every parser has a rule."""
    if parse is values.parse_shape:  # () for a scalar
        return isinstance(value, tuple) and all(type(d) is int and d > 0 for d in value)
    if parse is values.parse_int_list:
        return isinstance(value, list) and len(value) > 0 and all(type(d) is int and d > 0 for d in value)
    if parse is values.parse_bytes:
        return type(value) is int and value > 0
    if parse is values.parse_seconds:
        return _number(value) and value >= 0
    if parse is values.parse_slowdown:
        return _number(value) and value > 0
    if parse is values.parse_fraction:
        return _number(value) and 0 < value < 1
    if parse is values.parse_percentile:
        return _number(value) and 0 < value < 100
    if parse is values.parse_rate:
        return _number(value) and 0 < value < 1e9
    if parse is values.parse_slo:
        return (
            isinstance(value, tuple)
            and len(value) == 2
            and _sensible(values.parse_percentile, value[0])
            and _sensible(values.parse_seconds, value[1])
        )
    raise AssertionError(f"no rule for {parse.__name__}")  # a parser added to PARSERS needs one


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
