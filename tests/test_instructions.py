"""The instruction-count metric (--metric instructions): configuration, the Callgrind dump
reader, the comparison and its gate without Valgrind; then, where Valgrind is installed, real
counts of a tiny model (a few calls each, ~8 s per count: about a minute in all)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferspeed.analysis.instructions import InstructionComparison, compare_instructions
from inferspeed.cli import main
from inferspeed.config import Config
from inferspeed.errors import ConfigError, InputError, ValgrindError
from inferspeed.measure.instructions import cycles_estimate, find_valgrind, read_dump
from inferspeed.results.result import Result, load_json
from inferspeed.stats.summary import summarize

pytest_plugins = ["pytester"]

needs_valgrind = pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
COUNT = {"metric": "instructions", "iterations": 3, "warmup_iterations": 1}


# --- without Valgrind --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"threads": 2},
        {"execution_mode": "parallel"},
        {"inter_op_threads": 2},
        {"spin": True},
        {"scenario": "offline"},
        {"processes": 2},
        {"cache": "cold"},
        {"target_ci": 0.01},
        {"max_time": 1.0},
        {"warmup_time": 0.1},
    ],
)
def test_counting_refuses_what_it_cannot_honour(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="it does not take"):
        Config(metric="instructions", **options)


def test_counting_limits_and_bad_metric() -> None:
    c = Config(metric="instructions")
    assert c.loop_limits == (10, None) and c.warmup_limits == (2, None)
    assert Config(metric="instructions", iterations=4, warmup_iterations=0).loop_limits == (4, None)
    assert Config(metric="instructions", threads=1, spin=False).to_dict()["metric"] == "instructions"
    with pytest.raises(ConfigError, match="metric must be one of"):
        Config(metric="cycles")


@pytest.mark.parametrize("flags", [["--execution-mode", "parallel"], ["--inter-op-threads", "4"]])
def test_counting_other_threads_is_refused_in_one_line(
    models: dict[str, str], flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Callgrind collects per thread: the calling thread's share varies from call to call (and
    # so do the totals over every thread, 0.15-2.7 M instructions for one 136 k call).
    status = main(["run", models["add"], "--metric", "instructions", *flags])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    assert "the calling thread alone" in err and ("execution_mode" in err or "inter_op_threads" in err)


def test_the_threads_field_is_the_sessions_setting() -> None:
    from inferspeed.measure.instructions import _instructions_config, _threads

    plain = _threads(_instructions_config(None, {}))
    assert plain == {"intra_op": 1, "inter_op": None, "execution_mode": "sequential", "spinning": False}
    spinning = {"session.intra_op.allow_spinning": "1"}
    chosen = _threads(_instructions_config(None, {"inter_op_threads": 1, "session_config": spinning}))
    assert chosen == {"intra_op": 1, "inter_op": 1, "execution_mode": "sequential", "spinning": True}


def test_the_estimate_follows_the_models_size() -> None:
    from inferspeed.measure.instructions import estimate_seconds

    assert estimate_seconds(None, 10, 2) is None
    small, conv = estimate_seconds(25_856, 10, 2), estimate_seconds(150_000_000, 10, 2)
    assert small is not None and conv is not None
    assert 4 < small < 6 and 100 < conv < 170  # measured: 4.4 s and 59 s for 1 + 3 calls (~9 s each)


DUMP = """# callgrind format
version: 1
creator: callgrind-3.19.0
part: 3

desc: I1 cache: 32768 B, 64 B, 8-way associative
desc: Trigger: Client Request: inferspeed counted call

positions: line
events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
summary: 1000 300 20 5 40 2

