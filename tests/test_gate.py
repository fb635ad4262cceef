"""The same-session gate: model identity, randomised interleaving, pairing kept in the JSON,
the decided statistic, and the gate command (two models, or one model on two runtimes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from inferspeed import Config, Result, summarize
from inferspeed.analysis.compare import check_comparable, compare, same_model
from inferspeed.facts.identity import graph_sha256
from inferspeed.facts.models import mlp_model
from inferspeed.facts.ortlib import find_library
from inferspeed.measure.interleave import measure_interleaved
from inferspeed.measure.session import Session
from inferspeed.results.pool import pool_results, round_record
from inferspeed.results.result import load_json, write_json
from inferspeed.tools.gate import MAX_ROUNDS, MIN_ROUNDS, gate_rounds

# --- identity by graph and weights -----------------------------------------------------------


def _saved(model: onnx.ModelProto, path: Path) -> str:
    onnx.save(model, path)
    return str(path)


def test_doc_strings_and_names_do_not_change_the_graph_identity(tmp_path: Path) -> None:
    base = mlp_model(layers=2, width=16, batch=1)
    documented = mlp_model(layers=2, width=16, batch=1)
    documented.doc_string = "other words"
    documented.producer_name = "someone else"
    documented.graph.doc_string = "graph words"
    documented.graph.name = "renamed"
    documented.graph.node[0].doc_string = "node words"
    documented.graph.node[0].name = "renamed_node"
    documented.graph.input[0].doc_string = "input words"
    onnx.helper.set_model_props(documented, {"author": "me"})
    a, b = _saved(base, tmp_path / "a.onnx"), _saved(documented, tmp_path / "b.onnx")
    assert Path(a).read_bytes() != Path(b).read_bytes()
    assert graph_sha256(a) == graph_sha256(b) is not None


def test_weights_operators_and_external_data_change_the_graph_identity(tmp_path: Path) -> None:
    base = mlp_model(layers=2, width=16, batch=1)
    reference = graph_sha256(_saved(base, tmp_path / "base.onnx"))
    weights = mlp_model(layers=2, width=16, batch=1)
    w = numpy_helper.to_array(weights.graph.initializer[0]).copy()
    w.flat[0] += 1.0
    weights.graph.initializer[0].CopyFrom(numpy_helper.from_array(w, weights.graph.initializer[0].name))
    ops = mlp_model(layers=2, width=16, batch=1)
    relu = next(n for n in ops.graph.node if n.op_type == "Relu")
    relu.op_type = "Sigmoid"
    assert graph_sha256(_saved(weights, tmp_path / "w.onnx")) != reference
    assert graph_sha256(_saved(ops, tmp_path / "o.onnx")) != reference
    # Weights in an external file: its bytes are part of the identity.
    ext = mlp_model(layers=2, width=16, batch=1)
    onnx.save(ext, tmp_path / "ext.onnx", save_as_external_data=True, location="w.bin", size_threshold=0)
    first = graph_sha256(str(tmp_path / "ext.onnx"))
    data = bytearray((tmp_path / "w.bin").read_bytes())
    data[0] ^= 0xFF
    (tmp_path / "w.bin").write_bytes(bytes(data))
    assert first is not None and graph_sha256(str(tmp_path / "ext.onnx")) not in (first, None)


def test_a_file_that_is_not_protobuf_has_no_graph_identity(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\xff\xff\xff\xff not a model")
    assert graph_sha256(str(bad)) is None


def _result(median: float, model: dict[str, str], cpu: str = "cpu") -> Result:
    x = (median * np.random.default_rng(0).lognormal(0.0, 0.05, 200)).astype(np.int64)
    env = {"cpu": {"model": cpu, "logical_cores": 2}}
    return Result(x, summarize(x), model, {}, env)


def test_comparable_by_graph_and_the_machine_check_stays_with_force() -> None:
    a = _result(1e5, {"sha256": "1", "graph_sha256": "g"})
    doc_only = _result(1e5, {"sha256": "2", "graph_sha256": "g"})
    other = _result(1e5, {"sha256": "3", "graph_sha256": "h"})
    elsewhere = _result(1e5, {"sha256": "3", "graph_sha256": "h"}, cpu="other cpu")
    assert same_model(a, doc_only) is True and check_comparable(a, doc_only) is None
    assert same_model(a, other) is False and "different models" in (check_comparable(a, other) or "")
    assert check_comparable(a, other, models=False) is None
    # --force (models=False) no longer switches the machine check off.
    assert "different machines" in (check_comparable(a, elsewhere, models=False) or "")


# --- rounds, pairing, the decided statistic ----------------------------------------------------


def test_rounds_run_in_a_seeded_random_order_and_keep_their_pairing(models: dict[str, str]) -> None:
    config = Config(threads=1, max_time=0.24, warmup_time=0.02)
    with Session(models["mlp3"], config) as a, Session(models["mlp6"], config) as b:
        done = measure_interleaved([a, b], 12, config, order="random", seed=3)
    assert all(sorted(o) == [0, 1] for o in done.orders)
    assert len({tuple(o) for o in done.orders}) == 2  # both orders occur (seed 3)
    rng = np.random.default_rng(3)
    assert done.orders == [[int(i) for i in rng.permutation(2)] for _ in range(12)]
    pa, pb = done.results
    ia, ib = pa.loop["interleave"], pb.loop["interleave"]
    assert ia["id"] == ib["id"] and ia["session"] == 0 and ib["session"] == 1 and ia["orders"] == done.orders
    assert [r["median_ns"] for r in ia["rounds"]] == [r.stats.median_ns for r in done.per_round[0]]
    assert sum(r["count"] for r in ia["rounds"]) == pa.stats.count
    # Each round carries the monitor's reading as it started (the same for both sessions).
    assert [r["probe_ns"] for r in ia["rounds"]] == [r["probe_ns"] for r in ib["rounds"]]
    assert all(r["probe_ns"] > 0 for r in ia["rounds"])


def test_a_comparison_read_back_from_json_is_paired_as_the_run_was(
    models: dict[str, str], tmp_path: Path
) -> None:
    config = Config(threads=1, max_time=0.24, warmup_time=0.02)
    with Session(models["mlp3"], config) as a, Session(models["mlp6"], config) as b:
        done = measure_interleaved([a, b], 12, config, order="random")
    in_run = compare(*done.results, rounds=(done.per_round[0], done.per_round[1]))
    write_json(done.results, tmp_path / "both.json")
    back = load_json(tmp_path / "both.json")
    read = compare(back[0], back[1])
    assert read.method == in_run.method == "paired" and read.rounds == 12
    assert read.ratio_median == in_run.ratio_median and read.ratio_median_ci == in_run.ratio_median_ci
    # Results of two different runs are not paired, even with as many rounds.
    with Session(models["mlp3"], config) as c:
        again = measure_interleaved([c, c], 12, config)
    assert compare(back[0], again.results[1]).method != "paired"


def _rounds_result(medians: list[float], p99s: list[float], run: str, session: int) -> Result:
    """A pooled interleaved result whose rounds have the given medians and p99s: each round 296
    calls at its median and 4 at its p99 (300 calls: a p99 of its own, 2 calls above it)."""
    parts = [np.array([m] * 296 + [q] * 4, dtype=np.int64) for m, q in zip(medians, p99s, strict=True)]
    rounds = [{**round_record(Result(x, summarize(x), {}, {}, {})), "probe_ns": 1.0} for x in parts]
    x = np.concatenate(parts)
    interleave = {"id": run, "session": session, "rounds": rounds}
    return Result(x, summarize(x), {"name": f"s{session}"}, {}, {}, loop={"interleave": interleave})


def test_the_gate_decides_on_the_chosen_statistic() -> None:
    rng = np.random.default_rng(1)
    medians = list(100_000 * (1 + 0.01 * rng.standard_normal(20)))
    base = _rounds_result(medians, [2 * m for m in medians], "run", 0)
    # Same medians round by round (1% noise), the tail 10% slower in every round.
    cand_medians = [m * (1 + 0.002 * rng.standard_normal()) for m in medians]
    cand = _rounds_result(cand_medians, [2.2 * m for m in medians], "run", 1)
    on_median = compare(base, cand, statistic="median")
    on_p99 = compare(base, cand, statistic="p99")
    assert on_median.verdict == "no significant difference" and not on_median.slower_by_more_than(0.03)
    assert on_p99.verdict == "slower" and on_p99.slower_by_more_than(0.05)
    assert on_p99.ratio == pytest.approx(1.1) and on_p99.rounds == 20
    with pytest.raises(Exception, match="statistic must be one of"):
        compare(base, cand, statistic="p42")


def test_pooled_rounds_count_samples_once() -> None:
    """A pooled result's sample warnings are about the pooled samples, not one round's
    ("samples 4080" beside "too few samples (136)")."""
    from inferspeed.stats.diagnostics import check_few_samples

    parts = []
    for seed in range(30):
        x = np.random.default_rng(seed).lognormal(np.log(1e5), 0.05, 136).astype(np.int64)
        stats = summarize(x)
        few = check_few_samples(stats)
        assert few is not None and "136" in few.message
        warmup = {"iterations": 10, "time_ns": 1000}
        parts.append(Result(x, stats, {}, {}, {}, warmup=warmup, warnings=(few,)))
    pooled = pool_results(parts)
    assert pooled.stats.count == 30 * 136 and pooled.warmup["iterations"] == 300
    few = [w for w in pooled.warnings if w.code == "few_samples"]
    assert all("136" not in w.message for w in few)
    assert few == ([] if check_few_samples(pooled.stats) is None else [check_few_samples(pooled.stats)])


@pytest.mark.parametrize(
    ("seconds", "latency", "rounds"),
    [
        (8.0, 1e-5, 100),
        (8.0, 0.05, 32),
        (0.5, 1e-5, MIN_ROUNDS),
        (600.0, 1e-5, MAX_ROUNDS),
        (8.0, 1.0, 8),  # one call a round fills the time: 8 rounds, not 12
        (8.0, 5.0, 6),  # the paired interval's least
    ],
)
def test_gate_rounds(seconds: float, latency: float, rounds: int) -> None:
    assert gate_rounds(seconds, latency) == rounds


# --- the command ----------------------------------------------------------------------------------


def _gate(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferspeed", "gate", *args], capture_output=True, text=True, timeout=timeout
    )


def test_gate_command_fails_a_slower_model_and_passes_a_documented_copy(
    models: dict[str, str], tmp_path: Path
) -> None:
    copy = mlp_model(layers=3, width=512, batch=8)
    copy.doc_string = "the same model, documented"
    copy_path = _saved(copy, tmp_path / "copy.onnx")
    quick = ("--threads", "1", "--max-time", "1", "--fail-if-slower", "5%")
    slower = _gate(models["mlp3"], models["mlp6"], *quick, "--json", str(tmp_path / "ab.json"))
    assert slower.returncode == 1, slower.stderr
    assert "gate: FAIL: mlp6.onnx is slower than mlp3.onnx: median ratio" in slower.stderr
    same = _gate(models["mlp3"], copy_path, *quick)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "gate: pass: median ratio" in same.stderr
    # The saved file compares as the gate did: paired, the same interval, no --force needed.
    doc = json.loads((tmp_path / "ab.json").read_text())
    gated = doc["gate"]["comparison"]
    again = subprocess.run(
        [sys.executable, "-m", "inferspeed", "compare", str(tmp_path / "ab.json"), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    read = json.loads(again.stdout)[0]
    assert read["method"] == "paired" and read["ratio_median_ci"] == gated["ratio_median_ci"]


def test_gate_command_usage_errors(models: dict[str, str]) -> None:
    alone = _gate(models["mlp3"])
    assert alone.returncode == 2 and "give a candidate model, or --base-ort-lib" in alone.stderr
    bad = _gate(models["mlp3"], models["mlp6"], "--statistic", "p42")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    missing = _gate(models["mlp3"], "/nonexistent.onnx")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_two_runtime_libraries_in_one_process(models: dict[str, str], tmp_path: Path) -> None:
    """Two copies of libonnxruntime (two files: loaded twice, each with its own symbols and
    environment), measured interleaved in one run, then gated against each other."""
    lib = find_library()
    other = tmp_path / "copy" / os.path.basename(lib)
    other.parent.mkdir()
    shutil.copy(lib, other)
    out = tmp_path / "two.json"
    run = subprocess.run(
        [
            *(
                sys.executable,
                "-m",
                "inferspeed",
                "run",
                models["mlp3"],
                "--ort-lib",
                lib,
                "--ort-lib",
                str(other),
            ),
            *("--threads", "1", "--max-time", "0.3", "--rounds", "6", "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    doc = json.loads(out.read_text())
    assert [r["config"]["ort_lib"] for r in doc["results"]] == [lib, str(other)]
    # Each result keeps its own library in the document (what differs from the document's).
    assert doc["environment"]["onnxruntime"]["library"] == lib
    assert doc["results"][1]["environment"]["onnxruntime"]["library"] == str(other)
    back = load_json(out)
    assert [r.environment["onnxruntime"]["library"] for r in back] == [lib, str(other)]
    gate = _gate(
        models["mlp3"], "--base-ort-lib", lib, "--ort-lib", str(other), "--threads", "1", "--max-time", "0.5"
    )
    assert gate.returncode == 0, gate.stderr
    assert f"mlp3.onnx ({lib})" in gate.stdout and f"mlp3.onnx ({other})" in gate.stdout
    assert "paired over 12 interleaved rounds" in gate.stdout


def test_two_libraries_are_both_mapped_in_one_process(models: dict[str, str], tmp_path: Path) -> None:
    lib = find_library()
    other = tmp_path / os.path.basename(lib)
    shutil.copy(lib, other)
    config = Config(threads=1, max_time=0.05, warmup_time=0.01)
    with (
        Session(models["mlp3"], config) as a,
        Session(models["mlp3"], config.replace(ort_lib=str(other))) as b,
    ):
        done = measure_interleaved([a, b], 6, config)
        mapped = Path("/proc/self/maps").read_text()
    assert str(other) in mapped and os.path.realpath(lib) in mapped
    assert all(r.stats.count > 0 for r in done.results)


def test_compare_cli_separates_the_model_check_from_the_machine_check(tmp_path: Path) -> None:
    a = _result(1e5, {"name": "a.onnx", "sha256": "1", "graph_sha256": "g"})
    doc_only = _result(1e5, {"name": "b.onnx", "sha256": "2", "graph_sha256": "g"})
    other_machine = _result(1e5, {"name": "c.onnx", "sha256": "3", "graph_sha256": "h"}, cpu="other")
    paths = []
    for name, r in (("a", a), ("b", doc_only), ("c", other_machine)):
        write_json([r], tmp_path / f"{name}.json")
        paths.append(str(tmp_path / f"{name}.json"))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "inferspeed", "compare", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    assert cli(paths[0], paths[1]).returncode == 0  # another doc string: the same model
    forced = cli(paths[0], paths[2], "--force")
    assert (
        forced.returncode == 2 and "different machines" in forced.stderr and "--any-machine" in forced.stderr
    )
    assert cli(paths[0], paths[2], "--force", "--any-machine").returncode == 0
    refused = cli(paths[0], paths[2], "--any-machine")
    assert refused.returncode == 2 and "different models" in refused.stderr and "--force" in refused.stderr


def test_interleaved_rounds_keep_within_max_time(models: dict[str, str]) -> None:
    """--max-time is each model's timed time, split across the rounds (not per round)."""
    config = Config(threads=1, max_time=0.3, warmup_time=0.02)
    with Session(models["mlp3"], config) as a, Session(models["mlp6"], config) as b:
        done = measure_interleaved([a, b], 10, config, order="random")
    for result in done.results:
        timed = result.samples_ns.sum() / 1e9
        assert 0.15 < timed <= 0.3 * 1.1, timed


