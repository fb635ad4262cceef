"""The compiled core: runtime loading, clock, sessions, loops, the GIL, errors."""

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from inferspeed import InferspeedError, ModelError, OrtError, RuntimeLoadError, Session, _core
from inferspeed.facts import ortlib as _ortlib

from .child_events import Events
from .conftest import FAST


def test_runtime_loads_the_wheel_library() -> None:
    rt = _ortlib.load_runtime()
    assert os.path.basename(rt.path).startswith("libonnxruntime")
    assert "onnxruntime" in rt.path and rt.version.count(".") == 2
    assert "CPUExecutionProvider" in rt.available_providers()
    assert _core.Runtime.api_version == 12


def test_runtime_load_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeLoadError, match="does not exist"):
        _ortlib.find_library(str(tmp_path / "missing.so"))
    not_ort = tmp_path / "libnot.so"
    not_ort.write_bytes(b"\x7fELF garbage")
    with pytest.raises(RuntimeLoadError, match="cannot load ONNX Runtime library"):
        _core.Runtime.load(str(not_ort))


def test_explicit_library_via_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    wheel = _ortlib.wheel_library()
    assert wheel is not None
    copy = tmp_path / "libonnxruntime.so.copy"
    shutil.copy(wheel, copy)
    monkeypatch.setenv(_ortlib.ENV_VAR, str(copy))
    assert _ortlib.find_library() == str(copy)
    assert _ortlib.find_library(wheel) == wheel  # an explicit path wins over the variable


def test_clock_overhead_is_measured() -> None:
    info = _core.measure_clock(10_000)
    assert 0 < info["overhead_ns"] < 2_000
    assert info["resolution_ns"] >= 1 and info["samples"] == 10_000
    a = _core.now_ns()
    b = _core.now_ns()
    assert b >= a


def test_iteration_limit_is_exact(models: dict[str, str]) -> None:
    with Session(models["add"], threads=1, warmup_iterations=3) as s:
        r = s.measure(iterations=1234, max_time=None)
        assert r.stats.count == 1234 and r.samples_ns.dtype == np.int64
        assert r.warmup["iterations"] == 3
        assert (r.samples_ns > 0).all()


