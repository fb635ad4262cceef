"""``inferspeed report``: plots (HTML, PNG), Markdown, CSV or pyperf files from saved results
and sweeps."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InputError
from .common import check_writable

if TYPE_CHECKING:
    from ..analysis.capacity import CapacityResult
    from ..report.exports import AnyResult, FailedCell, GateRecord
    from ..results.sweepfile import SweepLine
    from ..tools.tradeoff import TradeoffResult

__all__ = ["add_parser", "check", "cmd_report"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="plots (HTML, PNG), Markdown, CSV or pyperf files from results")
    p.add_argument(
        "results",
        nargs="+",
        metavar="RESULT.json",
        help="run, profile, tradeoff or capacity JSON, or a sweep's JSONL",
    )
    p.add_argument(
        "--html", metavar="PATH", help="one self-contained HTML file: every result's details and plots"
    )
    p.add_argument("--png", metavar="DIR", help="every plot as a PNG file in DIR")
    p.add_argument("--markdown", nargs="?", const="-", metavar="PATH", help="a Markdown report (stdout: -)")
    p.add_argument("--csv", nargs="?", const="-", metavar="PATH", help="a CSV table (stdout: -)")
    p.add_argument("--pyperf", metavar="PATH", help="pyperf's JSON format (python -m pyperf compare_to ...)")
    p.add_argument(
        "--pyperf-name", metavar="NAME", help="pyperf benchmark name of a single result (default 'latency')"
    )
    p.add_argument(
        "--cost-per-hour",
        action="append",
        metavar="HOST=PRICE",
        help="a cluster sweep's host (its name or a label value) and its price per hour: the cost "
        "of a million items by host (repeatable)",
    )
    p.set_defaults(func=cmd_report, check=check)


def check(args: argparse.Namespace) -> str | None:
    if args.pyperf_name is not None and not args.pyperf:
        return "--pyperf-name applies to --pyperf only"
    return None


@dataclass
class _Input:
    """One file given to report: a trade-off or capacity document (``doc``), or results
    (with their sweep cell, None outside a sweep), failed sweep cells and a sweep's lines; a
    gate's document: its two results and what the gate decided (``gate``)."""

    path: str
    doc: TradeoffResult | CapacityResult | None = None
    results: list[tuple[AnyResult, Mapping[str, Any] | None]] = field(default_factory=list)
    failed: list[FailedCell] = field(default_factory=list)
    sweep_lines: list[SweepLine] | None = None
    gate: GateRecord | None = None

    def gate_facts(self) -> list[tuple[str, str]]:
        """The gate's decision, threshold and pairing (empty when this is no gate's document)."""
        from ..report.exports import gate_facts

        return [] if self.gate is None else gate_facts(self.gate, [r for r, _ in self.results])


def _read_input(path: str) -> _Input:
    from ..analysis.capacity import CapacityResult
    from ..results.result import read_json_file, results_from_document
    from ..results.sweepfile import is_sweep_file
    from ..tools.tradeoff import TradeoffResult

    # The documents of a search that report reads besides results, by their ``scenario``.
    documents: dict[str, Callable[[Mapping[str, object]], TradeoffResult | CapacityResult]] = {
        "tradeoff": TradeoffResult.from_dict,
        "capacity": CapacityResult.from_dict,
    }

    if is_sweep_file(path):
        return _read_sweep(path)
    doc = read_json_file(path)
    if isinstance(doc, dict) and "schema" not in doc and doc.get("scenario") in documents:
        try:
            return _Input(path, documents[doc["scenario"]](doc))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: malformed {doc['scenario']} document ({exc})") from None
    from ..report.exports import GateRecord

    results = results_from_document(doc, path)
    gate = GateRecord.from_document(doc, results) if isinstance(doc, dict) else None
    return _Input(path, None, [(r, None) for r in results], gate=gate)


def _read_sweep(path: str) -> _Input:
    """A sweep's file: its cells, a cluster sweep's host among each cell's axes."""
    from ..report.exports import load_sweep
    from ..results.sweepfile import fold_hosts, read_sweep

    found = read_sweep(path)
    for note in found.notes:
        print(f"inferspeed: {note}", file=sys.stderr)
    lines = fold_hosts(found.lines)
    cells, failed = load_sweep(path, lines)
    return _Input(path, None, [(r, cell) for r, cell in cells], failed, lines)


def _check_outputs(args: argparse.Namespace) -> None:
    for path, flag in ((args.html, "--html"), (args.pyperf, "--pyperf")):
        if path:
            check_writable(path, flag)
    for path, flag in ((args.markdown, "--markdown"), (args.csv, "--csv")):
        if path and path != "-":
            check_writable(path, flag)


def _write(path: str, text: str, wrote: list[str]) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    wrote.append(path)


