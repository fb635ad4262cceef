"""Where the time goes: ORT's profiler summarised, cold start, memory and GFLOP/s."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

import inferspeed
from inferspeed.facts.models import demo_model_path, mlp_model
from inferspeed.tools.profile import profile, summarize_trace

from .conftest import FAST, until
from .test_cli import cli


def _expensive_among_cheap(path: Path) -> str:
    """Ten cheap Adds on a [64, 256] tensor and one MatMul with a 256 x 256 weight in the middle
    (about 100x the work of an Add)."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    prev = "x"
    for k in range(10):
        if k == 5:
            inits.append(nh.from_array(rng.random((256, 256), dtype=np.float32), "w"))
            nodes.append(h.make_node("MatMul", [prev, "w"], ["mm"], name="expensive"))
            prev = "mm"
        inits.append(nh.from_array(np.full((256,), 0.001, np.float32), f"b{k}"))
        nodes.append(h.make_node("Add", [prev, f"b{k}"], [f"a{k}"], name=f"cheap{k}"))
        prev = f"a{k}"
    graph = h.make_graph(
        nodes,
        "expensive",
        [h.make_tensor_value_info("x", T.FLOAT, [64, 256])],
        [h.make_tensor_value_info(prev, T.FLOAT, [64, 256])],
        inits,
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return str(path)


def test_mlp_time_is_in_gemm_and_adds_up(tmp_path: Path) -> None:
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_model(layers=3, width=512, batch=16), path)

    def check() -> tuple[bool, Any]:
        found = profile(str(path), threads=1, **FAST)
        pr = found.summary
        share = sum(r["share"] for r in pr["by_op_type"])
        return pr["by_op_type"][0]["op_type"].endswith("Gemm") and share > 0.9, pr

    pr = until(check)
    top = pr["by_op_type"][0]
    assert "Gemm" in top["op_type"] and top["share"] > 0.5, pr["by_op_type"]
    assert pr["node_share"] > 0.9, pr  # per-type totals against the profiled model time
    assert pr["kernel_share"] < pr["node_share"] <= 1.0
    assert sum(r["total_us"] for r in pr["by_op_type"]) == pytest.approx(pr["node_time_us"])
    assert pr["runs"] == pr["runs_expected"] > 0
    assert top["calls"] == pr["runs"] * top["nodes"]  # warm-up and the cold run left out
    assert pr["graph_optimization"] == "all"
    assert pr["unprofiled_median_ns"] > 0 and pr["profiled_median_ns"] > 0


def test_unfused_mlp_shows_gemm_and_relu(tmp_path: Path) -> None:
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_model(layers=2, width=256, batch=8), path)
    pr = profile(str(path), threads=1, graph_optimization="disable", **FAST).summary
    types = {r["op_type"]: r for r in pr["by_op_type"]}
    assert set(types) == {"Gemm", "Relu"} and types["Gemm"]["nodes"] == 2
    assert pr["by_op_type"][0]["op_type"] == "Gemm"


def test_expensive_node_is_first(tmp_path: Path) -> None:
    path = _expensive_among_cheap(tmp_path / "expensive.onnx")

    def check() -> tuple[bool, Any]:
        pr = profile(path, threads=1, graph_optimization="disable", **FAST).summary
        return pr["by_node"][0]["node"] == "expensive", pr["by_node"][:3]

    rows = until(check)
    assert rows[0]["node"] == "expensive" and rows[0]["op_type"] == "MatMul", rows


