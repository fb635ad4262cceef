from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from inferspeed import summarize
from inferspeed.facts.machine import CpuSnapshot, cpu_snapshot, other_load, read_governor
from inferspeed.stats.diagnostics import (
    Diagnostic,
    check_bimodal,
    check_drift,
    check_few_samples,
    check_governor,
    check_high_cv,
    check_load,
    check_warmup,
    diagnose,
    format_diagnostics,
)

US = 1_000.0  # ns


def _ns(x: np.ndarray) -> np.ndarray:
    """Latencies as the timer gives them: positive int64 nanoseconds."""
    ns: np.ndarray = np.maximum(np.asarray(x), 1).astype(np.int64)
    return ns


def _stable(n: int = 5000, seed: int = 0, sd: float = 0.02) -> np.ndarray:
    return _ns(np.random.default_rng(seed).normal(100 * US, sd * 100 * US, n))


def _mixture(n: int, share_a: float, seed: int = 0) -> np.ndarray:
    """Normals at 100 µs and 150 µs (sd 3 µs), interleaved at random."""
    rng = np.random.default_rng(seed)
    a = rng.random(n) < share_a
    return _ns(np.where(a, rng.normal(100 * US, 3 * US, n), rng.normal(150 * US, 3 * US, n)))


# --- all together ----------------------------------------------------------------------------


@pytest.mark.parametrize("governor", ["performance", None])
def test_stable_noise_gives_no_warnings(governor: str | None) -> None:
    x = _stable()
    diags = diagnose(x, summarize(x), warmup_iterations=10, other_load_cores=0.0, governor=governor)
    assert diags == []
    assert format_diagnostics(diags) == ""


def test_every_check_fires_together_and_is_json_ready() -> None:
    x = _mixture(500, 0.5, seed=3)
    diags = diagnose(
        x, summarize(x), warmup_iterations=0, other_load_cores=1.2, logical_cores=8, governor="powersave"
    )
    assert [d.code for d in diags] == ["bimodal", "high_cv", "governor", "load", "few_samples"]
    doc = json.loads(json.dumps([d.to_dict() for d in diags], allow_nan=False))
    assert doc[0]["code"] == "bimodal" and doc[0]["message"] == diags[0].message
    text = format_diagnostics(diags)
    assert text.count("\n") == len(diags) - 1
    assert all(line.startswith("WARNING: ") for line in text.splitlines())


def test_diagnostic_details_are_read_only() -> None:
    d = Diagnostic("x", "y", {"a": 1})
    with pytest.raises(TypeError):
        d.details["a"] = 2  # type: ignore[index]
    assert d.to_dict() == {"code": "x", "message": "y", "details": {"a": 1}}


# --- warm-up ---------------------------------------------------------------------------------


def _decaying(shape: Callable[[np.ndarray], np.ndarray], n: int = 3000, seed: int = 1) -> np.ndarray:
    """Stable noise times a start-up factor that falls from 2x to 1x over the first 300."""
    i = np.arange(n)
    factor = np.where(i < 300, shape(i), 1.0)
    return _ns(_stable(n, seed).astype(np.float64) * factor)


GEOMETRIC = lambda i: 2.0 ** (1.0 - i / 300.0)  # noqa: E731  (2x at 0, 1x at 300)
EXPONENTIAL = lambda i: 1.0 + np.exp(-i / 60.0)  # noqa: E731  (2x at 0, within 1% of 1x at 300)


@pytest.mark.parametrize("shape", [GEOMETRIC, EXPONENTIAL])
@pytest.mark.parametrize("n", [2000, 3000, 10_000])
def test_decaying_start_fires_warmup_with_the_settle_count(
    shape: Callable[[np.ndarray], np.ndarray], n: int
) -> None:
    x = _decaying(shape, n)
    d = check_warmup(x, warmup_iterations=10)
    assert d is not None and d.code == "warmup"
    settle = d.details["settle_iterations"]
    assert 100 <= settle <= 500
    assert f"the first {settle} timed iterations were" in d.message
    slower = re.search(r"were (\d+)% slower", d.message)
    assert slower is not None and 15 <= int(slower.group(1)) <= 70
    suggest = d.details["suggested_warmup_iterations"]
    assert 10 + settle <= suggest <= 1.1 * (10 + settle)
    assert f"--warmup-iterations {suggest}" in d.message
    # The drift check leaves the warm-up region out; the rest is stable.
    codes = [g.code for g in diagnose(x, summarize(x), warmup_iterations=10)]
    assert "warmup" in codes and "drift" not in codes