ob=(5) /lib/ld.so
fn=(1) f
summary: 1 2 3
totals: 990 300 20 5 40 2
"""


def test_read_dump_takes_the_first_summary_and_pads_trailing_zeros(tmp_path: Path) -> None:
    path = tmp_path / "callgrind.out.3"
    path.write_text(DUMP)
    trigger, events = read_dump(str(path))
    assert trigger == "Client Request: inferspeed counted call"
    assert events == {
        "Ir": 1000,
        "Dr": 300,
        "Dw": 20,
        "I1mr": 5,
        "D1mr": 40,
        "D1mw": 2,
        "ILmr": 0,
        "DLmr": 0,
        "DLmw": 0,
    }
    assert cycles_estimate(events) == 1000 + 10 * 47
    assert cycles_estimate({"Ir": 5}) is None
    path.write_text("not a dump\n")
    with pytest.raises(ValgrindError, match="not a Callgrind dump"):
        read_dump(str(path))


def counted(instructions: float, mad: float = 0.0, version: str = "1.32.0") -> Result:
    """A result of the instruction-count metric, as count_instructions makes them."""
    ns = np.array([1000, 1100, 1050], dtype=np.int64)
    return Result(
        samples_ns=ns,
        stats=summarize(ns),
        model={"name": "m.onnx", "inputs": [{"name": "x", "bound_shape": [1, 16]}]},
        config=Config(metric="instructions").to_dict(),
        environment={"onnxruntime": {"version": version}},
        loop={"metric": "instructions", "mode": "binding"},
        instructions={
            "instructions": instructions,
            "spread": 5 * mad,
            "mad": mad,
            "cpu": {"guest": ["avx2"]},
        },
    )


@pytest.mark.parametrize(
    ("ratio", "allowed", "fails", "verdict"),
    [
        (1.0, 0.01, False, "no difference"),
        (1.0005, 0.01, False, "no difference"),
        (1.009, 0.01, False, "more instructions"),
        (1.011, 0.01, True, "more instructions"),
        (1.05, 0.02, True, "more instructions"),
        (0.95, 0.02, False, "fewer instructions"),
    ],
)
def test_gate_on_instruction_ratios(ratio: float, allowed: float, fails: bool, verdict: str) -> None:
    c = compare_instructions(counted(1e6), counted(1e6 * ratio), fail_if_more=allowed)
    assert c.failed is fails and c.verdict == verdict
    assert c.ratio == pytest.approx(ratio)
    assert c.to_dict()["failed"] is fails


def test_a_difference_within_the_calls_own_deviation_is_no_difference() -> None:
    c = compare_instructions(counted(1e6, mad=0.002), counted(1.005e6))
    assert c.verdict == "no difference" and not c.failed and c.spread == pytest.approx(0.01)
    assert compare_instructions(counted(1e6, mad=0.002), counted(1.007e6)).verdict == "more instructions"


def test_a_count_compares_only_with_a_count_and_notes_another_runtime() -> None:
    latency = counted(1e6)
    latency = Result(samples_ns=latency.samples_ns, stats=latency.stats, model={}, config={}, environment={})
    with pytest.raises(ConfigError, match="compares only with another instruction count"):
        compare_instructions(counted(1e6), latency)
    from inferspeed.analysis.compare import compare
    from inferspeed.analysis.verdicts import compare_results

    with pytest.raises(InputError, match="compare_results compares any metric"):
        compare(counted(1e6), counted(1e6))
    with pytest.raises(ConfigError, match="only with another of the same metric"):
        compare_results(counted(1e6), latency)
    # The one dispatch: two counts compare as counts, and the gate's limit rides along.
    by_metric = compare_results(counted(1e6), counted(1.02e6), limit=0.01)
    assert isinstance(by_metric, InstructionComparison) and by_metric.failed
    assert by_metric.worse_by_more_than(0.01) and not by_metric.worse_by_more_than(0.03)
    c = compare_instructions(counted(1e6), counted(1e6, version="1.24.4"))
    assert any("ONNX Runtime 1.32.0 against 1.24.4" in n for n in c.notes)


def test_compare_cli_gates_counts_from_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    counted(1e6).to_json(a)
    counted(1.03e6).to_json(b)
    assert main(["compare", str(a), str(a), "--fail-if-more", "1%"]) == 0
    assert main(["compare", str(a), str(b), "--fail-if-more", "2%"]) == 1
    assert "FAIL" in capsys.readouterr().err
    assert main(["compare", str(a), str(b), "--fail-if-slower", "2%"]) == 2
    assert "use --fail-if-more" in capsys.readouterr().err
    loaded = load_json(a)[0]
    assert loaded.instructions is not None and loaded.instructions["instructions"] == 1e6


def test_missing_valgrind_is_one_line_with_how_to_install(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    models: dict[str, str],
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("INFERSPEED_VALGRIND", raising=False)
    with pytest.raises(ValgrindError):
        find_valgrind()
    assert main(["run", models["add"], "--metric", "instructions", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get install valgrind" in err[0] and "without root" in err[0]
    monkeypatch.setenv("INFERSPEED_VALGRIND", str(tmp_path / "nothing"))
    assert main(["run", models["add"], "--metric", "instructions", "-q"]) == 2
    assert "INFERSPEED_VALGRIND" in capsys.readouterr().err


def test_gate_flags_go_with_their_metric(models: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["gate", models["add"], models["add"], "--fail-if-more", "1%"])
    assert exc.value.code == 2 and "give --metric instructions" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["gate", models["add"], models["add"], "--metric", "instructions", "--fail-if-slower", "1%"])
    assert exc.value.code == 2 and "use --fail-if-more" in capsys.readouterr().err


# --- under Valgrind ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bigger_add(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One Add on 4096 floats rather than 16: some 20% more instructions per call."""
    import onnx

    from inferspeed.facts.models import add_model

    path = tmp_path_factory.mktemp("bigger") / "add4096.onnx"
    onnx.save(add_model(width=4096), str(path))
    return str(path)


