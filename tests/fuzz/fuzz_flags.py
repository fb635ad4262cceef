"""libFuzzer target (atheris) for the flag parsers: the shape spec first, and every other
parser of numbers and units. Any outcome but a sensible value or a clean refusal (the
properties in tests/parser_properties.py, shared with the hypothesis test) is a crash the
fuzzer reports.

    pip install atheris
    python tests/fuzz/fuzz_flags.py -max_total_time=30     # .ci/run does this
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests/

with atheris.instrument_imports(include=["inferspeed.cli.values"]):
    from inferspeed.cli import values  # noqa: F401  (imported here to be instrumented)

from tests.parser_properties import check_parsers


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    check_parsers(fdp.ConsumeUnicodeNoSurrogates(64))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
