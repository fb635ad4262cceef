"""``inferspeed report``: plots (HTML, PNG), Markdown, CSV or pyperf files from saved results."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ConfigError, InputError
from .common import check_writable

__all__ = ["add_parser", "check", "cmd_report"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="plots (HTML, PNG), Markdown, CSV or pyperf files from results")
    p.add_argument(
        "results", nargs="+", metavar="RESULT.json", help="run, profile, tradeoff or capacity JSON"
    )
    p.add_argument("--html", metavar="PATH", help="one self-contained HTML file with every plot")
    p.add_argument("--png", metavar="DIR", help="every plot as a PNG file in DIR")
    p.add_argument("--markdown", nargs="?", const="-", metavar="PATH", help="a Markdown table (stdout: -)")
    p.add_argument("--csv", nargs="?", const="-", metavar="PATH", help="a CSV table (stdout: -)")
    p.add_argument("--pyperf", metavar="PATH", help="pyperf's JSON format (python -m pyperf compare_to ...)")
    p.add_argument(
        "--pyperf-name", metavar="NAME", help="pyperf benchmark name of a single result (default 'latency')"
    )
    p.set_defaults(func=cmd_report, check=check)


def check(args: argparse.Namespace) -> str | None:
    if args.pyperf_name is not None and not args.pyperf:
        return "--pyperf-name applies to --pyperf only"
    return None


def _read_input(path: str) -> tuple[dict[str, Any] | None, list[Any]]:
    """(trade-off or capacity document, []) or (None, results) of one file given to report."""
    from ..results.result import read_json_file, results_from_document

    doc = read_json_file(path, " (a sweep's JSONL is not a report input)")
    if isinstance(doc, dict) and doc.get("scenario") in ("tradeoff", "capacity") and "schema" not in doc:
        return doc, []
    return None, results_from_document(doc, path)


def _check_outputs(args: argparse.Namespace) -> None:
    for path, flag in ((args.html, "--html"), (args.pyperf, "--pyperf")):
        if path:
            check_writable(path, flag)
    for path, flag in ((args.markdown, "--markdown"), (args.csv, "--csv")):
        if path and path != "-":
            check_writable(path, flag)


def cmd_report(args: argparse.Namespace) -> int:
    from ..report.exports import to_csv, to_markdown, write_pyperf

    _check_outputs(args)
    inputs = [(path, *_read_input(path)) for path in args.results]
    results = [r for _, _, rs in inputs for r in rs]
    if (args.pyperf or args.markdown or args.csv) and not results:
        raise InputError("--pyperf, --markdown and --csv need latency results (from run, profile, ...)")
    wrote = _plots(args, inputs) if args.html or args.png else []
    for path, text in ((args.markdown, to_markdown), (args.csv, to_csv)):
        if path == "-":
            sys.stdout.write(text(results))
        elif path:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text(results))
            wrote.append(path)
    if args.pyperf:
        if args.pyperf_name and len(results) > 1:
            raise ConfigError("--pyperf-name names the benchmark of a single result")
        write_pyperf(results, args.pyperf, args.pyperf_name)
        wrote.append(f"{args.pyperf} (pyperf format)")
    if not (args.html or args.png or args.markdown or args.csv or args.pyperf):
        _print_results(inputs)
    for line in wrote:
        print(f"wrote {line}", file=sys.stderr)
    return 0


def _plots(args: argparse.Namespace, inputs: list[Any]) -> list[str]:
    """Write the --html file and the --png folder; what was written, to say so."""
    from ..report.html import plots_for, render_html, require_matplotlib, write_pngs

    require_matplotlib()
    sections = [plots_for(path, doc, rs) for path, doc, rs in inputs]
    wrote = []
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(render_html(sections))
        wrote.append(f"{args.html} ({sum(len(s.plots) for s in sections)} plots)")
    if args.png:
        wrote.append(f"{len(write_pngs(sections, args.png))} PNG files in {args.png}")
    return wrote


def _print_results(inputs: list[Any]) -> None:
    from ..report.text import render_profile, render_result

    for _, _, results in inputs:
        for r in results:
            print(render_result(r) + "\n")
            if r.profile is not None:  # a saved `inferspeed profile` result: its tables too
                print(render_profile(r) + "\n")
    for path, doc, _ in inputs:
        if doc is not None:
            print(f"{path}: a {doc['scenario']} result: use --html or --png to draw it")
