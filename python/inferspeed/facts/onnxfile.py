"""What inferspeed needs from an ONNX model file, read straight from the protobuf wire format.

The onnx package takes over a second to import (mostly its dependency ml_dtypes), more than
everything else a small ``inferspeed run`` does. The facts a run needs before ONNX Runtime sees
the file (initializer sizes, external-data locations, inputs typed without a shape, which
operators occur, opset imports) are a few fields of a few messages of ``onnx.proto``, so they
are read here with a small protobuf reader instead.

The reader follows the protobuf wire format as the C++ and upb parsers do, because a file it
refuses gets no external-data check while ONNX Runtime's parser may still accept it:

- every wire type is understood, groups included; fields it does not need, and known fields
  with an unexpected wire type, are skipped as protobuf skips unknown fields;
- a singular message field that occurs twice is merged (repeated fields append, scalars: the
  last wins), repeated scalars are read packed or not, a oneof keeps its last member;
- enum fields are closed (proto2): an unknown value leaves the field as it was;
- strings are not checked for UTF-8 (proto2 does not either) and are decoded with
  ``surrogateescape``, so a path rebuilt from them names the same bytes ONNX Runtime opens.

Large fields (``raw_data``, packed ``float_data``...) are skipped by their length, without
being copied: :func:`read` maps a large file, so only the pages holding the model's structure
are read from disk. Work is bounded: at most MAX_DEPTH nested messages (protobuf's limit, and
ONNX Runtime's: deeper files are refused by both), and at most MAX_FIELDS fields, past which
:class:`TooManyFields` tells the caller to hand the file to the onnx package (fast C++ parsing
of a huge graph, paid only there). Anything else malformed is a :class:`ParseError`.

Measured here: the demo MLP reads in 0.3 ms; a chain of 50,000 Add nodes (1.7 MB, 300,000
fields) in 0.45 s on a busy core, against 0.35 s for ``onnx.load`` after the 1.1-1.6 s import.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import mmap

__all__ = [
    "LIST_KEPT",
    "MAX_DEPTH",
    "MAX_FIELDS",
    "Attribute",
    "Graph",
    "ModelFile",
    "Node",
    "ParseError",
    "Tensor",
    "TooManyFields",
    "Value",
    "ValueType",
    "all_graphs",
    "from_proto",
    "parse",
    "read",
    "wire_fields",
]

#: Most nested messages (protobuf's own default recursion limit is 100).
MAX_DEPTH = 100
#: Most fields read from one file: about 3 s of work on a busy core here (1.5 µs a field). A
#: graph of 50,000 nodes has 300,000; weights are one field per tensor however big. Past it the
#: caller falls back to the onnx package, whose C++ parser is faster on such files.
MAX_FIELDS = 2_000_000
#: The ints and strings of an attribute kept (the rest only counted).
LIST_KEPT = 64

Buffer: TypeAlias = "bytes | bytearray | memoryview | mmap.mmap"
#: Files up to this size are read whole; larger ones are mapped, so their weights stay unread.
_MAP_ABOVE = 1 << 20

_MASK64 = (1 << 64) - 1
#: AttributeProto.AttributeType values (a closed enum), and the two that hold graphs.
_ATTRIBUTE_TYPES = frozenset(range(15))
GRAPH, GRAPHS = 5, 10
#: TensorProto.DataLocation values.
_DATA_LOCATIONS = frozenset((0, 1))
_EXTERNAL = 1
#: TypeProto's oneof ``value``: field number -> member name.
_TYPE_KINDS = {
    1: "tensor_type",
    4: "sequence_type",
    5: "map_type",
    7: "opaque_type",
    8: "sparse_tensor_type",
    9: "optional_type",
}


class ParseError(ValueError):
    """The bytes are not a protobuf message this reader can read within its limits."""


class TooManyFields(ParseError):
    """Past MAX_FIELDS: possibly a valid model, only too big to read in Python quickly."""


class _Record:
    """A plain record with slots: equal when of one type with equal fields, shown by its
    fields. Not a dataclass: eight slotted dataclasses cost ~3 ms to define, a tenth of what
    a small run spends in Python before ONNX Runtime starts."""

    __slots__: tuple[str, ...] = ()
    __hash__ = None  # type: ignore[assignment]  # mutable

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            getattr(self, f) == getattr(other, f) for f in self.__slots__
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Tensor(_Record):
    """A TensorProto without its data."""

    __slots__ = ("data_location", "data_type", "dims", "external_data", "name")

    def __init__(
        self,
        name: str = "",
        dims: list[int] | None = None,
        data_type: int = 0,
        data_location: int = 0,
        external_data: list[tuple[str, str]] | None = None,
    ) -> None:
        self.name = name
        self.dims: list[int] = dims if dims is not None else []
        self.data_type = data_type
        self.data_location = data_location
        self.external_data: list[tuple[str, str]] = external_data if external_data is not None else []

    @property
    def external(self) -> bool:
        """Whether the data lives in another file (``data_location`` EXTERNAL)."""
        return self.data_location == _EXTERNAL

    def external_info(self) -> dict[str, str]:
        """``external_data`` as a dict (the last of repeated keys wins, as in a dict display)."""
        return dict(self.external_data)


class ValueType(_Record):
    """A TypeProto: ``kind`` is the oneof member set (None: none). Tensor and sparse tensor
    types have ``elem_type`` and ``shape`` (None: no shape field; dims are ints for
    ``dim_value``, strings for ``dim_param``, None for neither); sequence and optional types
    have ``inner`` (None: element type not set); a map type has its key type in ``elem_type``
    and its value type in ``inner``."""

    __slots__ = ("elem_type", "inner", "kind", "shape")

    def __init__(
        self,
        kind: str | None = None,
        elem_type: int = 0,
        shape: list[int | str | None] | None = None,
        inner: ValueType | None = None,
    ) -> None:
        self.kind = kind
        self.elem_type = elem_type
        self.shape = shape
        self.inner = inner


class Value(_Record):
    """A ValueInfoProto: a graph input or output."""

    __slots__ = ("name", "type")

    def __init__(self, name: str = "", type: ValueType | None = None) -> None:
        self.name = name
        self.type = type if type is not None else ValueType()


class Attribute(_Record):
    """A node attribute: the fields that hold tensors or graphs, and ``i`` (an int);
    ``count``: how many numbers its ``floats`` and ``ints`` lists hold; ``ints`` and
    ``strings``: the first LIST_KEPT of its ints and strings (kernel shapes, axes, a
    OneHotEncoder's categories; a tree ensemble's long lists are not kept whole);
    ``sparse``: the values and indices tensors of its ``sparse_tensor`` (those present)."""

    __slots__ = ("count", "g", "graphs", "i", "ints", "name", "sparse", "strings", "t", "tensors", "type")

    def __init__(
        self,
        name: str = "",
        type: int = 0,
        t: Tensor | None = None,
        g: Graph | None = None,
        tensors: list[Tensor] | None = None,
        graphs: list[Graph] | None = None,
        i: int = 0,
        count: int = 0,
        sparse: list[Tensor] | None = None,
        ints: list[int] | None = None,
        strings: list[str] | None = None,
    ) -> None:
        self.name = name
        self.type = type
        self.ints: list[int] = ints if ints is not None else []
        self.strings: list[str] = strings if strings is not None else []
        self.i = i
        self.count = count
        self.sparse: list[Tensor] = sparse if sparse is not None else []
        self.t = t
        self.g = g
        self.tensors: list[Tensor] = tensors if tensors is not None else []
        self.graphs: list[Graph] = graphs if graphs is not None else []


class Node(_Record):
    """A NodeProto: its type, attributes and the names of its inputs and outputs."""

    __slots__ = ("attributes", "domain", "inputs", "op_type", "outputs")

    def __init__(
        self,
        op_type: str = "",
        domain: str = "",
        attributes: list[Attribute] | None = None,
        inputs: list[str] | None = None,
        outputs: list[str] | None = None,
    ) -> None:
        self.op_type = op_type
        self.domain = domain
        self.attributes: list[Attribute] = attributes if attributes is not None else []
        self.inputs: list[str] = inputs if inputs is not None else []
        self.outputs: list[str] = outputs if outputs is not None else []


class Graph(_Record):
    """A GraphProto; ``sparse_initializers`` holds the values and indices tensors of each
    sparse initializer."""

    __slots__ = ("initializers", "inputs", "name", "nodes", "outputs", "sparse_initializers")

    def __init__(
        self,
        name: str = "",
        nodes: list[Node] | None = None,
        initializers: list[Tensor] | None = None,
        sparse_initializers: list[Tensor] | None = None,
        inputs: list[Value] | None = None,
        outputs: list[Value] | None = None,
    ) -> None:
        self.name = name
        self.nodes: list[Node] = nodes if nodes is not None else []
        self.initializers: list[Tensor] = initializers if initializers is not None else []
        self.sparse_initializers: list[Tensor] = (
            sparse_initializers if sparse_initializers is not None else []
        )
        self.inputs: list[Value] = inputs if inputs is not None else []
        self.outputs: list[Value] = outputs if outputs is not None else []


class ModelFile(_Record):
    """A ModelProto as far as inferspeed reads it. ``graph`` is None when the file has none;
    ``functions`` holds the nodes of each model-local function."""

    __slots__ = (
        "functions", "graph", "ir_version", "metadata", "opset_import", "producer_name", "producer_version",
    )  # fmt: skip

    def __init__(
        self,
        ir_version: int = 0,
        producer_name: str = "",
        producer_version: str = "",
        opset_import: list[tuple[str, int]] | None = None,
        graph: Graph | None = None,
        functions: list[list[Node]] | None = None,
        metadata: list[tuple[str, str]] | None = None,
    ) -> None:
        self.ir_version = ir_version
        self.producer_name = producer_name
        self.producer_version = producer_version
        self.opset_import: list[tuple[str, int]] = opset_import if opset_import is not None else []
        self.graph = graph
        self.functions: list[list[Node]] = functions if functions is not None else []
        #: metadata_props, in file order (export tools record image size, labels, ...)
        self.metadata: list[tuple[str, str]] = metadata if metadata is not None else []

    def graphs(self) -> Iterator[Graph]:
        """The main graph and every subgraph held by a node attribute, depth first."""
        if self.graph is not None:
            yield from all_graphs(self.graph)

    def op_types(self) -> Iterator[str]:
        """The op_type of every node: all graphs, then the functions' nodes."""
        for graph in self.graphs():
            for node in graph.nodes:
                yield node.op_type
        for nodes in self.functions:
            for node in nodes:
                yield node.op_type

    def external_data_tensors(self) -> Iterator[Tensor]:
        """Every tensor whose data ONNX Runtime may read from another file: those onnx's
        ``external_data_helper._get_all_tensors`` visits, in its order (initializers of the
        main graph and of subgraphs of attributes typed GRAPH/GRAPHS, then attribute tensors
        of the main graph, its subgraphs and the functions), then the values and indices of
        sparse initializers (which onnx skips but ONNX Runtime loads too)."""
        graph = self.graph or Graph()
        yield from _initializer_tensors(graph)
        yield from _attribute_tensors(graph.nodes)
        for nodes in self.functions:
            yield from _attribute_tensors(nodes)
        for g in _typed_subgraphs_and_self(graph):
            yield from g.sparse_initializers


