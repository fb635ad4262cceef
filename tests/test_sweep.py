"""Sweeps: the grid, one process per cell, a JSONL file that survives a kill."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from inferspeed import ConfigError
from inferspeed.tools.sweep import _read_done, cell_key, grid_cells, sweep

from .child_events import Events


def test_grid_is_every_combination_in_a_stable_order() -> None:
    cells = grid_cells({"threads": [1, 2], "dims": {"batch": [1, 8]}, "mode": ["binding", "run"]})
    assert len(cells) == 8 and len({cell_key(c) for c in cells}) == 8
    assert cells[0] == {"threads": 1, "dims": {"batch": 1}, "mode": "binding"}
    with pytest.raises(ConfigError, match="unknown sweep axes"):
        grid_cells({"batch": [1]})
    with pytest.raises(ConfigError, match="no values"):
        grid_cells({"threads": []})


def test_resume_cuts_a_partial_last_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    whole = json.dumps({"cell": {"threads": 1}, "result": {}}) + "\n"
    path.write_text(whole + '{"cell": {"threads": 2}, "res')
    done = _read_done(str(path))
    assert list(done) == [cell_key({"threads": 1})]
    assert path.read_text() == whole


def test_sweep_api_measures_each_cell_once(models: dict[str, str], tmp_path: Path) -> None:
    from inferspeed import Config

    out = tmp_path / "s.jsonl"
    grid = {"mode": ["binding", "run"], "dims": {"batch": [1, 4]}}
    config = Config(max_time=0.1, warmup_time=0.02)
    found = sweep(models["mlp_small"], grid, out, config=config, by="throughput")
    assert found.measured == 4 and len(out.read_text().splitlines()) == 4
    best = found.best
    assert best is not None and best["cell"]["dims"]["batch"] == 4  # more samples per second
    with pytest.raises(ConfigError, match="exists"):
        sweep(models["mlp_small"], grid, out, config=config)
    again = sweep(models["mlp_small"], grid, out, config=config, resume=True)
    assert again.measured == 0 and len(again.entries) == 4


def test_sweep_killed_half_way_resumes_to_every_cell_exactly_once(
    models: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "killed.jsonl"
    argv = [
        sys.executable, "-m", "inferspeed", "sweep", models["mlp_small"], "--mode", "binding,run",
        "--threads", "1,2", "--dim", "batch=1,4", "-t", "0.1", "--warmup", "0.02", "--out", str(out), "-q",
    ]  # fmt: skip
    events = Events(tmp_path / "events.jsonl")
    proc = subprocess.Popen(argv, start_new_session=True, env=events.env())
    try:
        # Three cells written (the sweep says so after each append), the fourth one measuring.
        events.wait("cell", "cell", "cell", "timed", proc=proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, mid-way
        proc.wait()
    before = len(out.read_bytes().splitlines())
    assert 3 <= before < 8
    p = subprocess.run([*argv, "--resume"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = out.read_text().splitlines()
    keys = [cell_key(json.loads(line)["cell"]) for line in lines]
    assert len(keys) == 8 and len(set(keys)) == 8
    assert all("result" in json.loads(line) for line in lines)


def test_sweep_cli_errors(models: dict[str, str], tmp_path: Path) -> None:
    from .test_cli import cli

    p = cli("sweep", models["add"], "--out", str(tmp_path / "x.jsonl"))
    assert p.returncode == 2 and "at least one axis" in p.stderr
    p = cli("sweep", models["add"], "--mode", "fast", "--out", str(tmp_path / "x.jsonl"))
    assert p.returncode == 2 and "choose from" in p.stderr
