"""A sweep of a decoder's generations: the prompt's and the output's lengths as axes, each cell
a generation measurement, llama-bench's table (pp{P} and tg{G} tokens/s ± SD over the
generations, TTFT, TPOT) in text, Markdown and CSV, the JSONL that keeps each generation's
figures, and the report's plot against the context length.

One short sweep of the GPT-2 fixture (prompt 8, 32 x output 4, 8) serves every test here.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import inferspeed
from inferspeed.config import Config
from inferspeed.report.exports import tokens_text
from inferspeed.report.text import render_latency_sweep_row, render_sweep
from inferspeed.results.sweepfile import SweepLine, line_result, per_generation, read_sweep, token_rates
from inferspeed.tools.sweep import SweepResult, cell_config, grid_cells, ranking_for, sweep_metric
from inferspeed.units import format_duration

MODEL = str(Path(__file__).parent / "data" / "decoders" / "gpt2" / "model.onnx")
CELLS = [(8, 4), (8, 8), (32, 4), (32, 8)]
ROW = re.compile(
    r"^(?P<best>[* ]) (?P<label>\S.*?)\s+(?P<pp>pp\d+)\s+(?P<pp_rate>[\d,.]+ ± [\d,.]+)\s+(?P<tg>tg\d+)"
    r"\s+(?P<tg_rate>[\d,.]+ ± [\d,.]+)\s+(?P<ttft>\S+ \S+)\s+(?P<tpot>\S+ \S+)\s+(?P<gens>\d+)"
    r"\s+(?P<all>[\d,.]+)$"
)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferspeed", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The sweep, run once: its text table (stdout), and its JSONL, Markdown and CSV files."""
    folder = tmp_path_factory.mktemp("sweep")
    files = {name: folder / f"sweep.{name}" for name in ("jsonl", "md", "csv")}
    p = _cli(
        "sweep", MODEL, "--prompt-tokens", "8,32", "--gen-tokens", "4,8", "-t", "0.2", "--warmup", "0.05",
        "--out", str(files["jsonl"]), "--markdown", str(files["md"]), "--csv", str(files["csv"]),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    return {"stdout": p.stdout, "stderr": p.stderr, "folder": folder, **files}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _own_rates(result: dict[str, Any]) -> dict[str, float]:
    """The cell's tokens/s from its own per-generation figures, by numpy: each generation's
    rate, then their mean and SD (n - 1)."""
    g = result["generation"]
    runs = {k: np.asarray(v, dtype=np.float64) for k, v in g["per_generation"].items()}
    b, p = g["batch"], g["prompt_tokens"]
    pp = b * p / (runs["prefill_ns"] / 1e9)
    tg = b * runs["decode_steps"] / (runs["decode_ns"] / 1e9)
    return {"pp": pp.mean(), "pp_sd": pp.std(ddof=1), "tg": tg.mean(), "tg_sd": tg.std(ddof=1), "n": pp.size}


def _text(mean: float, sd: float) -> str:
    decimals = 0 if mean >= 1000 else 1 if mean >= 100 else 2
    return f"{mean:,.{decimals}f} ± {sd:,.{decimals}f}"


def test_each_cell_is_a_generation_of_its_lengths(swept: dict[str, Any]) -> None:
    lines = _lines(swept["jsonl"])
    assert [(e["cell"]["prompt_tokens"], e["cell"]["gen_tokens"]) for e in lines] == CELLS
    for e, (p, g) in zip(lines, CELLS, strict=True):
        r = e["result"]
        assert r["config"]["metric"] == "generation" and "samples_ns" not in r
        gen = r["generation"]
        assert (gen["prompt_tokens"], gen["gen_tokens"], gen["batch"]) == (p, g, 1)
        # The per-step arrays are folded into each generation's figures, one per generation.
        assert "step_ns" not in gen and "sample_ns" not in gen
        runs = gen["per_generation"]
        assert len(runs["prefill_ns"]) == len(runs["decode_ns"]) == gen["generations"] > 2
        assert set(runs["decode_steps"]) == {g - 1}
    # Progress names each cell with its time per output token.
    assert "[4/4] prompt_tokens=32, gen_tokens=8: time per output token: median" in swept["stderr"]


def test_the_table_is_llama_bench_s_tests_with_their_sd(swept: dict[str, Any]) -> None:
    out = swept["stdout"].splitlines()
    assert " ".join(out[0].split()) == "cell test prompt t/s test output t/s TTFT TPOT gens all t/s"
    rows = [m.groupdict() for line in out[1:5] if (m := ROW.match(line))]
    assert len(rows) == 4, out
    for row, e in zip(rows, _lines(swept["jsonl"]), strict=True):
        r, (p, g) = e["result"], (e["cell"]["prompt_tokens"], e["cell"]["gen_tokens"])
        assert row["label"] == f"prompt_tokens={p}, gen_tokens={g}"
        assert (row["pp"], row["tg"]) == (f"pp{p}", f"tg{g}")
        own = _own_rates(r)
        assert row["pp_rate"] == _text(own["pp"], own["pp_sd"])
        assert row["tg_rate"] == _text(own["tg"], own["tg_sd"])
        assert row["ttft"] == format_duration(r["generation"]["ttft"]["median_ns"])
        assert row["tpot"] == format_duration(r["stats"]["median_ns"])
        assert int(row["gens"]) == own["n"]
        assert row["all"] == tokens_text(r["generation"]["end_to_end_tokens_per_s"])
    # The best is the lowest TPOT, marked and named.
    tpot = [e["result"]["stats"]["median_ns"] for e in _lines(swept["jsonl"])]
    best = int(np.argmin(tpot))
    assert [row["best"] for row in rows] == ["*" if k == best else " " for k in range(4)]
    assert out[5] == f"best by tpot: {rows[best]['label']}"
    notes = " ".join(out[6:])
    assert "mean ± SD (n-1) over the cell's generations" in notes and "TTFT" in notes


def test_markdown_and_csv_hold_the_same_table(swept: dict[str, Any]) -> None:
    table = [m.groupdict() for line in swept["stdout"].splitlines() if (m := ROW.match(line))]
    md = [line for line in swept["md"].read_text().splitlines() if line.startswith("|")]
    head, rule, *body = ([c.strip() for c in line.strip("|").split("|")] for line in md)
    assert head == ["cell", "test", "prompt t/s", "test", "output t/s", "TTFT", "TPOT", "gens", "all t/s"]
    assert rule == ["---", *["---:"] * 8]
    assert body == [
        [t["label"], t["pp"], t["pp_rate"], t["tg"], t["tg_rate"], t["ttft"], t["tpot"], t["gens"], t["all"]]
        for t in table
    ]
    best = next(t["label"] for t in table if t["best"] == "*")
    rows = list(csv.DictReader(io.StringIO(swept["csv"].read_text())))
    assert len(rows) == 4
    for row, e in zip(rows, _lines(swept["jsonl"]), strict=True):
        own = _own_rates(e["result"])
        assert int(row["prompt_tokens"]) == e["cell"]["prompt_tokens"]
        assert int(row["gen_tokens"]) == e["cell"]["gen_tokens"]
        assert row["pp"] == f"pp{row['prompt_tokens']}" and row["tg"] == f"tg{row['gen_tokens']}"
        for column, key in (
            ("pp_tokens_per_s_mean", "pp"), ("pp_tokens_per_s_sd", "pp_sd"),
            ("tg_tokens_per_s_mean", "tg"), ("tg_tokens_per_s_sd", "tg_sd"),
        ):  # fmt: skip
            assert float(row[column]) == pytest.approx(own[key], abs=1e-3)
        assert float(row["tpot_median_ns"]) == e["result"]["stats"]["median_ns"]
        assert row["best"] == ("1" if row["cell"] == best else "0")
        assert row["error"] == ""


def test_the_jsonl_reads_back_to_the_same_table(swept: dict[str, Any]) -> None:
    path = swept["jsonl"]
    found = read_sweep(path)
    assert [line.to_json() for line in found.lines] == path.read_text().splitlines()
    for line in found.lines:
        assert line.cell_result().generation == (line.result or {})["generation"]
    again = render_sweep(SweepResult(list(found.lines), "tpot", 0))
    assert swept["stdout"] == again + "\n"
    # `report` prints the same table, and draws tokens/s and TPOT against the context length.
    folder = swept["folder"] / "png"
    p = _cli("report", str(path), "--png", str(folder), "--html", str(swept["folder"] / "r.html"))
    assert p.returncode == 0, p.stderr
    assert [f.name for f in folder.iterdir()] == ["sweep-jsonl-tokens-by-context.png"]
    html = (swept["folder"] / "r.html").read_text()
    assert "pp32" in html and "tg8" in html and "tokens/s and TPOT by context" in html
    p = _cli("report", str(path))
    assert p.returncode == 0 and again in p.stdout


def test_per_generation_folds_each_generation_s_steps() -> None:
    short = {"prompt_tokens": 8, "gen_tokens": 5, "max_time": 0.05, "warmup_time": 0.01}
    data = inferspeed.benchmark(MODEL, **short).to_dict()
    steps = np.asarray(data["generation"]["step_ns"])
    kept = line_result(data)
    assert "samples_ns" not in kept and "step_ns" not in kept["generation"]
    runs = kept["generation"]["per_generation"]
    assert runs == per_generation(data["generation"])
    assert runs["prefill_ns"] == steps[:, 0].tolist()
    assert runs["decode_ns"] == steps[:, 1:].sum(axis=1).tolist()
    assert runs["decode_steps"] == [4] * steps.shape[0]
    # The whole Result and its sweep line give the same rates.
    assert token_rates(data) == token_rates(kept)
    # A latency's result loses only its samples, as before.
    latency = {"config": {"metric": "latency"}, "stats": {"median_ns": 1.0}, "samples_ns": [1, 2]}
    assert line_result(latency) == {"config": {"metric": "latency"}, "stats": {"median_ns": 1.0}}


def _latency(median: float, p99: float, per_s: float, batch: int) -> dict[str, Any]:
    return {
        "config": {"metric": "latency"},
        "model": {"inputs": [{"bound_shape": [batch, 16]}]},
        "stats": {"median_ns": median, "p99_ns": p99, "throughput_per_s": per_s},
    }


def test_a_latency_sweep_reads_as_before() -> None:
    lines = [
        SweepLine({"threads": 1, "batch": 1}, result=_latency(125_000.0, 182_000.0, 7770.0, 1)),
        SweepLine({"threads": 2, "batch": 8}, result=_latency(410_500.0, 612_000.0, 2400.0, 8)),
        SweepLine({"threads": 4, "batch": 8}, error="crashed: killed by SIGKILL"),
    ]
    # As the version before generation sweeps printed it, character for character.
    assert render_sweep(SweepResult(lines, "median", 0)) == (
        "cell                                             median        p99  per sample    samples/s\n"
        "  threads=1, batch=1                             125 µs     182 µs      125 µs     7.77 k/s\n"
        "* threads=2, batch=8                             410 µs     612 µs    51.31 µs    19.20 k/s\n"
        "  threads=4, batch=8                         error: crashed: killed by SIGKILL\n"
        "best by median: threads=2, batch=8"
    )


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (("--gen-tokens", "1,4"), "gen_tokens must be at least 2"),
        (("--prompt-tokens", "0"), "not a list of positive integers"),
        (("--prompt-tokens", "8", "--resume"), "--resume needs --out"),
        (("--prompt-tokens", "8", "--markdown", "--csv"), "both write to standard output"),
    ],
)
def test_bad_lengths_and_outputs_are_one_line_and_exit_2(flags: tuple[str, ...], error: str) -> None:
    p = _cli("sweep", MODEL, *flags)
    assert p.returncode == 2 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and error in p.stderr, p.stderr