def test_warmup_suggestion_counts_the_warmup_already_run() -> None:
    d = check_warmup(_decaying(GEOMETRIC), warmup_iterations=1234)
    assert d is not None
    # 1234 + 300 = 1534, rounded up to two significant digits.
    assert d.details["settle_iterations"] == 300
    assert d.details["suggested_warmup_iterations"] == 1600
    assert "after 1234 warm-up iterations" in d.message


def test_slow_first_samples_alone_are_not_a_warmup() -> None:
    x = _stable().copy()
    x[0] *= 50  # the first call after warm-up is often slow on its own
    x[1:5] *= 3
    assert check_warmup(x) is None


@pytest.mark.parametrize("seed", range(5))
def test_stable_and_noisy_samples_do_not_fire_warmup(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert check_warmup(_stable(seed=seed)) is None
    assert check_warmup(_ns(rng.lognormal(np.log(100 * US), 0.5, 200))) is None
    assert check_warmup(_ns(rng.lognormal(np.log(100 * US), 0.3, 5000))) is None


def test_warmup_needs_enough_samples() -> None:
    x = _decaying(GEOMETRIC, n=3000)
    assert check_warmup(x[:199]) is None


def test_a_fall_that_lasts_half_the_run_is_drift_not_warmup() -> None:
    x = _stable(2000).astype(np.float64)
    x[:1000] *= 1.2
    x = _ns(x)
    assert check_warmup(x) is None
    codes = [d.code for d in diagnose(x, summarize(x), warmup_iterations=0)]
    assert "drift" in codes


# --- drift -----------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [1.10, 0.90])
def test_step_change_halfway_fires_drift(step: float) -> None:
    x = _stable(2000).astype(np.float64)
    x[1000:] *= step
    d = check_drift(_ns(x))
    assert d is not None and d.code == "drift"
    assert d.details["change"] == pytest.approx(step - 1.0, abs=0.01)
    assert f"({(step - 1) * 100:+.0f}%)" in d.message
    assert "--pin" in d.message


def test_slow_rise_fires_drift() -> None:
    x = _stable(5000).astype(np.float64) * np.linspace(1.0, 1.15, 5000)
    d = check_drift(_ns(x))
    assert d is not None and 0.08 < d.details["change"] < 0.15


def test_small_or_noisy_changes_do_not_fire_drift() -> None:
    small = _stable(2000).astype(np.float64)
    small[1000:] *= 1.03  # significant, but below DRIFT_MIN_CHANGE
    assert check_drift(_ns(small)) is None
    # 6% apart in the medians, but 150 samples of this much noise cannot tell it from chance.
    rng = np.random.default_rng(4)
    noisy = _ns(
        np.concatenate([rng.lognormal(np.log(100 * US), 0.6, 75), rng.lognormal(np.log(106 * US), 0.6, 75)])
    )
    assert check_drift(noisy) is None
    assert check_drift(_stable(99)) is None


def test_drift_skips_the_warmup_region() -> None:
    x = _stable(2000).astype(np.float64)
    x[:300] *= 1.5
    x = _ns(x)
    assert check_drift(x) is not None
    assert check_drift(x, skip=300) is None


# --- bimodal ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("share", "n"), [(0.5, 2000), (0.5, 500), (0.8, 2000), (0.2, 5000), (0.93, 5000)])
def test_mixtures_fire_bimodal(share: float, n: int) -> None:
    x = _mixture(n, share)
    d = check_bimodal(x)
    assert d is not None and d.code == "bimodal"
    modes = d.details["modes_ns"]
    assert len(modes) == 2
    assert modes[0] == pytest.approx(100 * US, rel=0.03)
    assert modes[1] == pytest.approx(150 * US, rel=0.03)
    fast = float(np.mean(x < 125 * US))  # the share this draw actually holds
    assert d.details["shares"] == pytest.approx([fast, 1 - fast], abs=0.01)
    assert "2 modes" in d.message and "--no-spin" in d.message


def test_three_modes() -> None:
    rng = np.random.default_rng(5)
    x = _ns(np.concatenate([rng.normal(m * US, 2 * US, 1000) for m in (100, 130, 170)]))
    d = check_bimodal(rng.permutation(x))
    assert d is not None
    assert d.details["modes_ns"] == pytest.approx([100 * US, 130 * US, 170 * US], rel=0.03)


UNIMODAL: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "lognormal 0.1": lambda r, n: r.lognormal(np.log(100 * US), 0.1, n),
    "lognormal 0.3": lambda r, n: r.lognormal(np.log(100 * US), 0.3, n),
    "lognormal 0.5": lambda r, n: r.lognormal(np.log(100 * US), 0.5, n),
    "normal": lambda r, n: r.normal(100 * US, 10 * US, n),
    "pareto tail": lambda r, n: r.normal(100 * US, 5 * US, n) + 10 * US * r.pareto(1.5, n),
    "exponential tail": lambda r, n: 100 * US + r.exponential(20 * US, n),
    "integer 60 ns": lambda r, n: r.lognormal(np.log(60), 0.15, n),  # on the timer's 1 ns grid
}


