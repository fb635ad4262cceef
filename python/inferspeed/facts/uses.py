"""The values an integer input must hold, read from how the graph uses it.

Random ids in [0, 10) break a model whose integer input is an axis, a count, a shape or an
index into a tensor of 3 rows. This module follows each integer (and bool) input to the nodes
that consume it, through ops that keep its values (Cast, Identity, Reshape, Unsqueeze,
Squeeze, Flatten, Concat; Expand, Transpose, Slice, Clip and Where's values for ranges only) and into the
subgraphs of If, Loop and Scan that use it by name, and says what each consumer needs:

- indices (Gather, GatherElements, GatherND, Scatter*, RoiAlign's batch indices, the targets of
  NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss, ArrayFeatureExtractor): in [0, dim)
  of the axis they index, that of a graph input at its planned shape, an initializer or an
  intermediate tensor whose shape onnx's shape inference gives;
- axes and counts: Unsqueeze/Squeeze/Reduce*/Slice/Pad axes 0..n-1 (Squeeze: the axes of size
  1), CumSum and CumProd axis 0, TopK k = 1, OneHot depth 10 (its indices below it), Range 0/10/1, Loop's
  trip count 3 and condition true, NonMaxSuppression's boxes per class 10, ReverseSequence's
  lengths within the time axis;
- shapes: Reshape's target the data's shape (``[-1]`` for one element, else ones then -1),
  Expand's shape and Tile's repeats ones, Resize's scales ones and sizes the data's shape,
  Split's (and SplitToSequence's) sizes summing to the axis, AffineGrid's size, Pad's pads
  zeros, ConstantOfShape's shape ones, Slice's starts 0, ends the axis' dim, steps 1,
  CenterCropPad's shape the data's;
- divisors: the second input of an integer Div or Mod in [1, 10).

No standard op needs sorted integers. Pure analysis on :mod:`~inferspeed.facts.onnxfile`'s
graph; onnx is imported only when a consumer's data is an intermediate tensor.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from . import onnxfile

__all__ = ["GraphUses", "ValueRule", "find_uses", "upstream_inputs"]

#: Ops through which an input keeps its values in order (its offset in the output is known).
_ORDERED = {"Cast", "Identity", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Concat"}
#: Ops through which an input keeps only the range of its values (some of them: Gather's data).
_RANGE_ONLY = {"Expand", "Transpose", "Slice", "Clip", "Gather"}
#: Ops whose output has their first input's shape.
_SAME_SHAPE = {
    "Identity", "Cast", "Relu", "Neg", "Exp", "Log", "Abs", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "Dropout", "Sqrt", "Reciprocal", "Erf", "Not", "Sign", "Floor", "Ceil", "Round", "Clip", "LeakyRelu",
}  # fmt: skip
#: Files above this size are not handed to onnx's shape inference.
_MAX_INFER_BYTES = 1 << 28
#: Slice's end when the axis' dim is not known (clamped to the dim by the op).
_BIG = 2**31 - 1

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class ValueRule:
    """How to fill one input: ``fill`` "ints" (uniform in ``[low, high)``) or "values" (the
    flat ``values``, one per element), and why."""

    fill: str
    because: str
    low: int = 0
    high: int = 0
    values: tuple[float | str, ...] = ()


@dataclass(frozen=True)
class _Use:
    node: onnxfile.Node
    k: int  # which input of the node
    offset: int | None  # where the input's first element lies in that node input; None: unknown
    via: tuple[str, ...]  # the ops it went through


def _consumers(graph: onnxfile.Graph) -> dict[str, list[tuple[onnxfile.Node, int]]]:
    out: dict[str, list[tuple[onnxfile.Node, int]]] = {}
    for g in onnxfile.all_graphs(graph):
        for node in g.nodes:
            for k, x in enumerate(node.inputs):
                if x:
                    out.setdefault(x, []).append((node, k))
    return out


def _attr(node: onnxfile.Node, name: str, default: int) -> int:
    return next((a.i for a in node.attributes if a.name == name), default)


def _attr_ints(node: onnxfile.Node, name: str) -> list[int] | None:
    """An ints attribute (None when absent, or longer than the parser keeps)."""
    a = next((a for a in node.attributes if a.name == name), None)
    return None if a is None or len(a.ints) != a.count else list(a.ints)


class GraphUses:
    """Where each integer input of a graph goes, and the shapes known of its tensors."""

    def __init__(self, graph: onnxfile.Graph, names: Sequence[str], path: str | None = None) -> None:
        self.graph, self.path = graph, path
        self.consts: dict[str, Shape] = {t.name: tuple(t.dims) for t in graph.initializers}
        graphs = list(onnxfile.all_graphs(graph))
        for g in graphs:
            for node in g.nodes:
                for a in node.attributes:
                    if node.op_type == "Constant" and a.name == "value" and a.t is not None and node.outputs:
                        self.consts[node.outputs[0]] = tuple(a.t.dims)
        self.producers = {out: node for g in graphs for node in g.nodes for out in node.outputs}
        consumers = _consumers(graph)
        self.uses = {name: list(self._follow(name, consumers)) for name in names}
        self._inferred: dict[str, Shape] | None = None

    def _follow(self, name: str, consumers: Mapping[str, list[tuple[onnxfile.Node, int]]]) -> Iterator[_Use]:
        todo: list[tuple[str, int | None, tuple[str, ...]]] = [(name, 0, ())]
        seen = {name}
        while todo:
            tensor, offset, via = todo.pop()
            for node, k in consumers.get(tensor, ()):
                yield _Use(node, k, offset, via)
                op = node.op_type
                if (
                    (op in _ORDERED and (k == 0 or op == "Concat"))
                    or (op in _RANGE_ONLY and k == 0)
                    or (op == "Where" and k > 0)
                ):
                    out_offset = offset if op in _ORDERED else None
                    if op == "Concat" and out_offset is not None:
                        out_offset = self._concat_offset(node, k, out_offset)
                    for out in node.outputs[:1]:
                        if out and out not in seen:
                            seen.add(out)
                            todo.append((out, out_offset, (*via, op)))

    def _concat_offset(self, node: onnxfile.Node, k: int, offset: int) -> int | None:
        """The offset in a Concat's output of an element of its input ``k`` (1-D parts only)."""
        before = 0
        for x in node.inputs[:k]:
            dims = self.consts.get(x)
            if dims is None or len(dims) != 1 or dims[0] is None:
                return None
            before += dims[0]
        return before + offset

    def lengths(self, declared: Mapping[str, Shape]) -> dict[str, tuple[int, str]]:
        """The length each 1-D input with an open length should have, for the shape-like
        inputs whose length the graph decides (a Tile's repeats: the data's rank)."""
        out: dict[str, tuple[int, str]] = {}
        for name, uses in self.uses.items():
            for use in uses:
                if use.offset != 0 or any(op not in ("Cast", "Identity") for op in use.via):
                    continue
                found = _length(use.node, use.k, lambda x: declared.get(x) or self.consts.get(x))
                if found is not None:
                    out[name] = found
                    break
        return out

    def shape_of(self, name: str, planned: Mapping[str, tuple[int, ...]]) -> Shape | None:
        if name in planned:
            return planned[name]
        if name in self.consts:
            return self.consts[name]
        if self._inferred is None:
            self._inferred = _infer(self.path, planned)
        return self._inferred.get(name) or self._same_shape(name, planned)

    def _same_shape(self, name: str, planned: Mapping[str, tuple[int, ...]], depth: int = 0) -> Shape | None:
        """The shape of a tensor onnx's inference left open, where its producer keeps a shape it
        knows: a shape-keeping op, or a Reshape to ``Shape(t)``."""
        node = self.producers.get(name)
        if node is None or not node.inputs or depth > 50:
            return None
        source = None
        if node.op_type in _SAME_SHAPE:
            source = node.inputs[0]
        elif node.op_type == "Reshape" and len(node.inputs) > 1:
            maker = self.producers.get(node.inputs[1])
            if maker is not None and maker.op_type == "Shape" and not maker.attributes:
                source = maker.inputs[0]
        if source is None:
            return None
        known = planned.get(source) or self.consts.get(source)
        if known is None and self._inferred is not None:
            known = self._inferred.get(source)
        return known or self._same_shape(source, planned, depth + 1)

    def rules(self, planned: Mapping[str, tuple[int, ...]], only: Sequence[str]) -> dict[str, ValueRule]:
        """The value rule of each input of ``only`` that some consumer constrains, at the
        planned shapes."""
        out: dict[str, ValueRule] = {}
        for name, uses in self.uses.items():
            if name not in planned or name not in only:
                continue
            found = [r for r in (self._rule(name, u, planned) for u in uses) if r is not None]
            rule = _combine(found)
            if rule is not None:
                out[name] = rule
        return out

    def _rule(self, name: str, use: _Use, planned: Mapping[str, tuple[int, ...]]) -> ValueRule | None:
        node, k = use.node, use.k
        want = _CONSUMERS.get((node.op_type, k))
        if want is None and node.op_type.startswith("Reduce") and k == 1:
            want = _first_axes
        if want is None:
            return None
        own = math.prod(planned[name])
        looked = _Looked(lambda x: self.shape_of(x, planned), list(self.uses))
        length = looked.size(node.inputs[k]) if use.offset is not None else None
        rule = want(node, looked, length if length is not None else own)
        if rule is None:
            return None
        via = f" (through {' -> '.join(use.via)})" if use.via else ""
        because = f"{rule.because}{via}"
        if rule.fill != "values":
            return ValueRule(rule.fill, because, rule.low, rule.high)
        values = rule.values
        if use.offset is None:
            if len(set(values)) != 1:
                return None
            return ValueRule("values", because, values=values[:1] * own)
        piece = values[use.offset : use.offset + own]
        return ValueRule("values", because, values=piece) if len(piece) == own else None


