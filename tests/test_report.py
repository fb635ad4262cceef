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
    assert p.stdout.startswith("| model |") and p.stdout.count("\n") == 2 + 3
    assert "server 500/s" in p.stdout
    out = tmp_path / "s.csv"
    assert cli("report", inputs["run"], inputs["server"], "--csv", str(out)).returncode == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 3 and float(rows[0]["median_ns"]) > 0 and rows[1]["scenario"] == "server"
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
