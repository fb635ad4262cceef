"""Every session option changes what ONNX Runtime does.

Reading an option back from the result's config proves nothing about ORT: each test here
observes ORT's behaviour (threads it starts, nodes it runs, allocations it makes, how its pool
threads wait, which inputs it is given) with the option one way and the other, so an option
dropped on its way from :class:`~inferspeed.Config` through ``measure/session.py`` and the C++
core to ``OrtSessionOptions`` fails here. The observations are counts and structure, not
timings, except where a cost differs tens of times (input sets) or a CPU-time budget does
(scheduler spin): the machines that run the suite are shared and noisy.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from inferspeed import Session, _core
from inferspeed.facts import ortlib

from .conftest import _model, _save, until

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/task"), reason="threads are counted in /proc/self/task (Linux)"
)

#: Intermediate tensors of the fan-out model, all alive until its Concat.
FAN_OUT = 8


def _conv_model(path: Path) -> str:
    """Add(A, B) of two initializers as a Conv's weight, then Relu: each optimisation level
    changes the nodes ORT runs. disable: Add, Conv, Relu; basic folds the constant Add;
    extended fuses Conv+Relu into FusedConv; all (99) turns the Conv into NCHWc layout
    (ReorderInput, com.microsoft.nchwc Conv, ReorderOutput) on CPUs with an NCHWc kernel."""
    rng = np.random.default_rng(0)
    weights = [nh.from_array(rng.random((16, 16, 3, 3), dtype=np.float32), n) for n in "AB"]
    graph = h.make_graph(
        [
            h.make_node("Add", ["A", "B"], ["W"]),
            h.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
            h.make_node("Relu", ["c"], ["y"]),
        ],
        "conv_relu",
        [h.make_tensor_value_info("x", T.FLOAT, [1, 16, 8, 8])],
        [h.make_tensor_value_info("y", T.FLOAT, [1, 16, 8, 8])],
        initializer=weights,
    )
    return _save(_model(graph), path)


def _fan_out_model(path: Path) -> str:
    """FAN_OUT Muls of the input, all alive until one Concat: FAN_OUT intermediate buffers per
    run, which a memory pattern plans as one block."""
    consts = [nh.from_array(np.full((1, 64), k + 1, np.float32), f"c{k}") for k in range(FAN_OUT)]
    nodes = [h.make_node("Mul", ["x", f"c{k}"], [f"t{k}"]) for k in range(FAN_OUT)]
    nodes.append(h.make_node("Concat", [f"t{k}" for k in range(FAN_OUT)], ["y"], axis=0))
    graph = h.make_graph(
        nodes,
        "fan_out",
        [h.make_tensor_value_info("x", T.FLOAT, [8, 64])],
        [h.make_tensor_value_info("y", T.FLOAT, [8 * FAN_OUT, 64])],
        initializer=consts,
    )
    return _save(_model(graph), path)


@pytest.fixture(scope="module")
def effect_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("effects")
    return {"conv": _conv_model(folder / "conv.onnx"), "fan_out": _fan_out_model(folder / "fan.onnx")}


# --- Threads: intra-op, inter-op, execution mode --------------------------------------------


def _tasks() -> set[str]:
    return set(os.listdir("/proc/self/task"))


@contextmanager
def _session_threads(model: str, **options: Any) -> Iterator[tuple[Session, list[str]]]:
    """A session made with ``options`` and the threads of this process it started (their ids).
    A session with one thread is open meanwhile: threads that the first session of a process
    starts once (the runtime's, numpy's) are there before."""
    with Session(model, threads=1):
        before = _tasks()
        with Session(model, **options) as s:
            yield s, sorted(_tasks() - before, key=int)


def _threads_started(model: str, **options: Any) -> int:
    with _session_threads(model, **options) as (_, started):
        return len(started)


def _counts(model: str, cases: dict[str, dict[str, Any]], expected: dict[str, int]) -> dict[str, int]:
    """Threads each case's session started; tried again when they differ from ``expected``
    (a thread of an earlier test that ends meanwhile)."""

    def check() -> tuple[bool, dict[str, int]]:
        found = {name: _threads_started(model, **options) for name, options in cases.items()}
        return found == expected, found

    return until(check)


def test_intra_op_threads_start_that_pool(models: dict[str, str]) -> None:
    """ORT's intra-op pool has N-1 threads (the calling thread is the N-th). Two sizes: a dropped
    option falls back to ORT's default, one per physical core, which cannot be both."""
    cases = {"1": {"threads": 1}, "4": {"threads": 4}}
    assert _counts(models["add"], cases, {"1": 0, "4": 3}) == {"1": 0, "4": 3}


