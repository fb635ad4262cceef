"""``inferspeed info``: what a model file holds, read by :mod:`inferspeed.facts.onnxfile` (no
session, and the onnx package only for MAC counts that are not cached yet)."""

from __future__ import annotations

import collections
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict, cast

from ..errors import ModelError
from . import onnxfile
from .modelfile import check_model_path, constant_tensors, macs_for_file
from .onnxfile import Value, ValueType
from .signature import element_type_name, ort_element_code, value_from_type

__all__ = ["Bound", "InfoDocument", "ValueRecord", "info_document"]


class ValueRecord(TypedDict):
    """An input or output of the graph: its name, type ("float", "sequence<int64>", ...) and
    shape (a dim a name, a size, or None when unknown; None: no shape)."""

    name: str
    type: str
    shape: list[int | str | None] | None


class _InfoFields(TypedDict):
    path: str
    size_bytes: int
    ir_version: int
    opsets: dict[str, int]
    producer: str | None
    graph_name: str
    inputs: list[ValueRecord]
    outputs: list[ValueRecord]
    initializers: int
    external_initializers: int
    #: Tensors held by Constant nodes (their elements count as parameters too).
    constants: int
    parameters: int
    nodes: int
    operators: dict[str, int]
    #: MAC counts (facts.macs.estimate_macs: total, by_op_type, uncounted, subgraph_nodes);
    #: None when shape inference failed.
    macs: dict[str, Any] | None


class InfoDocument(_InfoFields, total=False):
    """What ``inferspeed info`` says of a model file (its ``--json`` form); ``macs_at`` and
    ``macs_notices`` only when the caller bound input shapes to count the MACs at."""

    macs_at: dict[str, list[int]] | None
    macs_notices: list[str]


#: What info_document calls for the inputs to count MACs at: (shapes by input name, or None for
#: the model's own dims; values of some inputs, see estimate_macs; the notices that say how
#: they were chosen).
Bound = Callable[[], tuple[Mapping[str, Sequence[int]] | None, Mapping[str, Any], Sequence[str]]]


def _type_text(t: ValueType) -> tuple[str, list[Any] | None]:
    if t.kind == "tensor_type":
        return element_type_name(ort_element_code(t.elem_type)), None if t.shape is None else list(t.shape)
    inner = t.inner if t.kind == "optional_type" else None
    dims = None if inner is None or inner.kind != "tensor_type" or inner.shape is None else list(inner.shape)
    return value_from_type("", t).type_text, dims


def info_document(path: str, bound: Bound | None = None) -> InfoDocument:
    """Inputs and outputs (types, shapes with symbolic dims named), opsets, IR version, file
    size, parameter count, an operator histogram (subgraphs of If/Loop/Scan included) and MAC
    counts (:func:`~inferspeed.facts.macs.estimate_macs`). ``bound``, called once the file has
    been read, gives the input shapes to count MACs at (``macs_at``, and ``macs_notices``: why
    those); without it they are counted at the model's own dims (dynamic ones as 1)."""

    check_model_path(path)
    try:
        model = onnxfile.read(path)
    except onnxfile.TooManyFields:  # valid but huge: the onnx package parses it faster
        model = _read_with_onnx(path)
    except (onnxfile.ParseError, OSError) as exc:
        raise ModelError(f"{path} is not a readable ONNX model: {exc}") from None
    if model.graph is None:
        raise ModelError(f"{path} is not an ONNX model (no graph)")
    graph = model.graph
    init_names = {i.name for i in graph.initializers}

    def io(values: list[Value]) -> list[ValueRecord]:
        out: list[ValueRecord] = []
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
    for g in model.graphs():
        for node in g.nodes:
            ops[f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type] += 1
        for init in g.initializers:
            initializers += 1
            params += math.prod(init.dims)
            if init.external:
                external += 1
    constants = list(constant_tensors(model))
    params += sum(n for n, _ in constants)
    info = _printable(
        {
            "path": os.path.abspath(path),
            "size_bytes": os.path.getsize(path),
            "ir_version": model.ir_version,
            "opsets": {(domain or "ai.onnx"): version for domain, version in model.opset_import},
            "producer": " ".join(p for p in (model.producer_name, model.producer_version) if p) or None,
            "graph_name": graph.name,
            "inputs": io(graph.inputs),
            "outputs": io(graph.outputs),
            "initializers": initializers,
            "external_initializers": external,
            "constants": len(constants),
            "parameters": int(params),
            "nodes": sum(ops.values()),
            "operators": dict(ops.most_common()),
            **_macs(path, model, bound),
        }
    )
    return cast(InfoDocument, info)


def _macs(path: str, model: onnxfile.ModelFile, bound: Bound | None) -> dict[str, Any]:
    if bound is None:
        return {"macs": macs_for_file(path, model=model)}
    shapes, values, notices = bound()
    at = None if shapes is None else {name: [int(d) for d in dims] for name, dims in shapes.items()}
    return {
        "macs": macs_for_file(path, shapes, model=model, values=values or None),
        "macs_at": at,
        "macs_notices": list(notices),
    }


def _printable(value: Any) -> Any:
    """``value`` with strings that held bytes invalid in UTF-8 (read with surrogateescape)
    shown with U+FFFD instead, so that printing the info cannot fail."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return value
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def _read_with_onnx(path: str) -> onnxfile.ModelFile:
    try:
        import onnx

        return onnxfile.from_proto(onnx.load(path, load_external_data=False))
    except Exception as exc:  # onnx raises DecodeError, ValueError, OSError...
        raise ModelError(f"{path} is not a readable ONNX model: {exc}") from None
