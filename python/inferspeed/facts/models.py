"""Small ONNX models of known cost, made with onnx.helper (no downloads).

Used for the demo model shipped in the package, by the tests and by bench/. Every builder is
deterministic for a given seed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["add_model", "demo_model_path", "make_demo_model", "mlp_model"]

OPSET = 17
IR_VERSION = 8  # readable by onnxruntime >= 1.12


def _helpers() -> Any:
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:  # pragma: no cover - onnx is a dependency
        raise ImportError("building models needs the onnx package: pip install onnx") from exc
    return onnx, TensorProto, helper, numpy_helper


def _finish(graph: Any, name: str) -> Any:
    onnx, _, helper, _ = _helpers()
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="inferspeed"
    )
    model.ir_version = IR_VERSION
    model.graph.name = name
    onnx.checker.check_model(model)
    return model


def add_model(width: int = 16, batch: int | str = 1) -> Any:
    """One Add (x + x) on a [batch, width] float tensor: about a microsecond of work."""
    _, TensorProto, helper, _ = _helpers()
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, width])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "add", [x], [y])
    return _finish(graph, "add")


def mlp_model(
    layers: int = 3,
    width: int = 512,
    batch: int | str = 8,
    in_features: int | None = None,
    out_features: int | None = None,
    seed: int = 0,
) -> Any:
    """``layers`` Gemm+Relu layers of ``width`` units on a [batch, in_features] float input.

    Cost grows linearly with ``layers`` (each layer is one width x width matrix product for
    equal widths), so a 6-layer MLP does twice the work of a 3-layer one.
    """
    import numpy as np  # here, not at import: `inferspeed run` imports this module for the demo path

    _, TensorProto, helper, numpy_helper = _helpers()
    rng = np.random.default_rng(seed)
    fan_in = in_features or width
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, fan_in])
    nodes, inits = [], []
    prev = "x"
    for i in range(layers):
        units = out_features if (i == layers - 1 and out_features) else width
        w = (rng.standard_normal((fan_in, units)) / np.sqrt(fan_in)).astype(np.float32)
        b = np.zeros(units, np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "y" if i == layers - 1 else f"h{i}"
        gemm_out = f"g{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [gemm_out], name=f"gemm{i}"))
        nodes.append(helper.make_node("Relu", [gemm_out], [out], name=f"relu{i}"))
        prev, fan_in = out, units
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, fan_in])
    graph = helper.make_graph(nodes, f"mlp{layers}x{width}", [x], [y], initializer=inits)
    return _finish(graph, f"mlp{layers}x{width}")


def make_demo_model() -> Any:
    """The demo model shipped with the package: a 3-layer MLP (64 -> 128 -> 128 -> 10) on a
    [1, 64] input, a sub-millisecond model like the small heads inferspeed is built for."""
    return mlp_model(layers=3, width=128, batch=1, in_features=64, out_features=10, seed=0)


def demo_model_path() -> str:
    """Path of the demo model file inside the installed package."""
    from importlib import resources  # only here: it imports zipfile, tempfile and more

    return str(resources.files("inferspeed").joinpath("data", "demo_mlp.onnx"))


if __name__ == "__main__":  # regenerate the shipped demo model: python -m inferspeed.facts.models OUT
    import sys

    import onnx

    onnx.save(make_demo_model(), sys.argv[1] if len(sys.argv) > 1 else demo_model_path())