@pytest.mark.parametrize("name", list(UNIMODAL))
@pytest.mark.parametrize("n", [300, 3000, 30_000])
def test_unimodal_distributions_do_not_fire_bimodal(name: str, n: int) -> None:
    for seed in range(3):
        x = _ns(UNIMODAL[name](np.random.default_rng(seed), n))
        assert check_bimodal(x) is None, (name, n, seed)


def test_bimodal_ignores_close_modes_tiny_modes_and_few_samples() -> None:
    rng = np.random.default_rng(6)
    close = np.where(
        rng.random(20_000) < 0.5, rng.normal(100 * US, 2 * US, 20_000), rng.normal(108 * US, 2 * US, 20_000)
    )
    assert check_bimodal(_ns(close)) is None  # 8% apart: below BIMODAL_MIN_SEPARATION
    assert check_bimodal(_mixture(20_000, 0.97)) is None  # 3% of samples: below BIMODAL_MIN_SHARE
    assert check_bimodal(_mixture(199, 0.5)) is None


# --- summary and machine checks --------------------------------------------------------------


def test_high_cv() -> None:
    rng = np.random.default_rng(7)
    noisy = summarize(_ns(rng.normal(100 * US, 20 * US, 2000)))
    d = check_high_cv(noisy)
    assert d is not None and d.code == "high_cv"
    assert f"{noisy.cv * 100:.0f}%" in d.message and 19 <= round(noisy.cv * 100) <= 21
    assert check_high_cv(summarize(_ns(rng.normal(100 * US, 5 * US, 2000)))) is None


def test_findings_on_other_samples_than_the_tables_say_whose_figures_they_are() -> None:
    """A server's noise checks look at its service times, not at the latency its table shows:
    with ``of``, the findings about the samples say so (and record it); the machine's do not
    change."""
    rng = np.random.default_rng(8)
    x = _ns(rng.normal(100 * US, 20 * US, 2000))
    plain = {d.code: d for d in diagnose(x, summarize(x), warmup_iterations=0, other_load_cores=1.0)}
    found = {
        d.code: d
        for d in diagnose(x, summarize(x), warmup_iterations=0, other_load_cores=1.0, of="service times")
    }
    assert set(found) == set(plain) >= {"high_cv", "load"}
    assert found["high_cv"].message == f"in the service times: {plain['high_cv'].message}"
    assert found["high_cv"].details["of"] == "service times"
    assert found["load"] == plain["load"]


@pytest.mark.parametrize("governor", ["powersave", "schedutil", "mixed: performance, powersave"])
def test_governor_other_than_performance_fires(governor: str) -> None:
    d = check_governor(governor)
    assert d is not None and d.code == "governor"
    assert f"'{governor}'" in d.message and "cpupower frequency-set -g performance" in d.message


def test_governor_performance_or_unknown_is_quiet() -> None:
    assert check_governor("performance") is None
    assert check_governor(None) is None


def _governors(root: Path, values: list[str]) -> str:
    for i, value in enumerate(values):
        d = root / f"cpu{i}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(value + "\n")
    (root / "cpufreq").mkdir(exist_ok=True)  # not a cpuN directory: ignored
    return str(root)


def test_read_governor(tmp_path: Path) -> None:
    assert read_governor(_governors(tmp_path / "same", ["performance"] * 4)) == "performance"
    mixed = _governors(tmp_path / "mixed", ["powersave", "performance", "powersave"])
    assert read_governor(mixed) == "mixed: performance, powersave"
    assert read_governor(str(tmp_path / "none")) is None


def test_load() -> None:
    d = check_load(0.5, 8)
    assert d is not None and d.code == "load"
    assert "0.50 CPU cores" in d.message and "(of 8 logical cores)" in d.message
    assert check_load(0.5) is not None and "logical" not in check_load(0.5).message  # type: ignore[union-attr]
    assert check_load(0.1, 8) is None
    assert check_load(None, 8) is None


