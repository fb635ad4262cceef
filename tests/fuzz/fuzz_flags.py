"""libFuzzer target (atheris) for the flag parsers: the shape spec first, and every other
parser of numbers and units. Any outcome but a value or a clean refusal (argparse's
ArgumentTypeError, an InferspeedError) is a crash the fuzzer reports.

    pip install atheris
    python tests/fuzz/fuzz_flags.py -max_total_time=30     # .ci/run does this
"""

from __future__ import annotations

import argparse
import math
import sys

import atheris

with atheris.instrument_imports(include=["inferspeed.cli"]):
    from inferspeed import cli
    from inferspeed.errors import InferspeedError

PARSERS = (
    cli.parse_shape, cli.parse_seconds, cli.parse_bytes, cli.parse_fraction, cli.parse_percentile,
    cli.parse_int_list, cli.parse_rate, cli.parse_slo,
)  # fmt: skip


def check(text: str) -> None:
    for parse in PARSERS:
        try:
            value = parse(text)
        except (argparse.ArgumentTypeError, InferspeedError):
            continue
        if parse is cli.parse_shape:
            ok = all(isinstance(d, int) and d > 0 for d in value)
        elif parse in (cli.parse_seconds, cli.parse_bytes, cli.parse_rate, cli.parse_fraction):
            ok = isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
        else:
            ok = True
        if not ok:
            raise AssertionError(f"{parse.__name__}({text!r}) = {value!r}")
    # A NAME=SPEC pair as the CLI splits it.
    try:
        _, spec = cli._split_pair("--shape", text)
        cli.parse_shape(spec)
    except (argparse.ArgumentTypeError, InferspeedError):
        pass


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    check(fdp.ConsumeUnicodeNoSurrogates(64))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
