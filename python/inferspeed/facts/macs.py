"""Multiply-accumulate counts of the operators that dominate most models (Gemm, MatMul, Conv,
ConvTranspose and their integer/quantised forms), from the model's shapes after ONNX shape
inference. Dynamic dimensions count as 1 (so the figure is per unit of each dynamic dim, e.g.
per batch item)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["COUNTED", "estimate_macs"]

#: The operators counted (integer and quantised forms included).
COUNTED = (
    "Gemm", "MatMul", "MatMulInteger", "QLinearMatMul", "Conv", "ConvTranspose", "ConvInteger", "QLinearConv",
)  # fmt: skip


def _shapes(model: Any) -> dict[str, list[int]]:
    """Static shapes by value name; a dynamic dim is 1."""
    shapes: dict[str, list[int]] = {}
    graph = model.graph
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        t = vi.type.tensor_type
        if vi.type.WhichOneof("value") != "tensor_type" or not t.HasField("shape"):
            continue
        shapes[vi.name] = [int(d.dim_value) if d.HasField("dim_value") else 1 for d in t.shape.dim]
    for init in graph.initializer:
        shapes[init.name] = [int(d) for d in init.dims]
    return shapes


def _attr(node: Any, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            if a.type == a.INT:
                return int(a.i)
            if a.type == a.INTS:
                return [int(v) for v in a.ints]
    return default


def _node_macs(node: Any, shapes: dict[str, list[int]]) -> int | None:
    def shape(i: int, outputs: bool = False) -> list[int] | None:
        names = node.output if outputs else node.input
        return shapes.get(names[i]) if len(names) > i and names[i] else None

    op = node.op_type
    if op == "Gemm":
        a, b = shape(0), shape(1)
        if a is None or b is None or len(a) != 2 or len(b) != 2:
            return None
        m, k = (a[1], a[0]) if _attr(node, "transA", 0) else (a[0], a[1])
        n = b[0] if _attr(node, "transB", 0) else b[1]
        return m * n * k
    if op in ("MatMul", "MatMulInteger", "QLinearMatMul"):
        a, y = shape(0), shape(0, outputs=True)
        if a is None or y is None or not a:
            return None
        return math.prod(y) * a[-1]
    if op in ("Conv", "ConvTranspose", "ConvInteger", "QLinearConv"):
        w = shape(3 if op == "QLinearConv" else 1)
        big = shape(0, outputs=True) if op == "Conv" else shape(0)
        if w is None or big is None or len(w) < 3:
            return None
        # Conv: every output element sums Cin/group x kernel products; ConvTranspose: every
        # input element spreads over Cout/group x kernel outputs (w is [Cin, Cout/group, k...]).
        return math.prod(big) * math.prod(w[1:])
    return None


def estimate_macs(model: Any, shapes: Mapping[str, Sequence[int]] | None = None) -> dict[str, Any] | None:
    """{"total", "by_op_type", "nodes_counted", "nodes_unknown"} for the main graph, or None
    when shape inference fails. ``shapes`` (by input name) replace the graph inputs' dims (the
    model is changed in place): the count is then for those shapes, not per unit of each
    dynamic dim."""
    for vi in model.graph.input:
        if shapes is not None and vi.name in shapes and vi.type.HasField("tensor_type"):
            dims = vi.type.tensor_type.shape.dim
            del dims[:]
            for size in shapes[vi.name]:
                dims.add().dim_value = int(size)
    try:
        import onnx

        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # shape inference rejects some valid models (custom domains, ...)
        return None
    shapes = _shapes(inferred)
    by_type: dict[str, int] = {}
    counted = unknown = 0
    for node in inferred.graph.node:
        if node.op_type not in COUNTED:
            continue
        macs = _node_macs(node, shapes)
        if macs is None:
            unknown += 1
            continue
        counted += 1
        by_type[node.op_type] = by_type.get(node.op_type, 0) + macs
    return {
        "total": sum(by_type.values()),
        "by_op_type": by_type,
        "nodes_counted": counted,
        "nodes_unknown": unknown,
        "dynamic_dims_as": None if shapes is not None else 1,
    }