def _subgraphs(attr: Attribute) -> Iterator[Graph]:
    """Subgraphs of an attribute the way onnx's external-data helpers see them: by its type."""
    if attr.type == GRAPH and attr.g is not None:
        yield attr.g
    if attr.type == GRAPHS:
        yield from attr.graphs


def all_graphs(graph: Graph) -> Iterator[Graph]:
    """``graph`` and every subgraph of any attribute holding one (``g`` or ``graphs``, whatever
    the attribute's type, as ``inferspeed info`` counts them)."""
    yield graph
    for node in graph.nodes:
        for attr in node.attributes:
            if attr.g is not None:
                yield from all_graphs(attr.g)
            for sub in attr.graphs:
                yield from all_graphs(sub)


def _typed_subgraphs_and_self(graph: Graph) -> Iterator[Graph]:
    yield graph
    for node in graph.nodes:
        for attr in node.attributes:
            for sub in _subgraphs(attr):
                yield from _typed_subgraphs_and_self(sub)


def _initializer_tensors(graph: Graph) -> Iterator[Tensor]:
    yield from graph.initializers
    for node in graph.nodes:
        for attr in node.attributes:
            for sub in _subgraphs(attr):
                yield from _initializer_tensors(sub)


def _attribute_tensors(nodes: Iterable[Node]) -> Iterator[Tensor]:
    for node in nodes:
        for attr in node.attributes:
            if attr.t is not None:
                yield attr.t
            yield from attr.tensors
            for sub in _subgraphs(attr):
                yield from _attribute_tensors(sub.nodes)


