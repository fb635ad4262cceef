"""Hardening: Ctrl-C at any point, crashed workers, two benchmarks in two threads, and
property tests of the parsers, input generation and statistics on adversarial data."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import inferspeed
from inferspeed.errors import WorkerCrashed
from inferspeed.measure.spawn import SELF_SIGNAL_ENV, describe_exit

from .child_events import Events
from .conftest import FAST

#: Seconds from SIGINT to exit that a run may take. Expected: the chunk in progress (20 ms),
#: building and writing the partial result and the interpreter's exit: 0.25-0.5 s measured on
#: this 2-core machine with two other CPU-bound processes, up to 1.2 s while a library the
#: result needs was imported after the loop. What it guards against: an exit that waits for
#: the rest of the run. Every run below has 5 s or more of its run (or sweep cell) left when the
#: signal comes, so that takes longer and fails, as does a sweep worker ignoring the signal
#: until the parent gives up on it (INTERRUPT_GRACE, 5 s).
EXIT_LIMIT = 3.0


def _interrupt(
    args: list[str],
    events: Events,
    phases: tuple[str, ...],
    offset: float = 0.0,
    group: bool = True,
    sig: signal.Signals = signal.SIGINT,
) -> tuple[int | None, float, str]:
    """Start `python -m inferspeed ARGS`, wait until it reports ``phases`` (in that order, in
    ``events``), ``offset`` seconds more, then send SIGINT (to its process group, as a
    terminal's Ctrl-C does, or to it alone); return (exit status, seconds from the signal to
    the exit, stderr)."""
    p = subprocess.Popen(
        [sys.executable, "-m", "inferspeed", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=events.env(),
    )
    try:
        events.wait(*phases, proc=p)
        # Where in the phase the signal lands: each phase interrupted below lasts several
        # seconds more than this, however slow the machine (they are timed in wall seconds).
        time.sleep(offset)
        start = time.monotonic()
        if group:
            os.killpg(p.pid, sig)
        else:
            p.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(30)
        took = time.monotonic() - start
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate()
    return p.returncode, took, err


@pytest.mark.parametrize(
    ("sig", "group", "status", "runs", "seed"),
    [
        # Ctrl-C: a terminal sends it to the whole process group.
        (signal.SIGINT, True, 130, 6, 7),
        # SIGTERM: what CI runners and container stops send, to the process alone.
        (signal.SIGTERM, False, 143, 5, 11),
    ],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_at_random_points_exits_fast_with_a_partial_result(
    models: dict[str, str],
    tmp_path: Path,
    sig: signal.Signals,
    group: bool,
    status: int,
    runs: int,
    seed: int,
) -> None:
    rng = random.Random(seed)
    for k in range(runs):
        out = tmp_path / f"r{k}.json"
        # From the start of the warm-up (0.5 s) to 1 s into the timed loop (10 s).
        offset = rng.uniform(0.0, 1.5)
        rc, took, err = _interrupt(
            ["run", models["mlp3"], "--warmup", "0.5", "-t", "10", "--json", str(out)],
            Events(tmp_path / f"e{k}.jsonl"),
            ("warmup",),
            offset,
            group=group,
            sig=sig,
        )
        assert rc == status, err
        assert took < EXIT_LIMIT, (offset, took)
        assert "Traceback" not in err
        doc = json.loads(out.read_text())
        assert doc["interrupted"] is True
        # Empty when the signal came before the first warm-up call ended.
        assert doc["results"] == [] or doc["results"][0]["interrupted"] is True


def test_sigint_in_warmup_keeps_the_warmup_calls(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "w.json"
    args = ["run", models["mlp3"], "--warmup", "10", "-t", "1", "--json", str(out)]
    # 0.5 s into a 10 s warm-up: past the first calls (~1 ms each), far from the timed loop.
    rc, took, err = _interrupt(args, Events(tmp_path / "e.jsonl"), ("warmup",), 0.5)
    assert rc == 130 and took < EXIT_LIMIT, (took, err)
    r = json.loads(out.read_text())["results"][0]
    assert r["interrupted"] and r["loop"]["interrupted_in"] == "warm-up" and r["stats"]["count"] > 0


def test_sigint_in_a_server_run_and_a_sweep(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    args = [
        "run",
        models["mlp3"],
        "--scenario",
        "server",
        "--qps",
        "500",
        "--duration",
        "10",
        "--json",
        str(out),
    ]
    # 0.3 s into a 10 s server run: requests answered, most of the run still to come.
    rc, took, err = _interrupt(args, Events(tmp_path / "e.jsonl"), ("timed",), 0.3)
    assert rc == 130 and took < EXIT_LIMIT, (took, err)
    assert json.loads(out.read_text())["results"][0]["interrupted"] is True
    jsonl = tmp_path / "sweep.jsonl"
    sweep = [
        "sweep",
        models["mlp3"],
        "--threads",
        "1,2",
        "--opt-level",
        "basic,all",
        "-t",
        "5",
        "--out",
        str(jsonl),
    ]
    # Ctrl-C at a terminal: once the first cell is written and the second one's timed loop (5 s)
    # has begun. Then kill -INT of the sweep alone (it passes the signal on to the cell's
    # process), resuming that file: interrupted in the second cell again.
    for group, resume in ((True, []), (False, ["--resume"])):
        events = Events(tmp_path / f"sweep-{group}.jsonl")
        phases = ("cell", "timed") if group else ("timed",)
        rc, took, err = _interrupt([*sweep, *resume], events, phases, group=group)
        assert rc == 130 and took < EXIT_LIMIT, (group, took, err)
        assert "--resume" in err and "Traceback" not in err
        lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
        assert len(lines) == 1, lines  # the first cell, once; the interrupted one not written
        assert events.names().count("cell") == (1 if group else 0)


def test_crashed_workers_are_reported_with_their_signal(
    models: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert describe_exit(-signal.SIGKILL).startswith("was killed by SIGKILL (as the out-of-memory killer")
    assert describe_exit(3) == "exited with status 3"
    monkeypatch.setenv(SELF_SIGNAL_ENV, "SIGSEGV")
    with pytest.raises(WorkerCrashed, match="killed by SIGSEGV"):
        inferspeed.benchmark(models["add"], processes=2, **FAST)
    p = subprocess.run(
        [sys.executable, "-m", "inferspeed", "run", models["add"], "--processes", "2", "-t", "0.1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "SIGSEGV" in p.stderr, p.stderr
    monkeypatch.setenv(SELF_SIGNAL_ENV, "SIGKILL")
    out = tmp_path / "sweep.jsonl"
    found = inferspeed.sweep(models["add"], {"threads": [1, 2]}, out, config=inferspeed.Config(**FAST))
    assert [e["crashed"] for e in found.entries] == [True, True]  # the sweep went on
    assert all("SIGKILL" in e["error"] for e in found.entries)
    assert len(out.read_text().splitlines()) == 2


def test_two_benchmarks_in_two_threads(models: dict[str, str]) -> None:
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run(name: str) -> None:
        try:
            results[name] = inferspeed.benchmark(models[name], threads=1, max_time=0.5, warmup_time=0.05)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("mlp3", "add")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert results["mlp3"].model["name"] == "mlp3.onnx" and results["add"].model["name"] == "add.onnx"
    # Separate, correct results: the MLP is far slower than the Add, and each has its own samples.
    assert results["mlp3"].stats.median_ns > 20 * results["add"].stats.median_ns
    assert results["mlp3"].samples_ns.size < results["add"].samples_ns.size


# ----------------------------------------------------------------------------- properties

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from inferspeed.cli import values  # noqa: E402
from inferspeed.config import Config  # noqa: E402
from inferspeed.facts.signature import ELEMENT_TYPES, ValueInfo  # noqa: E402
from inferspeed.measure.inputs import make_inputs  # noqa: E402
from inferspeed.stats.summary import summarize  # noqa: E402

from .parser_properties import check_parsers  # noqa: E402

SPECISH = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"[0-9x\-+.eE ]{0,20}", fullmatch=True),
    st.from_regex(r"-?[0-9]{1,25}(\.[0-9]*)?(ns|us|µs|ms|s|m|min|K|M|G|KiB|%|/s)?", fullmatch=True),
)


@settings(max_examples=400, deadline=None)
@given(text=SPECISH)
def test_flag_parsers_accept_or_refuse_cleanly(text: str) -> None:
    check_parsers(text)


SAMPLES = st.one_of(
    st.lists(st.integers(0, 2**62), min_size=1, max_size=300),
    st.lists(st.just(12345), min_size=1, max_size=3000),
    st.lists(st.sampled_from([1, 10**12]), min_size=1, max_size=500),
    st.integers(1, 5000).map(lambda n: [7] * n + [10**15]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples=SAMPLES)
def test_statistics_on_adversarial_samples(samples: list[int]) -> None:
    x = np.asarray(samples, dtype=np.int64)
    s = summarize(x)
    assert s.count == x.size
    assert s.min_ns <= s.median_ns <= s.max_ns
    assert s.median_ns <= s.p90_ns <= s.p99_ns <= s.p999_ns <= s.max_ns
    for key in ("median_ns", "p90_ns", "p99_ns", "p999_ns"):
        lo, hi = s.ci(key)
        if lo is not None and hi is not None:
            assert lo <= hi
    d = s.to_dict()
    json.dumps(d, allow_nan=False)  # what goes to JSON is finite


DIM = st.one_of(st.integers(1, 6), st.none(), st.sampled_from(["batch", "seq"]))


@st.composite
def signatures(draw: Any) -> list[ValueInfo]:
    out = []
    for i in range(draw(st.integers(1, 3))):
        code = draw(st.sampled_from(sorted(ELEMENT_TYPES)))
        dims = draw(st.lists(DIM, max_size=4))
        shape = tuple(d if isinstance(d, int) else None for d in dims)
        symbols = tuple(d if isinstance(d, str) else None for d in dims)
        out.append(ValueInfo(f"in{i}", "tensor", ELEMENT_TYPES[code].name, shape, symbols, code))
    return out


@settings(max_examples=200, deadline=None)
@given(
    sig=signatures(),
    batch=st.integers(1, 5),
    sets=st.integers(1, 3),
    seed=st.integers(0, 2**31),
)
def test_input_generation_over_random_signatures(
    sig: list[ValueInfo], batch: int, sets: int, seed: int
) -> None:
    dims = {"batch": batch} if any("batch" in (v.symbols or ()) for v in sig) else {}
    generated = make_inputs(sig, Config(dims=dims, input_sets=sets, seed=seed))
    assert len(generated.sets) == sets
    for v in sig:
        shape = generated.shapes[v.name]
        assert len(shape) == len(v.shape or ())
        for size, fixed, sym in zip(shape, v.shape or (), v.symbols or (), strict=True):
            if fixed is not None:
                assert size == fixed
            elif sym == "batch":
                assert size == batch
            else:
                assert size >= 1
        for size, sym in zip(shape, v.symbols or (), strict=True):  # one size per named dim
            others = [
                s
                for w in sig
                for s, y in zip(generated.shapes[w.name], w.symbols or (), strict=True)
                if y == sym
            ]
            assert sym is None or set(others) == {size}
        array = generated.sets[0][v.name]
        et = ELEMENT_TYPES[v.element_code]
        count = int(np.prod(shape, dtype=np.int64))
        if et.kind == "string":
            assert array.dtype == object and array.shape == shape
        elif et.kind == "raw":  # float8, bfloat16, int4: raw bits, packed, any array shape
            assert array.nbytes == (count * et.bits + 7) // 8
        else:
            assert array.shape == shape and array.dtype == np.dtype(et.storage)


def test_peak_finder_matches_scipy() -> None:
    from scipy.signal import find_peaks as scipy_peaks

    from inferspeed.stats.diagnostics import find_peaks

    rng = np.random.default_rng(3)
    for k in range(2000):
        n = int(rng.integers(3, 80))
        y = rng.integers(0, 5, n).astype(float) if k % 2 else rng.random(n) * 10
        prominence = rng.random(n) * 3
        assert find_peaks(y, prominence) == [int(p) for p in scipy_peaks(y, prominence=prominence)[0]]


def test_fuzzer_findings_stay_fixed() -> None:
    import argparse

    # '³' passes str.isdigit() but not int(); the Kelvin sign matches 'k' when case is ignored.
    for parse, text in (
        (values.parse_int_list, "\u00b3"),
        (values.parse_bytes, "5\u212a"),
        (values.parse_bytes, "5\u212aiB"),
    ):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_sessions_created_and_destroyed_do_not_leak(models: dict[str, str]) -> None:
    from inferspeed.facts.memory import read_memory

    def cycle(n: int) -> None:
        for _ in range(n):
            with inferspeed.Session(models["mlp_small"], warmup_time=0) as s:
                s.measure(iterations=5, warmup_iterations=0)

    cycle(20)  # allocator pools, caches and imports reach their steady size
    before, _ = read_memory()
    if before is None:
        pytest.skip("no /proc/self/status here")
    cycle(100)
    after, _ = read_memory()
    assert after is not None
    assert after - before < 8 << 20, f"RSS grew {(after - before) / 2**20:.1f} MiB over 100 sessions"