def _loop_model(path: Path) -> str:
    """A MatMul, then a Loop whose body runs MatMul and Relu (trip count from the input n)."""
    w = nh.from_array(np.full((128, 128), 0.01, np.float32), "w")
    body = h.make_graph(
        [
            h.make_node("MatMul", ["xin", "w"], ["mm"], name="body_mm"),
            h.make_node("Relu", ["mm"], ["xout"], name="body_relu"),
            h.make_node("Identity", ["cin"], ["cout"], name="body_cond"),
        ],
        "body",
        [
            h.make_tensor_value_info("i", T.INT64, []),
            h.make_tensor_value_info("cin", T.BOOL, []),
            h.make_tensor_value_info("xin", T.FLOAT, [16, 128]),
        ],
        [h.make_tensor_value_info("cout", T.BOOL, []), h.make_tensor_value_info("xout", T.FLOAT, [16, 128])],
    )
    graph = h.make_graph(
        [
            h.make_node("MatMul", ["x", "w"], ["a"], name="pre_mm"),
            h.make_node("Loop", ["n", "", "a"], ["y"], body=body, name="loop"),
        ],
        "loop",
        [h.make_tensor_value_info("x", T.FLOAT, [16, 128]), h.make_tensor_value_info("n", T.INT64, [])],
        [h.make_tensor_value_info("y", T.FLOAT, [16, 128])],
        [w],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return str(path)


def test_loop_body_nodes_are_not_counted_twice(tmp_path: Path) -> None:
    path = _loop_model(tmp_path / "loop.onnx")
    pr = profile(path, threads=1, values={"n": "4"}, graph_optimization="disable", **FAST).summary
    nodes = {r["node"]: r for r in pr["by_node"]}
    assert {"pre_mm", "loop", "loop > body_mm", "loop > body_relu"} <= set(nodes), list(nodes)
    assert nodes["loop > body_mm"]["calls"] == 4 * nodes["loop"]["calls"] == 4 * pr["runs"]
    assert nodes["loop"]["body_us"] > nodes["loop > body_mm"]["total_us"]
    # Per-type totals add up to at most the model time (the Loop's event spans its body's nodes).
    assert 0.5 < sum(r["share"] for r in pr["by_op_type"]) <= 1.0 + 1e-9
    assert pr["node_time_us"] + pr["outside_nodes_us"] == pytest.approx(pr["model_time_us"])


def _event(cat: str, name: str, ts: float, dur: float, **args: Any) -> dict[str, Any]:
    return {"cat": cat, "name": name, "ts": ts, "dur": dur, "ph": "X", "args": args}


def test_summarize_trace_keeps_only_the_timed_calls() -> None:
    events = []
    for k in range(5):  # run 0: cold, run 1: warm-up, runs 2-4: timed
        t0 = 1000.0 * k
        events.append(_event("Node", "a_kernel_time", t0 + 5, 60.0 if k >= 2 else 900.0, op_name="Conv"))
        events.append(_event("Node", "_kernel_time", t0 + 70, 20.0, op_name="Relu", node_index="3"))
        events.append(_event("Node", "a_fence_before", t0 + 1, 1.0, op_name="Conv"))
        events.append(_event("Session", "SequentialExecutor::Execute", t0 + 2, 90.0))
        events.append(_event("Session", "model_run", t0, 100.0))
    pr = summarize_trace(events, timed_calls=3)
    assert pr["runs"] == 3 and pr["model_time_us"] == 300.0
    by_type = {r["op_type"]: r for r in pr["by_op_type"]}
    # Conv: its 60 µs kernel, the 3 µs from the executor's start and half the 5 µs gap to Relu.
    conv = by_type["Conv"]
    assert conv["total_us"] == 3 * 65.5 and conv["kernel_us"] == 180.0 and conv["calls"] == 3
    assert (
        conv["share"] == pytest.approx(0.655) and conv["mean_us"] == 65.5 and conv["kernel_mean_us"] == 60.0
    )
    # Relu: its 20 µs kernel, half the gap and the 2 µs to the executor's end.
    assert by_type["Relu"]["total_us"] == 3 * 24.5 and by_type["Relu"]["dispatch_us"] == 3 * 4.5
    assert [r["node"] for r in pr["by_node"]] == ["a", "#3 (Relu)"]
    assert pr["node_share"] == pytest.approx(0.9) and pr["kernel_share"] == pytest.approx(0.8)
    assert pr["outside_nodes_us"] == pytest.approx(30.0) and pr["dispatch_time_us"] == pytest.approx(30.0)
    # ORT stopped recording at its event limit: it kept the first calls, cold run and warm-up
    # included; the timed ones are those after the untimed calls.
    truncated = summarize_trace(events, timed_calls=10, untimed_calls=2)
    assert truncated["runs"] == 3 and truncated["by_op_type"][0]["kernel_us"] == 180.0
    assert summarize_trace(events, timed_calls=3, untimed_calls=2)["model_time_us"] == 300.0


def test_summarize_trace_counts_a_subgraph_once() -> None:
    """A Loop's kernel event spans its body's executor calls and their nodes: the body's nodes get
    rows of their own and the Loop keeps only the rest, so nothing is counted twice."""
    events = []  # ORT writes each event when it ends: children before their parents
    for lo in (20.0, 100.0):  # two iterations
        events.append(_event("Node", "m_kernel_time", lo + 5, 40.0, op_name="MatMul"))
        events.append(_event("Node", "r_kernel_time", lo + 50, 5.0, op_name="Relu"))
        events.append(_event("Session", "SequentialExecutor::Execute", lo, 60.0))
    events.append(_event("Node", "loop_kernel_time", 10.0, 180.0, op_name="Loop"))
    events.append(_event("Session", "SequentialExecutor::Execute", 0.0, 200.0))
    events.append(_event("Session", "model_run", 0.0, 200.0))
    pr = summarize_trace(events, timed_calls=1)
    nodes = {r["node"]: r for r in pr["by_node"]}
    assert set(nodes) == {"loop", "loop > m", "loop > r"}
    assert nodes["loop > m"]["calls"] == 2 and nodes["loop > m"]["total_us"] == 2 * (40 + 5 + 2.5)
    assert nodes["loop > r"]["total_us"] == 2 * (5 + 2.5 + 5)
    loop = nodes["loop"]  # 180 less the two executor calls, plus the executor's 10 + 10 around it
    assert loop["kernel_us"] == 60.0 and loop["total_us"] == 80.0 and loop["body_us"] == 120.0
    assert loop["inclusive_share"] == pytest.approx(1.0)
    assert sum(r["share"] for r in pr["by_op_type"]) == pytest.approx(1.0)
    assert pr["node_time_us"] == pytest.approx(200.0) and pr["outside_nodes_us"] == 0.0


def test_summarize_trace_overlapping_nodes_share_no_gap() -> None:
    """The parallel executor runs nodes side by side on other threads: no gap between them."""
    events = [
        _event("Node", "a_kernel_time", 10.0, 50.0, op_name="MatMul") | {"tid": 1},
        _event("Node", "b_kernel_time", 20.0, 50.0, op_name="MatMul") | {"tid": 2},
        _event("Node", "c_kernel_time", 80.0, 10.0, op_name="Add") | {"tid": 1},
        _event("Session", "model_run", 0.0, 100.0) | {"tid": 0},
    ]
    pr = summarize_trace(events, timed_calls=1)
    nodes = {r["node"]: r for r in pr["by_node"]}
    assert nodes["a"]["total_us"] == 50.0 and nodes["a"]["dispatch_us"] == 0.0
    assert nodes["b"]["total_us"] == 55.0 and nodes["c"]["total_us"] == 15.0  # the 70-80 gap
    assert pr["node_time_us"] == 120.0  # more than the run's span: they overlapped


def test_cli_profile_writes_tables_trace_and_json(models: dict[str, str], tmp_path: Path) -> None:
    out, trace = tmp_path / "p.json", tmp_path / "trace.json"
    p = cli(
        "profile", models["mlp3"], "--threads", "1", "-t", "0.2", "--warmup", "20ms", "--top", "2",
        "--trace", str(trace), "--json", str(out),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "operator type" in p.stdout and "FusedGemm" in p.stdout and "unprofiled median" in p.stdout
    events = json.loads(trace.read_text())
    assert any(e.get("name") == "model_run" for e in events)
    r = json.loads(out.read_text())["results"][0]
    assert r["profile"]["by_op_type"][0]["op_type"] == "FusedGemm"
    assert len(r["profile"]["by_node"]) == 3 and r["profile"]["trace"] == str(trace)
    back = inferspeed.load_json(out)[0]
    assert back.profile is not None and back.profile["runs"] > 0
    again = cli("report", str(out))  # the saved profile's tables, printed again
    assert again.returncode == 0, again.stderr
    assert "operator type" in again.stdout and "FusedGemm" in again.stdout


def test_cold_start_in_every_result() -> None:
    r = inferspeed.benchmark(demo_model_path(), **FAST)
    cold = r.to_dict()["cold_start"]
    assert cold["session_create_ns"] > 0 and cold["first_run_ns"] > 0
    assert cold["first_warmup_iteration_ns"] > 0 and cold["settle_iterations"] is not None
    from inferspeed.report.text import render_result

    assert "steady after" in render_result(r)
    # A warm-up that ended before latency settled: the line says how much of it was timed.
    late = dataclasses.replace(
        r, warmup={**r.warmup, "settle_iterations": 700, "settle_timed_iterations": 500}
    )
    assert "steady after 700 iterations (200 warm-up and 500 timed" in render_result(late)


def _big_model(path: Path, megabytes: int) -> str:
    n = megabytes * (1 << 20) // 4
    w = nh.from_array(np.full((n,), 0.5, np.float32), "w")
    graph = h.make_graph(
        [h.make_node("Slice", ["w", "starts", "ends"], ["s"]), h.make_node("Add", ["x", "s"], ["y"])],
        "big",
        [h.make_tensor_value_info("x", T.FLOAT, [4])],
        [h.make_tensor_value_info("y", T.FLOAT, [4])],
        [w, nh.from_array(np.array([0], np.int64), "starts"), nh.from_array(np.array([4], np.int64), "ends")],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return str(path)


def _peak_resettable() -> bool:
    """Whether this machine lets a process reset its peak resident size (Linux's clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def test_memory_of_a_model_with_100_mb_of_weights(models: dict[str, str], tmp_path: Path) -> None:
    big = _big_model(tmp_path / "big.onnx", 100)
    resettable = _peak_resettable()
    peaks = {}
    for name, path in (("tiny", models["add"]), ("big", big)):
        out = tmp_path / f"{name}.json"
        p = cli("run", path, "-t", "0.1", "--warmup", "10ms", "--json", str(out), "-q")
        assert p.returncode == 0, p.stderr
        m = json.loads(out.read_text())["results"][0]["memory"]
        assert m["peak_reset"] is resettable and m["model_file_bytes"] == Path(path).stat().st_size
        peaks[name] = m
    assert peaks["big"]["initializer_bytes"] >= 100 << 20
    assert peaks["big"]["session_peak_bytes"] - peaks["tiny"]["session_peak_bytes"] >= 100 << 20
    assert peaks["big"]["session_peak_delta_bytes"] >= 100 << 20
    assert peaks["tiny"]["session_peak_delta_bytes"] < 50 << 20


def test_allocator_flags_are_validated() -> None:
    # Their effect on ONNX Runtime's allocations: tests/test_option_effects.py.
    with pytest.raises(inferspeed.ConfigError):
        inferspeed.Config(arena="no")  # type: ignore[arg-type]


def test_achieved_gflops_at_the_bound_shapes(models: dict[str, str]) -> None:
    r = inferspeed.benchmark(models["mlp_small"], dims={"batch": 32}, **FAST)
    assert r.compute is not None
    assert r.compute["macs"] == 2 * 64 * 64 * 32  # two 64x64 layers, batch 32
    assert r.compute["gflop_per_s"] == pytest.approx(2 * r.compute["macs"] / r.stats.median_ns)
    assert "GFLOP/s" in inferspeed.report.text.render_result(r)


def test_profile_of_a_model_without_nodes(tmp_path: Path) -> None:
    graph = h.make_graph(
        [],
        "empty",
        [h.make_tensor_value_info("x", T.FLOAT, [4])],
        [h.make_tensor_value_info("x", T.FLOAT, [4])],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "empty.onnx")
    p = cli("profile", str(tmp_path / "empty.onnx"), "-t", "0.1", "--warmup", "10ms")
    assert p.returncode == 0, p.stderr
    assert "(no operator types: ONNX Runtime ran no node" in p.stdout
    assert "(ORT run outside the nodes)" in p.stdout and "100.0%" in p.stdout


@pytest.mark.parametrize("input_sets", [1, 3])
def test_the_trace_holds_the_untimed_calls_then_the_timed_ones(
    models: dict[str, str], tmp_path: Path, input_sets: int
) -> None:
    """summarize_trace finds the timed calls of a truncated trace by counting the untimed ones
    (Session.untimed_calls and the warm-up): the count must match ORT's model_run events."""
    cfg = inferspeed.Config(input_sets=input_sets, threads=1)
    with inferspeed.Session(models["mlp_small"], cfg, profile_prefix=str(tmp_path / "ort")) as s:
        r = s.measure(iterations=20, warmup_iterations=5, max_time=None, warmup_time=None)
        written = s.end_profiling()
        untimed = s.untimed_calls
    assert written is not None and untimed == 1 + input_sets
    runs = [e for e in json.loads(Path(written).read_text()) if e.get("name") == "model_run"]
    assert r.warmup["iterations"] == 5 and r.stats.count == 20
    assert len(runs) == untimed + 5 + 20


def test_summarize_trace_nodes_within_one_microsecond_stay_siblings() -> None:
    """A sub-microsecond kernel has dur 0; the next node may start in the same microsecond.
    Neither is inside the other."""
    events = [
        _event("Node", "reshape_kernel_time", 5.0, 0.0, op_name="Reshape"),
        _event("Node", "gemm_kernel_time", 5.0, 3.0, op_name="Gemm"),
        _event("Node", "relu_kernel_time", 8.0, 0.0, op_name="Relu"),
        _event("Session", "SequentialExecutor::Execute", 4.0, 6.0),
        _event("Session", "model_run", 3.0, 8.0),
    ]
    pr = summarize_trace(events, timed_calls=1)
    assert {r["node"] for r in pr["by_node"]} == {"reshape", "gemm", "relu"}
    assert pr["node_time_us"] == pytest.approx(6.0) and pr["outside_nodes_us"] == pytest.approx(2.0)


def test_a_trace_cut_at_the_event_limit_is_said(models: dict[str, str]) -> None:
    import dataclasses

    found = profile(models["mlp_small"], threads=1, **FAST)
    summary = dict(found.summary)
    summary["runs_expected"] = summary["runs"] + 100
    text = inferspeed.report.text.render_profile(dataclasses.replace(found.profiled, profile=summary))
    assert f"ONNX Runtime recorded {summary['runs']} of {summary['runs_expected']} timed calls" in text
    assert "--iterations N profiles fewer" in text


LONG_NAMES = (
    "/model/encoder/layers.11/self_attention/query_projection/MatMul_long_node_name_0",
    "an_add_whose_name_is_far_longer_than_the_thirty_six_character_node_column_of_the_table",
)


def _long_named_model(path: Path) -> str:
    """A MatMul and an Add, both named far past the node column's 36 characters."""
    w = nh.from_array(np.full((64, 64), 0.01, np.float32), "w")
    b = nh.from_array(np.full((64,), 0.5, np.float32), "b")
    graph = h.make_graph(
        [
            h.make_node("MatMul", ["x", "w"], ["mm"], name=LONG_NAMES[0]),
            h.make_node("Add", ["mm", "b"], ["y"], name=LONG_NAMES[1]),
        ],
        "long_names",
        [h.make_tensor_value_info("x", T.FLOAT, [8, 64])],
        [h.make_tensor_value_info("y", T.FLOAT, [8, 64])],
        [w, b],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return str(path)


def test_cli_profile_leads_with_the_unprofiled_latency_and_shows_full_node_names(tmp_path: Path) -> None:
    from inferspeed.units import format_duration

    path = _long_named_model(tmp_path / "long.onnx")
    out = tmp_path / "p.json"
    p = cli(
        "profile", path, "--threads", "1", "--opt-level", "disable", "-t", "0.05", "--warmup", "10ms",
        "--json", str(out),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = json.loads(out.read_text())["results"][0]
    pr = r["profile"]
    # The JSON's result is the unprofiled measurement (the model's latency), profile attached.
    assert r["stats"]["median_ns"] == pr["unprofiled_median_ns"] != pr["profiled_median_ns"]
    lines = p.stdout.splitlines()
    first = next(line for line in lines if "median" in line)
    assert first.startswith("unprofiled median " + format_duration(pr["unprofiled_median_ns"])), first
    second = next(line for line in lines if "median" in line and line != first)
    assert second.startswith("profiled   median " + format_duration(pr["profiled_median_ns"])), second
    assert "x the unprofiled" in second
    # Full node names: in the JSON, and in the table wrapped onto continuation lines of the
    # node column (36 characters), which join back to the whole name.
    assert {row["node"] for row in pr["by_node"]} == set(LONG_NAMES)
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("node ")) + 1 :]
    column = "".join(line[:36].rstrip() for line in table)
    for name in LONG_NAMES:
        assert name in column, (name, table)
    assert all(len(line[:37].rstrip()) <= 36 for line in table)