def cmd_report(args: argparse.Namespace) -> int:
    from ..report.exports import comparison_table, label_entries, markdown_report, to_csv, write_pyperf
    from ..results.result import Result

    _check_outputs(args)
    _costs(args)  # a bad price is a usage error before anything is read
    inputs = [_read_input(path) for path in args.results]
    entries = label_entries([(i.path, r, cell) for i in inputs for r, cell in i.results])
    failed = [f for i in inputs for f in i.failed]
    results = [e.result for e in entries]
    if (args.pyperf or args.markdown or args.csv) and not entries and not (args.markdown and failed):
        raise InputError("--pyperf, --markdown and --csv need latency results (from run, profile, sweep ...)")
    if args.pyperf and not all(isinstance(r, Result) for r in results):
        raise InputError("--pyperf needs every call's time: a sweep's JSONL keeps statistics only")
    # A gate's document alone: its comparison is the gate's own (decision, threshold, pairing).
    alone = len(inputs) == 1 and inputs[0].gate is not None
    comparison = comparison_table(entries) if (args.html or args.markdown) and not alone else ([], [])
    wrote = _plots(args, inputs, entries, comparison) if args.html or args.png else []
    if args.markdown:
        gates = [(i.path, i.gate_facts()) for i in inputs if i.gate is not None]
        _write(args.markdown, markdown_report(entries, failed, comparison, gates), wrote)
    if args.csv:
        _write(args.csv, to_csv(results, [e.label for e in entries]), wrote)
    if args.pyperf:
        if args.pyperf_name and len(results) > 1:
            raise ConfigError("--pyperf-name names the benchmark of a single result")
        write_pyperf([r for r in results if isinstance(r, Result)], args.pyperf, args.pyperf_name)
        wrote.append(f"{args.pyperf} (pyperf format)")
    if not (args.html or args.png or args.markdown or args.csv or args.pyperf):
        _print_results(inputs, _costs(args))
    for line in wrote:
        print(f"wrote {line}", file=sys.stderr)
    return 0


def _plots(args: argparse.Namespace, inputs: list[_Input], entries: list[Any], comparison: Any) -> list[str]:
    """Write the --html file and the --png folder; what was written, to say so."""
    from ..report.html import Section, gate_section, plots_for, render_html, require_matplotlib, write_pngs

    require_matplotlib()
    sections, start = [], 0
    for i in inputs:  # the entries are in the order of the inputs
        if i.gate is not None:
            sections.append(gate_section(i.path, i.gate_facts()))
        sections.append(plots_for(i.path, i.doc, entries[start : start + len(i.results)], i.failed))
        start += len(i.results)
    from ..report.cluster import host_rows, host_table, hosts_plot

    for i in inputs:  # a cluster sweep: which host is fastest, and cheapest per item
        if host_rows(i.sweep_lines or []):
            lines, costs = i.sweep_lines or [], _costs(args)
            rows = host_table(host_rows(lines, costs))
            plot = hosts_plot(lines, costs, i.path)
            sections.append(Section(f"{i.path}: by host", rows, [plot] if plot is not None else []))
    table, notes = comparison
    if table:
        sections.append(Section(f"Compared with {entries[0].label}", table, notes=notes))
    wrote = []
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(render_html(sections))
        wrote.append(f"{args.html} ({sum(len(s.all_plots) for s in sections)} plots)")
    if args.png:
        wrote.append(f"{len(write_pngs(sections, args.png))} PNG files in {args.png}")
    return wrote


def _costs(args: argparse.Namespace) -> dict[str, float]:
    from ..report.cluster import parse_cost

    return dict(parse_cost(text) for text in args.cost_per_hour or [])


def _print_results(inputs: list[_Input], costs: dict[str, float]) -> None:
    from ..metrics import DEFAULT_METRIC
    from ..report.cluster import render_hosts
    from ..report.text import render_facts, render_profile, render_result, render_sweep
    from ..results.result import Result
    from ..tools.sweep import SweepResult, ranking_for

    for i in inputs:
        if i.sweep_lines is not None:
            # The best by the first ranking of the cells' metric (of the first measured cell).
            measured = next((line.metric for line in i.sweep_lines if line.result is not None), None)
            by = ranking_for(None, measured or DEFAULT_METRIC).name
            print(f"{i.path}: a sweep\n{render_sweep(SweepResult(i.sweep_lines, by, 0))}\n")
            hosts = render_hosts(i.sweep_lines, costs)
            if hosts:
                print(hosts + "\n")
            continue
        if i.gate is not None:
            print(f"{i.path}: a gate of two results, measured together\n{render_facts(i.gate_facts())}\n")
        for r, _ in i.results:
            if not isinstance(r, Result):  # a sweep's cell: its sweep was printed above
                continue
            print(render_result(r) + "\n")
            if r.profile is not None:  # a saved `inferspeed profile` result: its tables too
                print(render_profile(r) + "\n")
    for i in inputs:
        if i.doc is not None:
            print(f"{i.path}: a {i.doc.to_dict()['scenario']} result: use --html or --png to draw it")