def _varint(data: Buffer, i: int, end: int) -> tuple[int, int]:
    """The varint at ``i`` (at most 10 bytes, truncated to 64 bits as protobuf does) and the
    offset after it."""
    if i >= end:
        raise ParseError(f"truncated varint at byte {i}")
    b = data[i]
    if b < 0x80:  # most tags, lengths and small values: one byte
        return b, i + 1
    value = b & 0x7F
    shift = 7
    i += 1
    while True:
        if i >= end or shift > 63:
            raise ParseError(f"truncated or overlong varint before byte {i}")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value & _MASK64, i
        shift += 7


def _int64(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >> 31 else value


class _Reader:
    """Parses one buffer; ``budget`` fields and ``depth`` nested messages remain."""

    def __init__(self, data: Buffer, max_fields: int) -> None:
        self.data = data
        self.max_fields = max_fields
        self.budget = max_fields
        self.depth = 0

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError(f"messages nested more than {MAX_DEPTH} deep")

    def fields(self, i: int, end: int) -> Iterator[tuple[int, int, int, int]]:
        """(number, wire type, a, b) of each field in data[i:end]: a is the value of a varint,
        [a, b) the bytes of a length-delimited or fixed-width field. Groups are skipped."""
        data = self.data
        while i < end:
            self.budget -= 1
            if self.budget < 0:
                raise TooManyFields(f"more than {self.max_fields} fields")
            key = data[i]
            if key < 0x80:  # one-byte tag (fields 1-15): inlined, this loop is the hot path
                i += 1
            else:
                key, i = _varint(data, i, end)
            number, wire = key >> 3, key & 7
            if number == 0 or key > 0xFFFFFFFF:
                raise ParseError(f"invalid field tag {key} before byte {i}")
            if wire == 2:
                size = data[i] if i < end else 0x80
                if size < 0x80:
                    i += 1
                else:
                    size, i = _varint(data, i, end)
                if size > end - i:
                    raise ParseError(f"field {number} runs {size} bytes past byte {i}, beyond its message")
                yield number, 2, i, i + size
                i += size
            elif wire == 0:
                value, i = _varint(data, i, end)
                yield number, 0, value, 0
            elif wire in (1, 5):
                width = 8 if wire == 1 else 4
                if end - i < width:
                    raise ParseError(f"truncated fixed-width field {number} at byte {i}")
                yield number, wire, i, i + width
                i += width
            elif wire == 3:
                i = self.skip_group(number, i, end)
            else:
                raise ParseError(f"unexpected wire type {wire} of field {number} before byte {i}")

    def skip_group(self, number: int, i: int, end: int) -> int:
        """Skip a (deprecated) group's fields up to its end tag; the offset after it."""
        self.enter()
        data = self.data
        while True:
            self.budget -= 1
            if self.budget < 0:
                raise TooManyFields(f"more than {self.max_fields} fields")
            key, i = _varint(data, i, end)
            inner, wire = key >> 3, key & 7
            if inner == 0 or key > 0xFFFFFFFF:
                raise ParseError(f"invalid field tag {key} before byte {i}")
            if wire == 4:
                if inner != number:
                    raise ParseError(f"group {number} ended by the end tag of {inner}")
                self.depth -= 1
                return i
            if wire == 0:
                _, i = _varint(data, i, end)
            elif wire == 2:
                size, i = _varint(data, i, end)
                i += size
            elif wire in (1, 5):
                i += 8 if wire == 1 else 4
            elif wire == 3:
                i = self.skip_group(inner, i, end)
            else:
                raise ParseError(f"unexpected wire type {wire} in group {number}")
            if i > end:
                raise ParseError(f"group {number} runs past its message")

    def text(self, a: int, b: int) -> str:
        return str(self.data[a:b], "utf-8", "surrogateescape")

    def varints(self, a: int, b: int) -> Iterator[int]:
        """The values of a packed repeated varint field."""
        while a < b:
            value, a = _varint(self.data, a, b)
            yield value

    def model(self, a: int, b: int) -> ModelFile:
        m = ModelFile()
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if wire == 0 and number == 1:
                m.ir_version = _int64(x)
            elif wire != 2:
                continue
            elif number == 2:
                m.producer_name = self.text(x, y)
            elif number == 3:
                m.producer_version = self.text(x, y)
            elif number == 7:
                m.graph = m.graph or Graph()
                self.graph(x, y, m.graph)
            elif number == 8:
                m.opset_import.append(self.opset(x, y))
            elif number == 25:
                m.functions.append(self.function(x, y))
            elif number == 14:
                m.metadata.append(self.entry(x, y))
        self.depth -= 1
        return m

    def opset(self, a: int, b: int) -> tuple[str, int]:
        domain, version = "", 0
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if number == 1 and wire == 2:
                domain = self.text(x, y)
            elif number == 2 and wire == 0:
                version = _int64(x)
        self.depth -= 1
        return domain, version

    def function(self, a: int, b: int) -> list[Node]:
        nodes: list[Node] = []
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if number == 7 and wire == 2:
                nodes.append(self.node(x, y))
        self.depth -= 1
        return nodes

    def graph(self, a: int, b: int, g: Graph) -> None:
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if wire != 2:
                continue
            if number == 1:
                g.nodes.append(self.node(x, y))
            elif number == 2:
                g.name = self.text(x, y)
            elif number == 5:
                g.initializers.append(self.tensor(x, y, Tensor()))
            elif number == 15:
                g.sparse_initializers.extend(self.sparse_tensor(x, y))
            elif number in (11, 12):
                (g.inputs if number == 11 else g.outputs).append(self.value(x, y))
        self.depth -= 1

    def node(self, a: int, b: int) -> Node:
        n = Node()
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if wire != 2:
                continue
            if number == 4:
                n.op_type = self.text(x, y)
            elif number == 1:
                n.inputs.append(self.text(x, y))
            elif number == 2:
                n.outputs.append(self.text(x, y))
            elif number == 7:
                n.domain = self.text(x, y)
            elif number == 5:
                n.attributes.append(self.attribute(x, y))
        self.depth -= 1
        return n

    def attribute(self, a: int, b: int) -> Attribute:
        attr = Attribute()
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if number == 20 and wire == 0:
                if _int32(x) in _ATTRIBUTE_TYPES:  # closed enum: an unknown value is not stored
                    attr.type = _int32(x)
            elif number == 3 and wire == 0:
                attr.i = _int64(x)
            elif number == 7 and wire == 5:  # one of floats
                attr.count += 1
            elif number == 8 and wire == 0:  # one of ints
                attr.count += 1
                if len(attr.ints) < LIST_KEPT:
                    attr.ints.append(_int64(x))
            elif wire != 2:
                continue
            elif number == 7:  # packed floats
                attr.count += (y - x) // 4
            elif number == 8:  # packed ints
                for v in self.varints(x, y):
                    attr.count += 1
                    if len(attr.ints) < LIST_KEPT:
                        attr.ints.append(_int64(v))
            elif number == 9:
                if len(attr.strings) < LIST_KEPT:
                    attr.strings.append(self.text(x, y))
            elif number == 22:
                attr.sparse = self.sparse_tensor(x, y)
            elif number == 1:
                attr.name = self.text(x, y)
            elif number == 5:
                attr.t = self.tensor(x, y, attr.t or Tensor())
            elif number == 6:
                attr.g = attr.g or Graph()
                self.graph(x, y, attr.g)
            elif number == 10:
                attr.tensors.append(self.tensor(x, y, Tensor()))
            elif number == 11:
                sub = Graph()
                self.graph(x, y, sub)
                attr.graphs.append(sub)
        self.depth -= 1
        return attr

    def tensor(self, a: int, b: int, t: Tensor) -> Tensor:
        """Read a TensorProto into ``t`` (merged into what it holds, as protobuf merges a
        repeated occurrence of a singular message field)."""
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if number == 1:
                if wire == 0:
                    t.dims.append(_int64(x))
                elif wire == 2:  # packed
                    t.dims.extend(_int64(v) for v in self.varints(x, y))
            elif wire == 0:
                if number == 2:
                    t.data_type = _int32(x)
                elif number == 14 and _int32(x) in _DATA_LOCATIONS:
                    t.data_location = _int32(x)
            elif wire == 2:
                if number == 8:
                    t.name = self.text(x, y)
                elif number == 13:
                    t.external_data.append(self.entry(x, y))
        self.depth -= 1
        return t

    def sparse_tensor(self, a: int, b: int) -> list[Tensor]:
        """The values and indices tensors of a SparseTensorProto (those present)."""
        values: Tensor | None = None
        indices: Tensor | None = None
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if wire == 2 and number == 1:
                values = self.tensor(x, y, values or Tensor())
            elif wire == 2 and number == 2:
                indices = self.tensor(x, y, indices or Tensor())
        self.depth -= 1
        return [t for t in (values, indices) if t is not None]

    def entry(self, a: int, b: int) -> tuple[str, str]:
        key = value = ""
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if wire == 2 and number == 1:
                key = self.text(x, y)
            elif wire == 2 and number == 2:
                value = self.text(x, y)
        self.depth -= 1
        return key, value

    def value(self, a: int, b: int) -> Value:
        v = Value()
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if wire == 2 and number == 1:
                v.name = self.text(x, y)
            elif wire == 2 and number == 2:
                self.type(x, y, v.type)
        self.depth -= 1
        return v

    def type(self, a: int, b: int, t: ValueType) -> None:
        """Read a TypeProto into ``t``: a member of the oneof merges into the same member and
        replaces a different one."""
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            kind = _TYPE_KINDS.get(number)
            if wire != 2 or kind is None:
                continue
            if t.kind != kind:
                t.kind, t.elem_type, t.shape, t.inner = kind, 0, None, None
            if kind in ("tensor_type", "sparse_tensor_type"):
                self.tensor_type(x, y, t)
            elif kind in ("sequence_type", "optional_type"):
                self.element_type(x, y, t)
            elif kind == "map_type":
                self.map_type(x, y, t)
        self.depth -= 1

    def map_type(self, a: int, b: int, t: ValueType) -> None:
        """A MapTypeProto: ``key_type`` (an element type) and ``value_type`` (a TypeProto)."""
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if number == 1 and wire == 0:
                t.elem_type = _int32(x)
            elif number == 2 and wire == 2:
                t.inner = t.inner or ValueType()
                self.type(x, y, t.inner)
        self.depth -= 1

    def tensor_type(self, a: int, b: int, t: ValueType) -> None:
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if number == 1 and wire == 0:
                t.elem_type = _int32(x)
            elif number == 2 and wire == 2:
                t.shape = t.shape if t.shape is not None else []
                self.shape(x, y, t.shape)
        self.depth -= 1

    def element_type(self, a: int, b: int, t: ValueType) -> None:
        """The ``elem_type`` (a TypeProto) of a sequence or optional type."""
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if number == 1 and wire == 2:
                t.inner = t.inner or ValueType()
                self.type(x, y, t.inner)
        self.depth -= 1

    def shape(self, a: int, b: int, dims: list[int | str | None]) -> None:
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if number == 1 and wire == 2:
                dims.append(self.dimension(x, y))
        self.depth -= 1

    def dimension(self, a: int, b: int) -> int | str | None:
        dim: int | str | None = None
        self.enter()
        for number, wire, x, y in self.fields(a, b):
            if number == 1 and wire == 0:
                dim = _int64(x)
            elif number == 2 and wire == 2:
                dim = self.text(x, y)
        self.depth -= 1
        return dim


def parse(data: Buffer, max_fields: int | None = None) -> ModelFile:
    """Read a serialized ModelProto.

    Parameters
    ----------
    data : bytes, bytearray, memoryview or mmap.mmap
        The file's bytes; nothing is copied but the strings kept.
    max_fields : int, optional
        Most fields to read before giving up (default MAX_FIELDS).

    Returns
    -------
    ModelFile

    Raises
    ------
    ParseError
        The bytes are not a protobuf message, or exceed the reader's limits.
    """
    if isinstance(data, memoryview):
        data = data.cast("B") if data.format != "B" or data.ndim != 1 else data
    reader = _Reader(data, MAX_FIELDS if max_fields is None else max_fields)
    try:
        return reader.model(0, len(data))
    except RecursionError:  # a deep nesting on a small stack: as unreadable as a corrupt file
        raise ParseError("messages nested too deep for this interpreter") from None


def wire_fields(data: Buffer, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int, int]]:
    """(number, wire type, a, b) of each field of the message in data[start:end]: a is the
    value of a varint, [a, b) the bytes of a length-delimited or fixed-width field; groups are
    skipped. No field limit: the caller walks what it needs.

    Raises
    ------
    ParseError
        The bytes are not a protobuf message.
    """
    reader = _Reader(data, 1 << 62)
    yield from reader.fields(start, len(data) if end is None else end)