def find_uses(
    model: onnxfile.ModelFile | None, names: Sequence[str], path: str | None = None
) -> GraphUses | None:
    """Where the inputs ``names`` go in ``model`` (None without a graph); ``path``: the file,
    for onnx's shape inference of intermediate tensors."""
    if model is None or model.graph is None:
        return None
    return GraphUses(model.graph, names, path)


def _reads(node: onnxfile.Node) -> list[str]:
    """What a node reads: its inputs, and for If, Loop and Scan every name their subgraphs
    read (those of the outer scope among them)."""
    names = [x for x in node.inputs if x]
    for attr in node.attributes:
        for sub in [*([attr.g] if attr.g is not None else []), *attr.graphs]:
            names += [x for g in onnxfile.all_graphs(sub) for n in g.nodes for x in n.inputs if x]
    return names


def upstream_inputs(model: onnxfile.ModelFile | None, op_type: str, names: Sequence[str]) -> list[str]:
    """The inputs of ``names`` whose values reach a node of ``op_type`` (anywhere, subgraphs
    included), through any op: where to look when that node fails. Empty when the graph has
    no such node or cannot be read."""
    if model is None or model.graph is None:
        return []
    graphs = list(onnxfile.all_graphs(model.graph))
    producers = {out: node for g in graphs for node in g.nodes for out in node.outputs if out}
    todo = [x for g in graphs for node in g.nodes if node.op_type == op_type for x in _reads(node)]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        node = producers.get(name)
        if node is not None:
            todo.extend(_reads(node))
    return [n for n in names if n in seen]


