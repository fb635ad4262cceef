"""Models the tests make themselves (onnx.helper), written once per session."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from inferspeed.facts.models import add_model, mlp_model


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C reaches the processes the tests start. A shell that starts a job in the background
    without job control (``.ci/run &``, nohup) makes it ignore SIGINT, and an ignored signal stays
    ignored across exec: every inferspeed the tests start would then ignore the Ctrl-C that the
    interrupt tests send (and this process the one they raise in-process), and run to the end.
    A handler of Python's own is reset to the default in a child, whose Python then installs
    its KeyboardInterrupt handler as usual."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """MAC counts are cached on disk (facts/maccache.py): the tests' go to a folder of their own,
    not the user's ~/.cache, and every run starts with an empty cache. Set in os.environ so the
    processes the tests start use it too. The machine's history of runs (facts/history.py) is
    off: a test's interval must not depend on the tests before it; a test that checks the
    history turns it on for itself."""
    import os

    os.environ["INFERSPEED_CACHE_DIR"] = str(tmp_path_factory.mktemp("inferspeed-cache"))
    os.environ["INFERSPEED_HISTORY"] = "0"


# Short measurement windows keep the suite fast; real measurements live in bench/.
FAST = {"warmup_time": 0.02, "max_time": 0.2}
#: Attempts a timing assertion gets. The development and CI machines are shared VMs whose cores
#: switch speed for seconds at a time; a measurement that straddles a switch is legitimately
#: off, so an ordering or ratio check passes when one of these attempts shows it. A broken
#: feature fails every attempt.
ATTEMPTS = 3


def until(check: Callable[[], tuple[bool, Any]], attempts: int = ATTEMPTS) -> Any:
    """Run ``check`` until it reports success, at most ``attempts`` times; return the last
    detail (the caller asserts on it, so a failure shows the figures)."""
    detail: Any = None
    for _ in range(attempts):
        ok, detail = check()
        if ok:
            break
    return detail


def _save(model: Any, path: Path, check: bool = True) -> str:
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, path)
    return str(path)


def _model(graph: Any, opset: int = 17) -> Any:
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])


def _vi(name: str, elem: int, shape: Any) -> Any:
    return h.make_tensor_value_info(name, elem, shape)


def build_embedding() -> Any:
    """int64 ids with symbolic dims, a float scalar input, two outputs (one scalar)."""
    table = nh.from_array(np.random.default_rng(0).random((100, 8), dtype=np.float32), "E")
    graph = h.make_graph(
        [
            h.make_node("Gather", ["E", "ids"], ["e"]),
            h.make_node("Mul", ["e", "scale"], ["y"]),
            h.make_node("ReduceSum", ["y"], ["total"], keepdims=0),
        ],
        "embedding",
        [_vi("ids", T.INT64, ["batch", "seq"]), _vi("scale", T.FLOAT, [])],
        [_vi("y", T.FLOAT, ["batch", "seq", 8]), _vi("total", T.FLOAT, [])],
        initializer=[table],
    )
    return _model(graph)


def build_if() -> Any:
    """An If node on a bool scalar; the branches differ in cost."""
    then_g = h.make_graph([h.make_node("Add", ["x", "x"], ["o"])], "then", [], [_vi("o", T.FLOAT, [None, 4])])
    else_g = h.make_graph([h.make_node("Mul", ["x", "x"], ["o"])], "else", [], [_vi("o", T.FLOAT, [None, 4])])
    graph = h.make_graph(
        [h.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)],
        "if",
        [_vi("cond", T.BOOL, []), _vi("x", T.FLOAT, [None, 4])],
        [_vi("y", T.FLOAT, [None, 4])],
    )
    return _model(graph)


def build_loop() -> Any:
    """A Loop whose trip count is an int64 scalar input."""
    body = h.make_graph(
        [h.make_node("Identity", ["c_in"], ["c_out"]), h.make_node("Add", ["acc_in", "one"], ["acc_out"])],
        "body",
        [_vi("i", T.INT64, []), _vi("c_in", T.BOOL, []), _vi("acc_in", T.FLOAT, [4])],
        [_vi("c_out", T.BOOL, []), _vi("acc_out", T.FLOAT, [4])],
        initializer=[nh.from_array(np.ones(4, np.float32), "one")],
    )
    graph = h.make_graph(
        [h.make_node("Loop", ["n", "cond", "a0"], ["a"], body=body)],
        "loop",
        [_vi("n", T.INT64, []), _vi("cond", T.BOOL, []), _vi("a0", T.FLOAT, [4])],
        [_vi("a", T.FLOAT, [4])],
    )
    return _model(graph)


def build_gru() -> Any:
    """A GRU with a recurrent state input h0 and a state output hn."""
    rng = np.random.default_rng(0)
    w = nh.from_array((rng.random((1, 96, 16)) * 0.1).astype(np.float32), "W")
    r = nh.from_array((rng.random((1, 96, 32)) * 0.1).astype(np.float32), "R")
    graph = h.make_graph(
        [h.make_node("GRU", ["X", "W", "R", "", "", "h0"], ["Y", "hn"], hidden_size=32)],
        "gru",
        [_vi("X", T.FLOAT, ["seq", 1, 16]), _vi("h0", T.FLOAT, [1, 1, 32])],
        [_vi("Y", T.FLOAT, ["seq", 1, 1, 32]), _vi("hn", T.FLOAT, [1, 1, 32])],
        initializer=[w, r],
    )
    return _model(graph)


def build_types() -> Any:
    """Inputs of many element types, cast to float; a string passes through."""
    types = {
        "f64": T.DOUBLE, "f16": T.FLOAT16, "bf16": T.BFLOAT16, "i8": T.INT8, "i16": T.INT16,
        "i32": T.INT32, "u8": T.UINT8, "u16": T.UINT16, "u32": T.UINT32, "u64": T.UINT64,
        "flag": T.BOOL,
    }  # fmt: skip
    nodes = [h.make_node("Cast", [n], [f"{n}_out"], to=T.FLOAT) for n in types]
    nodes.append(h.make_node("Identity", ["text"], ["text_out"]))
    inputs = [_vi(n, t, [2, 3]) for n, t in types.items()] + [_vi("text", T.STRING, [2])]
    outputs = [_vi(f"{n}_out", T.FLOAT, [2, 3]) for n in types] + [_vi("text_out", T.STRING, [2])]
    return _model(h.make_graph(nodes, "types", inputs, outputs))


def build_nonzero() -> Any:
    """Output shape depends on the input values."""
    graph = h.make_graph(
        [h.make_node("NonZero", ["x"], ["y"])],
        "nonzero",
        [_vi("x", T.FLOAT, [3, 4])],
        [_vi("y", T.INT64, [2, None])],
    )
    return _model(graph)


def build_sequence_output() -> Any:
    graph = h.make_graph(
        [h.make_node("SplitToSequence", ["x"], ["seq"], axis=0)], "seq", [_vi("x", T.FLOAT, [4, 2])], []
    )
    out = h.make_value_info("seq", h.make_sequence_type_proto(h.make_tensor_type_proto(T.FLOAT, None)))
    graph.output.append(out)
    return _model(graph)


BUILDERS: dict[str, Callable[[], Any]] = {
    "add": lambda: add_model(width=16, batch=1),
    "add_dynamic": lambda: add_model(width=16, batch="batch"),
    "mlp3": lambda: mlp_model(layers=3, width=512, batch=8),
    "mlp6": lambda: mlp_model(layers=6, width=512, batch=8),
    "mlp_small": lambda: mlp_model(layers=2, width=64, batch="batch"),
    "embedding": build_embedding,
    "if": build_if,
    "loop": build_loop,
    "gru": build_gru,
    "types": build_types,
    "nonzero": build_nonzero,
    "sequence_output": build_sequence_output,
}


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def models(model_dir: Path) -> dict[str, str]:
    """Paths of every test model, by name."""
    paths = {}
    for name, build in BUILDERS.items():
        paths[name] = _save(build(), model_dir / f"{name}.onnx", check=name != "sequence_output")
    return paths


@pytest.fixture(scope="session")
def quantized_model(models: dict[str, str], model_dir: Path) -> str:
    """mlp_small quantised to int8 by onnxruntime.quantization (MatMulInteger and friends)."""
    quantization = pytest.importorskip("onnxruntime.quantization")
    out = model_dir / "mlp_small_int8.onnx"
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # it warns about pre-processing on the root logger
    quantization.quantize_dynamic(models["mlp_small"], str(out))
    return str(out)
