"""Trustworthy numbers end to end: cold caches, input sets, adaptive stopping, pinning,
spinning, worker processes, and the warnings a user gets on a disturbed run."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferspeed import Config, ConfigError, Session, benchmark
from inferspeed.facts.models import mlp_model

from .child_events import Events
from .conftest import FAST, until


def _paired(a: Session, b: Session, rounds: int, **kw: object) -> float:
    """Median over rounds of median(b) / median(a), measured back to back in each round."""
    ratios = []
    for _ in range(rounds):
        ma = np.median(a.measure(**kw).samples_ns)  # type: ignore[arg-type]
        mb = np.median(b.measure(**kw).samples_ns)  # type: ignore[arg-type]
        ratios.append(mb / ma)
    return float(np.median(ratios))


def test_cold_cache_is_slower_and_recorded(models: dict[str, str]) -> None:
    with Session(models["mlp3"], threads=1) as s:
        warm = s.measure(max_time=0.3, warmup_time=0.05)
        cold = s.measure(max_time=0.6, warmup_iterations=2, cache="cold", flush_bytes=64 << 20)
    assert warm.loop["cache"] == "warm" and warm.loop["flush_bytes"] is None
    assert cold.loop["cache"] == "cold" and cold.loop["flush_bytes"] == 64 << 20
    assert cold.config["cache"] == "cold"
    assert cold.stats.median_ns > 1.3 * warm.stats.median_ns
    with Session(models["add"], threads=1) as s:
        warm = s.measure(max_time=0.2, warmup_time=0.02)
        cold = s.measure(max_time=0.4, warmup_iterations=2, cache="cold", flush_bytes=64 << 20)
    assert cold.stats.median_ns > 1.2 * warm.stats.median_ns


def test_default_flush_is_twice_the_last_level_cache(models: dict[str, str]) -> None:
    from inferspeed.config import FALLBACK_FLUSH_BYTES
    from inferspeed.facts.environment import last_level_cache_bytes

    llc = last_level_cache_bytes()
    with Session(models["add"]) as s:
        r = s.measure(iterations=3, warmup_iterations=0, cache="cold")
    assert r.loop["flush_bytes"] == (2 * llc if llc else FALLBACK_FLUSH_BYTES)
    assert Config(flush_bytes=1 << 20).resolved_flush_bytes(None) == 1 << 20
    assert Config().resolved_flush_bytes(None) == FALLBACK_FLUSH_BYTES


def test_input_sets_are_distinct(models: dict[str, str]) -> None:
    # That the loops cycle through them, call by call: tests/test_option_effects.py.
    with Session(models["embedding"], input_sets=4, dims={"batch": 2, "seq": 8}, **FAST) as s:
        sets = s.input_sets
        assert len(sets) == 4
        ids = [arrays["ids"] for arrays in sets]
        assert all(not np.shares_memory(ids[0], other) for other in ids[1:])
        assert not all(np.array_equal(ids[0], other) for other in ids[1:])
    # Set 0 does not depend on how many sets there are.
    with Session(models["embedding"], dims={"batch": 2, "seq": 8}) as one:
        assert np.array_equal(one.input_arrays["ids"], ids[0])


def test_input_sets_count_against_the_memory_limit(models: dict[str, str]) -> None:
    from inferspeed import InputError

    # One set of the Add model's input is 1 x 16 float32 = 64 bytes.
    Session(models["add"], input_sets=9, max_input_bytes=639).close()
    with pytest.raises(InputError, match="max_input_bytes"):
        Session(models["add"], input_sets=10, max_input_bytes=639)


def test_target_ci_stops_early_when_met(
    models: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A machine that changes speed mid-run rightly widens the interval (time-correlated
    # samples) and then the target is not met: up to three tries for a steady stretch. The
    # median's interval is the one for another run on this machine (stats/timeseries.py), from
    # the run's own variation in time when there is no history (the tests have none): a
    # target of 25% is within reach of a steady stretch, not of a run that switches states.
    events = Events.of_this_process(monkeypatch, tmp_path / "events.jsonl")
    with Session(models["mlp3"], threads=1) as s:
        for _ in range(3):
            r = s.measure(target_ci=0.25, max_time=6, warmup_time=0.05)
            # From the start of the timed loop (the session reports it) to the result.
            wall = time.time() - events.last("timed")["time"]
            assert r.stopping is not None
            if r.stopping["met"]:
                break
    assert r.stopping["met"] is True
    # Stopped when met, well before max_time: a loop that runs on to its 6 s fails.
    assert wall < 5 and r.stopping["samples"] == r.stats.count
    width = r.stats.median_ci_halfwidth()
    assert width is not None and width <= 0.2501
    # Not before the machine's switching time could have been seen (1 s with no history).
    assert r.stopping["elapsed_s"] >= r.stopping["min_span_s"] >= 1.0


def test_impossible_target_stops_at_max_time(
    models: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = Events.of_this_process(monkeypatch, tmp_path / "events.jsonl")
    with Session(models["add"], threads=1) as s:
        r = s.measure(target_ci=1e-7, target_percentile=99, max_time=0.5, warmup_time=0.02)
        wall = time.time() - events.last("timed")["time"]
    assert r.stopping is not None and r.stopping["met"] is False
    # From the start of the timed loop to the result: its 0.5 s, then the statistics (well
    # under a second on a loaded machine); stopping early or running on past max_time fails.
    assert 0.4 < wall < 3
    assert set(r.stopping["relative_halfwidths"]) == {"median", "p99"}


def test_pin_runs_on_that_cpu_and_restores_affinity(models: dict[str, str]) -> None:
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    allowed = os.sched_getaffinity(0)
    cpu = max(allowed)
    with Session(models["add"], **FAST) as s:
        r = s.measure(pin=cpu)
        assert r.loop["pinned_cpu"] == cpu
        assert os.sched_getaffinity(0) == allowed
        with pytest.raises(ConfigError, match="cannot pin"):
            s.measure(pin=max(allowed) + 1000)


def test_spin_becomes_session_config() -> None:
    # Its effect on the pool threads: tests/test_option_effects.py.
    c = Config(spin=False)
    assert c.ort_session_config["session.intra_op.allow_spinning"] == "0"
    with pytest.raises(ConfigError):
        Config(spin=True, session_config={"session.intra_op.allow_spinning": "1"})


def test_worker_processes_pool_and_report_spread(models: dict[str, str]) -> None:
    r = benchmark(models["add"], processes=2, iterations=500, warmup_iterations=10, threads=1)
    assert r.processes is not None and r.processes["count"] == 2
    assert r.stats.count == 1000 and len(r.processes["medians_ns"]) == 2
    medians = r.processes["medians_ns"]
    # The pool's median lies between the processes' own; the spread is theirs over it.
    assert min(medians) <= r.stats.median_ns <= max(medians)
    assert r.processes["median_spread"] == pytest.approx((max(medians) - min(medians)) / r.stats.median_ns)
    doc = json.loads(r.to_json())
    assert doc["results"][0]["processes"]["count"] == 2


def test_drop_outliers_is_opt_in(models: dict[str, str]) -> None:
    with Session(models["add"], **FAST) as s:
        kept = s.measure()
        dropped = s.measure(drop_outliers=True)
    assert kept.stats.outliers_dropped == 0
    assert dropped.stats.outliers_dropped == dropped.stats.outliers_low + dropped.stats.outliers_high
    assert dropped.samples_ns.size == dropped.stats.count + dropped.stats.outliers_dropped


@contextmanager
def _busy(count: int, cpu: int | None = None, seconds: float = 30.0) -> Iterator[None]:
    code = "import os, time\n"
    if cpu is not None:
        code += f"os.sched_setaffinity(0, {{{cpu}}})\n"
    code += f"print('ready', flush=True)\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"
    procs = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    try:
        for p in procs:  # each is spinning (and pinned) before the block starts
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        yield
    finally:
        for p in procs:
            p.kill()
            p.communicate()


def test_noise_warning_when_other_processes_load_the_cores(models: dict[str, str]) -> None:
    with Session(models["add"], threads=1) as s, _busy(2):
        r = s.measure(max_time=1.0, warmup_time=0.05)
    codes = [w.code for w in r.warnings]
    assert "load" in codes, codes
    assert r.loop["other_load_cores"] > 0.5


def test_short_warmup_on_a_slow_start_gets_the_warmup_warning(model_dir: Path) -> None:
    """A model whose first iterations are slow: a ~5 ms MLP whose CPU is shared with a busy
    process for the first fifth of the run, measured with no warm-up."""
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no CPU affinity on this platform")
    import onnx

    path = model_dir / "mid.onnx"
    onnx.save(mlp_model(layers=4, width=1024, batch=64), path)
    cpu = min(os.sched_getaffinity(0))
    with Session(path, threads=1) as s:
        one = s.measure(iterations=5, warmup_iterations=1).stats.median_ns / 1e9

        def check() -> tuple[bool, Any]:
            # Busy for about the first 60 of 300 iterations (they run about half as fast).
            with _busy(1, cpu=cpu, seconds=120 * one):
                r = s.measure(iterations=300, warmup_iterations=0, pin=cpu)
            return "warmup" in [w.code for w in r.warnings], r

        r = until(check)
    codes = [w.code for w in r.warnings]
    assert "warmup" in codes, [w.message for w in r.warnings]
    warmup = next(w for w in r.warnings if w.code == "warmup")
    assert "--warmup-iterations" in warmup.message
