"""Sweeps: the grid, one process per cell, a JSONL file that survives a kill."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from inferspeed import ConfigError
from inferspeed.results.sweepfile import cell_key, cell_label, read_for_resume
from inferspeed.tools.sweep import grid_cells, ranking_for, sweep

from .child_events import Events
from .test_cli import cli

FAST = ("-t", "0.05", "--warmup", "0.01")


def _save(graph: object, path: Path) -> str:
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return str(path)


def _encoder(path: Path) -> str:
    """An encoder's inputs: input_ids, token_type_ids (a Gather on a 2-row table, so only 0 and 1
    are valid) and attention_mask, all int64 [batch, seq]."""
    rng = np.random.default_rng(0)
    words = nh.from_array(rng.random((16, 8), dtype=np.float32), "words")
    types = nh.from_array(rng.random((2, 8), dtype=np.float32), "types")
    axes = nh.from_array(np.array([-1], np.int64), "axes")
    ids = ["batch", "seq"]
    graph = h.make_graph(
        [
            h.make_node("Gather", ["words", "input_ids"], ["w"]),
            h.make_node("Gather", ["types", "token_type_ids"], ["t"]),
            h.make_node("Add", ["w", "t"], ["e"]),
            h.make_node("Cast", ["attention_mask"], ["m"], to=T.FLOAT),
            h.make_node("Unsqueeze", ["m", "axes"], ["m3"]),
            h.make_node("Mul", ["e", "m3"], ["y"]),
        ],
        "encoder",
        [
            h.make_tensor_value_info(n, T.INT64, ids)
            for n in ("input_ids", "token_type_ids", "attention_mask")
        ],
        [h.make_tensor_value_info("y", T.FLOAT, [*ids, 8])],
        initializer=[words, types, axes],
    )
    return _save(graph, path)


def _reshape_to_16(path: Path) -> str:
    """x [n] reshaped to [4, 4]: every n but 16 fails when the model runs."""
    graph = h.make_graph(
        [h.make_node("Reshape", ["x", "shape"], ["y"])],
        "reshape16",
        [h.make_tensor_value_info("x", T.FLOAT, ["n"])],
        [h.make_tensor_value_info("y", T.FLOAT, [4, 4])],
        initializer=[nh.from_array(np.array([4, 4], np.int64), "shape")],
    )
    return _save(graph, path)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_grid_is_every_combination_in_a_stable_order() -> None:
    cells = grid_cells({"threads": [1, 2], "dims": {"batch": [1, 8]}, "mode": ["binding", "run"]})
    assert len(cells) == 8 and len({cell_key(c) for c in cells}) == 8
    assert cells[0] == {"threads": 1, "dims": {"batch": 1}, "mode": "binding"}
    assert grid_cells({"batch": [1, 8, 1]}) == [{"batch": 1}, {"batch": 8}]  # a repeat is one cell
    assert cell_label({"threads": 2, "batch": 8, "dims": {"seq": 128}}) == "threads=2, batch=8, seq=128"
    with pytest.raises(ConfigError, match="unknown sweep axes"):
        grid_cells({"size": [1]})
    with pytest.raises(ConfigError, match="no values"):
        grid_cells({"threads": []})


def test_resume_cuts_a_partial_last_line(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    whole = json.dumps({"cell": {"threads": 1}, "result": {}}) + "\n"
    path.write_text(whole + '{"cell": {"threads": 2}, "res')
    done = read_for_resume(path)
    assert [cell_key(line.cell) for line in done] == [cell_key({"threads": 1})]
    assert path.read_text() == whole


def test_by_is_a_ranking_of_the_configs_metric() -> None:
    assert ranking_for("p99", "latency").path == ("stats", "p99_ns")
    assert ranking_for("instructions", "instructions").path == ("instructions", "instructions")
    with pytest.raises(
        ConfigError,
        match="by must be one of median, p99, throughput, tpot, ttft, output_tokens_per_s, instructions",
    ):
        ranking_for("mean", "latency")
    with pytest.raises(ConfigError, match="by='instructions' goes with metric='instructions'; "):
        ranking_for("instructions", "latency")
    with pytest.raises(ConfigError, match="metric='instructions' ranks by 'instructions'"):
        ranking_for("median", "instructions")


def test_sweep_api_measures_each_cell_once(models: dict[str, str], tmp_path: Path) -> None:
    from inferspeed import Config

    out = tmp_path / "s.jsonl"
    grid = {"mode": ["binding", "run"], "dims": {"batch": [1, 4]}}
    config = Config(max_time=0.1, warmup_time=0.02)
    found = sweep(models["mlp_small"], grid, out, config=config, by="throughput")
    assert found.measured == 4 and len(out.read_text().splitlines()) == 4
    best = found.best
    assert best is not None and best.cell["dims"]["batch"] == 4  # more samples per second
    assert found.to_dict()["best"] == {"mode": best.cell["mode"], "dims": {"batch": 4}}
    assert [e.to_json() for e in found.entries] == out.read_text().splitlines()
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
    p = cli("sweep", models["add"], "--out", str(tmp_path / "x.jsonl"))
    assert p.returncode == 2 and "at least one axis" in p.stderr
    p = cli("sweep", models["add"], "--mode", "fast", "--out", str(tmp_path / "x.jsonl"))
    assert p.returncode == 2 and "choose from" in p.stderr
    p = cli("sweep", models["add"], "--batch", "1,x", "--out", str(tmp_path / "x.jsonl"))
    assert p.returncode == 2 and "positive integers" in p.stderr
    p = cli("sweep", str(tmp_path / "missing.onnx"), "--threads", "1", "--out", str(tmp_path / "x.jsonl"))
    assert p.returncode == 2 and "not found" in p.stderr and not (tmp_path / "x.jsonl").exists()


def test_sweep_input_flags_reach_every_cell(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    p = cli(
        "sweep", models["embedding"], "--mode", "binding,run", "--shape", "ids=2x5", "--range",
        "ids=3:7", "--input", "scale=0.5", "--seed", "7", *FAST, "--out", str(out), "-q",
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    entries = _lines(out)
    assert [e["cell"] for e in entries] == [{"mode": "binding"}, {"mode": "run"}]
    for e in entries:
        inputs = {i["name"]: i for i in e["result"]["model"]["inputs"]}
        assert inputs["scale"]["source"] == "constant" and inputs["ids"]["source"] == "range"
        assert inputs["ids"]["bound_shape"] == [2, 5]
        config = e["result"]["config"]
        assert config["mode"] == e["cell"]["mode"] and config["seed"] == 7
        assert config["shapes"] == {"ids": [2, 5]} and config["ranges"] == {"ids": [3.0, 7.0]}
        assert config["values"] == {"scale": "0.5"}


def test_sweep_with_a_failed_cell_exits_1_and_names_it(tmp_path: Path) -> None:
    model = _reshape_to_16(tmp_path / "reshape16.onnx")
    out = tmp_path / "s.jsonl"
    p = cli("sweep", model, "--dim", "n=16,15", *FAST, "--out", str(out))
    assert p.returncode == 1, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("inferspeed: error: sweep: 1 of 2 cells failed: n=15: "), last
    entries = _lines(out)
    assert "result" in entries[0] and entries[1]["cell"] == {"dims": {"n": 15}} and entries[1]["error"]
    assert "16" in p.stdout and "error: " in p.stdout  # the table still shows every cell
    # Every cell failed: exit 1 as well, each named; with -q the summary is all there is.
    p = cli("sweep", model, "--dim", "n=15,17", *FAST, "--out", str(tmp_path / "all.jsonl"), "-q")
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.startswith(
        "inferspeed: error: sweep: 2 of 2 cells failed (n=15; n=17); the first: n=15: "
    )
    assert len(p.stderr.strip().splitlines()) == 1


def test_sweep_batch_axis(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    p = cli("sweep", models["mlp_small"], "--batch", "1,8", *FAST, "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "batch=1: median" in p.stderr and "batch=8: median" in p.stderr
    entries = _lines(out)
    assert [e["cell"] for e in entries] == [{"batch": 1}, {"batch": 8}]
    for e in entries:
        assert e["result"]["config"]["batch"] == e["cell"]["batch"]
        assert e["result"]["model"]["inputs"][0]["bound_shape"][0] == e["cell"]["batch"]


def test_sweep_encoder_batch_with_a_constant_input(tmp_path: Path) -> None:
    model = _encoder(tmp_path / "encoder.onnx")
    out = tmp_path / "s.jsonl"
    p = cli("sweep", model, "--batch", "1,8", "--input", "token_type_ids=0", *FAST, "--out", str(out))
    assert p.returncode == 0, p.stderr
    entries = _lines(out)
    assert [e["cell"] for e in entries] == [{"batch": 1}, {"batch": 8}]
    for e in entries:
        inputs = {i["name"]: i for i in e["result"]["model"]["inputs"]}
        assert inputs["token_type_ids"]["source"] == "constant"
        assert inputs["input_ids"]["source"] == "random"
