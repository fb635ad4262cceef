"""The machine's history with the history on: one entry per top-level measurement (never a
round, a pilot or a worker's share), keys that name what is measured, a bounded file read
once per process, and an "another run" interval that is calibrated (a reduced run of
bench/interval_simulation.py). The rest of the suite turns the history off (conftest.py)."""

from __future__ import annotations

import builtins
import importlib.util
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import inferspeed
from inferspeed.facts import history
from inferspeed.measure.history import machine_history, parts_of_one_run
from inferspeed.measure.interleave import measure_interleaved
from inferspeed.stats.timeseries import NO_HISTORY_U, Between, Pair, between_sessions, session_interval

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def history_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The history on, in a cache folder of the test's own; the machine's key."""
    monkeypatch.setenv("INFERSPEED_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("INFERSPEED_HISTORY", "1")
    monkeypatch.delenv("INFERSPEED_MACHINE", raising=False)
    return history.machine_key()


def _lines(machine: str) -> list[dict[str, Any]]:
    return history.load_runs(machine)


# --- one entry per top-level measurement --------------------------------------------------------


def test_interleaved_rounds_add_one_entry_per_side(history_on: str, models: dict[str, str]) -> None:
    with inferspeed.Session(models["add"]) as a, inferspeed.Session(models["mlp3"], threads=1) as b:
        cfg = inferspeed.Config(max_time=0.3, warmup_time=0.02)
        done = measure_interleaved([a, b], 6, cfg, order="random", seed=3)
    assert len(done.per_round[0]) == 6
    entries = _lines(history_on)
    assert [e["kind"] for e in entries] == ["interleaved", "interleaved"]  # 12 rounds, 2 entries
    assert entries[0]["key"] != entries[1]["key"]
    assert entries[0]["span_s"] > 0.1  # the whole side, not one round
    pooled = done.results[0]
    assert pooled.monitor is not None and pooled.monitor["parts"] == 6
    assert "over_time" not in pooled.monitor  # the pooled CI is the rounds' own
    assert pooled.stats.ci95_median_within_ns is None
    assert pooled.to_dict()["stats"]["ci95_median_for"] == "these samples"


def test_a_run_adds_one_entry_and_the_next_reads_it(history_on: str, models: dict[str, str]) -> None:
    first = inferspeed.benchmark(models["add"], max_time=0.2, warmup_time=0.02)
    assert first.monitor is not None and first.monitor["over_time"]["history_sessions"] == 0
    second = inferspeed.benchmark(models["add"], max_time=0.2, warmup_time=0.02)
    entries = _lines(history_on)
    assert len(entries) == 2 and entries[0]["key"] == entries[1]["key"] and entries[0]["kind"] == "run"
    assert second.monitor is not None and second.monitor["over_time"]["history_sessions"] == 1
    assert second.to_dict()["stats"]["ci95_median_for"] == "another run"
    again = inferspeed.Result.from_dict(second.to_dict(), second.environment)
    assert again.stats.ci95_median_for == "another run"
    with parts_of_one_run():
        inferspeed.benchmark(models["add"], max_time=0.1, warmup_time=0.02)
    assert len(_lines(history_on)) == 2  # a part of a run adds nothing


def test_worker_processes_add_one_entry(history_on: str, models: dict[str, str]) -> None:
    inferspeed.benchmark(models["add"], processes=2, max_time=0.1, warmup_time=0.02)
    assert [e["kind"] for e in _lines(history_on)] == ["processes"]


# --- keys ----------------------------------------------------------------------------------------


def test_keys_name_what_is_measured(tmp_path: Path) -> None:
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, x=np.ones(3))
    shutil.copy(a, b)
    config = {"threads": None, "max_time": 2.0, "inputs_file": str(a)}
    key = history.settings_key("sha", config, "1.20", threads=2)
    # The default that resolves to 2 threads, equal inputs at another path, another length:
    assert history.settings_key("sha", {**config, "threads": 2}, "1.20", threads=2) == key
    assert history.settings_key("sha", {**config, "inputs_file": str(b)}, "1.20", threads=2) == key
    assert history.settings_key("sha", {**config, "max_time": 30.0}, "1.20", threads=2) == key
    np.savez(b, x=np.zeros(3))  # other contents at that path
    assert history.settings_key("sha", {**config, "inputs_file": str(b)}, "1.20", threads=2) != key
    assert history.settings_key("sha", config, "1.20", threads=2, kind="interleaved") != key
    assert history.settings_key("sha", config, "1.21", threads=2) != key


def test_machine_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INFERSPEED_MACHINE", raising=False)
    here = history.machine_key("cpu")
    monkeypatch.setattr(history.socket, "gethostname", lambda: "another-host")
    assert history.machine_key("cpu") != here  # one machine-id, two hosts: two machines
    monkeypatch.setenv("INFERSPEED_MACHINE", "ci/runner 7")
    assert history.machine_key("cpu") == "ci_runner_7"


# --- the file ------------------------------------------------------------------------------------


def test_file_rotates_and_is_read_once(history_on: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "HISTORY_MAX_BYTES", 2000)
    for i in range(40):
        assert history.append(history_on, {"key": "k", "i": i, "pad": "x" * 40})
    path = history.history_path(history_on)
    assert path is not None and Path(path + ".1").exists() and Path(path).stat().st_size <= 2200
    assert [e["i"] for e in history.load_runs(history_on, limit=30)] == list(range(10, 40))
    opened: list[str] = []
    real_open = builtins.open

    def counting(file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting)
    for _ in range(5):
        history.load_runs(history_on, limit=30)
    assert not any(p.startswith(path) for p in opened)  # unchanged: parsed once
    history.append(history_on, {"key": "k", "i": 40})
    assert history.load_runs(history_on, limit=30)[-1]["i"] == 40
    assert machine_history().entries  # the measurement reads the same cached entries


def test_old_format_lines_are_not_read(history_on: str) -> None:
    path = history.history_path(history_on)
    assert path is not None
    Path(path).parent.mkdir(parents=True)
    Path(path).write_text('{"key": "k", "median_ns": 5.0}\n')  # a round the first format kept
    history.append(history_on, {"key": "k", "median_ns": 6.0})
    assert [e["median_ns"] for e in history.load_runs(history_on)] == [6.0]


# --- the interval's statistics -------------------------------------------------------------------


def _entries(diffs: list[float], span: float, start: float = 0.0, gap: float = 60.0) -> list[dict[str, Any]]:
    level = 0.0
    out = []
    for i, d in enumerate([0.0, *diffs]):
        level += d
        out.append(
            {"time": start + i * gap, "key": "k", "median_ns": 1e6 * math.exp(level), "log_var_run": 0.0,
             "span_s": span}
        )  # fmt: skip
    return out


def test_pairs_are_consecutive_runs_of_one_key() -> None:
    b = between_sessions(_entries([0.1, -0.1, 0.1], 2.0), "k")
    assert [round(p.difference, 6) for p in b.pairs] == [0.1, -0.1, 0.1]
    assert b.machine_pairs == () and b.sessions == 4
    u, df = b.unseen(2.0)
    # 3 pairs (2 degrees of freedom) of excess 0.01 / 2 per run; the prior fills to 8.
    assert df == pytest.approx(8.0)
    assert u == pytest.approx((0.005 * 2 + NO_HISTORY_U * 6) / 8, rel=1e-3)  # recency: minutes
    far = between_sessions(_entries([0.1, -0.1, 0.1], 2.0, gap=13 * 3600), "k")
    assert far.pairs == ()  # runs half a day apart are not pairs


def test_recent_pairs_count_more_and_other_lengths_less() -> None:
    recent = between_sessions(_entries([0.1] * 30, 2.0, start=7 * 86400.0), "k", now=7 * 86400.0 + 3600)
    old = between_sessions(_entries([0.1] * 30, 2.0), "k", now=7 * 86400.0)
    assert recent.unseen(2.0)[1] > 15 and old.unseen(2.0)[1] == pytest.approx(8.0, abs=0.5)
    assert recent.unseen(2.0)[0] > 10 * old.unseen(2.0)[0]  # a week-old history is nearly the prior
    assert recent.unseen(30.0)[0] < 0.3 * recent.unseen(2.0)[0]  # 2 s runs say little of 30 s ones


def test_the_history_quantile_is_distribution_free() -> None:
    # 19 pairs: the largest |difference| holds the next one with probability 19/20.
    pairs = tuple(Pair(0.01 * (i + 1) * (-1) ** i, 0.0, 2.0, 1.0) for i in range(19))
    assert Between(pairs=pairs).quantile(2.0) == pytest.approx(0.19)
    assert Between(pairs=pairs[:10]).quantile(2.0) is None  # too few for 95%
    assert Between(pairs=pairs).quantile(60.0) is None  # runs of 2 s say little of a 60 s one


def test_a_few_pairs_bound_the_next_run_beyond_their_largest_difference() -> None:
    """A machine with two states about 45% apart: three pairs, two across the states, one
    within. The largest difference (0.37) widened by 1/3 (the unbiased bound of a spread of
    which it is the largest of 3) holds a next jump a little larger than any seen (0.372:
    this VM's third pair, which the largest alone missed); a 30 s pair is not near a 2 s run."""
    pairs = (Pair(0.37, 0.0, 2.0, 1.0), Pair(-0.30, 0.0, 2.0, 1.0), Pair(0.01, 0.0, 2.0, 1.0))
    wide = Between(pairs=pairs).largest(2.0)
    assert wide == pytest.approx(0.37 * 4 / 3) and wide > 0.372
    assert Between(pairs=(*pairs, Pair(0.9, 0.0, 60.0, 1.0))).largest(2.0) == pytest.approx(0.37 * 4 / 3)
    assert Between(pairs=pairs[:1]).largest(2.0) == pytest.approx(0.37 * 2)  # one pair: 2m
    old = Pair(0.37, 0.0, 2.0, 0.5)  # a day old
    assert Between(pairs=(old,)).largest(2.0) is None  # weighs less than one recent pair


def test_a_third_run_after_a_pair_across_the_states_holds_a_jump_as_large() -> None:
    """This VM: a first run at 72 µs and a second at 107 µs (a pair 40% apart in log), then a
    third run that sat in the fast state. Its interval holds a next run in the slow state
    (38% in log above it), where the calm prior (0.7% a run, 7 of 8 degrees of freedom)
    alone gave ±30% (a miss); with no history it stays at the prior's few percent."""
    rng = np.random.default_rng(2)
    samples = 72e3 * np.exp(rng.normal(0.0, 0.03, 20_000))  # 2 s of 100 µs calls, one state
    median = float(np.median(samples))
    within = (median * 0.999, median * 1.001)
    pair = between_sessions(_entries([math.log(107 / 72)], 2.0), "k", now=120.0)
    got = session_interval(samples, median, within, pair)
    lo, hi = got["interval_ns"]
    assert hi > median * math.exp(0.38) and lo < median * math.exp(-0.38)
    assert math.log(hi / median) == pytest.approx(2 * math.log(107 / 72), rel=0.01)
    alone = session_interval(samples, median, within, Between())
    assert alone["interval_ns"][1] < median * 1.05


def _simulation() -> Any:
    spec = importlib.util.spec_from_file_location(
        "interval_simulation", ROOT / "bench" / "interval_simulation.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("machine", "case"), [("calm", "matching"), ("calm", "none"), ("switching", "matching")]
)
def test_interval_is_calibrated_in_simulation(machine: str, case: str) -> None:
    """A reduced bench/interval_simulation.py (docs/measurement.md has the full figures)."""
    sim = _simulation()
    row = sim.case_figures(sim.MACHINES[machine], 2.0, case, trials=80, seed=5)
    assert row["coverage"] >= 0.9  # 95% nominal; 80 trials: an SE of 2.4%
    assert row["width_ratio"] <= (2.6 if case == "none" else 1.6)
