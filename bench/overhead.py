#!/usr/bin/env python3
"""What inferspeed's numbers cost over a bare C loop, and how they compare with Python loops.

For a ~1 µs model (one Add on [1, 16]) and a 0.1-0.2 ms MLP (3 x 512, batch 8), all with one
intra-op thread, this times in interleaved rounds (every method once per round, the order
rotated each round) within one process:

  bare C RunWithBinding   bench/bare_loop.c: clock_gettime pairs around RunWithBinding
  bare C Run              the same around Run (outputs allocated by ORT, released after timing)
  inferspeed binding      inferspeed.Session(mode="binding").measure()
  inferspeed run          inferspeed.Session(mode="run").measure()
  python sess.run         onnxruntime.InferenceSession.run, perf_counter_ns around each call
  python run_with_iobinding  run_with_iobinding on an input and output bound once
  python timeit sess.run  timeit.Timer(...).repeat(): one per-call mean per round

Every method has its own session with the same options (1 intra-op thread, sequential
execution, graph optimization level ALL) and the same all-ones input. bare_loop.c is compiled
with ``cc`` into bench/out/ on first use; the C API headers are found like the build finds them.

    python bench/overhead.py [--rounds N] [--iterations N] [--mlp-iterations N] [--quick]
                             [--json PATH]
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import onnx
import onnxruntime as ort

import inferspeed
from inferspeed.facts import models
from inferspeed.facts import ortlib as _ortlib
from inferspeed.facts.environment import capture_environment

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"
HEADER = "onnxruntime_c_api.h"
CFLAGS = ("-std=c11", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC")
THREADS = 1


class Length(NamedTuple):
    rounds: int
    iterations: int  # per method per round, tiny model
    mlp_iterations: int


# Many short rounds: on a shared VM the speed of a core can change for seconds at a time, and a
# round that stays within one such period compares its methods fairly.
FULL = Length(rounds=90, iterations=5_000, mlp_iterations=300)
QUICK = Length(rounds=16, iterations=3_000, mlp_iterations=150)


# --------------------------------------------------------------------------------------------
# The bare C loop


def _cache_dir() -> Path:
    """Where the build caches fetched headers (same order as cmake/OnnxRuntimeHeaders.cmake)."""
    if os.environ.get("INFERSPEED_CACHE_DIR"):
        return Path(os.environ["INFERSPEED_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "inferspeed"
    return Path.home() / ".cache" / "inferspeed"


def find_ort_headers() -> Path:
    """Directory holding onnxruntime_c_api.h: $ONNXRUNTIME_INCLUDE_DIR, the system's, then
    cmake/fetch_ort_headers.py (which answers from its cache when it has fetched them before)."""
    explicit = os.environ.get("ONNXRUNTIME_INCLUDE_DIR")
    if explicit:
        for d in (Path(explicit), Path(explicit) / "onnxruntime"):
            if (d / HEADER).is_file():
                return d
        sys.exit(f"ONNXRUNTIME_INCLUDE_DIR={explicit} has no {HEADER}")
    for d in (Path("/usr/include/onnxruntime"), Path("/usr/local/include/onnxruntime")):
        if (d / HEADER).is_file():
            return d
    fetched = subprocess.run(
        [sys.executable, str(REPO_DIR / "cmake" / "fetch_ort_headers.py"), str(_cache_dir())],
        capture_output=True,
        text=True,
        check=False,
    )
    d = Path(fetched.stdout.strip())
    if fetched.returncode == 0 and (d / HEADER).is_file():
        return d
    sys.exit(
        f"ONNX Runtime's {HEADER} was not found ({fetched.stderr.strip()}); "
        "set ONNXRUNTIME_INCLUDE_DIR to the directory that holds it"
    )


def build_bare_loop() -> Path:
    """bench/out/bare_loop-<hash>.so, compiled unless a build of this source exists."""
    return build_c_library("bare_loop")


def build_c_library(name: str) -> Path:
    """bench/out/<name>-<hash>.so from bench/<name>.c against ONNX Runtime's C API headers,
    compiled unless a build of this source (and compiler and flags) exists."""
    source = BENCH_DIR / f"{name}.c"
    include = find_ort_headers()
    cc = shlex.split(os.environ.get("CC", "cc"))
    key = hashlib.sha256(source.read_bytes() + "\0".join([*cc, str(include), *CFLAGS]).encode()).hexdigest()[
        :12
    ]
    lib = OUT_DIR / f"{name}-{key}.so"
    if lib.is_file():
        return lib
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tmp = lib.with_suffix(f".{os.getpid()}.tmp")
    cmd = [*cc, *CFLAGS, f"-I{include}", str(source), "-o", str(tmp), "-ldl"]
    built = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if built.returncode != 0:
        sys.exit(f"compiling {name}.c failed:\n{shlex.join(cmd)}\n{built.stderr}")
    if built.stderr:
        print(f"warnings compiling {name}.c:\n{built.stderr}", file=sys.stderr)
    tmp.replace(lib)
    return lib


class BareLoop:
    """One bare_loop.c context: a session with its input (and output) bound, for one mode."""

    _ERRLEN = 4096

    def __init__(
        self,
        lib: ctypes.CDLL,
        ort_lib: str,
        model_path: str,
        input_name: str,
        shape: Sequence[int],
        output_name: str,
        mode: int,
    ) -> None:
        self._lib = lib
        self._mode = mode
        err = ctypes.create_string_buffer(self._ERRLEN)
        dims = (ctypes.c_int64 * len(shape))(*shape)
        ctx = lib.bare_open(
            ort_lib.encode(),
            model_path.encode(),
            input_name.encode(),
            dims,
            len(shape),
            output_name.encode(),
            THREADS,
            err,
            self._ERRLEN,
        )
        if not ctx:
            raise RuntimeError(f"bare_open: {err.value.decode()}")
        self._ctx: int | None = ctx

    @staticmethod
    def load(path: Path) -> ctypes.CDLL:
        lib = ctypes.CDLL(str(path))
        i64, size, buf = ctypes.c_int64, ctypes.c_size_t, ctypes.c_char_p
        lib.bare_open.restype = ctypes.c_void_p
        lib.bare_open.argtypes = [buf, buf, buf, ctypes.POINTER(i64), size, buf, ctypes.c_int, buf, size]
        lib.bare_measure.restype = ctypes.c_int
        lib.bare_measure.argtypes = [ctypes.c_void_p, ctypes.c_int, i64, i64, ctypes.POINTER(i64), buf, size]
        lib.bare_close.restype = None
        lib.bare_close.argtypes = [ctypes.c_void_p]
        return lib

    def measure(self, iterations: int, warmup: int) -> np.ndarray:
        samples = np.zeros(iterations, np.int64)
        err = ctypes.create_string_buffer(self._ERRLEN)
        out = samples.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))
        if self._lib.bare_measure(self._ctx, self._mode, warmup, iterations, out, err, self._ERRLEN) != 0:
            raise RuntimeError(f"bare_measure: {err.value.decode()}")
        return samples

    def close(self) -> None:
        if self._ctx is not None:
            self._lib.bare_close(self._ctx)
            self._ctx = None


# --------------------------------------------------------------------------------------------
# The methods


Measure = Callable[[int, int], np.ndarray]  # (iterations, warmup) -> latencies in ns


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    per_call: bool  # False: one per-call mean per round (timeit), not one sample per call


METHODS = (
    Method("bare_binding", "bare C RunWithBinding", True),
    Method("bare_run", "bare C Run", True),
    Method("inferspeed_binding", "inferspeed binding", True),
    Method("inferspeed_run", "inferspeed run", True),
    Method("python_run", "python sess.run", True),
    Method("python_iobinding", "python run_with_iobinding", True),
    Method("python_timeit", "python timeit sess.run (mean)", False),
)


@dataclass(frozen=True)
class Ratio:
    key: str
    numerator: str
    denominator: str
    low: float | None = None  # bounds of an acceptance check on the paired ratio
    high: float | None = None

    @property
    def label(self) -> str:
        labels = {m.key: m.label for m in METHODS}
        return f"{labels[self.numerator]} / {labels[self.denominator]}"


@dataclass(frozen=True)
class ModelSpec:
    key: str
    description: str
    model: onnx.ModelProto
    shape: tuple[int, ...]
    iterations: int
    tolerance: float  # inferspeed vs bare C, either mode
    min_python_speedup: float | None  # python sess.run / inferspeed, both modes


def ratios_for(spec: ModelSpec) -> list[Ratio]:
    lo, hi = 1 - spec.tolerance, 1 + spec.tolerance
    speedup = spec.min_python_speedup
    return [
        Ratio("inferspeed_binding/bare_binding", "inferspeed_binding", "bare_binding", lo, hi),
        Ratio("inferspeed_run/bare_run", "inferspeed_run", "bare_run", lo, hi),
        Ratio("python_run/inferspeed_binding", "python_run", "inferspeed_binding", speedup),
        Ratio("python_run/inferspeed_run", "python_run", "inferspeed_run", speedup),
        Ratio("python_iobinding/inferspeed_binding", "python_iobinding", "inferspeed_binding"),
        Ratio("python_timeit/inferspeed_binding", "python_timeit", "inferspeed_binding"),
    ]


def python_session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def per_call_loop(call: Callable[[], object]) -> Measure:
    def measure(iterations: int, warmup: int) -> np.ndarray:
        for _ in range(warmup):
            call()
        clock = time.perf_counter_ns
        samples = [0] * iterations
        for i in range(iterations):
            t0 = clock()
            call()
            t1 = clock()
            samples[i] = t1 - t0
        return np.array(samples, np.int64)

    return measure


def timeit_loop(call: Callable[[], object]) -> Measure:
    timer = timeit.Timer(call)

    def measure(iterations: int, warmup: int) -> np.ndarray:
        timer.timeit(warmup)
        (total_s,) = timer.repeat(repeat=1, number=iterations)
        return np.array([total_s * 1e9 / iterations])

    return measure


class Harness:
    """Every method's session for one model, kept across rounds."""

    def __init__(self, bare_lib: ctypes.CDLL, ort_lib: str, path: str, shape: tuple[int, ...]) -> None:
        probe = python_session(path)
        in_name, out_name = probe.get_inputs()[0].name, probe.get_outputs()[0].name
        x = np.ones(shape, np.float32)
        feed = {in_name: x}
        y_shape = probe.run([out_name], feed)[0].shape
        del probe

        self.bare = [BareLoop(bare_lib, ort_lib, path, in_name, shape, out_name, mode) for mode in (0, 1)]
        self.inferspeed = [
            inferspeed.Session(path, threads=THREADS, mode=mode, values={in_name: 1.0}, ort_lib=ort_lib)
            for mode in ("binding", "run")
        ]
        run_sess, io_sess, timeit_sess = (python_session(path) for _ in range(3))
        io = io_sess.io_binding()
        io.bind_cpu_input(in_name, x)
        self._y = ort.OrtValue.ortvalue_from_numpy(np.empty(y_shape, np.float32))
        io.bind_ortvalue_output(out_name, self._y)

        def inferspeed_measure(session: inferspeed.Session) -> Measure:
            return lambda n, w: session.measure(iterations=n, warmup_iterations=w).samples_ns

        self.measures: dict[str, Measure] = {
            "bare_binding": self.bare[0].measure,
            "bare_run": self.bare[1].measure,
            "inferspeed_binding": inferspeed_measure(self.inferspeed[0]),
            "inferspeed_run": inferspeed_measure(self.inferspeed[1]),
            "python_run": per_call_loop(lambda: run_sess.run([out_name], feed)),
            "python_iobinding": per_call_loop(lambda: io_sess.run_with_iobinding(io)),
            "python_timeit": timeit_loop(lambda: timeit_sess.run([out_name], feed)),
        }

    def close(self) -> None:
        for b in self.bare:
            b.close()
        for s in self.inferspeed:
            s.close()


