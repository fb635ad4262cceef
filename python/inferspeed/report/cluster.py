"""Which machine is fastest, and which cheapest per item, for a model: the lines of a sweep run
on a Ray cluster (``sweep --cluster``) grouped by host, as one table and one plot.

Per model and host: the host's best cell (the lowest median per item, an item being one sample
of the batch), its median and p99 per item, items per second (one stream, as the cell measured
it), the CPU the cell's process saw, and with ``--cost-per-hour HOST=PRICE`` the cost of a
million items at that rate. A host is named as the sweep named it (its Ray labels, see
``tools.cluster``); a price's HOST may also be one of its label values (``c7i.xlarge=0.18``).

A line that a later line of the same cell and host supersedes (a cell measured again by
``--resume`` after its node was lost) is left out everywhere
(:func:`inferspeed.results.sweepfile.fold_hosts`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..results.sweepfile import SweepLine, cell_label
from ..units import format_duration

if TYPE_CHECKING:
    from .html import Plot

__all__ = ["HostRow", "host_rows", "host_table", "hosts_plot", "parse_cost", "render_hosts"]


def parse_cost(text: str) -> tuple[str, float]:
    """``HOST=PRICE`` (the last ``=`` splits: a host named by labels has some) -> (HOST, PRICE)."""
    host, found, price = text.rpartition("=")
    try:
        value = float(price.strip().lstrip("$"))
    except ValueError:
        value = -1.0
    if not found or not host.strip() or not value > 0:
        raise ConfigError(f"--cost-per-hour expects HOST=PRICE (a price per hour above 0), got {text!r}")
    return host.strip(), value


def _axes(cell: Mapping[str, Any]) -> dict[str, Any]:
    """A cell's axes, without the host that a report's fold puts among them."""
    return {k: v for k, v in cell.items() if k != "host"}


@dataclass(frozen=True)
class HostRow:
    """One host's best cell for one model."""

    model: str
    host: str
    labels: Mapping[str, str]
    cpu: str
    cells: int
    failed: int
    best: Mapping[str, Any]
    median_per_item_ns: float
    p99_per_item_ns: float
    items_per_s: float
    cost_per_hour: float | None

    @property
    def cost_per_million(self) -> float | None:
        if self.cost_per_hour is None or self.items_per_s <= 0:
            return None
        return self.cost_per_hour / 3600.0 / self.items_per_s * 1e6


def _price(host: str, labels: Mapping[str, str], costs: Mapping[str, float]) -> float | None:
    if host in costs:
        return costs[host]
    for key, value in labels.items():
        for name in (f"{key}={value}", value):
            if name in costs:
                return costs[name]
    return None


def _cpu(result: Mapping[str, Any]) -> str:
    cpu = result.get("environment", {}).get("cpu", {})
    model = cpu.get("model") or "?"
    return f"{model} ({cpu['logical_cores']} CPUs)" if cpu.get("logical_cores") else str(model)


def host_rows(lines: Sequence[SweepLine], costs: Mapping[str, float] | None = None) -> list[HostRow]:
    """The best cell of each (model, host) among the lines of cluster sweeps, fastest first
    per model. Lines without a host (a local sweep's) are left out."""
    groups: dict[tuple[str, str], list[SweepLine]] = {}
    failed: dict[str, int] = {}
    for line in lines:
        host = line.host_name
        if host is None:
            continue
        if line.error is not None or line.result is None or not line.value(("stats", "median_ns")):
            failed[host] = failed.get(host, 0) + 1  # no result: no model to file it under
            continue
        model = str((line.result.get("model") or {}).get("name", "?"))
        groups.setdefault((model, host), []).append(line)
    rows = []
    for (model, host), ok in groups.items():
        best = min(ok, key=lambda g: _per_item(g, "median_ns"))
        labels = (best.host or {}).get("labels", {})
        bad = failed.get(host, 0)
        rows.append(
            HostRow(
                model, host, labels, _cpu(best.result or {}), len(ok) + bad, bad, _axes(best.cell),
                _per_item(best, "median_ns"), _per_item(best, "p99_ns"),
                (best.value(("stats", "throughput_per_s")) or 0.0) * best.batch,
                _price(host, labels, costs or {}),
            )
        )  # fmt: skip
    # A host whose cells all failed has no row; the others are ranked.
    return sorted(rows, key=lambda r: (r.model, r.median_per_item_ns))


