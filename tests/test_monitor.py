"""One run's honesty on a machine whose speed moves: the machine-speed monitor, the median's
interval for another run (over time, with the machine's history), the warm-up until steady,
steal time. Each test fails when its claim breaks."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferspeed import _core
from inferspeed.config import MAX_SAMPLES, WARMUP_MAX_TIME, Config
from inferspeed.facts import history
from inferspeed.facts.machine import cpu_snapshot, other_load, steal
from inferspeed.measure.loop import AdaptiveStop, closed_loop, sliced_loop, warm_until_steady
from inferspeed.measure.monitor import Monitor, reading
from inferspeed.stats.diagnostics import check_steal
from inferspeed.stats.states import speed_states, state_changes
from inferspeed.stats.summary import median_ci
from inferspeed.stats.timeseries import Between, Pair, session_interval, t_quantile

# --- the probe ---------------------------------------------------------------------------------


def test_probe_times_a_fixed_workload() -> None:
    times = _core.speed_probe(20)
    assert times.dtype == np.int64 and times.size == 20
    assert (times > 1000).all()  # microseconds of work: not optimised away
    # Stable: the medians of two batches agree (the monitor reads the median; a busy runner has
    # moved single probes 3.6x apart, and the fastest of a batch with them).
    assert abs(np.median(_core.speed_probe(20)) / np.median(times) - 1) < 0.5
    assert reading(3) > 0


def test_probe_releases_the_gil() -> None:
    count = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.01)
        before = count
        _core.speed_probe(3000)  # ~0.1 s with the GIL released
        during = count - before
    finally:
        stop.set()
        t.join()
    assert during > 1000


# --- slices --------------------------------------------------------------------------------------


def _fake_loop(per_slice: int, interrupt_at: int | None = None) -> Any:
    """A core loop stand-in: each call returns the next ``per_slice`` numbers (or fewer, for an
    iteration limit), interrupted on call ``interrupt_at``."""
    state = {"next": 0, "calls": 0}

    def loop(n: int | None, seconds: float | None) -> dict[str, Any]:
        state["calls"] += 1
        k = per_slice if n is None else min(n, per_slice)
        x = np.arange(state["next"], state["next"] + k, dtype=np.int64) + 1
        state["next"] += k
        now = _core.now_ns()
        return {
            "samples_ns": x,
            "interrupted": state["calls"] == interrupt_at,
            "start_ns": now,
            "end_ns": now,
        }

    return loop


def test_slices_keep_every_sample_in_order() -> None:
    monitor = Monitor()
    samples, interrupted, capped = sliced_loop(_fake_loop(7), 30, None, monitor)
    assert samples.tolist() == list(range(1, 31))  # one contiguous array, in order
    assert not interrupted and not capped
    record = monitor.record(samples)
    assert record["slices"]["samples"] == [7, 7, 7, 7, 2]
    assert len(record["readings_ns"]) == 6  # one before the first slice, one after each
    assert record["slices"]["median_ns"][0] == 4.0


def test_an_interrupted_slice_ends_the_phase() -> None:
    samples, interrupted, _ = sliced_loop(_fake_loop(5, interrupt_at=2), None, 10.0, Monitor())
    assert interrupted and samples.size == 10


def test_a_tiny_run_is_one_slice() -> None:
    monitor = Monitor()
    samples, _, _ = sliced_loop(_fake_loop(1000), 10, None, monitor)
    assert samples.size == 10 and monitor.slice_bounds == [0, 10]


def test_the_sample_limit_holds_across_slices() -> None:
    samples, _, capped = sliced_loop(_fake_loop(MAX_SAMPLES // 2 + 1), None, 60.0, Monitor())
    assert samples.size == MAX_SAMPLES and capped


def test_closed_loop_records_the_monitor() -> None:
    timed = closed_loop(_fake_loop(50), Config(iterations=120))
    assert timed.samples_ns.size == 120 and timed.monitor is not None
    assert sum(timed.monitor["slices"]["samples"]) == 120


# --- states ------------------------------------------------------------------------------------


def test_speed_states_split_at_gaps() -> None:
    labels, levels = speed_states([100, 101, 160, 99, 158, 240])
    assert labels == [0, 0, 1, 0, 1, 2]
    assert levels == [100.0, 159.0, 240.0]
    assert state_changes(labels) == [2, 3, 4, 5]


# --- the median's interval over time ----------------------------------------------------------


def _run(levels: list[float], per_level: int, seed: int = 0) -> np.ndarray:
    """Samples of about 2 s: ``per_level`` samples at each level in turn, 2% noise."""
    rng = np.random.default_rng(seed)
    parts = [lv * (1 + 0.02 * rng.standard_normal(per_level)) for lv in levels]
    return np.concatenate(parts).astype(np.int64)


def test_two_levels_in_time_widen_the_interval() -> None:
    steady = _run([100_000.0] * 4, 5000)
    switching = _run([100_000.0, 150_000.0, 100_000.0, 150_000.0], 5000)
    a = session_interval(steady, float(np.median(steady)), median_ci(steady))
    b = session_interval(switching, float(np.median(switching)), median_ci(switching))
    assert a["relative_halfwidth"] < 0.05
    assert b["relative_halfwidth"] > 0.2
    lo, hi = b["interval_ns"]
    assert lo < 110_000 and hi > 140_000  # another run's mix of the two levels
    assert a["one_state"] and not b["one_state"]


def test_history_tightens_and_widens_as_it_says() -> None:
    x = _run([100_000.0] * 4, 5000)
    center, within = float(np.median(x)), median_ci(x)
    alone = session_interval(x, center, within)["relative_halfwidth"]

    def pairs(sd: float) -> tuple[Pair, ...]:  # 12 pairs of 2 s runs whose medians differ by ~sd
        return tuple(Pair(sd * (1 if i % 2 else -1), 0.0, 2.0, 1.0) for i in range(12))

    quiet = session_interval(x, center, within, Between(pairs=pairs(0.001)))["relative_halfwidth"]
    noisy = session_interval(x, center, within, Between(pairs=pairs(0.1)))["relative_halfwidth"]
    assert quiet < alone < noisy
    assert noisy > 0.1  # runs 10% apart: another run may land as far


def test_t_quantile() -> None:
    for df, expected in ((1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (10, 2.228), (60, 2.000)):
        assert t_quantile(0.975, df) == pytest.approx(expected, rel=3e-3)


def test_adaptive_stopping_waits_for_the_switching_time() -> None:
    stop = AdaptiveStop(Config(target_ci=0.5), Between(switching_time_s=0.6))
    chunks = [np.full(5000, 1000, dtype=np.int64)]
    assert stop.min_span_s == pytest.approx(1.8)
    assert not stop(chunks, 1.0)  # narrow enough, but too early
    assert stop(chunks, 2.0)


# --- the machine's history --------------------------------------------------------------------


def test_history_written_and_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERSPEED_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("INFERSPEED_HISTORY", "1")
    machine = history.machine_key()
    assert history.load_runs(machine) == []
    for m in (100.0, 110.0):
        assert history.append(machine, {"key": "k", "median_ns": m})
    assert [e["median_ns"] for e in history.load_runs(machine)] == [100.0, 110.0]
    monkeypatch.setenv("INFERSPEED_HISTORY", "0")
    assert history.load_runs(machine) == [] and not history.append(machine, {"key": "k"})


def test_history_in_a_read_only_cache_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() == 0:
        # root writes anywhere: a file where the folder should be stands in for read-only
        (tmp_path / "history").write_text("")
    else:
        tmp_path.chmod(0o500)
    monkeypatch.setenv("INFERSPEED_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("INFERSPEED_HISTORY", "1")
    assert history.append(history.machine_key(), {"key": "k", "median_ns": 1.0}) is False
    tmp_path.chmod(0o700)


def test_a_run_adds_to_the_history(
    models: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inferspeed

    monkeypatch.setenv("INFERSPEED_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("INFERSPEED_HISTORY", "1")
    for _ in range(2):
        r = inferspeed.benchmark(models["add"], max_time=0.3, warmup_time=0.05)
    entries = history.load_runs(history.machine_key())
    assert len(entries) == 2 and entries[0]["key"] == entries[1]["key"]  # one measurement, two sessions
    assert r.monitor is not None
    assert r.monitor["over_time"]["history_sessions"] == 1  # the run before
    assert r.monitor["over_time"]["history_pairs"] == 0  # two runs make the first pair
    assert r.stats.ci95_median_within_ns is not None
    lo, hi = r.stats.ci95_median_ns
    wlo, whi = r.stats.ci95_median_within_ns
    assert lo is not None and hi is not None and wlo is not None and whi is not None
    assert lo <= wlo and hi >= whi  # never narrower than the within-run interval


# --- warm-up and steal -----------------------------------------------------------------------


def test_warm_up_until_steady() -> None:
    calls = {"n": 0}

    def falling_then_flat(n: int | None, seconds: float | None) -> dict[str, Any]:
        calls["n"] += 1
        level = 2000 if calls["n"] < 4 else 1000
        time.sleep(0.01)
        return {"samples_ns": np.full(10, level, dtype=np.int64), "interrupted": False}

    samples, interrupted, steady = warm_until_steady(falling_then_flat)
    assert steady and not interrupted
    assert samples[-30:].max() == 1000  # it ended on three steady chunks


def test_warm_up_stops_at_its_cap() -> None:
    calls = {"n": 0}

    def never_steady(n: int | None, seconds: float | None) -> dict[str, Any]:
        calls["n"] += 1
        time.sleep(0.05)
        return {"samples_ns": np.full(10, 1000 * (1 + calls["n"] % 2), dtype=np.int64), "interrupted": False}

    start = time.monotonic()
    _, _, steady = warm_until_steady(never_steady)
    assert not steady and WARMUP_MAX_TIME <= time.monotonic() - start < WARMUP_MAX_TIME + 1


def test_steal_is_its_own_figure(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal; ticks (USER_HZ, usually 100)
    stat.write_text("cpu  1000 0 0 5000 0 0 0 100 0 0\n")
    before = cpu_snapshot(str(stat))
    stat.write_text("cpu  1000 0 0 5100 0 0 0 150 0 0\n")  # 0.5 s of steal, nothing else busy
    after = cpu_snapshot(str(stat))
    assert before is not None and after is not None
    after = type(after)(after.busy_s, after.idle_s, before.own_s, before.monotonic_s + 1.0, after.steal_s)
    tick = os.sysconf("SC_CLK_TCK")
    assert steal(before, after) == pytest.approx(50 / tick)
    assert other_load(before, after) == 0.0  # steal is not other processes' load
    found = check_steal(50 / tick if 50 / tick > 0.1 else 0.2, 2)
    assert found is not None and found.code == "steal"
    assert check_steal(0.01) is None
