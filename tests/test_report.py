"""inferspeed report: the HTML file with embedded plots, PNGs, Markdown, CSV and pyperf."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import inferspeed
from inferspeed.config import Config
from inferspeed.tools.profile import profile
from inferspeed.tools.tradeoff import tradeoff

from .conftest import FAST
from .test_cli import cli

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def inputs(models: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("report")
    out = {}
    run = inferspeed.benchmark(models["mlp_small"], **FAST)
    out["run"] = str(folder / "run.json")
    run.to_json(out["run"])
    with inferspeed.Session(models["mlp_small"], warmup_time=0.02) as s:
        servers = [s.measure(scenario="server", qps=q, duration=0.3) for q in (500.0, 2000.0)]
    out["server"] = str(folder / "server.json")
    inferspeed.write_json(servers, out["server"])
    found = tradeoff(
        models["mlp_small"],
        config=Config(dims={"batch": 4}, max_time=0.3, warmup_time=0.02),
        quantize="dynamic",
    )
    out["tradeoff"] = str(folder / "tradeoff.json")
    Path(out["tradeoff"]).write_text(json.dumps(found.to_dict()))
    prof = profile(models["mlp3"], threads=1, **FAST)
    out["profile"] = str(folder / "profile.json")
    prof.profiled.to_json(out["profile"])
    return out


def _images(html: str) -> dict[str, bytes]:
    found = re.findall(r'<figure id="([^"]+)"><img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    return {slug: base64.b64decode(data) for slug, data in found}


def test_html_has_every_plot_embedded_and_non_empty(inputs: dict[str, str], tmp_path: Path) -> None:
    from matplotlib.image import imread

    out, pngs = tmp_path / "report.html", tmp_path / "png"
    order = ("run", "server", "tradeoff", "profile")
    p = cli("report", *(inputs[k] for k in order), "--html", str(out), "--png", str(pngs), timeout=180)
    assert p.returncode == 0, p.stderr
    html = out.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html  # self-contained
    images = _images(html)
    kinds = [
        "histogram",
        "cdf",
        "timeline",
        "throughput-latency",
        "tradeoff",
        "profile-by-op-type",
        "profile-by-node",
    ]
    for kind in kinds:
        assert any(slug.endswith(kind) or f"{kind}-" in slug for slug in images), (kind, sorted(images))
    # 3 per latency result (1 run, 2 server, 1 profile) + curve + trade-off + 2 profile bars.
    assert len(images) == 3 * 4 + 1 + 1 + 2
    for slug, data in images.items():
        assert data.startswith(PNG), slug
        pixels = imread(io.BytesIO(data))
        assert pixels.shape[0] > 100 and pixels.shape[1] > 300, slug
        assert float(np.std(pixels[..., :3])) > 0.05, f"{slug} is blank"
    assert len(list(pngs.glob("*.png"))) == len(images)


def test_markdown_csv_and_text(inputs: dict[str, str], tmp_path: Path) -> None:
    p = cli("report", inputs["run"], inputs["server"], "--markdown")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("# inferspeed report\n\n| result |")
    table = p.stdout.split("\n\n")[1].splitlines()
    assert len(table) == 2 + 3 and "server 500/s" in table[3] and "server 2000/s" in table[4]
    out = tmp_path / "s.csv"
    assert cli("report", inputs["run"], inputs["server"], "--csv", str(out)).returncode == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 3 and float(rows[0]["median_ns"]) > 0 and rows[1]["scenario"] == "server"
    assert len({r["label"] for r in rows}) == 3
    text = cli("report", inputs["run"], inputs["tradeoff"])
    assert text.returncode == 0 and "median" in text.stdout and "tradeoff result" in text.stdout


def test_pyperf_export_is_read_by_pyperf(models: dict[str, str], tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    inferspeed.benchmark(models["mlp3"], threads=1, **FAST).to_json(a)
    inferspeed.benchmark(models["mlp6"], threads=1, **FAST).to_json(b)
    pa, pb = tmp_path / "pa.json", tmp_path / "pb.json"
    assert cli("report", str(a), "--pyperf", str(pa)).returncode == 0
    assert cli("report", str(b), "--pyperf", str(pb)).returncode == 0
    doc = json.loads(pa.read_text())
    values = [v for run in doc["benchmarks"][0]["runs"] for v in run["values"]]
    assert len(values) == min(1000, inferspeed.load_json(a)[0].stats.count)
    for args in (["stats", str(pa)], ["hist", str(pa)], ["compare_to", str(pa), str(pb)]):
        p = subprocess.run(
            [sys.executable, "-m", "pyperf", *args], capture_output=True, text=True, timeout=60
        )
        assert p.returncode == 0, (args, p.stderr)
    compared = subprocess.run(
        [sys.executable, "-m", "pyperf", "compare_to", str(pa), str(pb)], capture_output=True, text=True
    ).stdout
    assert "slower" in compared, compared  # 6 layers against 3


def test_bad_report_inputs(inputs: dict[str, str], tmp_path: Path) -> None:
    cases = [
        ["report", str(tmp_path / "missing.json"), "--html", str(tmp_path / "x.html")],
        ["report", inputs["tradeoff"], "--csv"],
        ["report", inputs["run"], "--html", str(tmp_path / "no" / "such" / "x.html")],
    ]
    jsonl = tmp_path / "sweep.jsonl"
    jsonl.write_text('{"cell": {}}\n{"cell": {}}\n')
    cases.append(["report", str(jsonl)])
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text('{"cell": {"threads": 1}, "error": "x"}\nnot json\n{"cell": {}, "error": "y"}\n')
    cases.append(["report", str(bad_line), "--markdown"])
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"schema": "inferspeed/9", "results": []}))
    cases.append(["report", str(newer), "--markdown"])
    for args in cases:
        p = cli(*args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert p.stderr.startswith("inferspeed: error:") and p.stderr.count("\n") == 1, p.stderr


def test_progress_bar_and_colour_only_on_a_terminal(models: dict[str, str]) -> None:
    import os

    args = [sys.executable, "-m", "inferspeed", "run", models["add"], "-t", "1.2", "--warmup", "0.05"]
    plain = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0 and "\x1b[" not in plain.stdout + plain.stderr
    env = {**os.environ, "INFERSPEED_FORCE_TERMINAL": "1"}
    tty = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert tty.returncode == 0, tty.stderr
    assert "measuring add" in tty.stderr and "%" in tty.stderr  # the bar, drawn on stderr
    assert "\x1b[1mmodel     \x1b[0m" in tty.stdout and "\x1b[1msamples   \x1b[0m" in tty.stdout  # names bold
    quiet = subprocess.run([*args, "--quiet"], capture_output=True, text=True, timeout=60, env=env)
    assert quiet.returncode == 0 and quiet.stdout == "" and "measuring" not in quiet.stderr


# The report's contents: every result's environment, config, shapes and warnings in words,
# distinct labels, comparisons, and sweeps. One short real measurement, edited into variants.

WARNING_WORDS = "latency went from 5 us to 9 us between the start and the end of the run"
BECAUSE = "the model names this dim batch and --dim batch=3 set it"


@pytest.fixture(scope="module")
def variants(models: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Four result files of one model, all named run.json: ``a`` as measured; ``b`` the same
    document with a warning and the input's ``chosen_because``; ``c`` with mode 'run'; ``d`` the
    same as ``a`` (another copy)."""
    folder = tmp_path_factory.mktemp("variants")
    doc = json.loads(inferspeed.benchmark(models["mlp_small"], dims={"batch": 3}, **SHORT).to_json())
    doc["results"][0]["warnings"] = []
    out = {}
    for name in "abcd":
        edited = json.loads(json.dumps(doc))
        result = edited["results"][0]
        if name == "b":
            result["warnings"] = [{"code": "drift", "message": WARNING_WORDS, "details": {}}]
            result["model"]["inputs"][0]["chosen_because"] = BECAUSE
        if name == "c":
            result["config"]["mode"] = "run"
        (folder / name).mkdir()
        out[name] = folder / name / "run.json"
        out[name].write_text(json.dumps(edited))
    return out


