"""Parsers of flag values: text in, a value out, or a clean refusal.

Each raises ``argparse.ArgumentTypeError`` (argparse turns it into a one-line usage error) or,
for the NAME=VALUE specs read after parsing, :class:`~inferspeed.errors.ConfigError`. Light on
purpose: the pytest plugin and every command's parser import this module.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..config import ProviderSpec
from ..errors import ConfigError

__all__ = [
    "choice_list",
    "collect",
    "dim_value",
    "int_at_least",
    "parse_bytes",
    "parse_fraction",
    "parse_int_list",
    "parse_percentile",
    "parse_provider",
    "parse_rate",
    "parse_seconds",
    "parse_shape",
    "parse_slo",
    "parse_slowdown",
    "percent",
    "range_value",
    "split_pair",
]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0}


def parse_seconds(text: str) -> float:
    """'2' or '2s' -> 2.0; '500ms' -> 0.5; also ns, us/µs, m/min."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-zµ]*)\s*", text)
    if not m or m.group(2) not in ("", *_UNITS):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 2, 2s, 500ms)")
    value = float(m.group(1)) * _UNITS.get(m.group(2), 1.0)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite duration")
    return value


def int_at_least(minimum: int) -> Callable[[str], int]:
    """A parser of a base-10 integer of at least ``minimum``."""

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


def split_pair(flag: str, text: str, sep: str = "=") -> tuple[str, str]:
    """'NAME=VALUE' -> ('NAME', 'VALUE'), both stripped; NAME must not be empty."""
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


def collect(
    flag: str, items: Sequence[str] | None, convert: Callable[[str], Any], sep: str = "="
) -> dict[str, Any]:
    """Repeated NAME=VALUE flags -> {NAME: convert(VALUE)}; one name given two values is refused."""
    out: dict[str, Any] = {}
    for item in items or ():
        name, raw = split_pair(flag, item, sep)
        value = convert(raw)
        if name in out and out[name] != value:
            raise ConfigError(f"{flag} gives {name!r} twice, with different values")
        out[name] = value
    return out


def dim_value(raw: str) -> int:
    """The size given to a named dimension (``--dim SYMBOL=N``)."""
    if not re.fullmatch(r"\s*[0-9]+\s*", raw) or int(raw) < 1:
        raise ConfigError(f"--dim value {raw!r} must be a positive integer")
    return int(raw)


def range_value(raw: str) -> tuple[float, float]:
    """'LOW:HIGH' of ``--range NAME=LOW:HIGH`` -> (LOW, HIGH), LOW below HIGH."""
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
    """A percentage below 100%: '1%' -> 0.01. A bare number is refused (:func:`percent`)."""
    value = percent(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0% and 100%")
    return value


def parse_slowdown(text: str) -> float:
    """A slowdown allowed by a gate: '5%' -> 0.05; '200%' -> 2.0 (a median ratio of 3). A bare
    number is refused (:func:`percent`)."""
    value = percent(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive percentage (e.g. 5% or 200%)")
    return value


def percent(text: str) -> float:
    """'3%' -> 0.03, the rule of every percentage flag: the % sign is required. A bare number is
    refused, because '3' read as a fraction is 300% (a gate that can never fail) and '0.05' read
    as a percentage is 0.05% (a gate that fails on noise): the message names both readings."""
    raw = text.strip()
    number = raw[:-1].strip() if raw.endswith("%") else raw
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction (a percentage such as 1%)") from None
    if not raw.endswith("%"):
        raise argparse.ArgumentTypeError(
            f"{text!r} needs a % sign: write {raw}% for {raw} percent, or {value * 100:g}% for the "
            f"fraction {raw}"
        )
    return value / 100.0


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


def parse_provider(text: str) -> ProviderSpec:
    """'CUDA:device_id=0,...' -> ProviderSpec('CUDA', {'device_id': '0', ...})."""
    name, _, opts = text.partition(":")
    if not name.strip():
        raise ConfigError(f"--provider expects NAME[:key=value,...], got {text!r}")
    options = dict(split_pair("--provider option", kv) for kv in opts.split(",") if kv.strip())
    return ProviderSpec(name.strip(), options)


def choice_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """A parser of 'a,b' -> ['a', 'b'], each one of ``choices``."""

    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(choices)}")
        return values

    return parse
