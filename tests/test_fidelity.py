"""The core's own fidelity: what it does between and around the timed calls.

Each test here failed on the core before the defect it names was fixed:

- the sample buffer was zero-filled 64K samples (512 KiB) ahead of every chunk;
- the cold-cache flush evicted the calling core's caches only;
- the server's time origin was fixed before its threads existed, a sleeping worker ignored a
  stop until its next arrival, and an exception from the hook ended in std::terminate;
- a failed bind left the session prepared, with a released OrtValue in its input arrays;
- a second thread could change a session under a loop running without the GIL;
- SIGINT with the default action (SIG_DFL) was swallowed; an exception other than
  KeyboardInterrupt raised by a signal handler was cleared and lost;
- a loop's sample cap was silent, and ``start + max_ns`` overflowed.
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferspeed import Config, ConfigError, OrtError, SessionInUseError, _core
from inferspeed.config import MAX_SAMPLES
from inferspeed.facts import ortlib as _ortlib

from .child_events import Events
from .conftest import until

BINDING = _core.CallMode.binding
RUN = _core.CallMode.run
FLOAT = 1  # ONNX element type


def _prepared(path: str, threads: int = 1) -> tuple[_core.Session, np.ndarray]:
    """A core session of the [1, 16] add model, input bound and prepared."""
    s = _core.Session(_ortlib.load_runtime(), path, intra_op_threads=threads)
    x = np.ones((1, 16), np.float32)
    s.bind_input("x", x, FLOAT, [1, 16])
    s.prepare()
    return s, x


@pytest.fixture
def add_session(models: dict[str, str]) -> Iterator[_core.Session]:
    s, x = _prepared(models["add"])
    yield s
    del x


# ----------------------------------------------------------------------------------------------
# The sample buffer


FAULTS_CHILD = """
import ctypes, resource, sys
import numpy as np
from inferspeed import _core
from inferspeed.facts import ortlib