SHORT = {"warmup_time": 0.01, "max_time": 0.05}


def _labels(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", markdown, flags=re.M)


def test_report_shows_each_results_environment_config_shapes_and_warnings(
    variants: dict[str, Path], tmp_path: Path
) -> None:
    import html as html_module

    md, page = tmp_path / "r.md", tmp_path / "r.html"
    p = cli("report", str(variants["a"]), str(variants["b"]), "--markdown", str(md), "--html", str(page))
    assert p.returncode == 0, p.stderr
    env = json.loads(variants["a"].read_text())["environment"]
    date = env["start_time"].replace("T", " ")
    for text in (md.read_text(), html_module.unescape(page.read_text())):
        for fact in (env["cpu"]["model"], f"{env['cpu']['logical_cores']} logical cores",
                     env["onnxruntime"]["version"], env["os"]["release"], env["python"]):  # fmt: skip
            assert fact in text
        assert text.count(date) == 2  # each result's date
        assert text.count("float32 [3, 64] (the model's shape: [batch, 64])") == 2  # bound shapes
        assert f"chosen because {BECAUSE}" in text
        assert text.count("mode binding, cache warm, scenario single-stream, at most 0.05 s") == 2
        assert f"drift: {WARNING_WORDS}" in text  # the warning in words, not only its code
        assert "Compared with" in text and "separate runs" in text
    markdown = md.read_text()
    compared = markdown.split("## Compared with", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in compared.splitlines() if line.startswith("| ") and "ratio" not in line]
    assert len(rows) == 1 and re.search(r"\| \d\.\d{3} \(\d\.\d{3}–\d\.\d{3}\) \|", rows[0]), compared


def test_results_of_one_file_name_get_distinct_labels(variants: dict[str, Path]) -> None:
    from inferspeed.report.exports import label_entries

    paths = [str(variants[k]) for k in "abcd"]
    p = cli("report", *paths, "--markdown")
    assert p.returncode == 0, p.stderr
    labels = _labels(p.stdout)[1:]  # after "Compared with ..."
    assert len(labels) == 4 and len(set(labels)) == 4, labels
    assert "mode=run" in labels[2]  # told apart by the config that differs
    assert f"from {paths[0]}" in labels[0] and f"from {paths[3]}" in labels[3]  # then by file
    # One file given twice: the same result, numbered.
    (result,) = inferspeed.load_json(paths[0])
    twice = [e.label for e in label_entries([(paths[0], result, None), (paths[0], result, None)])]
    assert len(set(twice)) == 2, twice


def test_a_sweeps_jsonl_is_a_report_input(models: dict[str, str], tmp_path: Path) -> None:
    from inferspeed.tools.sweep import sweep

    out = tmp_path / "sweep.jsonl"
    sweep(models["mlp_small"], {"threads": [1]}, out, config=Config(**SHORT))
    with open(out, "a", encoding="utf-8") as f:  # a failed cell, as sweep writes it
        f.write(json.dumps({"cell": {"threads": 2}, "error": "the cell failed: out of memory"}) + "\n")
    page = tmp_path / "s.html"
    p = cli("report", str(out), "--markdown", "--html", str(page))
    assert p.returncode == 0, p.stderr
    assert _labels(p.stdout) == ["Failed sweep cells", "mlp_small.onnx [threads=1]"], p.stdout
    assert "cell threads=2: the cell failed: out of memory" in p.stdout
    assert "float32 [1, 64]" in p.stdout and "not recorded (a sweep's JSONL keeps none)" in p.stdout
    html = page.read_text()
    assert "mlp_small.onnx [threads=1]" in html and "the cell failed: out of memory" in html
    with open(out, "a", encoding="utf-8") as f:
        f.write('{"cell": {"threads": 4}, "res')  # a sweep still writing its line
    text = cli("report", str(out))
    assert text.returncode == 0 and "error: the cell failed: out of memory" in text.stdout
    assert "cut short" in text.stderr
    # With another result: compared by their statistics (a sweep keeps no samples).
    run = tmp_path / "run.json"
    inferspeed.benchmark(models["mlp_small"], **SHORT).to_json(run)
    both = cli("report", str(run), str(out), "--markdown")
    assert both.returncode == 0 and "not tested: a sweep's cell keeps no samples" in both.stdout
    assert cli("report", str(out), "--pyperf", str(tmp_path / "p.json")).returncode == 2


def test_the_old_arguments_of_plots_for_and_render_profile_latency_still_work() -> None:
    """plots_for took a trade-off or capacity document as parsed JSON, render_profile_latency a
    profile's summary mapping; both now take the typed objects, and the old arguments work
    until the next release with a deprecation warning."""
    pytest.importorskip("matplotlib")
    from inferspeed.analysis.capacity import CapacityResult
    from inferspeed.report.html import plots_for
    from inferspeed.report.text import render_profile_latency

    found = CapacityResult(
        percentile=99.0, slo_ns=2e6, concurrency=1, offline_throughput_per_s=1000.0, capacity_qps=800.0
    )
    typed = plots_for("cap.json", found)
    with pytest.warns(DeprecationWarning, match="plots_for takes a TradeoffResult or CapacityResult"):
        old = plots_for("cap.json", found.to_dict())
    assert old.title == typed.title and old.notes == typed.notes == ["capacity: 800 requests/s"]
    summary = {"unprofiled_median_ns": 1000.0, "profiled_median_ns": 1500.0, "model_run_median_us": 1.2}
    with pytest.warns(DeprecationWarning, match="takes the profiled Result"):
        lines = render_profile_latency(summary)
    assert lines[0].startswith("unprofiled median 1.00 µs")


# One throughput, one latency per line: each summary line cites the figure it is made of, and
# a gate's document reads as the gate it was.


@pytest.fixture(scope="module")
def measured(inputs: dict[str, str]) -> inferspeed.Result:
    (r,) = inferspeed.load_json(inputs["run"])
    return r


def _summary_stats(samples_ns: list[int]) -> dict[str, object]:
    from inferspeed.stats.summary import summarize

    return summarize(np.array(samples_ns, dtype=np.int64)).to_dict()


def test_a_server_summary_has_one_throughput_the_achieved_rate(measured: inferspeed.Result) -> None:
    """A server that achieved 17.0/s of the 40/s offered says so once; one stream's 1 / mean
    latency (a different, larger figure here) appears nowhere; GFLOP/s is at the service
    median the service line shows (the latency in the table counts queueing too)."""
    import dataclasses

    from inferspeed.report.text import render_result
    from inferspeed.units import format_duration

    service = _summary_stats([2_000_000 + 1000 * k for k in range(200)])
    r = dataclasses.replace(
        measured,
        scenario="server",
        config={**measured.config, "scenario": "server", "qps": 40.0},
        compute={"macs": 5_000_000, "gflop_per_s": 999.0},  # a stale figure: never printed
        scenario_stats={
            "offered_qps": 40.0,
            "scheduled_qps": 40.0,
            "achieved_qps": 17.0,
            "arrival": "poisson",
            "duration_s": 5.0,
            "concurrency": 1,
            "requests": 200,
            "completed": 85,
            "queue_stats": service,
            "service_stats": service,
            "scheduler_lateness_stats": None,
            "throughput_per_s": 17.0,
            "samples_per_s": 17.0,
        },
    )
    text = render_result(r)
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("throughput")] == [
        "throughput 17.0 /s (achieved: completed requests per second)"
    ]
    assert "one stream" not in text and "999" not in text
    median = service["median_ns"]
    assert isinstance(median, float)
    gflops = 2 * 5_000_000 / median
    assert f"compute    {gflops:.1f} GFLOP/s at the service median {format_duration(median)}" in text
    service_line = next(line for line in lines if line.startswith("service"))
    assert format_duration(median) in service_line and "CV" in service_line