def test_few_samples_names_the_percentile_and_what_it_needs() -> None:
    d = check_few_samples(summarize(_stable(500)))
    assert d is not None and d.code == "few_samples"
    assert d.details["unbounded"] == ["p99.9"]
    assert "(500)" in d.message and "p99.9" in d.message and "3688" in d.message
    assert check_few_samples(summarize(_stable(5000))) is None
    several = check_few_samples(summarize(_stable(50)))
    assert several is not None and several.details["unbounded"] == ["p95", "p99", "p99.9"]
    assert "p95, p99 and p99.9" in several.message


# --- CPU load measurement --------------------------------------------------------------------


def test_other_load_arithmetic() -> None:
    a = CpuSnapshot(busy_s=100.0, idle_s=50.0, own_s=1.0, monotonic_s=10.0)
    b = CpuSnapshot(busy_s=103.0, idle_s=51.0, own_s=2.0, monotonic_s=12.0)
    assert other_load(a, b) == pytest.approx(1.0)  # (3 busy - 1 own) / 2 s
    own_only = CpuSnapshot(busy_s=101.0, idle_s=51.0, own_s=2.5, monotonic_s=12.0)
    assert other_load(a, own_only) == 0.0  # tick accounting can put own time above busy
    assert other_load(a, a) is None


def test_cpu_snapshot_where_proc_stat_is_missing(tmp_path: Path) -> None:
    assert cpu_snapshot(str(tmp_path / "stat")) is None
    (tmp_path / "stat").write_text("intr 1 2 3\n")
    assert cpu_snapshot(str(tmp_path / "stat")) is None


def _measure(seconds: float, work: Callable[[float], None] = time.sleep) -> float:
    before = cpu_snapshot()
    work(seconds)
    after = cpu_snapshot()
    assert before is not None and after is not None
    load = other_load(before, after)
    assert load is not None
    return load


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@dataclass(frozen=True)
class _Others:
    """What every other process has used so far, by its own account (/proc/PID/stat): a second
    measure of other load, independent of /proc/stat's machine-wide counters."""

    #: (pid, start time) -> CPU seconds of the process and of its children that ended (a
    #: process that ends during a look moves its time into its parent's account).
    cpu_s: dict[tuple[int, int], float]
    unowned_s: float  # interrupts and steal: busy in other_load, in no process's account
    monotonic_s: float

    @staticmethod
    def now() -> _Others:
        tick = float(os.sysconf("SC_CLK_TCK"))
        cpu: dict[tuple[int, int], float] = {}
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
                    data = f.read()
            except OSError:  # it ended meanwhile
                continue
            fields = data[data.rindex(")") + 2 :].split()  # after the command name
            # utime stime cutime cstime; starttime tells a reused pid apart
            cpu[(int(name), int(fields[19]))] = sum(int(v) for v in fields[11:15]) / tick
        with open("/proc/stat", encoding="ascii") as f:
            j = [int(v) for v in f.readline().split()[1:9]] + [0] * 8
        return _Others(cpu, (j[5] + j[6] + j[7]) / tick, time.monotonic())

    def load_until(self, later: _Others, pid: int | None = None) -> float:
        """Cores the other processes (or process ``pid`` alone) used from here to ``later``."""
        wall = later.monotonic_s - self.monotonic_s
        if pid is not None:
            used = sum(v - self.cpu_s.get(k, 0.0) for k, v in later.cpu_s.items() if k[0] == pid)
            return used / wall
        used = sum(later.cpu_s.values()) - sum(self.cpu_s.values())
        return (used + later.unowned_s - self.unowned_s) / wall


needs_proc_stat = pytest.mark.skipif(cpu_snapshot() is None, reason="no /proc/stat")


@needs_proc_stat
def test_other_load_sees_a_busy_process() -> None:
    # Other test runs may share this machine: the busy process must add about one core to
    # whatever else was running just before. Or, where the cores were already full (it then
    # takes part of theirs), other load must agree within half a core with what the processes'
    # own accounts say they used: at least a core, a quarter of it or more the busy one's. A
    # process ending during a look takes its time out of that account: up to three looks.
    baseline = _measure(0.3)
    busy = subprocess.Popen(
        [sys.executable, "-c", "print('spinning', flush=True)\nwhile True: pass"],
        stdout=subprocess.PIPE,
        text=True,
    )
    looks = []
    try:
        assert busy.stdout is not None
        assert busy.stdout.readline() == "spinning\n"  # started: its loop is the next line
        for _ in range(3):
            before = _Others.now()
            load = _measure(1.0)
            after = _Others.now()
            expected, busy_cores = before.load_until(after), before.load_until(after, busy.pid)
            looks.append(tuple(round(v, 2) for v in (load, baseline, expected, busy_cores)))
            added = 0.5 <= load - baseline <= 1.5 or 0.5 <= load <= 1.5
            agrees = busy_cores >= 0.25 and expected >= 1.0 and abs(load - expected) < 0.5
            if added or agrees:
                break
    finally:
        busy.kill()
        busy.communicate()  # reaped, its pipe closed
    assert added or agrees, looks