def test_inter_op_threads_start_that_pool_in_parallel_mode(models: dict[str, str]) -> None:
    cases = {
        "2": {"threads": 1, "execution_mode": "parallel", "inter_op_threads": 2},
        "4": {"threads": 1, "execution_mode": "parallel", "inter_op_threads": 4},
    }
    assert _counts(models["add"], cases, {"2": 1, "4": 3}) == {"2": 1, "4": 3}


def test_execution_mode_decides_whether_there_is_an_inter_op_pool(models: dict[str, str]) -> None:
    """Sequential execution has no inter-op pool, whatever inter_op_threads says."""
    cases = {
        "sequential": {"threads": 1, "execution_mode": "sequential", "inter_op_threads": 3},
        "parallel": {"threads": 1, "execution_mode": "parallel", "inter_op_threads": 3},
    }
    expected = {"sequential": 0, "parallel": 2}
    assert _counts(models["add"], cases, expected) == expected


# --- Spinning: spin and session_config ---------------------------------------------------------


def _status(tid: str, field: str) -> int:
    with open(f"/proc/self/task/{tid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == field:
                return int(value)
    raise AssertionError(f"no {field} in /proc/self/task/{tid}/status")


def _pool_sleeps_per_call(model: str, calls: int, **options: Any) -> float:
    """Times per call the intra-op pool's thread went to sleep (voluntary context switches),
    over a closed loop of ``calls`` calls of a two-thread session."""
    with _session_threads(model, threads=2, **options) as (s, started):
        if len(started) != 1:  # another thread of this process came or went: try again
            return float("nan")
        before = _status(started[0], "voluntary_ctxt_switches")
        s._core.closed_loop(_core.CallMode.binding, max_iterations=calls)
        return (_status(started[0], "voluntary_ctxt_switches") - before) / calls


@pytest.mark.parametrize(
    ("off", "on"),
    [
        ({"spin": False}, {"spin": True}),
        (
            {"session_config": {"session.intra_op.allow_spinning": "0"}},
            {"session_config": {"session.intra_op.allow_spinning": "1"}},
        ),
    ],
    ids=["spin", "session_config"],
)
def test_spinning_decides_whether_the_pool_sleeps_between_kernels(
    models: dict[str, str], off: dict[str, Any], on: dict[str, Any]
) -> None:
    """mlp3 runs three Gemms a call, each split over the two threads. A pool thread that may not
    spin sleeps after its share of one (here 1.4 to 3 sleeps a call, 0.8 with the cores busy:
    it then often wakes too late for a share); one that spins waits awake for the next Gemm
    (0 here; it sleeps only when the next comes later than ORT's spin lasts)."""

    def check() -> tuple[bool, tuple[float, float]]:
        figures = (
            _pool_sleeps_per_call(models["mlp3"], 200, **off),
            _pool_sleeps_per_call(models["mlp3"], 200, **on),
        )
        return figures[0] >= 0.3 and figures[1] <= figures[0] / 4, figures

    sleeps_off, sleeps_on = until(check)
    assert sleeps_off >= 0.3 and sleeps_on <= sleeps_off / 4, (sleeps_off, sleeps_on)


# --- Graph optimisation and session config entries, in ORT's profile -------------------------


def _nodes_run(model: str, prefix: Path, **options: Any) -> set[tuple[str, str]]:
    """(operator type, execution provider) of the nodes ORT ran (its profile) in the session's
    first calls."""
    with Session(model, threads=1, profile_prefix=str(prefix), **options) as s:
        trace = s.end_profiling()
    assert trace is not None
    events = json.loads(Path(trace).read_text())
    return {
        (e["args"]["op_name"], e["args"].get("provider", "?"))
        for e in events
        if e.get("cat") == "Node" and "op_name" in e.get("args", {})
    }


def _op_types(model: str, prefix: Path, **options: Any) -> set[str]:
    return {op for op, _ in _nodes_run(model, prefix, **options)}


def _has_nchwc_kernel() -> bool:
    """x86-64 CPUs with AVX2 have MLAS's NCHWc convolution (level 99's layout transform)."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2" in f.read()
    except OSError:
        return False


def test_graph_optimization_level_changes_the_nodes_run(
    effect_models: dict[str, str], tmp_path: Path
) -> None:
    found = {
        level: _op_types(effect_models["conv"], tmp_path / level, graph_optimization=level)
        for level in ("disable", "basic", "extended", "all")
    }
    assert found["disable"] == {"Add", "Conv", "Relu"}
    assert found["basic"] == {"Conv", "Relu"}  # the constant Add folded
    assert found["extended"] == {"FusedConv"}  # Conv + Relu fused
    nchwc = {"ReorderInput", "Conv", "ReorderOutput"}
    if _has_nchwc_kernel():
        assert found["all"] == nchwc
    else:  # no NCHWc kernel: level 99 runs what level 2 does
        assert found["all"] in ({"FusedConv"}, nchwc)


def test_session_config_entries_reach_the_optimizer(effect_models: dict[str, str], tmp_path: Path) -> None:
    """optimization.disable_specified_optimizers names a graph transformer ORT then skips."""
    fused = _op_types(effect_models["conv"], tmp_path / "fused", graph_optimization="extended")
    unfused = _op_types(
        effect_models["conv"],
        tmp_path / "unfused",
        graph_optimization="extended",
        session_config={"optimization.disable_specified_optimizers": "ConvActivationFusion"},
    )
    assert (fused, unfused) == ({"FusedConv"}, {"Conv", "Relu"})


# --- Memory: arena and mem_pattern, by allocations counted in a child process ------------------

_COUNTER_C = r"""
#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static unsigned long plain, aligned;

unsigned long plain_allocs(void) { return __atomic_load_n(&plain, __ATOMIC_RELAXED); }
unsigned long aligned_allocs(void) { return __atomic_load_n(&aligned, __ATOMIC_RELAXED); }

static void count(unsigned long *n) { __atomic_fetch_add(n, 1, __ATOMIC_RELAXED); }

void *malloc(size_t n) { count(&plain); return __libc_malloc(n); }
void *calloc(size_t k, size_t n) { count(&plain); return __libc_calloc(k, n); }
void *realloc(void *p, size_t n) { count(&plain); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { count(&aligned); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { count(&aligned); return __libc_memalign(a, n); }
int posix_memalign(void **out, size_t a, size_t n) {
  count(&aligned);
  if (a < sizeof(void *) || (a & (a - 1)) != 0) return EINVAL;
  void *p = __libc_memalign(a, n);
  if (p == NULL && n != 0) return ENOMEM;
  *out = p;
  return 0;
}
"""

# Runs under LD_PRELOAD of the counter. ORT's CPU allocator takes its buffers with
# posix_memalign; the rest of ORT (and Python) use malloc. Per call: the difference between a
# loop of 110 calls and one of 10, over 100, so what a loop itself allocates cancels out.
_CHILD = textwrap.dedent(
    """
    import ctypes, json, sys
    import inferspeed
    from inferspeed import _core

    counter = ctypes.CDLL(sys.argv[1])
    counter.plain_allocs.restype = counter.aligned_allocs.restype = ctypes.c_ulong

    def counts():
        return counter.plain_allocs(), counter.aligned_allocs()

    def per_call(session, mode):
        loop = session._core.closed_loop
        loop(mode, max_iterations=5)
        a = counts()
        loop(mode, max_iterations=10)
        b = counts()
        loop(mode, max_iterations=110)
        c = counts()
        return [((c[i] - b[i]) - (b[i] - a[i])) / 100 for i in range(2)]

    found = []
    for arena in (True, False):
        for pattern in (True, False):
            with inferspeed.Session(sys.argv[2], threads=1, arena=arena, mem_pattern=pattern) as s:
                for mode in ("binding", "run"):
                    plain, aligned = per_call(s, getattr(_core.CallMode, mode))
                    found.append({"arena": arena, "mem_pattern": pattern, "mode": mode,
                                  "plain": plain, "aligned": aligned})
    print(json.dumps(found))
    """
)


@pytest.fixture(scope="module")
def allocations(
    effect_models: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    """Allocations per call of the fan-out model, for each arena / mem_pattern / call mode."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        pytest.skip("the allocation counter wraps glibc's allocator (LD_PRELOAD)")
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build the allocation counter")
    folder = tmp_path_factory.mktemp("alloc-counter")
    (folder / "counter.c").write_text(_COUNTER_C)
    lib = folder / "libcounter.so"
    built = subprocess.run(
        [cc, "-shared", "-fPIC", "-O2", "-o", str(lib), str(folder / "counter.c")],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    env = {**os.environ, "LD_PRELOAD": str(lib)}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(lib), effect_models["fan_out"]],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    found: list[dict[str, Any]] = json.loads(child.stdout)
    # The counter counts: ORT's Run allocates some small objects with malloc whatever the options.
    assert all(r["plain"] >= 1 for r in found), found
    return found


def _aligned(found: list[dict[str, Any]], arena: bool, mem_pattern: bool, mode: str) -> float:
    (row,) = [r for r in found if (r["arena"], r["mem_pattern"], r["mode"]) == (arena, mem_pattern, mode)]
    return float(row["aligned"])


@pytest.mark.parametrize("mode", ["binding", "run"])
def test_arena_keeps_buffers_from_one_call_to_the_next(allocations: list[dict[str, Any]], mode: str) -> None:
    """With the arena ORT takes no new buffer in a steady call; without it, at least one (the
    planned block, or one per intermediate tensor)."""
    for pattern in (True, False):
        assert _aligned(allocations, True, pattern, mode) == 0, allocations
        assert _aligned(allocations, False, pattern, mode) >= 1, allocations


@pytest.mark.parametrize("mode", ["binding", "run"])
def test_mem_pattern_plans_one_block_per_call(allocations: list[dict[str, Any]], mode: str) -> None:
    """Without the arena, so that every buffer is a posix_memalign: the memory pattern takes one
    block for the FAN_OUT intermediate tensors, none takes one each ("run" mode: plus the
    output, which Run allocates every call)."""
    planned = _aligned(allocations, False, True, mode)
    unplanned = _aligned(allocations, False, False, mode)
    assert planned <= 2 and unplanned - planned >= FAN_OUT - 1, allocations


# --- Input sets: the loop cycles through them --------------------------------------------------


#: The Loop model's inputs: the trip count n drawn per input set.
_LOOP_INPUTS: dict[str, Any] = {"values": {"cond": True}, "ranges": {"n": (1, 3000)}}


@pytest.fixture(scope="module")
def spread_seed(models: dict[str, str]) -> tuple[int, list[int]]:
    """A seed whose three input sets draw trip counts at least 4x apart, and those counts."""
    for seed in range(200):
        with Session(models["loop"], threads=1, input_sets=3, seed=seed, **_LOOP_INPUTS) as s:
            trips = [int(arrays["n"]) for arrays in s.input_sets]
        low, mid, high = sorted(trips)
        if mid >= 4 * low and high >= 4 * mid:
            return seed, trips
    raise AssertionError("no seed in 0..199 draws trip counts 4x apart")


@pytest.mark.parametrize("mode", ["binding", "run"])
def test_input_sets_are_cycled_call_by_call(
    models: dict[str, str], spread_seed: tuple[int, list[int]], mode: str
) -> None:
    """The Loop model runs its body ``n`` times, ``n`` drawn per set: call i runs set i mod 3,
    so the calls at positions k mod 3 cost what set k's trip count says. A loop that stays on
    one set (or cycles fewer) gives the three positions one cost."""
    seed, trips = spread_seed
    order = sorted(range(3), key=lambda k: trips[k])  # sets from the fewest trips to the most

    with Session(models["loop"], threads=1, input_sets=3, seed=seed, **_LOOP_INPUTS) as s:

        def check() -> tuple[bool, list[float]]:
            r = s.measure(mode=mode, iterations=30, warmup_iterations=0, max_time=None, warmup_time=None)
            medians = [float(np.median(r.samples_ns[k::3])) for k in range(3)]
            cheap, mid, dear = (medians[k] for k in order)
            return mid > 2 * cheap and dear > 2 * mid, medians

        medians = until(check)
    cheap, mid, dear = (medians[k] for k in order)
    assert mid > 2 * cheap and dear > 2 * mid, {"trips": trips, "median_ns": medians}


@pytest.mark.parametrize("scenario", ["server", "offline"])
def test_input_sets_are_cycled_by_the_scenarios_workers_too(
    models: dict[str, str], spread_seed: tuple[int, list[int]], scenario: str
) -> None:
    """A worker of a server or offline run cycles through the input sets as the closed loop
    does (it stayed on set k mod N: with one worker, on set 0 only). One worker, light load:
    request i runs set i mod 3, so its service time follows that set's trip count."""
    seed, trips = spread_seed
    order = sorted(range(3), key=lambda k: trips[k])
    load = {"qps": 40.0} if scenario == "server" else {}
    with Session(models["loop"], threads=1, input_sets=3, seed=seed, **_LOOP_INPUTS) as s:

        def check() -> tuple[bool, list[float]]:
            r = s.measure(scenario=scenario, duration=0.5, concurrency=1, warmup_time=0.0, **load)
            x = r.samples_ns
            medians = [float(np.median(x[k::3])) for k in range(3)]
            cheap, mid, dear = (medians[k] for k in order)
            return mid > 2 * cheap and dear > 2 * mid, medians

        medians = until(check)
    cheap, mid, dear = (medians[k] for k in order)
    assert mid > 2 * cheap and dear > 2 * mid, {"trips": trips, "median_ns": medians}


# --- The server scenario's scheduler spin ------------------------------------------------------


def test_scheduler_spin_is_spent_spinning(models: dict[str, str]) -> None:
    """A server run of 50 requests a second (one every 20 ms) for 0.5 s: idle workers spin the
    last scheduler_spin before each arrival. 18 ms of spin a request burns CPU time (here about
    0.3 s, 0.06 s with the cores busy); none leaves what the run costs anyway (0.01 to 0.02 s)."""

    def cpu(spin: float) -> float:
        with Session(models["add"], threads=1, scheduler_spin=spin, warmup_iterations=2) as s:
            s.measure(iterations=2)  # the environment captured, outside the measured CPU time
            start = time.process_time()
            s.measure(scenario="server", qps=50, arrival="constant", duration=0.5)
            return time.process_time() - start

    def check() -> tuple[bool, tuple[float, float]]:
        figures = (cpu(0.0), cpu(0.018))
        return figures[1] > 3 * figures[0], figures

    still, spun = until(check)
    assert spun > 3 * still, (still, spun)


# --- Which library, which execution providers --------------------------------------------------


def _mapped_files() -> set[str]:
    with open("/proc/self/maps") as f:
        return {fields[5].strip() for fields in (line.split(maxsplit=5) for line in f) if len(fields) == 6}


def test_ort_lib_is_the_library_loaded(models: dict[str, str], tmp_path: Path) -> None:
    wheel = ortlib.wheel_library()
    if wheel is None:
        pytest.skip("no onnxruntime wheel to copy the library from")
    copy = tmp_path / "libonnxruntime-copy.so"
    shutil.copy(wheel, copy)
    assert str(copy) not in _mapped_files()
    with Session(models["add"], threads=1, ort_lib=str(copy)):
        assert str(copy) in _mapped_files()


def test_a_generic_provider_is_appended(models: dict[str, str]) -> None:
    """The Azure provider is in every CPU wheel. It claims no node of a local model, so ORT's
    verdict on the append call is all there is to see of it here."""
    if "AzureExecutionProvider" not in ortlib.load_runtime().available_providers():
        pytest.skip("this ONNX Runtime has no Azure execution provider")
    with Session(models["add"], threads=1, providers=["AzureExecutionProvider"]) as s:
        assert s.measure(iterations=3, warmup_iterations=0, max_time=None).stats.count == 3


def test_the_cuda_provider_runs_the_nodes(models: dict[str, str], tmp_path: Path) -> None:
    """Where ORT has CUDA and the machine a GPU: the nodes run on CUDAExecutionProvider with
    it and on the CPU without."""
    if "CUDAExecutionProvider" not in ortlib.load_runtime().available_providers():
        pytest.skip("this ONNX Runtime has no CUDA execution provider")
    if not os.path.exists("/dev/nvidiactl"):
        pytest.skip("no NVIDIA GPU")
    cpu = {ep for _, ep in _nodes_run(models["mlp3"], tmp_path / "cpu")}
    gpu = {ep for _, ep in _nodes_run(models["mlp3"], tmp_path / "gpu", providers=["CUDA"])}
    assert cpu == {"CPUExecutionProvider"} and "CUDAExecutionProvider" in gpu, (cpu, gpu)