def _combine(found: Sequence[ValueRule]) -> ValueRule | None:
    """One rule from several consumers: explicit values first, else the ranges' intersection."""
    for rule in found:
        if rule.fill == "values":
            return rule
    if not found:
        return None
    low, high = max(r.low for r in found), min(r.high for r in found)
    if low >= high:
        return min(found, key=lambda r: r.high)
    return ValueRule("ints", "; ".join(dict.fromkeys(r.because for r in found)), low, high)


def _infer(path: str | None, planned: Mapping[str, tuple[int, ...]]) -> dict[str, Shape]:
    """Shapes of the graph's tensors at the planned input shapes, by onnx's shape inference;
    empty when onnx is not there or cannot read or infer the file."""
    if path is None or not os.path.isfile(path) or os.path.getsize(path) > _MAX_INFER_BYTES:
        return {}
    try:
        import onnx
        from onnx import shape_inference

        model = onnx.load(path, load_external_data=False)
        for value in model.graph.input:
            if value.name in planned and value.type.HasField("tensor_type"):
                dims = value.type.tensor_type.shape.dim
                del dims[:]
                for d in planned[value.name]:
                    dims.add().dim_value = d
        inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # any failure of onnx: the shapes stay unknown
        return {}
    out: dict[str, Shape] = {}
    for value in [*inferred.graph.value_info, *inferred.graph.output]:
        t = value.type.tensor_type
        if value.type.HasField("tensor_type") and t.HasField("shape"):
            out[value.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
    return out


class _Looked:
    """Shapes as a consumer rule reads them."""

    def __init__(self, shape_of: Callable[[str], Shape | None], ours: Sequence[str]) -> None:
        self.shape_of, self.ours = shape_of, frozenset(ours)

    def dim(self, name: str, axis: int) -> int | None:
        shape = self.shape_of(name)
        if shape is None or not -len(shape) <= axis < len(shape):
            return None
        return shape[axis]

    def rank(self, name: str) -> int | None:
        shape = self.shape_of(name)
        return None if shape is None else len(shape)

    def size(self, name: str) -> int | None:
        shape = self.shape_of(name)
        if shape is None or any(d is None for d in shape):
            return None
        return math.prod(d for d in shape if d is not None)


_Rule = Callable[[onnxfile.Node, _Looked, int], ValueRule | None]


def _ints(low: int, high: int, because: str) -> ValueRule | None:
    return ValueRule("ints", because, low, high) if high > low else None


def _values(values: Sequence[float | str], because: str) -> ValueRule:
    return ValueRule("values", because, values=tuple(values))


def _index(data_at: int, axis_attr: str | None, axis_default: int = 0) -> _Rule:
    def rule(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
        axis = _attr(node, axis_attr, axis_default) if axis_attr else axis_default
        data = node.inputs[data_at]
        d = s.dim(data, axis)
        if d is None:
            return None
        return _ints(0, d, f"indices in [0, {d}) (axis {axis} of {data!r}, which {node.op_type} indexes)")

    return rule


def _index_nd(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    data, indices = node.inputs[0], node.inputs[1]
    shape, r = s.shape_of(data), s.dim(indices, -1)
    b = _attr(node, "batch_dims", 0)
    if shape is None or r is None:
        return None
    dims = shape[b : b + r]
    if not dims or any(d is None for d in dims):
        return None
    d = min(x for x in dims if x is not None)
    return _ints(0, d, f"indices in [0, {d}) (the dims of {data!r} that {node.op_type} indexes)")


def _constant(value: float, why: str) -> _Rule:
    return lambda node, s, n: _values([value] * n, why)


def _first_axes(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    rank = s.rank(node.inputs[0])
    if node.op_type == "Unsqueeze":
        return _values(range(n), f"axes 0..{n - 1} (within the rank of Unsqueeze's output)")
    if rank is not None and n > rank:
        return None
    return _values(range(n), f"axes 0..{n - 1} (within the rank of {node.op_type}'s data)")


def _squeeze_axes(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    shape = s.shape_of(node.inputs[0])
    if shape is None:
        return None
    ones = [i for i, d in enumerate(shape) if d == 1]
    if len(ones) < n:
        return None
    return _values(ones[:n], f"axes {ones[:n]} (the dims of size 1 that Squeeze removes)")


def _data_shape(what: str) -> _Rule:
    def rule(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
        shape = s.shape_of(node.inputs[0])
        axes = _attr_ints(node, "axes")
        if shape is not None and axes and len(axes) == n and all(-len(shape) <= a < len(shape) for a in axes):
            dims = [shape[a] for a in axes]
            if all(d is not None for d in dims):
                return _values(
                    [d for d in dims if d is not None],
                    f"{what} {dims}: the dims of {node.inputs[0]!r} at axes {axes}",
                )
        if shape is not None and len(shape) == n and all(d is not None for d in shape):
            return _values(
                [d for d in shape if d is not None], f"{what} {list(shape)}: the shape of {node.inputs[0]!r}"
            )
        if node.op_type != "Reshape" or n < 1:
            return None
        target = [-1] if n == 1 else [1] * (n - 1) + [-1]
        return _values(target, f"{what} {target}: any data fits it")

    return rule


def _split_sizes(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    axis = _attr(node, "axis", 0)
    d = s.dim(node.inputs[0], axis)
    if d is None or n < 1:
        return None
    base, extra = divmod(d, n)
    sizes = [base + (1 if i < extra else 0) for i in range(n)]
    return _values(sizes, f"sizes {sizes} (summing to {d}, axis {axis} of {node.inputs[0]!r})")


def _slice_ends(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    axes = node.inputs[3] if len(node.inputs) > 3 else ""
    if axes and axes not in s.ours:  # axes this run does not choose: ends past any dim
        return _values([_BIG] * n, f"ends {_BIG} (past every dim: whole axes)")
    dims = [s.dim(node.inputs[0], i) for i in range(n)]
    ends = [d if d is not None else _BIG for d in dims]
    return _values(ends, f"ends {ends} (whole axes 0..{n - 1})")


def _affine_size(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    batch = s.dim(node.inputs[0], 0)
    if batch is None or n < 3:
        return None
    size = [batch, 1, *[8] * (n - 2)]
    return _values(size, f"size {size} (the batch of {node.inputs[0]!r}, one channel, 8 a side)")


def _top_k(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    d = s.dim(node.inputs[0], _attr(node, "axis", -1))
    k = 1 if d is None else min(d, 1)
    return _values([k] * n, f"k = {k} (at most the dim TopK selects along)")


def _reverse_lengths(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    d = s.dim(node.inputs[0], _attr(node, "time_axis", 0))
    return (
        None if d is None else _ints(1, d + 1, f"lengths in [1, {d}] (the time axis of {node.inputs[0]!r})")
    )


def _one_hot_indices(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    return _ints(0, _DEPTH, f"indices in [0, {_DEPTH}) (below OneHot's depth)")


def _write_indices(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    """TensorScatter's write_indices: where each batch row's update starts along the cache's
    sequence axis, so that the update fits (at most the cache's length less the update's)."""
    axis = _attr(node, "axis", -2)
    cache, update = s.dim(node.inputs[0], axis), s.dim(node.inputs[1], axis)
    if cache is None or update is None or update > cache:
        return None
    room = cache - update + 1
    return _ints(0, room, f"write positions in [0, {room}) (an update of {update} fits a cache of {cache})")


def _roi(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    """Resize's roi (tf_crop_and_resize): the whole tensor, starts 0 then ends 1."""
    if n < 2 or n % 2:
        return None
    return _values([0.0] * (n // 2) + [1.0] * (n // 2), "roi the whole tensor (starts 0, ends 1)")


def _dft_axis(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    """DFT's axis input (opset 20): the signal axis, its default -2 counted from the front (the
    last axis holds the real and imaginary parts)."""
    rank = s.rank(node.inputs[0])
    if rank is None or rank < 3:
        return None
    return _values([rank - 2] * n, f"axis {rank - 2} (DFT's default signal axis, -2; the last holds re/im)")


def _unpooled(node: onnxfile.Node, s: _Looked) -> list[int] | None:
    """MaxUnpool's default output shape: N, C, then (in - 1) * stride - pads + kernel a side."""
    shape, kernel = s.shape_of(node.inputs[0]), _attr_ints(node, "kernel_shape")
    if shape is None or kernel is None or any(d is None for d in shape) or len(shape) != len(kernel) + 2:
        return None
    k = len(kernel)
    strides = _attr_ints(node, "strides") or [1] * k
    pads = _attr_ints(node, "pads") or [0] * (2 * k)
    if len(strides) != k or len(pads) != 2 * k:
        return None
    dims = [d for d in shape if d is not None]
    out = [(dims[2 + i] - 1) * strides[i] - pads[i] - pads[k + i] + kernel[i] for i in range(k)]
    return [*dims[:2], *out] if all(d > 0 for d in out) else None


def _unpool_shape(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    out = _unpooled(node, s)
    if out is None or len(out) != n:
        return None
    return _values(out, f"output_shape {out} (MaxUnpool's own output shape for {node.inputs[0]!r})")


def _unpool_indices(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    out = _unpooled(node, s)
    if out is None:
        return None
    size = math.prod(out)
    return _ints(0, size, f"indices in [0, {size}) (positions in MaxUnpool's output {out})")


def _col2im(node: onnxfile.Node, s: _Looked) -> tuple[list[int], list[int]] | None:
    """An image_shape and a block_shape that Col2Im's input [N, C x prod(block), L] fits: a
    block of a divisor of the input's dim 1 along one axis, and L blocks along one axis (or
    split between axes), at the node's strides, pads and dilations."""
    shape, k = s.shape_of(node.inputs[0]), s.size(node.inputs[1])
    if shape is None or len(shape) != 3 or shape[1] is None or shape[2] is None or not k:
        return None
    dil = _attr_ints(node, "dilations") or [1] * k
    pads = _attr_ints(node, "pads") or [0] * (2 * k)
    strides = _attr_ints(node, "strides") or [1] * k
    if len(dil) != k or len(pads) != 2 * k or len(strides) != k:
        return None
    rows, columns = shape[1], shape[2]
    blocks = [b for b in range(1, rows + 1) if rows % b == 0]
    counts = [c for c in range(1, columns + 1) if columns % c == 0]
    for b in blocks:  # 1 first: the fewest rows per channel
        for i in range(k):
            block = [b if a == i else 1 for a in range(k)]
            for c in reversed(counts):
                for j in range(k):
                    count = [c if a == j else 1 for a in range(k)]
                    rest = columns // c  # the other axes share what is left, on the next one
                    if rest > 1:
                        if k < 2:
                            continue
                        count[(j + 1) % k] *= rest
                    image = [
                        (count[a] - 1) * strides[a] + dil[a] * (block[a] - 1) + 1 - pads[a] - pads[k + a]
                        for a in range(k)
                    ]
                    if all(x > 0 for x in image):
                        return image, block
    return None


def _col2im_part(which: int) -> _Rule:
    def rule(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
        found = _col2im(node, s)
        if found is None or len(found[which]) != n:
            return None
        image, block = found
        name = ("image_shape", "block_shape")[which]
        data = list(s.shape_of(node.inputs[0]) or ())
        why = f"{name} {found[which]} (image {image} in blocks {block} fit Col2Im's {data})"
        return _values(found[which], why)

    return rule


def _categories(node: onnxfile.Node, s: _Looked, n: int) -> ValueRule | None:
    """A OneHotEncoder's input (ai.onnx.ml): one of its categories (zeros=0 refuses others)."""
    for attr in node.attributes:
        if attr.name in ("cats_strings", "cats_int64s"):
            cats: list[float | str] = [*attr.strings] if attr.name == "cats_strings" else [*attr.ints]
            if cats:
                return _values([cats[0]] * n, f"category {cats[0]!r} (the first OneHotEncoder knows)")
    return None


_DEPTH = 10

_CONSUMERS: dict[tuple[str, int], _Rule] = {
    ("Gather", 1): _index(0, "axis"),
    ("GatherElements", 1): _index(0, "axis"),
    ("ScatterElements", 1): _index(0, "axis"),
    ("Scatter", 1): _index(0, "axis"),
    ("GatherND", 1): _index_nd,
    ("ScatterND", 1): _index_nd,
    ("RoiAlign", 2): _index(0, None),
    ("NegativeLogLikelihoodLoss", 1): _index(0, None, 1),
    ("SoftmaxCrossEntropyLoss", 1): _index(0, None, 1),
    ("ArrayFeatureExtractor", 1): _index(0, None, -1),
    ("AffineGrid", 1): _affine_size,
    ("OneHot", 0): _one_hot_indices,
    ("OneHot", 1): _constant(_DEPTH, f"depth {_DEPTH}"),
    ("TopK", 1): _top_k,
    ("CumSum", 1): _constant(0, "axis 0"),
    ("CumProd", 1): _constant(0, "axis 0"),
    ("Unsqueeze", 1): _first_axes,
    ("Squeeze", 1): _squeeze_axes,
    ("Slice", 1): _constant(0, "starts 0"),
    ("Slice", 2): _slice_ends,
    ("Slice", 3): _first_axes,
    ("Slice", 4): _constant(1, "steps 1"),
    ("Split", 1): _split_sizes,
    ("SplitToSequence", 1): _split_sizes,
    ("Reshape", 1): _data_shape("target shape"),
    ("Expand", 1): _constant(1, "ones (Expand keeps the data's shape)"),
    ("Tile", 1): _constant(1, "repeats 1"),
    ("Resize", 1): _roi,
    ("Resize", 2): _constant(1.0, "scales 1 (the data's size)"),
    ("Upsample", 1): _constant(1.0, "scales 1 (the data's size)"),
    ("Resize", 3): _data_shape("sizes"),
    ("CenterCropPad", 1): _data_shape("shape"),
    ("Pad", 1): _constant(0, "pads 0"),
    ("Pad", 3): _first_axes,
    ("ConstantOfShape", 0): _constant(1, "shape of ones (a small tensor)"),
    ("Range", 0): _constant(0, "start 0"),
    ("Range", 1): _constant(10, "limit 10"),
    ("Range", 2): _constant(1, "delta 1"),
    ("Loop", 0): _constant(3, "a trip count of 3"),
    ("Loop", 1): _constant(1, "true (the loop runs)"),
    ("NonMaxSuppression", 2): _constant(10, "10 boxes per class at most"),
    ("ReverseSequence", 1): _reverse_lengths,
    ("TensorScatter", 2): _write_indices,
    ("DFT", 2): _dft_axis,
    ("MaxUnpool", 1): _unpool_indices,
    ("MaxUnpool", 2): _unpool_shape,
    ("Col2Im", 1): _col2im_part(0),
    ("Col2Im", 2): _col2im_part(1),
    ("OneHotEncoder", 0): _categories,
    ("Div", 1): lambda node, s, n: _ints(1, 10, "in [1, 10): a divisor, never zero"),
    ("Mod", 1): lambda node, s, n: _ints(1, 10, "in [1, 10): a divisor, never zero"),
}


#: Shape-like node inputs whose length the data's rank decides: (op, input) -> rank multiple.
_RANK_LONG = {
    **{(op, 1): 1 for op in ("Reshape", "Expand", "Tile", "CenterCropPad", "Slice")},
    ("Resize", 2): 1, ("Resize", 3): 1, ("Slice", 2): 1, ("Slice", 3): 1, ("Slice", 4): 1,
    ("Pad", 1): 2, ("Pad", 3): 1,
}  # fmt: skip
#: Node inputs of one element (or a few the graph decides apart).
_ONE_LONG = {("Unsqueeze", 1), ("TopK", 1), ("ConstantOfShape", 0), ("OneHot", 1)}


def _length(node: onnxfile.Node, k: int, shape_of: Callable[[str], Shape | None]) -> tuple[int, str] | None:
    """(length, reason) a shape-like node input needs, or None when the graph does not say."""
    op = node.op_type
    if (op, k) in _RANK_LONG:
        shape = shape_of(node.inputs[0])
        if not shape:
            return (1, "1 element") if op in ("Reshape", "Expand") else None
        times = _RANK_LONG[op, k]
        twice = "twice " if times == 2 else ""
        return times * len(shape), f"{times * len(shape)} elements ({twice}the rank of {node.inputs[0]!r})"
    if op == "Split" and k == 1:
        n = len(node.outputs)
        return n, f"{n} elements (one per output of Split)"
    if (op, k) in _ONE_LONG or (op.startswith("Reduce") and k == 1):
        return 1, "1 element"
    return None
