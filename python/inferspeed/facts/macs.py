"""Multiply-accumulate counts of the operators that dominate most models, from the model's
shapes after ONNX shape inference: Conv, ConvTranspose, Gemm, MatMul (batched, broadcast),
their integer and quantised forms (ConvInteger, QLinearConv, MatMulInteger, QLinearMatMul; a
QDQ graph's Conv is a Conv), and ONNX Runtime's common com.microsoft forms (FusedConv,
FusedMatMul, QGemm, DynamicQuantizeMatMul, MatMulIntegerToFloat, MatMulNBits).

At given input shapes every dim is known and the count is exact for them; a counted node
whose shapes inference cannot tell (data-dependent, or after an operator onnx does not know)
is left out and reported in ``uncounted``, never counted as 0. With no shapes (the model's
own dims) a dynamic dim is not multiplied in (it counts as 1: the figure is per unit of each
dynamic dim). A dim of 0 or below in the file (some exporters write -1 for "dynamic") is a
dynamic dim, so a count is never negative.

Where ONNX's shape inference stops, this module helps it and runs it again, a few rounds:

- shape computations on small constants (pads built by Reshape/Transpose/Cast, sizes by
  Shape/Gather/Div...) are folded into constants with onnx's reference evaluator;
- an If whose condition is then a constant is replaced by the branch it takes (the rest of
  If/Loop/Scan bodies is not counted: ``subgraph_nodes``);
- inputs whose values the run feeds (``values``: a sample rate, lengths) are constants;
- com.microsoft operators, which it does not know: the output shapes of the common ones (and
  of same-shape ones such as Gelu) are worked out here.

Each count is checked against the shapes it reads: dims two tensors disagree on (a shape
inference got wrong) leave the node uncounted rather than counted wrong.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["COUNTED", "estimate_macs", "zero_count"]

#: A shape: None for a dim that is not known (dynamic, or <= 0 in the file).
Dims = tuple[int | None, ...]

#: Counted operators: op_type -> (formula, index of the input A or X, of B or W).
_SPECS: dict[str, tuple[str, int, int]] = {
    "Conv": ("conv", 0, 1), "ConvInteger": ("conv", 0, 1), "QLinearConv": ("conv", 0, 3),
    "FusedConv": ("conv", 0, 1), "ConvTranspose": ("conv_transpose", 0, 1),
    "Gemm": ("gemm", 0, 1), "QGemm": ("gemm", 0, 3),
    "MatMul": ("matmul", 0, 1), "MatMulInteger": ("matmul", 0, 1), "QLinearMatMul": ("matmul", 0, 3),
    "FusedMatMul": ("matmul", 0, 1), "DynamicQuantizeMatMul": ("matmul", 0, 1),
    "MatMulIntegerToFloat": ("matmul", 0, 1), "MatMulNBits": ("matmul", 0, 1),
}  # fmt: skip
#: Those of them defined in ONNX Runtime's com.microsoft domain (the rest: the ONNX domain).
_MICROSOFT = {
    "FusedConv", "QGemm", "FusedMatMul", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulNBits",
}  # fmt: skip

#: The operators counted (by op_type; the domain is checked when counting).
COUNTED = tuple(_SPECS)

#: com.microsoft operators whose output 0 has input 0's shape and type.
_SAME_SHAPE = {
    "Gelu", "FastGelu", "BiasGelu", "QuickGelu", "BiasAdd", "SkipLayerNormalization",
    "SkipSimplifiedLayerNormalization", "SimplifiedLayerNormalization", "QLinearSigmoid",
    "QLinearLeakyRelu", "QLinearSoftmax", "BiasDropout", "BiasSoftmax", "QuantizeLinear",
    "DequantizeLinear",
}  # fmt: skip


def zero_count(dynamic_dims_as: int | None = None) -> dict[str, Any]:
    """estimate_macs's answer for a model with no counted operator."""
    return {
        "total": 0,
        "by_op_type": {},
        "nodes_counted": 0,
        "nodes_unknown": 0,
        "uncounted": {},
        "subgraph_nodes": {},
        "dynamic_dims_as": dynamic_dims_as,
    }


def _spec(node: Any) -> tuple[str, int, int] | None:
    spec = _SPECS.get(node.op_type)
    microsoft = node.domain == "com.microsoft"
    if spec is None or microsoft != (node.op_type in _MICROSOFT):
        return None
    return spec if microsoft or node.domain in ("", "ai.onnx") else None


