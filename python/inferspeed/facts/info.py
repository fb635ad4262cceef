"""``inferspeed info``: what a model file holds, read with the onnx package (no session)."""

from __future__ import annotations

import collections
import math
import os
from typing import Any

from ..errors import ModelError
from .macs import estimate_macs
from .modelfile import check_model_path
from .signature import ELEMENT_TYPES

__all__ = ["model_info"]


def _graphs(graph: Any) -> Any:
    """``graph`` and every subgraph of its control-flow nodes (If, Loop, Scan), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def _type_text(type_proto: Any) -> tuple[str, list[Any] | None]:
    which = type_proto.WhichOneof("value")
    if which == "tensor_type":
        t = type_proto.tensor_type
        et = ELEMENT_TYPES.get(t.elem_type)
        name = et.name if et else f"type{t.elem_type}"
        if not t.HasField("shape"):
            return name, None
        dims: list[Any] = []
        for d in t.shape.dim:
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param"):
                dims.append(d.dim_param)
            else:
                dims.append(None)
        return name, dims
    if which == "sequence_type":
        inner, _ = _type_text(type_proto.sequence_type.elem_type)
        return f"sequence<{inner}>", None
    if which == "optional_type":
        inner, inner_dims = _type_text(type_proto.optional_type.elem_type)
        return f"optional<{inner}>", inner_dims
    if which == "map_type":
        return "map", None
    return which or "unknown", None


def model_info(path: str) -> dict[str, Any]:
    """Inputs and outputs (types, shapes with symbolic dims named), opsets, IR version, file
    size, parameter count and an operator histogram (subgraphs of If/Loop/Scan included)."""

    check_model_path(path)
    try:
        import onnx

        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, ValueError, OSError...
        raise ModelError(f"{path} is not a readable ONNX model: {exc}") from None
    if not model.HasField("graph"):
        raise ModelError(f"{path} is not an ONNX model (no graph)")
    graph = model.graph
    init_names = {i.name for i in graph.initializer}

    def io(values: Any) -> list[dict[str, Any]]:
        out = []
        for v in values:
            if v.name in init_names:
                continue
            type_name, shape = _type_text(v.type)
            out.append({"name": v.name, "type": type_name, "shape": shape})
        return out

    ops: collections.Counter[str] = collections.Counter()
    params = 0
    external = 0
    initializers = 0
    for g in _graphs(graph):
        for node in g.node:
            ops[f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type] += 1
        for init in g.initializer:
            initializers += 1
            params += math.prod(init.dims)
            if init.data_location == 1:  # EXTERNAL
                external += 1
    return {
        "path": os.path.abspath(path),
        "size_bytes": os.path.getsize(path),
        "ir_version": int(model.ir_version),
        "opsets": {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import},
        "producer": " ".join(p for p in (model.producer_name, model.producer_version) if p) or None,
        "graph_name": graph.name,
        "inputs": io(graph.input),
        "outputs": io(graph.output),
        "initializers": initializers,
        "external_initializers": external,
        "parameters": int(params),
        "nodes": sum(ops.values()),
        "operators": dict(ops.most_common()),
        "macs": estimate_macs(model),
    }