s = _core.Session(ortlib.load_runtime(), sys.argv[1], intra_op_threads=1)
x = np.ones((1, 16), np.float32)
s.bind_input("x", x, 1, [1, 16])
s.prepare()
s.closed_loop(_core.CallMode.binding, max_iterations=2000)  # warm: ORT's own first-call work
# Allocations of 128 KiB and more come fresh from mmap, so each page the loop touches first is
# one minor fault (glibc would otherwise recycle its heap, faulting nothing either way).
ctypes.CDLL(None).mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
worst = 0
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    r = s.closed_loop(_core.CallMode.binding, max_ns=3_000_000)  # time-limited: no size known
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    worst = max(worst, faults - 2 * (r["samples_ns"].nbytes // 4096 + 1))
print(worst)
"""


@pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="AddressSanitizer's allocator (and its shadow memory) fault pages of their own",
)
def test_the_loop_writes_nothing_ahead_of_its_samples(models: dict[str, str]) -> None:
    """Pages first touched by a time-limited loop, beyond those its samples fill (in the
    loop's blocks, then in the array it returns): a zero-fill of the next 64K samples before
    each chunk touches 128 pages (512 KiB, half this machine's L2) just before timed calls."""
    out = subprocess.run(
        [sys.executable, "-c", FAULTS_CHILD, models["add"]], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    extra_pages = int(out.stdout.strip())
    assert extra_pages < 32, f"{extra_pages} pages touched beyond the samples"


def test_a_huge_time_limit_does_not_overflow(add_session: _core.Session) -> None:
    r = add_session.closed_loop(BINDING, max_iterations=50, max_ns=2**63 - 1)
    assert r["samples_ns"].size == 50 and not r["capped"]


def test_iterations_beyond_the_sample_cap_are_refused_not_cut() -> None:
    Config(iterations=MAX_SAMPLES)  # the cap itself is fine
    with pytest.raises(ConfigError, match="at most 67108864"):
        Config(iterations=MAX_SAMPLES + 1)
    Config(iterations=MAX_SAMPLES + 1, max_time=1.0)  # stops by time; a cap hit is reported


# ----------------------------------------------------------------------------------------------
# The cold-cache flush


def test_the_flush_is_outside_the_timed_region(add_session: _core.Session) -> None:
    """With the flush timed alone, a cold call of a 1 µs model is far below the flush: a
    flush moved between the clock reads would make every cold sample at least that long."""
    flusher = _core.CacheFlusher(64 << 20)
    flush_ns = []
    for _ in range(5):
        t0 = _core.now_ns()
        flusher.flush()
        flush_ns.append(_core.now_ns() - t0)
    cold = add_session.closed_loop(BINDING, max_iterations=40, flusher=flusher)["samples_ns"]
    assert np.median(cold) < np.median(flush_ns) / 10, (np.median(cold), np.median(flush_ns))
    # ... and above a warm call: the flush did evict something the call needed.
    warm = add_session.closed_loop(BINDING, max_iterations=2000)["samples_ns"]
    assert np.median(cold) > 1.5 * np.median(warm), (np.median(cold), np.median(warm))


PROBER = """
import mmap, os, struct, sys, time
import numpy as np
cpu, trials = int(sys.argv[1]), int(sys.argv[2])
os.sched_setaffinity(0, {cpu})
with open(sys.argv[3], "r+b") as f:
    shared = mmap.mmap(f.fileno(), 16)
lines = np.ones(32 * 1024, np.float64)[::8]  # 256 KiB: one element per 64-byte line
def read():
    t0 = time.perf_counter_ns()
    lines.sum()
    return time.perf_counter_ns() - t0
warm, cold = [], []
for k in range(1, trials + 1):
    read()
    warm.append(read())
    shared[0:8] = struct.pack("q", k)  # flush now
    while struct.unpack("q", shared[8:16])[0] != k:  # spin (no sleep) until flushed
        pass
    cold.append(read())
print(float(np.median(warm)), float(np.median(cold)))
"""


def _probe_on(cpu: int, flush: Callable[[], None], path: Path, trials: int = 30) -> tuple[float, float]:
    """Median time to read every cache line of a 256 KiB array (it fits a core's L2) in a
    process pinned to ``cpu``: right after reading it (warm), and right after ``flush`` ran
    here (cold, if the flush reached that core's private caches). The prober spins while it
    waits, as ONNX Runtime's pool threads do between calls: a core that idles may lose its
    private caches by itself (a deep C-state, or the hypervisor running someone else there),
    and a Python thread here would idle waiting for the GIL."""
    path.write_bytes(bytes(16))
    with open(path, "r+b") as f:
        shared = mmap.mmap(f.fileno(), 16)
    proc = subprocess.Popen(
        [sys.executable, "-c", PROBER, str(cpu), str(trials), str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        for k in range(1, trials + 1):
            give_up = time.monotonic() + 60
            while struct.unpack("q", shared[0:8])[0] != k:
                assert proc.poll() is None and time.monotonic() < give_up, "the prober stopped"
                time.sleep(0)
            flush()
            shared[8:16] = struct.pack("q", k)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        shared.close()
    warm, cold = (float(v) for v in out.split())
    return warm, cold


TWO_CPUS = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs"
)


@TWO_CPUS
def test_a_cold_call_finds_other_cores_caches_cold_too(tmp_path: Path) -> None:
    """An ONNX Runtime pool thread on another core keeps its share of the weights in that
    core's private L2: after a flush on this core, data there must be cold too (and, as a
    control, still warm without one: the prober's own wait does not evict it)."""
    cpus = sorted(os.sched_getaffinity(0))
    flusher = _core.CacheFlusher(64 << 20)
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpus[0]})
    try:

        def figures() -> tuple[bool, tuple[float, ...]]:
            warm_f, cold_f = _probe_on(cpus[1], flusher.flush, tmp_path / "flag")
            warm_n, cold_n = _probe_on(cpus[1], lambda: None, tmp_path / "flag")
            return cold_f > 2 * warm_f and cold_n < 1.5 * warm_n, (warm_f, cold_f, warm_n, cold_n)

        # A shared host sometimes moves the vCPU to another physical core between trials,
        # which loses its private caches with no flush at all (seen in CI: the control at 2x
        # warm three attempts running): more attempts, and a control that such a move fails
        # only if it also makes the data as cold as the flush does.
        warm_f, cold_f, warm_n, cold_n = until(figures, attempts=6)
    finally:
        os.sched_setaffinity(0, allowed)
    assert cold_n < 1.5 * warm_n or cold_f > 2.5 * cold_n, (
        f"cold without a flush: {warm_n:.0f} -> {cold_n:.0f} ns (after a flush {cold_f:.0f} ns)"
    )
    assert cold_f > 2 * warm_f, f"after a flush {cold_f:.0f} ns vs warm {warm_f:.0f} ns"


def _threads() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


def _on_cpu_ns(tid: int) -> int:
    with open(f"/proc/self/task/{tid}/schedstat") as f:
        return int(f.read().split()[0])


@TWO_CPUS
@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="needs /proc schedstat")
def test_the_flush_walks_the_private_caches_of_every_cpu() -> None:
    """A machine need not evict other cores' private caches when one core walks a big buffer
    (the VM above does, through its cache directory). So each flush also runs a helper thread
    pinned to every CPU of the affinity mask, which reads 4 MiB there; between flushes the
    helpers sleep, taking no CPU time from the timed calls."""
    before = _threads()
    flusher = _core.CacheFlusher(1 << 20)
    helpers = sorted(_threads() - before)
    assert sorted(flusher.cpus) == sorted(os.sched_getaffinity(0)) and len(helpers) == len(flusher.cpus)
    pinned_to = []
    for tid in helpers:
        with open(f"/proc/self/task/{tid}/status") as f:
            line = next(ln for ln in f if ln.startswith("Cpus_allowed_list:"))
        pinned_to.append(int(line.split(":")[1]))  # a single CPU, not a range or list
    assert sorted(pinned_to) == sorted(flusher.cpus)
    start = {tid: _on_cpu_ns(tid) for tid in helpers}
    for _ in range(30):
        flusher.flush()
    ran = {tid: _on_cpu_ns(tid) - start[tid] for tid in helpers}
    # 30 reads of 4 MiB each: at least 30 x 4 MiB / (64 bytes per line) line reads.
    assert all(ns > 30 * 20_000 for ns in ran.values()), ran
    idle = {tid: _on_cpu_ns(tid) for tid in helpers}
    time.sleep(0.05)  # no flush: the helpers must not run (nor spin)
    assert all(_on_cpu_ns(tid) - idle[tid] < 1_000_000 for tid in helpers)
    del flusher
    assert not _threads() & set(helpers)  # joined


# ----------------------------------------------------------------------------------------------
# The server and offline scenarios


def test_the_server_origin_comes_after_every_thread_is_up(add_session: _core.Session) -> None:
    for _ in range(3):
        r = _core.run_server(add_session, BINDING, [0, 100_000, 200_000], concurrency=8)
        assert 0 < r["ready_ns"] <= r["origin_ns"], (r["ready_ns"], r["origin_ns"])
        assert (r["start_ns"] >= np.array([0, 100_000, 200_000])).all()


class Alarm(Exception):
    pass


@pytest.fixture
def alarm_in() -> Iterator[Callable[[float, type[BaseException]], None]]:
    """alarm_in(seconds, exc): SIGALRM after ``seconds``, its handler raising ``exc``."""
    previous = signal.getsignal(signal.SIGALRM)

    def arm(seconds: float, exc: type[BaseException]) -> None:
        def handler(signum: int, frame: Any) -> None:
            raise exc("alarm")

        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, seconds)

    yield arm
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_a_stop_wakes_a_worker_sleeping_until_its_next_arrival(
    add_session: _core.Session, alarm_in: Callable[[float, type[BaseException]], None]
) -> None:
    """Ctrl-C (here a KeyboardInterrupt from a SIGALRM handler) while the only worker sleeps
    until a request 60 s away: the run ends at the next chunk, not a minute later."""
    alarm_in(0.3, KeyboardInterrupt)
    t0 = time.monotonic()
    r = _core.run_server(add_session, BINDING, [0, 60_000_000_000], concurrency=1)
    elapsed = time.monotonic() - t0
    assert r["interrupted"] and elapsed < 10, elapsed
    assert r["end_ns"][0] > 0 and r["start_ns"][1] == -1  # the first served, the second never


@pytest.mark.parametrize("scenario", ["server", "offline", "closed"])
def test_an_exception_from_a_signal_handler_reaches_the_caller(
    add_session: _core.Session, alarm_in: Callable[[float, type[BaseException]], None], scenario: str
) -> None:
    """A SIGALRM handler's exception (SystemExit from a SIGTERM handler alike) is raised by
    the loop, promptly; it was cleared and lost, and thrown on the scenarios' coordinating
    thread it would have ended in std::terminate (its workers not joined)."""
    alarm_in(0.2, Alarm)
    t0 = time.monotonic()
    with pytest.raises(Alarm):
        if scenario == "server":
            _core.run_server(add_session, BINDING, [0, 60_000_000_000], concurrency=2)
        elif scenario == "offline":
            _core.run_offline(add_session, BINDING, 60_000_000_000, concurrency=2)
        else:
            add_session.closed_loop(BINDING, max_ns=60_000_000_000)
    assert time.monotonic() - t0 < 10
    # The session still works: no thread left running on it, no terminate flag left set.
    assert add_session.closed_loop(BINDING, max_iterations=10)["samples_ns"].size == 10


# ----------------------------------------------------------------------------------------------
# Sessions: failed binds, a second thread


@pytest.mark.parametrize("mode", [BINDING, RUN])
def test_a_failed_bind_leaves_the_session_unprepared(models: dict[str, str], mode: _core.CallMode) -> None:
    """The new value could not be made (a shape larger than the array): the old one was
    released already, so a loop that still ran would read freed memory."""
    s, x = _prepared(models["add"])
    small = np.ones(4, np.float32)
    with pytest.raises(OrtError):
        s.bind_input("x", small, FLOAT, [1, 16])
    with pytest.raises(RuntimeError, match="not prepared"):
        s.closed_loop(mode, max_iterations=5)
    s.prepare()  # the old binding is whole: preparing again measures it
    assert s.closed_loop(mode, max_iterations=5)["samples_ns"].size == 5
    del x


def test_a_second_thread_cannot_change_a_session_under_a_loop(models: dict[str, str]) -> None:
    s, x = _prepared(models["add"])
    done = threading.Event()
    result: dict[str, Any] = {}

    def measure() -> None:
        result.update(s.closed_loop(BINDING, max_ns=3_000_000_000))
        done.set()

    t = threading.Thread(target=measure)
    t.start()
    give_up = time.monotonic() + 60
    while not s.busy and not done.is_set() and time.monotonic() < give_up:
        time.sleep(0.001)
    assert s.busy and not done.is_set()
    try:
        with pytest.raises(SessionInUseError, match="another thread"):
            s.bind_input("x", np.zeros((1, 16), np.float32), FLOAT, [1, 16])
        with pytest.raises(SessionInUseError):
            s.set_input_set_count(2)
        with pytest.raises(SessionInUseError):
            s.prepare()
        with pytest.raises(SessionInUseError):
            s.closed_loop(BINDING, max_iterations=1)
        with pytest.raises(SessionInUseError):
            _core.run_offline(s, BINDING, 1_000_000, concurrency=1)
    finally:
        t.join()
    assert result["samples_ns"].size > 0 and not s.busy
    s.bind_input("x", np.zeros((1, 16), np.float32), FLOAT, [1, 16])  # free again
    del x


# ----------------------------------------------------------------------------------------------
# Ctrl-C with the default action


SIG_DFL_CHILD = textwrap.dedent(
    """
    import signal, sys
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from inferspeed.cli import main
    sys.exit(main(["run", sys.argv[1], "--max-time", "60", "--warmup", "0"]))
    """
)


def test_ctrl_c_with_the_default_action_still_ends_the_process(
    models: dict[str, str], tmp_path: Path
) -> None:
    """A host that sets SIGINT to SIG_DFL expects Ctrl-C to end the process: a handler of ours
    with nothing to chain to swallowed it, and the run went on for its whole minute."""
    events = Events(tmp_path / "events.jsonl")
    proc = subprocess.Popen(
        [sys.executable, "-c", SIG_DFL_CHILD, models["add"]],
        env=events.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        events.wait("timed", proc=proc)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
    assert rc == -signal.SIGINT, (rc, stderr[-2000:])


def test_a_loop_stopped_at_the_sample_cap_says_so(
    models: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A time-limited loop of a fast model can reach the 2^26 samples one loop holds before
    its time is up (67 s of a 1 µs model): the core says ``capped``, the result warns. (Too long
    to reach here: the core's flag is stood in for.)"""
    from inferspeed import Session
    from inferspeed.measure.model import ModelTarget

    real = ModelTarget.loop

    def capped_timed_loop(self: ModelTarget, iterations: int | None, seconds: float | None) -> dict[str, Any]:
        r = real(self, iterations, seconds)
        if seconds is not None and seconds >= 0.05:  # the timed loop's slices, not the 0.01 s warm-up
            r["capped"] = True
        return r

    with Session(models["add"], threads=1, warmup_time=0.01) as s:
        plain = s.measure(max_time=0.1)
        monkeypatch.setattr(ModelTarget, "loop", capped_timed_loop)
        capped = s.measure(max_time=0.1)
    assert "sample_limit" not in [w.code for w in plain.warnings]
    (warning,) = [w for w in capped.warnings if w.code == "sample_limit"]
    assert warning.details["max_samples"] == MAX_SAMPLES and warning.details["samples"] == capped.stats.count


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_call_in_progress(models: dict[str, str], sig: signal.Signals) -> None:
    """A call of a billion loop iterations (about an hour here): with a Python handler for the
    signal (the inferspeed command has one for SIGTERM as for SIGINT), the core sets ONNX
    Runtime's terminate flag, the call returns and the loop ends as interrupted, at once."""
    s = _core.Session(_ortlib.load_runtime(), models["loop"], intra_op_threads=1)
    n = np.array(1, np.int64)
    cond, a0 = np.array(True), np.zeros(4, np.float32)
    s.bind_input("n", n, 7, [])  # INT64
    s.bind_input("cond", cond, 9, [])  # BOOL
    s.bind_input("a0", a0, FLOAT, [4])
    s.prepare()
    n[...] = 1_000_000_000  # bound without a copy: the next call runs a billion iterations
    previous = signal.signal(sig, signal.default_int_handler)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), sig))
    # Should the signal not stop the call, SIGINT does (a failure, not an hour's hang).
    watchdog = threading.Timer(15, os.kill, (os.getpid(), signal.SIGINT))
    try:
        timer.start()
        watchdog.start()
        t0 = time.monotonic()
        r = s.closed_loop(BINDING, max_iterations=1)
        took = time.monotonic() - t0
    finally:
        timer.cancel()
        watchdog.cancel()
        signal.signal(sig, previous)
    assert r["interrupted"] and r["samples_ns"].size == 0 and took < 5, took
    n[...] = 1
    assert s.closed_loop(BINDING, max_iterations=3)["samples_ns"].size == 3  # no flag left set