def test_a_grid_of_lengths_ranks_as_a_generation() -> None:
    # Under the default metric a decoder's cells measure generations: --by ttft needs no --metric.
    assert sweep_metric(Config(), {"prompt_tokens": [8], "threads": [1]}) == "generation"
    assert sweep_metric(Config(), {"threads": [1]}) == "latency"
    assert sweep_metric(Config(metric="instructions"), {"gen_tokens": [4]}) == "instructions"
    assert ranking_for("ttft", sweep_metric(Config(), {"gen_tokens": [4]})).name == "ttft"
    assert grid_cells({"prompt_tokens": [8, 32], "gen_tokens": [4]}) == [
        {"prompt_tokens": 8, "gen_tokens": 4},
        {"prompt_tokens": 32, "gen_tokens": 4},
    ]


# --- streams: the offline scenario's concurrency as an axis ----------------------------------------


def test_streams_is_an_axis_of_the_offline_scenario() -> None:
    """A cell of streams=K measures K streams back to back (the offline scenario's
    concurrency), on any model: a decoder's streams each generate with their own cache."""
    assert [c["streams"] for c in grid_cells({"streams": [1, 2, 2, 4]})] == [1, 2, 4]
    c = cell_config(Config(), {"streams": 3, "prompt_tokens": 8})
    assert (c.scenario, c.concurrency, c.prompt_tokens) == ("offline", 3, 8)
    # A latency model's cell: samples/s are every worker's (the load's achieved rate), not one's.
    line = SweepLine(
        {"streams": 2},
        result={
            "scenario": "offline",
            "throughput_per_s": 180.0,
            "stats": {"median_ns": 1e7, "p99_ns": 2e7, "throughput_per_s": 90.0},
            "config": {"metric": "latency"},
        },
    )
    assert line.value(("stats", "throughput_per_s")) == 180.0
    assert render_latency_sweep_row(line).split()[-2:] == ["180.0", "/s"]