def _per_item(line: SweepLine, statistic: str) -> float:
    """A time of the line's result (``stats``), per item of its batch."""
    return (line.value(("stats", statistic)) or 0.0) / line.batch


def host_table(rows: Sequence[HostRow]) -> list[list[str]]:
    """The table (head first): host, CPU, best cell, per-item figures, cost, standing."""
    with_cost = any(r.cost_per_hour is not None for r in rows)
    head = ["model", "host", "CPU", "cells (failed)", "best cell", "median/item", "p99/item", "items/s"]
    head += ["$/hour", "$/1M items"] if with_cost else []
    out = [[*head, "vs fastest"]]
    for r in rows:
        fastest = min(x.median_per_item_ns for x in rows if x.model == r.model)
        priced = [x.cost_per_million for x in rows if x.model == r.model and x.cost_per_million is not None]
        row = [r.model, r.host, r.cpu, f"{r.cells} ({r.failed})", cell_label(r.best) or "-"]
        row += [
            format_duration(r.median_per_item_ns),
            format_duration(r.p99_per_item_ns),
            f"{r.items_per_s:,.0f}",
        ]
        if with_cost:
            cost = r.cost_per_million
            row += ["-" if r.cost_per_hour is None else f"{r.cost_per_hour:g}"]
            row += ["-" if cost is None else f"{cost:.4g}" + (" cheapest" if cost == min(priced) else "")]
        ratio = r.median_per_item_ns / fastest
        row.append("fastest" if r.median_per_item_ns == fastest else f"{ratio:.2f}x slower")
        out.append(row)
    return out


def render_hosts(lines: Sequence[SweepLine], costs: Mapping[str, float] | None = None) -> str:
    """The table as text, with what it means; empty when no line has a host."""
    rows = host_rows(lines, costs)
    if not rows:
        return ""
    cells = host_table(rows)
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    text = ["By host: each host's best cell (lowest median per item; an item is one sample of the batch)"]
    text += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    text.append(
        "items/s: one stream, as the cell measured it. Hosts compare fairly only on the same grid "
        "(sweep --every-node) and the same software; see each cell's environment."
    )
    missing = sorted({r.host for r in rows if r.cost_per_hour is None}) if costs else []
    if missing:
        text.append(f"no --cost-per-hour for: {', '.join(missing)}")
    return "\n".join(text)


def hosts_plot(lines: Sequence[SweepLine], costs: Mapping[str, float] | None, title: str) -> Plot | None:
    """One figure (an ``report.html.Plot``): the best median per item of each host (p99 as a
    tick), and the cost of a million items beside it when prices are given; None without hosts."""
    from matplotlib.figure import Figure

    from .html import Plot

    rows = host_rows(lines, costs)
    if not rows:
        return None
    priced = [r for r in rows if r.cost_per_million is not None]
    fig = Figure(figsize=(9.0 if priced else 7.0, 1.2 + 0.45 * len(rows)), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2 if priced else 1, squeeze=False)[0]
    names = [f"{r.host} · {r.model}" if len({x.model for x in rows}) > 1 else r.host for r in rows][::-1]
    medians = [r.median_per_item_ns / 1e3 for r in rows][::-1]
    axes[0].barh(names, medians, color="#3b75af", label="median")
    axes[0].plot(
        [r.p99_per_item_ns / 1e3 for r in rows][::-1], names, "|", color="#c0392b", ms=14, label="p99"
    )
    axes[0].set_xlabel("latency per item, best cell (µs)")
    axes[0].legend(loc="lower right", fontsize=8)
    axes[0].set_title("which host is fastest", fontsize=10)
    if priced:
        axes[1].barh(names, [r.cost_per_million or 0.0 for r in rows][::-1], color="#27ae60")
        axes[1].set_xlabel("cost per million items ($, one stream)")
        axes[1].set_title("which host is cheapest", fontsize=10)
    fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return Plot("hosts", f"{title}: by host", buf.getvalue())
