"""benchmark() end to end: real-world model shapes, latency ordering, the JSON document."""

import json
from pathlib import Path

import numpy as np
import pytest

import inferspeed
from inferspeed import BenchmarkInterrupted, Config, ConfigError, Result, Session, benchmark
from inferspeed.facts.models import add_model

from .child_events import Events
from .conftest import FAST, until


@pytest.mark.parametrize("name", ["embedding", "if", "loop", "gru", "nonzero", "add_dynamic", "mlp_small"])
def test_real_world_shapes(models: dict[str, str], name: str) -> None:
    r = benchmark(models[name], threads=1, **FAST)
    assert r.stats.count > 10 and r.stats.min_ns > 0
    assert r.model["inputs"] and all("bound_shape" in i for i in r.model["inputs"])


def test_symbolic_dims_int64_ids_and_scalar(models: dict[str, str]) -> None:
    r = benchmark(models["embedding"], dims={"batch": 4, "seq": 7}, values={"scale": 0.5}, **FAST)
    shapes = {i["name"]: i["bound_shape"] for i in r.model["inputs"]}
    assert shapes == {"ids": [4, 7], "scale": []}
    assert r.model["inputs"][0]["shape"] == ["batch", "seq"]
    # Sizes given: the only notice is about the ids' values, kept inside the table they index.
    assert len(r.notices) == 1 and "ids in [0, 100)" in r.notices[0] and "set with" not in r.notices[0]
    r = benchmark(models["embedding"], **FAST)
    shapes = {i["name"]: i["bound_shape"] for i in r.model["inputs"]}
    assert shapes == {"ids": [1, 128], "scale": []}  # batch 1, a sequence of 128 tokens
    assert len(r.notices) == 1 and "--batch N" in r.notices[0] and "--dim seq=N" in r.notices[0]
    assert "128 steps along 'seq'" in r.model["inputs"][0]["chosen_because"]


def test_control_flow_branch_and_trip_count_change_cost(models: dict[str, str]) -> None:
    few = benchmark(models["loop"], values={"n": 1, "cond": True}, threads=1, **FAST)
    many = benchmark(models["loop"], values={"n": 2000, "cond": True}, threads=1, **FAST)
    assert many.stats.median_ns > 5 * few.stats.median_ns
    for cond in (True, False):
        assert benchmark(models["if"], values={"cond": cond}, **FAST).stats.count > 10


def test_recurrent_state_and_quantised(models: dict[str, str], quantized_model: str) -> None:
    r = benchmark(models["gru"], dims={"seq": 10}, **FAST)
    assert [i["name"] for i in r.model["inputs"]] == ["X", "h0"]
    q = benchmark(quantized_model, dims={"batch": 4}, **FAST)
    assert q.stats.count > 10


def test_model_as_bytes_and_proto() -> None:
    proto = add_model()
    a = benchmark(proto, **FAST)
    b = benchmark(proto.SerializeToString(), **FAST)
    assert a.model["name"] == b.model["name"] == "<in-memory>"
    assert a.model["sha256"] == b.model["sha256"]


def _paired_ratio(a: Session, b: Session, rounds: int = 7, seconds: float = 0.1) -> float:
    """Median over rounds of median(b) / median(a), a and b measured back to back in each round:
    the machine's speed may change between rounds, but rarely within one."""
    ratios = []
    for _ in range(rounds):
        ma = np.median(a.measure(max_time=seconds, warmup_time=0.02).samples_ns)
        mb = np.median(b.measure(max_time=seconds, warmup_time=0.02).samples_ns)
        ratios.append(mb / ma)
    return float(np.median(ratios))


def test_run_mode_is_slower_than_binding_on_a_tiny_model(models: dict[str, str]) -> None:
    with Session(models["add"], threads=1) as binding, Session(models["add"], threads=1, mode="run") as run:

        def check() -> tuple[bool, float]:
            ratio = _paired_ratio(binding, run, rounds=11, seconds=0.05)
            return ratio > 1.05, ratio

        assert until(check) > 1.05


def test_twice_the_work_measures_about_twice_as_slow(models: dict[str, str]) -> None:
    with Session(models["mlp3"], threads=1) as s3, Session(models["mlp6"], threads=1) as s6:

        def check() -> tuple[bool, float]:
            ratio = _paired_ratio(s3, s6)
            return 1.6 < ratio < 2.4, ratio

        assert 1.6 < until(check) < 2.4


def test_json_document(models: dict[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = benchmark(models["mlp_small"], threads=1, iterations=300, warmup_iterations=10)
    path = tmp_path / "r.json"
    text = r.to_json(path)
    doc = json.loads(path.read_text())
    assert doc == json.loads(text)
    assert doc["schema"] == "inferspeed/1" and doc["inferspeed_version"] == inferspeed.__version__
    env = doc["environment"]
    assert env["onnxruntime"]["library"].startswith("/") and env["onnxruntime"]["version"]
    assert env["cpu"]["logical_cores"] >= 1 and env["clock"]["overhead_ns"] > 0
    (res,) = doc["results"]
    assert res["scenario"] == "single-stream" and res["interrupted"] is False
    assert res["config"]["threads"] == 1 and res["config"]["iterations"] == 300
    assert len(res["samples_ns"]) == 300 and res["samples_ns"] == r.samples_ns.tolist()
    stats = res["stats"]
    for key in ("count", "min_ns", "max_ns", "mean_ns", "std_ns", "median_ns", "p90_ns", "p95_ns",
                "p99_ns", "p999_ns", "throughput_per_s", "timer_overhead_ns"):  # fmt: skip
        assert key in stats
    assert stats["median_ns"] == pytest.approx(np.median(res["samples_ns"]))
    assert res["model"]["sha256"] and res["model"]["size_bytes"] > 0
    assert res["session"]["create_ns"] > 0 and res["session"]["first_run_ns"] > 0
    assert res["warmup"]["iterations"] == 10 and res["warmup"]["first_iteration_ns"] > 0
    assert "settle_iterations" in res["warmup"]


def test_interrupt_keeps_partial_samples(
    models: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT during the loop stops it at the next chunk and keeps what was measured."""
    import signal
    import threading

    events = Events.of_this_process(monkeypatch, tmp_path / "events.jsonl")
    over = threading.Event()

    def interrupt() -> None:
        # Once the timed loop has begun (the session reports it), and 0.2 s into it: well over
        # the 100 calls checked below (a few microseconds each), far from its 30 s end.
        if events.wait("timed", stop=over) and not over.wait(0.2):
            signal.raise_signal(signal.SIGINT)

    with Session(models["add"], threads=1, warmup_time=0.0) as s:
        thread = threading.Thread(target=interrupt, daemon=True)
        thread.start()
        try:
            with pytest.raises(BenchmarkInterrupted) as info:
                s.measure(max_time=30)
        finally:
            over.set()  # never a signal after this test
            thread.join()
    partial: Result = info.value.result
    # Stopped within a chunk of the signal: a loop that ran on to its 30 s end fails here.
    assert partial.interrupted and partial.stats.count > 100
    assert partial.samples_ns.sum() < 5e9


def test_measure_rejects_session_options(models: dict[str, str]) -> None:
    with Session(models["add"]) as s, pytest.raises(ConfigError, match="only loop options"):
        s.measure(threads=2)
    with pytest.raises(ConfigError):
        benchmark(models["add"], config=Config(), bogus=1)