def test_time_limit_is_honoured(
    models: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = Events.of_this_process(monkeypatch, tmp_path / "events.jsonl")
    with Session(models["mlp3"], threads=1) as s:
        r = s.measure(max_time=0.3, warmup_time=0.05)
        ended = time.time()
    busy = r.samples_ns.sum() / 1e9
    assert 0.2 < busy <= 0.3 + r.stats.max_ns / 1e9
    # From the start of the timed loop (the session reports it) to the result: the loop's 0.3 s
    # and its statistics, well under a second even on a loaded machine. A loop that ran past
    # its limit (to the 2 s default, say, with the time between calls not counted) fails.
    assert ended - events.last("timed")["time"] < 1.5


def test_whichever_limit_comes_first(models: dict[str, str]) -> None:
    with Session(models["add"], threads=1, **FAST) as s:
        assert s.measure(iterations=50, max_time=5.0).stats.count == 50
        slow = s.measure(iterations=10**9, max_time=0.1)
        assert 1000 < slow.stats.count < 10**9


def test_samples_match_numpy_statistics(models: dict[str, str]) -> None:
    with Session(models["add"], threads=1, **FAST) as s:
        r = s.measure()
    x = r.samples_ns.astype(float)
    assert r.stats.median_ns == pytest.approx(np.median(x))
    assert r.stats.p99_ns == pytest.approx(np.percentile(x, 99))
    assert r.stats.mean_ns == pytest.approx(x.mean())
    assert not r.samples_ns.flags.writeable


def test_gil_released_during_the_loop(models: dict[str, str]) -> None:
    """A Python thread keeps running while the C++ loop measures."""
    with Session(models["add"], threads=1, warmup_iterations=0) as s:
        ticks = 0
        stop = threading.Event()

        def spin() -> None:
            nonlocal ticks
            while not stop.is_set():
                ticks += 1

        worker = threading.Thread(target=spin)
        worker.start()
        try:
            s.measure(max_time=0.5)
        finally:
            stop.set()
            worker.join()
    # Holding the GIL for 0.5 s would leave the thread a few switch intervals (5 ms each).
    assert ticks > 100_000


def test_inputs_are_bound_without_copy(models: dict[str, str]) -> None:
    with Session(models["add"], threads=1, values={"x": 2.0}, **FAST) as s:
        array = s.input_arrays["x"]
        assert array.flags.c_contiguous and float(array[0, 0]) == 2.0
        before = s.measure(iterations=200).stats.median_ns
        assert before > 0


def test_outputs_preallocated_for_tensors_and_fallback(models: dict[str, str]) -> None:
    with Session(models["mlp3"], threads=1) as s:
        r = s.measure(iterations=10)
        assert r.session["outputs_preallocated"] is True
        assert r.session["create_ns"] > 0 and r.session["first_run_ns"] > 0
    with Session(models["sequence_output"]) as s:
        assert s.measure(iterations=10).session["outputs_preallocated"] is False


def test_model_errors(tmp_path, models: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelError, match="not found"):
        Session(tmp_path / "nope.onnx")
    with pytest.raises(ModelError, match=r"is a directory, not an ONNX model file: it holds no \.onnx file"):
        Session(tmp_path)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(Path(models["mlp3"]).read_bytes())
    with pytest.raises(ModelError, match=r"give one of the models it holds \(.*export/model.onnx\)"):
        Session(folder)
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelError, match="is empty"):
        Session(tmp_path / "empty.onnx")
    (tmp_path / "junk.onnx").write_bytes(os.urandom(4096))
    with pytest.raises(ModelError, match="cannot load model"):
        Session(tmp_path / "junk.onnx")
    data = Path(models["mlp3"]).read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError):
        Session(tmp_path / "cut.onnx")


def test_ort_errors_carry_code(models: dict[str, str]) -> None:
    rt = _ortlib.load_runtime()
    with pytest.raises(OrtError) as info:
        _core.Session(rt, "/definitely/not/here.onnx")
    assert info.value.code == 3  # ORT_NO_SUCHFILE
    assert "/definitely/not/here.onnx" in str(info.value)  # ONNX Runtime's message, passed on


def test_prepare_required_and_unbound_inputs(models: dict[str, str]) -> None:
    rt = _ortlib.load_runtime()
    s = _core.Session(rt, models["add"])
    with pytest.raises(RuntimeError, match="not prepared"):
        s.closed_loop(_core.CallMode.binding, max_iterations=1)
    with pytest.raises(ValueError, match="has no value bound"):
        s.prepare()
    with pytest.raises(ValueError, match="no input named"):
        s.bind_input("nope", np.zeros((1, 16), np.float32), 1, [1, 16])


FAKE_OLD_RUNTIME = r"""
#include <stddef.h>
#include <stdint.h>
typedef struct { const void* (*GetApi)(uint32_t); const char* (*GetVersionString)(void); } Base;
static const void* get_api(uint32_t version) { return version <= 11 ? (const void*)1 : NULL; }
static const char* version(void) { return "1.11.1"; }
static const Base base = {get_api, version};
const Base* OrtGetApiBase(void) { return &base; }
"""


def test_runtime_too_old_names_both_versions(tmp_path: Path) -> None:
    """A library serving only C API 11 is refused, naming its version and the one needed."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    src = tmp_path / "fake_ort.c"
    src.write_text(FAKE_OLD_RUNTIME)
    lib = tmp_path / "libonnxruntime.so.1.11.1"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    with pytest.raises(RuntimeLoadError) as info:
        _core.Runtime.load(str(lib))
    message = str(info.value)
    assert "1.11.1" in message and "C API version 12" in message and "1.12 or newer" in message


def test_closed_session_refuses_to_measure(models: dict[str, str]) -> None:
    s = Session(models["add"])
    s.close()
    with pytest.raises(InferspeedError, match="closed"):
        s.measure(iterations=1)