def _attr(node: Any, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            if a.type == a.INT:
                return int(a.i)
            if a.type == a.INTS:
                return [int(v) for v in a.ints]
            if a.type == a.STRING:
                return a.s.decode("utf-8", "replace")
    return default


def _tensor_dims(t: Any) -> Dims | None:
    if not t.HasField("shape"):
        return None
    return tuple(
        int(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim
    )


def _types(graph: Any) -> dict[str, tuple[int, Dims | None]]:
    """(element type, shape) by value name: inputs, value_info, outputs, initializers."""
    found: dict[str, tuple[int, Dims | None]] = {}
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        if vi.type.WhichOneof("value") == "tensor_type":
            t = vi.type.tensor_type
            found[vi.name] = (int(t.elem_type), _tensor_dims(t))
    for init in graph.initializer:
        found[init.name] = (int(init.data_type), tuple(int(d) if d > 0 else None for d in init.dims))
    return found


# --- shapes of outputs ------------------------------------------------------------------------


def _broadcast(a: Dims, b: Dims) -> Dims:
    """numpy's broadcast of two shapes; a dim unknown in one and > 1 in the other is the other."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out: list[int | None] = []
    for x, y in zip(a, b, strict=True):
        if x == 1 or x == y:
            out.append(y)
        elif y == 1:
            out.append(x)
        else:  # one unknown (the other must then be its size), or sizes that do not broadcast
            out.append(y if x is None else x if y is None else None)
    return tuple(out)


def _fused_view(dims: Dims | None, trans: int, trans_batch: int) -> Dims | None:
    """FusedMatMul's operand as the product sees it: transBatch moves dim 0 to just before the
    last dim, trans swaps the last two."""
    if dims is None or len(dims) < 2:
        return dims
    if trans_batch:
        dims = (*dims[1:-1], dims[0], dims[-1])
    return (*dims[:-2], dims[-1], dims[-2]) if trans else dims


def _matmul_out(a: Dims | None, b: Dims | None) -> Dims | None:
    """numpy.matmul's result shape (a 1-D operand gains, then loses, a dim of 1)."""
    if not a or not b:
        return None
    a2, b2 = (1, *a) if len(a) == 1 else a, (*b, 1) if len(b) == 1 else b
    out = list(_broadcast(a2[:-2], b2[:-2]))
    if len(a) > 1:
        out.append(a2[-2])
    if len(b) > 1:
        out.append(b2[-1])
    return tuple(out)


def _conv_out(node: Any, x: Dims | None, w: Dims | None) -> Dims | None:
    """Conv's output shape from X [N, C, *spatial], W [M, C/group, *kernel] and the attributes."""
    if x is None or w is None or len(x) < 3 or len(w) != len(x):
        return None
    rank = len(x) - 2
    kernel = _attr(node, "kernel_shape", list(w[2:]))
    strides = _attr(node, "strides", [1] * rank)
    dilations = _attr(node, "dilations", [1] * rank)
    pads = _attr(node, "pads", [0] * (2 * rank))
    auto_pad = _attr(node, "auto_pad", "NOTSET")
    spatial: list[int | None] = []
    for i in range(rank):
        size, k = x[2 + i], kernel[i] if i < len(kernel) else None
        if size is None or k is None:
            spatial.append(None)
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            spatial.append(-(-size // strides[i]))
        else:
            padded = size + (0 if auto_pad == "VALID" else pads[i] + pads[i + rank])
            spatial.append(max(0, (padded - dilations[i] * (k - 1) - 1) // strides[i] + 1) or None)
    return (x[0], w[0], *spatial)


_FLOAT, _UINT8 = 1, 2


def _contrib_outputs(node: Any, types: Mapping[str, tuple[int, Dims | None]]) -> list[tuple[str, int, Dims]]:
    """(name, element type, shape) of the outputs of a com.microsoft node that follow from its
    inputs' shapes: those of the counted operators, of DynamicQuantizeLSTM, of same-shape ones."""

    def get(i: int) -> tuple[int, Dims | None] | None:
        return types.get(node.input[i]) if len(node.input) > i and node.input[i] else None

    op, first = node.op_type, get(0)
    if first is None or first[1] is None or not node.output:
        return []
    et, x = first[0], first[1]
    other = get(_SPECS[op][2]) if op in _SPECS else get(3) if op in ("QLinearAdd", "QLinearMul") else None
    w = other[1] if other else None
    y: Dims | None = None
    if op in _SAME_SHAPE:
        if op == "QuantizeLinear":
            et = (get(2) or (_UINT8, None))[0]
        elif op == "DequantizeLinear":
            et = (get(1) or (_FLOAT, None))[0]
        y = x
    elif op in ("QLinearAdd", "QLinearMul"):
        y = None if w is None else _broadcast(x, w)
    elif op == "FusedConv":
        y = _conv_out(node, x, w)
    elif op == "QGemm":
        et = et if len(node.input) > 7 and node.input[7] else _FLOAT  # y_scale: a quantised result
        a2, b2 = _gemm_view(node, x, w)
        y = (a2[0], b2[1]) if a2 and b2 else None
    elif op == "MatMulNBits":
        y = (*x[:-1], _attr(node, "N", None))
    elif op == "FusedMatMul":
        y = _matmul_out(*_fused_operands(node, x, w))
    elif op in ("DynamicQuantizeMatMul", "MatMulIntegerToFloat"):
        et = (get(2) or (_FLOAT, None))[0]
        y = _matmul_out(x, w)
    elif op == "DynamicQuantizeLSTM":
        return _lstm_outputs(node, x)
    return [] if y is None else [(node.output[0], et, y)]


def _lstm_outputs(node: Any, x: Dims) -> list[tuple[str, int, Dims]]:
    """DynamicQuantizeLSTM's Y [seq, directions, batch, hidden], Y_h and Y_c [directions, batch, hidden]."""
    hidden = _attr(node, "hidden_size", None)
    directions = 2 if _attr(node, "direction", "forward") == "bidirectional" else 1
    if len(x) != 3:
        return []
    shapes = [(x[0], directions, x[1], hidden), (directions, x[1], hidden), (directions, x[1], hidden)]
    return [(name, _FLOAT, dims) for name, dims in zip(node.output, shapes, strict=False) if name]


def _gemm_view(node: Any, a: Dims | None, b: Dims | None) -> tuple[Dims | None, Dims | None]:
    """Gemm's A as [M, K] and B as [K, N] (transA, transB undone); None where not 2-D."""
    a = a if a is not None and len(a) == 2 else None
    b = b if b is not None and len(b) == 2 else None
    if a is not None and _attr(node, "transA", 0):
        a = (a[1], a[0])
    if b is not None and _attr(node, "transB", 0):
        b = (b[1], b[0])
    return a, b


def _fused_operands(node: Any, a: Dims | None, b: Dims | None) -> tuple[Dims | None, Dims | None]:
    a = _fused_view(a, _attr(node, "transA", 0), _attr(node, "transBatchA", 0))
    return a, _fused_view(b, _attr(node, "transB", 0), _attr(node, "transBatchB", 0))


# --- shape inference --------------------------------------------------------------------------


def _bind(graph: Any, shapes: Mapping[str, Sequence[int]] | None) -> bool:
    """Give the graph inputs named in ``shapes`` those dims, and make every dim <= 0 in the file
    unknown. True when that changed no input's dims (the file's inferred shapes then hold)."""

    def dims_of(vi: Any) -> Any:
        t = vi.type.tensor_type
        return t.shape.dim if vi.type.WhichOneof("value") == "tensor_type" and t.HasField("shape") else None

    for vi in [*graph.input, *graph.value_info, *graph.output]:
        for d in dims_of(vi) or ():
            if d.HasField("dim_value") and d.dim_value <= 0:
                d.Clear()
    unchanged = True
    for vi in graph.input:
        dims = dims_of(vi)
        if dims is None or shapes is None or vi.name not in shapes:
            continue  # an input of no shape at all stays so: its rank is not known
        wanted = [int(size) for size in shapes[vi.name]]
        if [d.dim_value if d.HasField("dim_value") else None for d in dims] != wanted:
            unchanged = False
            del dims[:]
            for size in wanted:
                dims.add().dim_value = size
    return unchanged


def _forget_shapes(graph: Any) -> None:
    """Drop the shapes the file states past its inputs: they hold for its own input dims only."""
    del graph.value_info[:]
    for vi in graph.output:
        if vi.type.WhichOneof("value") == "tensor_type":
            vi.type.tensor_type.ClearField("shape")


def _infer_once(model: Any) -> Any:
    import onnx

    for data_prop in (True, False):  # data propagation finds more shapes, and fails on more models
        try:
            return onnx.shape_inference.infer_shapes(model, data_prop=data_prop)
        except Exception:  # shape inference rejects some valid models (custom domains, ...)
            continue
    return None


#: Operators folded into constants when their inputs are constants of at most _FOLD_LIMIT
#: elements (the shape computations exporters write), so that inference sees the shapes they
#: compute: pads through Reshape/Slice/Transpose, sizes through Cast/Div/Floor, ...
_FOLDABLE = {
    "Constant", "Identity", "Cast", "CastLike", "Reshape", "Flatten", "Slice", "Transpose", "Concat",
    "Split", "Unsqueeze", "Squeeze", "Gather", "GatherElements", "Add", "Sub", "Mul", "Div", "Mod",
    "Neg", "Abs", "Floor", "Ceil", "Round", "Sqrt", "Pow", "Min", "Max", "Clip", "Equal", "Less",
    "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Where", "ReduceProd",
    "ReduceSum", "ReduceMax", "ReduceMin", "ConstantOfShape", "Range", "Expand", "Shape", "Size",
}  # fmt: skip
_FOLD_LIMIT = 4096


def _fold_node(
    node: Any, values: Mapping[str, Any], types: Mapping[str, Any], opset: int
) -> list[Any] | None:
    """The node's outputs as arrays, when it can be folded; else None."""
    import numpy as np

    if node.op_type in ("Shape", "Size"):
        dims = types.get(node.input[0], (0, None))[1]
        if dims is None or None in dims:
            return None
        if node.op_type == "Size":
            return [np.array(math.prod(dims), np.int64)]
        start, end = _attr(node, "start", 0), _attr(node, "end", len(dims))
        return [np.array(dims[start:end], np.int64)]
    if any(a.type == a.TENSOR and math.prod(a.t.dims) > _FOLD_LIMIT for a in node.attribute):
        return None  # a Constant of weights
    inputs: list[Any] = [values.get(name) if name else None for name in node.input]
    if any(name and v is None for name, v in zip(node.input, inputs, strict=True)):
        return None
    if node.op_type in ("ConstantOfShape", "Expand"):
        size = math.prod(int(d) for d in inputs[-1].reshape(-1))
        if size > _FOLD_LIMIT or (node.op_type == "Expand" and inputs[0].size > 1 and inputs[1].size > 1):
            return None  # Expand: only a scalar's (its result's size is then the shape's product)
    if node.op_type == "Range" and abs((inputs[1] - inputs[0]) / (inputs[2] or 1)) > _FOLD_LIMIT:
        return None
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    feeds = {name: v for name, v in zip(node.input, inputs, strict=True) if name}
    graph = helper.make_graph(
        [node],
        "fold",
        [
            helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for k, v in feeds.items()
        ],
        [helper.make_empty_tensor_value_info(name) for name in node.output if name],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])  # the node's version
    return [np.asarray(out) for out in ReferenceEvaluator(model).run(None, feeds)]


def _taken_branch(node: Any, values: Mapping[str, Any]) -> Any:
    """The branch an If node whose condition is a constant takes; else None."""
    if node.op_type != "If" or node.domain not in ("", "ai.onnx") or node.input[0] not in values:
        return None
    cond = values[node.input[0]]
    if cond.size != 1:
        return None
    return _attr_graph(node, "then_branch" if bool(cond.reshape(-1)[0]) else "else_branch")


def _attr_graph(node: Any, name: str) -> Any:
    return next((a.g for a in node.attribute if a.name == name), None)


def _fold(graph: Any, types: Mapping[str, Any], opset: int) -> bool:
    """Replace the nodes _fold_node can evaluate by initializers, and If nodes whose condition
    is a constant by the branch they take; True when there were some."""
    from onnx import helper, numpy_helper

    values = {
        init.name: numpy_helper.to_array(init)
        for init in graph.initializer
        if math.prod(init.dims) <= _FOLD_LIMIT and init.data_location != init.EXTERNAL
    }
    keep, made, inlined = [], [], False
    ends = {vi.name for vi in graph.output}
    for node in graph.node:
        branch = _taken_branch(node, values)
        if branch is not None:  # its nodes are folded on the next round, if they can be
            outputs_ = zip(branch.output, node.output, strict=False)
            keep += [*branch.node, *(helper.make_node("Identity", [b.name], [o]) for b, o in outputs_ if o)]
            made.extend(branch.initializer)
            inlined = True
            continue
        outputs = None
        if node.op_type in _FOLDABLE and node.domain in ("", "ai.onnx") and not ends & set(node.output):
            try:
                outputs = _fold_node(node, values, types, opset)
            except Exception:  # the reference evaluator does not take every node: keep it
                outputs = None
        if outputs is None or any(out.size > _FOLD_LIMIT for out in outputs):
            keep.append(node)
            continue
        for name, out in zip(node.output, outputs, strict=False):
            if name:
                values[name] = out
                made.append(numpy_helper.from_array(out, name))
    if not made and not inlined:
        return False
    del graph.node[:]
    graph.node.extend(keep)
    graph.initializer.extend(made)
    return True


def _contrib_shapes(graph: Any, types: Mapping[str, tuple[int, Dims | None]]) -> bool:
    """Add the output shapes of com.microsoft nodes that _contrib_outputs works out and onnx
    left unknown; True when there were some."""
    from onnx import helper

    added = [
        helper.make_tensor_value_info(name, et, list(dims))
        for node in graph.node
        if node.domain == "com.microsoft"
        for name, et, dims in _contrib_outputs(node, types)
        if types.get(name, (0, None))[1] is None
    ]
    graph.value_info.extend(added)
    return bool(added)


def _freeze(graph: Any, values: Mapping[str, Any] | None) -> None:
    """Make the graph inputs named in ``values`` constants (initializers) of those values, as
    arrays of the input's type and (bound) shape; those that do not fit it, or are large, stay
    inputs."""
    import numpy as np
    from onnx import helper, numpy_helper

    known = {}
    for vi in graph.input:
        if not values or vi.name not in values or vi.type.WhichOneof("value") != "tensor_type":
            continue
        shape = _tensor_dims(vi.type.tensor_type)
        dims = [d or 0 for d in shape] if shape is not None else [0]
        if 0 in dims or math.prod(dims) > _FOLD_LIMIT:
            continue
        try:
            dtype = helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
            known[vi.name] = np.broadcast_to(np.asarray(values[vi.name], dtype), dims).copy()
        except (ValueError, TypeError, KeyError):  # a value that does not fit the input
            continue
    kept = [vi for vi in graph.input if vi.name not in known]
    del graph.input[:]
    graph.input.extend(kept)
    graph.initializer.extend(numpy_helper.from_array(array, name) for name, array in known.items())


def _infer(model: Any, rounds: int = 8) -> Any:
    """The model with inferred shapes (see the module's docstring), after folding the shape
    computations onnx does not follow; None when onnx's shape inference fails."""
    opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    inferred = _infer_once(model)
    for _ in range(rounds):
        if inferred is None:
            break
        types = _types(inferred.graph)
        folded = _fold(inferred.graph, types, opset)
        if not (_contrib_shapes(inferred.graph, types) or folded):
            break
        inferred = _infer_once(inferred) or inferred
    return inferred


# --- counting ---------------------------------------------------------------------------------


def _product(dims: Sequence[int | None], strict: bool) -> int | None:
    """The product of ``dims``; an unknown dim makes it unknown when ``strict``, else counts 1."""
    if strict and any(d is None for d in dims):
        return None
    return math.prod(d for d in dims if d is not None)


#: What _agreed returns for dims that disagree (inference got a shape wrong): not counted.
_CONFLICT = -1


def _agreed(*values: int | None) -> int | None:
    """The size the known ``values`` (the same dim seen on two tensors) agree on; None when
    none is known, _CONFLICT when they differ."""
    known = {v for v in values if v is not None}
    return _CONFLICT if len(known) > 1 else next(iter(known), None)


def _conv_macs(node: Any, x: Dims | None, w: Dims | None, y: Dims | None, strict: bool) -> int | None:
    """Conv: every output element sums C_in/group x kernel products (W is [C_out, C_in/group,
    k...]); ConvTranspose: every input element spreads over C_out/group x kernel outputs (W is
    [C_in, C_out/group, k...]). Either way: the big tensor's elements x W's dims past the first."""
    transpose, group = node.op_type == "ConvTranspose", _attr(node, "group", 1)
    if w is not None and len(w) >= 3:
        per: Dims = w[1:]
        channels = w[0] if transpose else None if w[1] is None else w[1] * group
        if x is not None and len(x) > 1 and _agreed(x[1], channels) == _CONFLICT:
            return None
    else:  # W's shape unknown: C/group from the other tensor, the kernel from the attribute
        kernel, channels = _attr(node, "kernel_shape", None), y if transpose else x
        if not kernel or channels is None or len(channels) < 2:
            return None
        c = channels[1]
        per = (None if c is None else c // group, *kernel)
    big = x if transpose else y if y is not None else _conv_out(node, x, w)
    return None if big is None else _product((*big, *per), strict)


def _gemm_macs(node: Any, a: Dims | None, b: Dims | None, y: Dims | None, strict: bool) -> int | None:
    a, b = _gemm_view(node, a, b)
    y = y if y is not None and len(y) == 2 else None
    if (a is None and (b is None or y is None)) or (b is None and y is None):
        return None
    m = _agreed(a[0] if a else None, y[0] if y else None)
    k = _agreed(a[1] if a else None, b[0] if b else None)
    n = _agreed(b[1] if b else None, y[1] if y else None)
    return None if _CONFLICT in (m, n, k) else _product((m, n, k), strict)


def _matmul_macs(node: Any, a: Dims | None, b: Dims | None, y: Dims | None, strict: bool) -> int | None:
    """Every output element sums K products; batch dims broadcast."""
    if node.op_type == "MatMulNBits":  # B is packed [N, blocks, bytes]: N and K are attributes
        k = _agreed(_attr(node, "K", None), a[-1] if a else None)
        if y is None and a:
            y = (*a[:-1], _attr(node, "N", None))
    else:
        if node.op_type == "FusedMatMul":
            a, b = _fused_operands(node, a, b)
        if (a is not None and not a) or (b is not None and not b) or (a is None and b is None):
            return None
        k = _agreed(a[-1] if a else None, (b[-2] if len(b) > 1 else b[0]) if b else None)
        y = y if y is not None else _matmul_out(a, b)
    return None if y is None or k == _CONFLICT else _product((*y, k), strict)


def _node_macs(
    node: Any, spec: tuple[str, int, int], types: Mapping[str, tuple[int, Dims | None]], strict: bool
) -> int | None:
    def dims(names: Sequence[str], i: int) -> Dims | None:
        return types.get(names[i], (0, None))[1] if len(names) > i and names[i] else None

    formula, ia, ib = spec
    a, b, y = dims(node.input, ia), dims(node.input, ib), dims(node.output, 0)
    if formula == "gemm":
        return _gemm_macs(node, a, b, y, strict)
    if formula == "matmul":
        return _matmul_macs(node, a, b, y, strict)
    return _conv_macs(node, a, b, y, strict)


def _subgraph_nodes(graph: Any, top: bool = True) -> dict[str, int]:
    """Counted operators inside If/Loop/Scan bodies (not counted: how often they run is not known)."""
    found: dict[str, int] = {}
    for node in graph.node:
        if not top and _spec(node) is not None:
            found[node.op_type] = found.get(node.op_type, 0) + 1
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                for op, n in _subgraph_nodes(sub, top=False).items():
                    found[op] = found.get(op, 0) + n
    return found


def estimate_macs(
    model: Any, shapes: Mapping[str, Sequence[int]] | None = None, values: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """{"total", "by_op_type", "nodes_counted", "nodes_unknown", "uncounted", "subgraph_nodes",
    "dynamic_dims_as"} for the main graph, or None when shape inference fails.

    ``shapes`` (by input name) replace the graph inputs' dims (the model is changed in place):
    the count is then for those shapes, and a node with a dim inference leaves unknown is not
    counted. Without them a dynamic dim counts as 1 (``dynamic_dims_as``). ``uncounted``: the
    counted operators left out for want of shapes, by op_type (``nodes_unknown``: their sum);
    ``subgraph_nodes``: those in If/Loop/Scan bodies not taken (an If whose condition follows
    from constants, and from ``values``, is the branch it takes). ``values`` (input name ->
    number or nested list, broadcast to the input's shape): what a run feeds those inputs (a
    sample rate, lengths...), where that decides shapes or branches."""
    if not _bind(model.graph, shapes):
        _forget_shapes(model.graph)
    _freeze(model.graph, values)
    inferred = _infer(model)
    if inferred is None:
        return None
    types = _types(inferred.graph)
    result = zero_count(None if shapes is not None else 1)
    by_type, uncounted = result["by_op_type"], result["uncounted"]
    for node in inferred.graph.node:
        spec = _spec(node)
        if spec is None:
            continue
        macs = _node_macs(node, spec, types, strict=shapes is not None)
        if macs is None:
            uncounted[node.op_type] = uncounted.get(node.op_type, 0) + 1
        else:
            result["nodes_counted"] += 1
            by_type[node.op_type] = by_type.get(node.op_type, 0) + macs
    result["total"] = sum(by_type.values())
    result["nodes_unknown"] = sum(uncounted.values())
    result["subgraph_nodes"] = _subgraph_nodes(inferred.graph)
    return result
