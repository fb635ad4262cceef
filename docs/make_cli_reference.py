"""Write docs/cli.md from the CLI's own argparse help (tests/test_docs.py checks it is current).

python docs/make_cli_reference.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HEADER = """# CLI reference

Generated from `inferspeed <command> --help` by `python docs/make_cli_reference.py`; a test
fails when it is out of date. Exit status: 0 success, 1 `compare --fail-if-slower` found a
slowdown (or `capacity` found no rate that meets the SLO), 2 bad input or usage (one line on
stderr), 130 interrupted (partial results kept).
Sizes take `K`/`M`/`G` (`KiB`... too), times `ns`/`us`/`ms`/`s` (plain numbers are seconds),
percentages `5%` or `0.05`. Each command takes only the flags it uses: one it would ignore
(`--concurrency` without `--scenario server` or `offline`, `--flush-bytes` without `--cache cold`,
`--rounds` with one model) is a usage error, not silently dropped.
"""


def reference() -> str:
    os.environ["COLUMNS"] = "100"
    from inferspeed.cli import build_parser

    parser = build_parser()
    parts = [HEADER, "## inferspeed", "", "```", parser.format_help().rstrip(), "```", ""]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, command in sub.choices.items():  # type: ignore[attr-defined]
        parts += [f"## inferspeed {name}", "", "```", command.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    target = Path(__file__).with_name("cli.md")
    target.write_text(reference(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