# --------------------------------------------------------------------------------------------
# Statistics and the report


def summary(x: np.ndarray) -> dict[str, float]:
    """Count, percentiles, mean, min and max of x (in x's unit: ns for latencies)."""
    p10, p25, p50, p75, p90 = np.percentile(x.astype(np.float64), [10, 25, 50, 75, 90])
    return {
        "n": int(x.size),
        "median": p50,
        "p10": p10,
        "p25": p25,
        "p75": p75,
        "p90": p90,
        "mean": float(x.mean()),
        "min": float(x.min()),
        "max": float(x.max()),
    }


def bootstrap_ci(x: np.ndarray, resamples: int = 2000) -> tuple[float, float]:
    """95% bootstrap interval of the median of x (resampling its elements; fixed seed)."""
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(x, size=(resamples, x.size)), axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(low), float(high)


def run_model(spec: ModelSpec, harness: Harness, rounds: int, warmup: int) -> dict[str, Any]:
    samples: dict[str, list[np.ndarray]] = {m.key: [] for m in METHODS}
    orders: list[list[str]] = []
    for r in range(rounds):
        k = r % len(METHODS)
        order = [m.key for m in METHODS[k:] + METHODS[:k]]
        orders.append(order)
        if sys.stderr.isatty():
            print(f"\r  {spec.key}: round {r + 1}/{rounds}", end="", file=sys.stderr, flush=True)
        elif (r + 1) % 10 == 0 or r + 1 == rounds:
            print(f"  {spec.key}: round {r + 1}/{rounds}", file=sys.stderr, flush=True)
        for key in order:
            samples[key].append(harness.measures[key](spec.iterations, warmup))

    if sys.stderr.isatty():
        print(file=sys.stderr)
    methods: dict[str, Any] = {}
    for m in METHODS:
        per_round = [summary(s) for s in samples[m.key]]
        round_medians = np.array([s["median"] for s in per_round])
        methods[m.key] = {
            "label": m.label,
            "per_call_samples": m.per_call,
            "pooled": summary(np.concatenate(samples[m.key])),
            "round_medians": summary(round_medians),
            "rounds": per_round,
        }
    ratios: dict[str, Any] = {}
    for ratio in ratios_for(spec):
        num, den = methods[ratio.numerator], methods[ratio.denominator]
        round_ratios = np.array(
            [a["median"] / b["median"] for a, b in zip(num["rounds"], den["rounds"], strict=True)]
        )
        paired = float(np.median(round_ratios))
        entry: dict[str, Any] = {
            "label": ratio.label,
            "median_of_round_ratios": paired,
            "median_of_round_ratios_ci95": list(bootstrap_ci(round_ratios)),
            "round_ratios": summary(round_ratios),
            "per_round": round_ratios.tolist(),
            "pooled_median_ratio": num["pooled"]["median"] / den["pooled"]["median"],
            "pooled_p10_ratio": num["pooled"]["p10"] / den["pooled"]["p10"],
        }
        if ratio.low is not None:
            bound = ratio.high if ratio.high is not None else float("inf")
            entry["check"] = {"low": ratio.low, "high": ratio.high, "passed": ratio.low <= paired <= bound}
        ratios[ratio.key] = entry
    return {
        "description": spec.description,
        "input_shape": list(spec.shape),
        "iterations_per_round": spec.iterations,
        "warmup_per_round": warmup,
        "rounds": rounds,
        "order": orders,
        "methods": methods,
        "ratios": ratios,
    }