def test_rounds_are_grouped_by_the_machine_state_the_monitor_read() -> None:
    """Rounds labelled by the probe's reading as they started: the paired ratio within each
    state. Here the machine is 30% slower in half the rounds; the candidate 5% slower in both."""
    from inferspeed.analysis.compare import by_state

    rng = np.random.default_rng(2)
    slow = np.arange(24) % 2 == 1
    level = np.where(slow, 1.3e5, 1.0e5) * (1 + 0.002 * rng.standard_normal(24))
    probes = np.where(slow, 52_000.0, 40_000.0)
    base = [{"median_ns": m, "probe_ns": p} for m, p in zip(level, probes, strict=True)]
    cand = [
        {"median_ns": 1.05 * m * (1 + 0.002 * rng.standard_normal()), "probe_ns": p}
        for m, p in zip(level, probes, strict=True)
    ]
    states = by_state(base, cand)
    assert states is not None and [s["rounds"] for s in states] == [12, 12]
    assert [s["probe_ns"] for s in states] == [40_000.0, 52_000.0]
    assert all(s["ratio"] == pytest.approx(1.05, abs=0.005) for s in states)
    assert all(s["ratio_ci"][0] > 1.0 for s in states)
    one_state = [{**r, "probe_ns": 40_000.0} for r in base]
    assert by_state(one_state, cand) is None
    assert by_state([{"median_ns": 1.0}] * 12, [{"median_ns": 1.0}] * 12) is None