def read(path: str | os.PathLike[str], max_fields: int | None = None) -> ModelFile:
    """Read the model file at ``path``: whole when small, else mapped (skipped weights are
    then never read from disk).

    Raises
    ------
    ParseError
        Not a model this reader can read.
    OSError
        The file cannot be opened.
    """
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size <= _MAP_ABOVE:
            return parse(f.read(), max_fields)
        import mmap  # only here: a C extension's load, for large files only

        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # a file that cannot be mapped
            return parse(f.read(), max_fields)
    with mapped:
        # Slices of an mmap are bytes copies, so no view of it outlives the parse.
        return parse(mapped, max_fields)


def _str(value: str | bytes) -> str:
    """A string field as the parser decodes it (upb hands back bytes when it is not UTF-8)."""
    return value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")


def _tensor_from(t: Any) -> Tensor:
    return Tensor(
        name=_str(t.name),
        dims=[int(d) for d in t.dims],
        data_type=int(t.data_type),
        data_location=int(t.data_location),
        external_data=[(_str(e.key), _str(e.value)) for e in t.external_data],
    )


def _type_from(tp: Any) -> ValueType:
    kind = tp.WhichOneof("value")
    vt = ValueType(kind=kind)
    if kind in ("tensor_type", "sparse_tensor_type"):
        tt = getattr(tp, kind)
        vt.elem_type = int(tt.elem_type)
        if tt.HasField("shape"):
            vt.shape = [
                int(d.dim_value)
                if d.HasField("dim_value")
                else _str(d.dim_param)
                if d.HasField("dim_param")
                else None
                for d in tt.shape.dim
            ]
    elif kind in ("sequence_type", "optional_type"):
        inner = getattr(tp, kind)
        vt.inner = _type_from(inner.elem_type) if inner.HasField("elem_type") else None
    elif kind == "map_type":
        vt.elem_type = int(tp.map_type.key_type)
        vt.inner = _type_from(tp.map_type.value_type) if tp.map_type.HasField("value_type") else None
    return vt