def test_a_sweep_of_streams_reports_every_stream_s_tokens(tmp_path: Path) -> None:
    """--streams 1,2 on the decoder: each cell an offline run of K streams; its line folds the
    per-request arrays into per_generation (one entry per request started) and keeps the
    output tokens/s of all streams, which the table's last column (text, Markdown, CSV) shows;
    the report plots tokens/s and TPOT against the context length, one line per streams."""
    out, md, table = tmp_path / "s.jsonl", tmp_path / "s.md", tmp_path / "s.csv"
    p = _cli(
        "sweep", MODEL, "--prompt-tokens", "8,16", "--gen-tokens", "4", "--streams", "1,2", "-t", "0.25",
        "--warmup", "0.05", "--out", str(out), "--markdown", str(md), "--csv", str(table),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = _lines(out)
    assert [(e["cell"]["prompt_tokens"], e["cell"]["streams"]) for e in lines] == [
        (8, 1),
        (8, 2),
        (16, 1),
        (16, 2),
    ]
    rows = {m["label"]: m.groupdict() for line in p.stdout.splitlines() if (m := ROW.match(line))}
    csv_rows = {r["cell"]: r for r in csv.DictReader(io.StringIO(table.read_text()))}
    for e in lines:
        r, k = e["result"], e["cell"]["streams"]
        g = r["generation"]
        assert r["scenario"] == "offline" and r["concurrency"] == k == g["streams"]
        assert not {"token_ns", "request_step_ns", "arrival_ns", "start_ns"} & set(g)
        assert len(g["per_generation"]["prefill_ns"]) == g["requests"] > 2
        assert g["output_tokens_per_s"] == r["output_tokens_per_s"] > 0
        label = f"prompt_tokens={e['cell']['prompt_tokens']}, gen_tokens=4, streams={k}"
        assert rows[label]["all"] == tokens_text(r["output_tokens_per_s"])
        assert rows[label]["tpot"] == format_duration(r["stats"]["median_ns"])
        assert int(rows[label]["gens"]) == g["requests"]
        assert int(csv_rows[label]["streams"]) == k
        assert float(csv_rows[label]["end_to_end_tokens_per_s"]) == pytest.approx(
            r["output_tokens_per_s"], abs=1e-3
        )
        assert f"| {label} |" in md.read_text()
    folder = tmp_path / "png"
    p = _cli("report", str(out), "--png", str(folder))
    assert p.returncode == 0, p.stderr
    (plot,) = folder.iterdir()
    assert plot.name == "s-jsonl-tokens-by-context.png" and plot.stat().st_size > 10_000


def test_streams_must_be_positive() -> None:
    p = _cli("sweep", MODEL, "--streams", "0,2")
    assert p.returncode == 2 and "is not a list of positive integers" in p.stderr