def us(ns: float) -> str:
    return f"{ns / 1e3:9.3f}"


def print_model(spec: ModelSpec, out: dict[str, Any]) -> None:
    print(
        f"\n== {spec.description}: {out['rounds']} rounds x {spec.iterations} timed calls "
        f"(+{out['warmup_per_round']} warm-up) per method =="
    )
    print(
        f"{'method':<32}{'median':>9} {'p10':>9} {'p90':>9} {'mean':>9}   {'round medians p25-p75':>21}  (µs)"
    )
    for m in METHODS:
        r = out["methods"][m.key]
        p, rm = r["pooled"], r["round_medians"]
        print(
            f"{m.label:<32}{us(p['median'])} {us(p['p10'])} {us(p['p90'])} "
            f"{us(p['mean'])}   {us(rm['p25'])} -{us(rm['p75'])}"
        )
    print("\nratios. paired: the median over rounds of (numerator's median / denominator's median in")
    print("the same round), with its 95% bootstrap interval; the checks use it. pooled: ratio of")
    print("the medians, and of the p10s, of all samples.")
    print(f"{'ratio':<52}{'paired':>8}{'95% interval':>17}{'pooled':>8}{'p10':>7}   check")
    for entry in out["ratios"].values():
        low, high = entry["median_of_round_ratios_ci95"]
        check = ""
        if "check" in entry:
            c = entry["check"]
            bound = f"in [{c['low']:.2f}, {c['high']:.2f}]" if c["high"] else f">= {c['low']:.1f}"
            check = f"{bound}: {'PASS' if c['passed'] else 'FAIL'}"
        print(
            f"{entry['label']:<52}{entry['median_of_round_ratios']:8.3f}"
            f"{low:10.3f} -{high:6.3f}{entry['pooled_median_ratio']:8.3f}"
            f"{entry['pooled_p10_ratio']:7.3f}   {check}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, help=f"interleaved rounds (default {FULL.rounds}; --quick: {QUICK.rounds})"
    )
    parser.add_argument(
        "--iterations",
        type=int,
        help="timed calls per method per round on the tiny model "
        f"(default {FULL.iterations}; --quick: {QUICK.iterations})",
    )
    parser.add_argument(
        "--mlp-iterations",
        type=int,
        help="timed calls per method per round on the MLP "
        f"(default {FULL.mlp_iterations}; --quick: {QUICK.mlp_iterations})",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of about 10 s")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every number here")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    rounds, iterations, mlp_iterations = (
        default if given is None else given
        for given, default in zip((args.rounds, args.iterations, args.mlp_iterations), base, strict=True)
    )
    if min(rounds, iterations, mlp_iterations) < 1:
        parser.error("--rounds and the iteration counts must be positive")

    ort_lib = _ortlib.find_library()
    runtime = _ortlib.load_runtime(ort_lib)
    env = capture_environment(runtime)
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"onnxruntime: python module {ort.__version__}; C API library {runtime.version} at {ort_lib}")
    print(
        f"cpu: {env['cpu']['model']} ({env['cpu']['logical_cores']} logical cores); "
        f"intra-op threads: {THREADS}; clock pair overhead: {env['clock']['overhead_ns']} ns"
    )
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    bare_lib = BareLoop.load(build_bare_loop())
    specs = [
        ModelSpec(
            key="add16",
            description="add [1,16] (~1 µs)",
            model=models.add_model(width=16, batch=1),
            shape=(1, 16),
            iterations=iterations,
            tolerance=0.05,
            min_python_speedup=2.0,
        ),
        ModelSpec(
            key="mlp3x512",
            description="MLP 3x512, batch 8",
            model=models.mlp_model(layers=3, width=512, batch=8),
            shape=(8, 512),
            iterations=mlp_iterations,
            tolerance=0.02,
            min_python_speedup=None,
        ),
    ]
    report: dict[str, Any] = {
        "command_line": [sys.executable, *sys.argv],
        "onnxruntime": {
            "python_module": ort.__version__,
            "library": ort_lib,
            "library_version": runtime.version,
        },
        "environment": env,
        "threads": THREADS,
        "models": {},
    }
    with tempfile.TemporaryDirectory(prefix="inferspeed-overhead-") as tmp:
        for spec in specs:
            path = os.path.join(tmp, f"{spec.key}.onnx")
            onnx.save(spec.model, path)
            harness = Harness(bare_lib, ort_lib, path, spec.shape)
            try:
                warmup = max(100, spec.iterations // 10)
                report["models"][spec.key] = run_model(spec, harness, rounds, warmup)
            finally:
                harness.close()
            print_model(spec, report["models"][spec.key])

    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    passed = all(
        e["check"]["passed"] for m in report["models"].values() for e in m["ratios"].values() if "check" in e
    )
    print(f"\nacceptance checks: {'all passed' if passed else 'FAILED'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