@needs_proc_stat
@pytest.mark.parametrize(("seconds", "work"), [(0.5, time.sleep), (0.3, _spin)])
def test_other_load_is_low_when_only_this_process_works(
    seconds: float, work: Callable[[float], None]
) -> None:
    # Whether this process sleeps or spins (its own CPU time is not "other"), other load is what
    # the other processes used by their own accounts: about none on a quiet machine, a core
    # beside a CPU-bound process (a shared CI runner). A process that ends during a look takes
    # its time out of that account: one of three looks must agree within half a core.
    looks = []
    for _ in range(3):
        before = _Others.now()
        load = _measure(seconds, work)
        expected = before.load_until(_Others.now())
        looks.append((round(load, 2), round(expected, 2)))
        if abs(load - expected) < 0.5:
            break
    assert abs(load - expected) < 0.5, looks


def test_warmup_settle_point_ignores_later_slow_periods() -> None:
    """A warm-up of 600 slow calls, then two slow stretches later in the first half: the settle
    point is where the warm-up ends, not the last slow block of the first half, and the figures
    say so. A machine switching speed every 500 calls all along is no warm-up at all: its block
    medians wander as far as the first block's, and noise is not a warm-up."""
    rng = np.random.default_rng(5)
    x = rng.normal(4100.0, 40.0, 10_000)
    x[:600] += 2300.0
    for start in (2000, 4000):
        x[start : start + 150] += 2300.0
    d = check_warmup(x.astype(np.int64), 1000)
    assert d is not None
    assert d.details["settle_iterations"] == 600 and d.details["block_size"] == 100
    assert d.details["start_median_ns"] == pytest.approx(6400.0, rel=0.02)
    assert d.details["slower"] == pytest.approx(2300.0 / 4100.0, rel=0.05)
    parts = [rng.normal(6400.0 if k % 2 == 0 else 4100.0, 40.0, 500) for k in range(40)]
    assert check_warmup(np.concatenate(parts).astype(np.int64), 1000) is None


def test_settle_iterations_of_a_decaying_start() -> None:
    from inferspeed.stats.diagnostics import settle_iterations

    rng = np.random.default_rng(21)
    x = np.concatenate([np.linspace(3000.0, 1000.0, 200), rng.normal(1000.0, 10.0, 1800)])
    settle = settle_iterations(x)
    assert settle is not None and 160 <= settle <= 280
    assert settle_iterations(rng.normal(1000.0, 10.0, 2000)) == 0
    assert settle_iterations(np.arange(10)) is None


def test_steady_state_counts_the_timed_iterations_a_short_warm_up_left() -> None:
    """The cold-start figure agrees with the warm-up warning: a warm-up that looked steady by
    itself, then timed samples 60% slower for their first 1000, settle after warm-up + ~1000."""
    from inferspeed.stats.diagnostics import steady_state

    rng = np.random.default_rng(8)
    warm = rng.normal(1600.0, 10.0, 400).astype(np.int64)
    timed = np.concatenate([rng.normal(1600.0, 10.0, 1000), rng.normal(1000.0, 10.0, 9000)]).astype(np.int64)
    found = diagnose(timed, summarize(timed), warmup_iterations=warm.size)
    assert [d.code for d in found if d.code == "warmup"] == ["warmup"]
    steady = steady_state(warm, found)
    assert 900 <= steady["settle_timed_iterations"] <= 1100
    assert steady["settle_iterations"] == warm.size + steady["settle_timed_iterations"]
    # No warning: the warm-up's own settle point, none of it timed; timeit's batches scale it.
    assert steady_state(warm, []) == {"settle_iterations": 0, "settle_timed_iterations": 0}
    decaying = np.concatenate([np.linspace(3000.0, 1000.0, 200), rng.normal(1000.0, 10.0, 1800)])
    one = steady_state(decaying, [])["settle_iterations"]
    assert one is not None and steady_state(decaying, [], per_sample=4)["settle_iterations"] == 4 * one