def test_an_offline_summary_prints_the_offline_throughput(measured: inferspeed.Result) -> None:
    import dataclasses

    from inferspeed.report.text import render_result

    r = dataclasses.replace(
        measured,
        scenario="offline",
        compute={"macs": 1_000_000, "gflop_per_s": 999.0},
        scenario_stats={
            "duration_s": 1.0,
            "concurrency": 2,
            "completed": 58_500,
            "throughput_per_s": 58_500.0,
            "samples_per_s": 58_500.0,
            "per_worker": [{"worker": k, "count": 29_250, "median_ns": 30_000.0} for k in range(2)],
        },
    )
    text = render_result(r)
    assert [line for line in text.splitlines() if re.search(r"\d( [kM])?/s", line)] == [
        "throughput 58.50 k/s (offline: 2 worker(s) back to back)",
        "compute    117.0 GFLOP/s at the 58.50 k/s throughput (1 M multiply-adds per call)",
    ]


def test_gflops_is_at_the_median_the_table_shows(measured: inferspeed.Result) -> None:
    import dataclasses

    from inferspeed.report.text import render_result
    from inferspeed.units import format_duration

    r = dataclasses.replace(measured, compute={"macs": 3_000_000, "gflop_per_s": 999.0})
    text = render_result(r)
    median = r.stats.median_ns
    table = text.split("\n\n")[1].splitlines()[1].split()
    assert format_duration(median).split() == table[2:4]  # the table's median column
    line = f"compute    {2 * 3_000_000 / median:.1f} GFLOP/s at the median {format_duration(median)}"
    assert line in text and "999" not in text


