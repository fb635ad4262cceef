"""Multiply-accumulate estimates of `inferspeed info`."""

import onnx
from onnx import TensorProto as T
from onnx import helper as h

from inferspeed.facts.macs import estimate_macs
from inferspeed.facts.models import mlp_model


def test_gemm_mlp() -> None:
    macs = estimate_macs(mlp_model(layers=3, width=512, batch=8))
    assert macs is not None and macs["total"] == 3 * 8 * 512 * 512 and macs["nodes_counted"] == 3


def test_conv_and_batched_matmul() -> None:
    w = h.make_tensor("w", T.FLOAT, [16, 3, 3, 3], [0.0] * (16 * 3 * 3 * 3))
    graph = h.make_graph(
        [
            h.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]),
            h.make_node("MatMul", ["a", "b"], ["c"]),
        ],
        "g",
        [
            h.make_tensor_value_info("x", T.FLOAT, ["n", 3, 32, 32]),
            h.make_tensor_value_info("a", T.FLOAT, [4, 10, 20]),
            h.make_tensor_value_info("b", T.FLOAT, [4, 20, 30]),
        ],
        [h.make_tensor_value_info("y", T.FLOAT, None), h.make_tensor_value_info("c", T.FLOAT, None)],
        initializer=[w],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])  # output shapes left to inference
    macs = estimate_macs(model)
    assert macs is not None
    assert macs["by_op_type"]["Conv"] == 16 * 32 * 32 * 3 * 3 * 3  # batch n counts as 1
    assert macs["by_op_type"]["MatMul"] == 4 * 10 * 30 * 20


def test_quantised_matmul_counts(quantized_model: str) -> None:
    macs = estimate_macs(onnx.load(quantized_model))
    assert macs is not None and macs["by_op_type"].get("MatMulInteger") == 2 * 64 * 64