@needs_valgrind
def test_count_of_a_tiny_model(models: dict[str, str], tmp_path: Path) -> None:
    import inferspeed
    from inferspeed.events import listening
    from inferspeed.report.text import render_result

    seen: list[dict[str, Any]] = []
    with listening(seen.append):
        r = inferspeed.benchmark(models["add"], **COUNT, inter_op_threads=1)
    ins = r.instructions
    assert ins is not None
    assert ins["calls"] == 3 and ins["warmup_calls"] == 1 and len(ins["per_call"]["Ir"]) == 3
    # Deterministic: the tiny model's calls agree to within 1%, at a few thousand instructions.
    assert 1000 < ins["instructions"] < 200_000 and ins["spread"] < 0.01
    threads = {"intra_op": 1, "inter_op": 1, "execution_mode": "sequential", "spinning": False}
    assert ins["threads"] == threads and r.config["threads"] == 1
    # Progress: the count announced, the session made, then counted calls up to all three.
    events = [e["event"] for e in seen]
    assert events[0] == "counting" and "counting_session" in events, events
    counted = [e["done"] for e in seen if e["event"] == "counted"]
    assert counted and counted[-1] == 3 and counted == sorted(counted), seen
    assert "AVX-512" in ins["cpu"]["note"] and "avx512f" not in ins["cpu"]["guest"]
    assert ins["valgrind"]["client_requests"] is True and ins["estimated_cycles"] >= ins["instructions"]
    assert set(ins["time_s"]) >= {"valgrind_start", "session", "counted_calls", "total"}
    assert "instructions" in render_result(r) and "per call" in render_result(r)
    r.to_json(tmp_path / "add.json")
    again = load_json(tmp_path / "add.json")[0]
    assert again.instructions is not None and again.instructions["per_call"] == ins["per_call"]


@needs_valgrind
def test_gate_counts_both_sides_and_fails_on_more_instructions(
    models: dict[str, str], bigger_add: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gate.json"
    args = ["gate", models["add"], bigger_add, "--metric", "instructions", "--fail-if-more", "2%"]
    assert main([*args, "-n", "2", "--warmup-iterations", "1", "--json", str(out)]) == 1
    assert "gate: FAIL" in capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["gate"]["failed"] is True and doc["gate"]["ratio"] > 1.05
    # The document's two counts compare the same way (the first is the baseline).
    assert main(["compare", str(out), "--fail-if-more", "2%", "-q"]) == 1
    assert main(["compare", str(out), "--fail-if-more", "200%", "-q"]) == 0


PLUGIN_TEST = """
import os

def test_count(inferspeed):
    r = inferspeed.benchmark(os.environ["MODEL"], metric="instructions", iterations=2, warmup_iterations=1)
    assert r.instructions["instructions"] > 0
"""


@needs_valgrind
def test_pytest_plugin_gates_on_the_saved_count(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, models: dict[str, str], bigger_add: str
) -> None:
    pytester.makepyfile(test_count=PLUGIN_TEST)
    monkeypatch.setenv("INFERSPEED_HISTORY", "0")
    monkeypatch.setenv("MODEL", models["add"])
    run = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--inferspeed-save", "base", timeout=120)
    run.assert_outcomes(passed=1)
    assert "instructions per call" in run.stdout.str()
    monkeypatch.setenv("MODEL", bigger_add)
    gate = ["--inferspeed-compare", "base", "--inferspeed-fail-if-more", "2%"]
    run = pytester.runpytest_subprocess("-p", "no:cacheprovider", *gate, timeout=120)
    run.assert_outcomes(failed=1)
    assert "needs more instructions than base" in run.stdout.str()


@needs_valgrind
def test_sweep_counts_each_cell(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "sweep.jsonl"
    args = ["sweep", models["add"], "--opt-level", "all,disable", "--metric", "instructions", "-n", "2"]
    assert main([*args, "--out", str(out), "-q"]) == 0
    entries = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["cell"] for e in entries] == [{"opt_level": "all"}, {"opt_level": "disable"}]
    assert all(e["result"]["instructions"]["instructions"] > 0 for e in entries)
    assert all(e["result"]["config"]["metric"] == "instructions" for e in entries)