def test_ctrl_c_in_an_interleaved_run_keeps_every_model_measured_so_far(
    models: dict[str, str], tmp_path: Path
) -> None:
    """SIGINT in round 3 of an interleaved run: exit 130, one line, and --json holds both
    models' rounds so far (partial), as a single run keeps its partial result."""
    import signal

    from .child_events import Events

    out, events = tmp_path / "partial.json", Events(tmp_path / "events.jsonl")
    argv = ["run", models["mlp3"], models["mlp6"], "--threads", "1", "--max-time", "6"]
    with subprocess.Popen(
        [sys.executable, "-m", "inferspeed", *argv, "--rounds", "10", "--warmup", "0.05", "--json", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=events.env(),
    ) as proc:
        try:
            # Rounds 1 and 2 of both models, then round 3 timing: something of each to keep.
            events.wait(*(["timed"] * 5), proc=proc)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("inferspeed: interrupted in round 3 of 10")
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and len(doc["results"]) == 2
    assert all(len(r["loop"]["interleave"]["rounds"]) >= 2 for r in doc["results"])
    assert all(r["interrupted"] for r in doc["results"])


def test_a_large_model_is_hashed_from_a_mapping_with_the_same_identity(tmp_path: Path) -> None:
    """Above 1 MiB the file is mapped, not read (no copy of the weights in memory): the same
    identity rules hold."""
    big = mlp_model(layers=2, width=1024, batch=1)
    path = _saved(big, tmp_path / "big.onnx")
    assert os.path.getsize(path) > 1 << 20
    big.doc_string = "documented"
    assert graph_sha256(path) == graph_sha256(_saved(big, tmp_path / "big2.onnx")) is not None
    small = _saved(mlp_model(layers=2, width=16, batch=1), tmp_path / "small.onnx")
    assert graph_sha256(small) != graph_sha256(path)