def test_no_steady_after_beside_not_steady(measured: inferspeed.Result) -> None:
    """A warm-up that hit its cap unsteady says so on both lines that speak of it."""
    import dataclasses

    from inferspeed.report.text import render_result

    warmup = {**measured.warmup, "until_steady": True, "steady": False, "iterations": 500}
    warmup |= {"time_ns": 2_000_000_000, "settle_iterations": 0, "settle_timed_iterations": 0}
    text = render_result(dataclasses.replace(measured, warmup=warmup, warnings=()))
    assert "NOT steady at the cap" in text and "steady after" not in text
    assert "not steady within the 500 warm-up iterations" in text
    steady = render_result(dataclasses.replace(measured, warmup={**warmup, "steady": True}, warnings=()))
    assert "until steady" in steady and "steady after 0 warm-up iterations" in steady


@pytest.fixture(scope="module")
def gate_file(models: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gate's document as ``inferspeed gate --json`` writes it (two models of different
    cost), with two fields a newer gate may add."""
    from inferspeed.results.result import results_document
    from inferspeed.tools.gate import gate

    verdict = gate(
        models["mlp3"], models["mlp6"], Config(threads=1, max_time=0.3, warmup_time=0.02), fail_if_slower=0.03
    )
    doc = results_document([verdict.baseline, verdict.candidate])
    doc["gate"] = verdict.to_dict() | {"effective_quantile": 0.97, "seed": 1234}
    path = tmp_path_factory.mktemp("gate") / "gate.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_gate_report_shows_its_decision_threshold_and_pairing(gate_file: Path, tmp_path: Path) -> None:
    gate = json.loads(gate_file.read_text())["gate"]
    decision = "FAIL" if gate["failed"] else "pass"
    rounds = gate["rounds"]
    text = cli("report", str(gate_file))
    md, page = tmp_path / "g.md", tmp_path / "g.html"
    files = cli("report", str(gate_file), "--markdown", str(md), "--html", str(page), timeout=120)
    assert text.returncode == 0 and files.returncode == 0, text.stderr + files.stderr
    import html as html_module

    for out in (text.stdout, md.read_text(), html_module.unescape(page.read_text())):
        assert re.search(rf"decision\W+{decision}: ", out), out[:3000]
        assert "above 1.030 (more than 3.0% slower)" in out
        assert f"paired: {rounds} interleaved rounds in random order, seed 1234" in out
        assert "effective_quantile" in out and "0.97" in out  # a newer gate's field, shown
        assert not re.search(r"threshold\W+0\.0", out)  # a known field, not shown raw again
        assert "separate runs" not in out
    markdown = md.read_text()
    assert "Compared with" not in markdown  # the gate is the comparison
    # The config is the whole gate's (its rounds), not one round's limit alone.
    assert markdown.count(f"scenario single-stream, {rounds} interleaved rounds of at most") == 2
    assert "throughput-latency" not in page.read_text()  # no curve through two models


def test_a_gate_block_is_read_leniently() -> None:
    from inferspeed.report.exports import GateRecord, gate_facts

    assert GateRecord.from_document({"results": []}) is None
    bare = GateRecord.from_document({"gate": {"baseline": "a", "candidate": "b", "failed": False}})
    assert bare is not None
    facts = dict(gate_facts(bare))
    assert facts["decision"].startswith("none: no limit was given")
    counted = GateRecord.from_document(
        {
            "gate": {
                "metric": "instructions",
                "baseline": "a",
                "candidate": "b",
                "ratio": 1.05,
                "fail_if_more": 0.01,
                "failed": True,
                "notes": ["n"],
            }
        }
    )
    assert counted is not None
    facts = dict(gate_facts(counted))
    assert facts["decision"].startswith("FAIL: b is worse in instructions than a: instructions ratio 1.050")
    assert facts["pairing"].startswith("none: each side measured once") and facts["note"] == "n"


def test_a_curve_joins_one_models_loads_only(measured: inferspeed.Result) -> None:
    import dataclasses

    from inferspeed.report.html import _curves

    def at(model: str, qps: float) -> inferspeed.Result:
        config = {**measured.config, "scenario": "server", "qps": qps}
        return dataclasses.replace(measured, model={**measured.model, "graph_sha256": model}, config=config)

    a1, a2, b1 = at("a", 10.0), at("a", 20.0), at("b", 30.0)
    assert _curves([a1, a2, b1]) == [[a1, a2]]
    assert _curves([a1, b1]) == []  # two models: no line through them
    assert _curves([a1, at("a", 10.0)]) == []  # one load twice: no curve