def _node_from(n: Any) -> Node:
    attributes = [
        Attribute(
            name=_str(a.name),
            type=int(a.type),
            t=_tensor_from(a.t) if a.HasField("t") else None,
            g=_graph_from(a.g) if a.HasField("g") else None,
            tensors=[_tensor_from(t) for t in a.tensors],
            graphs=[_graph_from(g) for g in a.graphs],
            i=int(a.i),
            count=len(a.floats) + len(a.ints),
            ints=[int(v) for v in a.ints[:LIST_KEPT]],
            strings=[_str(v) for v in a.strings[:LIST_KEPT]],
            sparse=[
                _tensor_from(getattr(a.sparse_tensor, f))
                for f in ("values", "indices")
                if a.HasField("sparse_tensor") and a.sparse_tensor.HasField(f)
            ],
        )
        for a in n.attribute
    ]
    return Node(
        op_type=_str(n.op_type),
        domain=_str(n.domain),
        attributes=attributes,
        inputs=[_str(x) for x in n.input],
        outputs=[_str(x) for x in n.output],
    )


def _graph_from(g: Any) -> Graph:
    return Graph(
        name=_str(g.name),
        nodes=[_node_from(n) for n in g.node],
        initializers=[_tensor_from(t) for t in g.initializer],
        sparse_initializers=[
            _tensor_from(getattr(s, f))
            for s in g.sparse_initializer
            for f in ("values", "indices")
            if s.HasField(f)
        ],
        inputs=[Value(_str(v.name), _type_from(v.type)) for v in g.input],
        outputs=[Value(_str(v.name), _type_from(v.type)) for v in g.output],
    )


def from_proto(model: Any) -> ModelFile:
    """The same facts from an ``onnx.ModelProto`` already in memory (a model past MAX_FIELDS,
    read by the onnx package; a caller that hands over a ModelProto)."""
    return ModelFile(
        ir_version=int(model.ir_version),
        producer_name=_str(model.producer_name),
        producer_version=_str(model.producer_version),
        opset_import=[(_str(o.domain), int(o.version)) for o in model.opset_import],
        graph=_graph_from(model.graph) if model.HasField("graph") else None,
        functions=[[_node_from(n) for n in f.node] for f in model.functions],
        metadata=[(_str(e.key), _str(e.value)) for e in model.metadata_props],
    )
