"""The protobuf reader of inferspeed.facts.onnxfile, checked against the onnx package.

The property that matters for the external-data check: whatever protobuf (and so ONNX Runtime)
reads, the reader reads too, and finds the same facts. Random and truncated bytes must end in
a ParseError, never another exception or a hang.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh
from onnx.external_data_helper import _get_all_tensors

from inferspeed.facts import onnxfile
from inferspeed.facts.models import mlp_model
from inferspeed.facts.onnxfile import ParseError

DEMO = Path(onnxfile.__file__).parent.parent / "data" / "demo_mlp.onnx"


def _vi(name: str, elem: int, shape: Any) -> Any:
    return h.make_tensor_value_info(name, elem, shape)


def _model(graph: Any, **kw: Any) -> Any:
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], **kw)
    model.ir_version = 8
    return model


# --- protobuf encoding, for bytes onnx.helper will not write -------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _ld(number: int, payload: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(payload)) + payload


def _vf(number: int, value: int) -> bytes:
    return _tag(number, 0) + _varint(value)


#: One unknown field of each wire type, a group holding a nested group included.
UNKNOWN = (
    _vf(1000, 7)
    + _tag(1001, 1) + b"\0" * 8
    + _ld(1002, b"\xff\x00garbage")
    + _tag(1003, 5) + b"\0" * 4
    + _tag(1004, 3) + _vf(1, 5) + _tag(2, 3) + _ld(3, b"x") + _tag(2, 4) + _tag(1004, 4)
)  # fmt: skip


def _same(data: bytes) -> onnxfile.ModelFile:
    """Parse ``data`` with both readers; they must agree."""
    mine = onnxfile.parse(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = onnx.load_from_string(data)
    assert mine == onnxfile.from_proto(theirs)
    return mine


def _both_refuse(data: bytes) -> None:
    with pytest.raises(ParseError):
        onnxfile.parse(data)
    with pytest.raises(Exception), warnings.catch_warnings():  # noqa: B017  (DecodeError and friends)
        warnings.simplefilter("ignore")
        onnx.load_from_string(data)


# --- models -------------------------------------------------------------------------------


def _if_in_loop() -> Any:
    """A Loop whose body holds an If whose branches hold initializers and a Constant."""
    then_g = h.make_graph(
        [h.make_node("Add", ["acc_in", "w_then"], ["o"])],
        "then",
        [],
        [_vi("o", T.FLOAT, [4])],
        initializer=[nh.from_array(np.ones(4, np.float32), "w_then")],
    )
    else_g = h.make_graph(
        [h.make_node("Constant", [], ["o"], value=nh.from_array(np.zeros(4, np.float32), "c_else"))],
        "else",
        [],
        [_vi("o", T.FLOAT, [4])],
    )
    body = h.make_graph(
        [
            h.make_node("Identity", ["c_in"], ["c_out"]),
            h.make_node("If", ["c_in"], ["acc_out"], then_branch=then_g, else_branch=else_g),
        ],
        "body",
        [_vi("i", T.INT64, []), _vi("c_in", T.BOOL, []), _vi("acc_in", T.FLOAT, [4])],
        [_vi("c_out", T.BOOL, []), _vi("acc_out", T.FLOAT, [4])],
        initializer=[nh.from_array(np.ones(3, np.int64), "unused_body_init")],
    )
    graph = h.make_graph(
        [h.make_node("Loop", ["n", "cond", "a0"], ["a"], body=body)],
        "loop",
        [_vi("n", T.INT64, []), _vi("cond", T.BOOL, []), _vi("a0", T.FLOAT, [4])],
        [_vi("a", T.FLOAT, [4])],
    )
    return _model(graph)


def _many_types() -> Any:
    """Inputs of every kind of type: unranked, symbolic, sequence, optional, map, sparse."""
    inputs = [
        _vi("unranked", T.FLOAT, None),
        _vi("scalar", T.INT64, []),
        _vi("mixed", T.FLOAT16, ["batch", 3, None]),
        h.make_value_info("seq", h.make_sequence_type_proto(h.make_tensor_type_proto(T.FLOAT, [2]))),
        h.make_value_info("opt", h.make_optional_type_proto(h.make_tensor_type_proto(T.INT32, ["n"]))),
        h.make_value_info("map", h.make_map_type_proto(T.INT64, h.make_tensor_type_proto(T.FLOAT, None))),
        h.make_value_info("sparse", h.make_sparse_tensor_type_proto(T.FLOAT, [10, 10])),
        h.make_value_info("untyped", onnx.TypeProto()),
    ]
    graph = h.make_graph(
        [h.make_node("Identity", ["scalar"], ["y"])], "types", inputs, [_vi("y", T.INT64, [])]
    )
    return _model(graph, producer_name="test", producer_version="1.0")


def _with_function() -> Any:
    """A model-local function whose Constant holds a tensor; a sparse initializer; an
    attribute holding a list of tensors."""
    fn = h.make_function(
        "local",
        "AddConst",
        ["x"],
        ["y"],
        [
            h.make_node("Constant", [], ["c"], value=nh.from_array(np.ones(2, np.float32), "fn_const")),
            h.make_node("Add", ["x", "c"], ["y"]),
        ],
        opset_imports=[h.make_opsetid("", 17)],
    )
    sparse = h.make_sparse_tensor(
        nh.from_array(np.array([1.0, 2.0], np.float32), "sp_values"),
        nh.from_array(np.array([0, 3], np.int64), "sp_indices"),
        [4],
    )
    node = h.make_node("AddConst", ["x"], ["y"], domain="local")
    node.attribute.append(
        h.make_attribute("weights", [nh.from_array(np.ones(2, np.float32), f"list{i}") for i in range(2)])
    )
    graph = h.make_graph([node], "fn", [_vi("x", T.FLOAT, [2])], [_vi("y", T.FLOAT, [2])])
    graph.sparse_initializer.append(sparse)
    model = h.make_model(
        graph, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("local", 1)], functions=[fn]
    )
    model.ir_version = 8
    return model


MODELS: dict[str, Callable[[], Any]] = {
    "mlp": lambda: mlp_model(layers=3, width=64, batch="batch"),
    "if_in_loop": _if_in_loop,
    "many_types": _many_types,
    "function": _with_function,
    "no_graph": lambda: onnx.ModelProto(ir_version=8),
}


def _models(models: dict[str, str]) -> list[tuple[str, bytes]]:
    out = [(name, build().SerializeToString()) for name, build in MODELS.items()]
    out += [(name, Path(path).read_bytes()) for name, path in models.items()]
    return [*out, ("demo", DEMO.read_bytes())]


def test_reads_what_onnx_reads(models: dict[str, str], quantized_model: str) -> None:
    for name, data in [*_models(models), ("quantized", Path(quantized_model).read_bytes())]:
        m = _same(data)
        proto = onnx.load_from_string(data)
        assert [t.name for t in m.external_data_tensors()][: len(list(_get_all_tensors(proto)))] == [
            t.name for t in _get_all_tensors(proto)
        ], name
        assert (m.graph is None) == (not proto.HasField("graph")), name  # "no_graph" has none
        if m.graph is not None:
            assert [(t.name, t.dims, t.data_type) for t in m.graph.initializers] == [
                (t.name, list(t.dims), t.data_type) for t in proto.graph.initializer
            ], name


def test_subgraphs_functions_and_sparse_tensors_are_found() -> None:
    m = _same(_if_in_loop().SerializeToString())
    assert [g.name for g in m.graphs()] == ["loop", "body", "else", "then"]  # attributes sorted by name
    assert list(m.op_types()) == ["Loop", "Identity", "If", "Constant", "Add"]
    assert [t.name for t in m.external_data_tensors()] == ["unused_body_init", "w_then", "c_else"]
    f = _same(_with_function().SerializeToString())
    assert [t.name for t in f.external_data_tensors()] == [
        "list0",
        "list1",
        "fn_const",
        "sp_values",
        "sp_indices",
    ]
    assert list(f.op_types()) == ["AddConst", "Constant", "Add"]
    assert f.opset_import == [("", 17), ("local", 1)]


def test_value_types() -> None:
    m = _same(_many_types().SerializeToString())
    assert m.graph is not None and m.producer_name == "test" and m.producer_version == "1.0"
    types = {v.name: v.type for v in m.graph.inputs}
    assert types["unranked"].kind == "tensor_type" and types["unranked"].shape is None
    assert types["scalar"].shape == [] and types["mixed"].shape == ["batch", 3, None]
    assert types["seq"].kind == "sequence_type" and types["seq"].inner is not None
    assert types["seq"].inner.shape == [2]
    assert types["opt"].inner is not None and types["opt"].inner.shape == ["n"]
    assert types["map"].kind == "map_type" and types["sparse"].kind == "sparse_tensor_type"
    assert types["untyped"].kind is None


def test_external_data_fields() -> None:
    t = nh.from_array(np.ones((3, 5), np.float32), "w")
    t.ClearField("raw_data")
    t.data_location = T.EXTERNAL
    for key, value in [("location", "w.bin"), ("offset", "0"), ("length", "60"), ("location", "again.bin")]:
        t.external_data.add(key=key, value=value)
    graph = h.make_graph([h.make_node("Identity", ["w"], ["y"])], "g", [], [_vi("y", T.FLOAT, [3, 5])], [t])
    m = _same(_model(graph).SerializeToString())
    assert m.graph is not None
    (w,) = m.graph.initializers
    assert w.external and w.dims == [3, 5] and w.data_type == T.FLOAT
    assert w.external_info() == {"location": "again.bin", "offset": "0", "length": "60"}  # last wins


# --- the wire format, as protobuf reads it --------------------------------------------------


def _tensor(name: str, dims: list[int], extra: bytes = b"") -> bytes:
    return b"".join(_vf(1, d) for d in dims) + _vf(2, T.FLOAT) + _ld(8, name.encode()) + extra


def _graph_bytes(nodes: list[bytes], inits: list[bytes], extra: bytes = b"") -> bytes:
    return b"".join(_ld(1, n) for n in nodes) + b"".join(_ld(5, t) for t in inits) + extra


def _model_bytes(graph: bytes, extra: bytes = b"") -> bytes:
    return _vf(1, 8) + _ld(8, _vf(2, 17)) + _ld(7, graph) + extra


def test_unknown_fields_and_groups_are_skipped_everywhere() -> None:
    node = _ld(1, b"x") + _ld(2, b"y") + UNKNOWN + _ld(4, b"Relu")
    tensor = _tensor("w", [2, 3], UNKNOWN)
    m = _same(UNKNOWN + _model_bytes(_graph_bytes([node], [tensor], UNKNOWN), UNKNOWN))
    assert m.graph is not None and m.graph.nodes[0].op_type == "Relu"
    assert m.graph.initializers[0].dims == [2, 3]


def test_known_fields_with_another_wire_type_are_skipped() -> None:
    # graph as a varint, a name as a varint, dims as fixed32: protobuf keeps them as unknown fields
    tensor = _vf(8, 5) + _tag(1, 5) + b"\1\0\0\0" + _tensor("w", [4])
    m = _same(_vf(7, 1) + _model_bytes(_graph_bytes([_vf(4, 3) + _ld(4, b"Relu")], [tensor])))
    assert m.graph is not None and m.graph.initializers[0].dims == [4]


def test_repeated_singular_messages_merge() -> None:
    g1 = _graph_bytes([_ld(4, b"A")], [_tensor("a", [1])], _ld(2, b"first"))
    g2 = _graph_bytes([_ld(4, b"B")], [_tensor("b", [2])], _ld(2, b"second"))
    t1 = _tensor("t", [2], _vf(14, 1))
    t2 = _vf(1, 3) + _ld(8, b"t2") + _vf(14, 9)  # dims append, name replaced, unknown enum ignored
    attr = _ld(1, b"value") + _vf(20, 4) + _ld(5, t1) + _ld(5, t2) + _vf(20, 99)
    m = _same(_vf(1, 8) + _ld(7, g1) + _ld(7, g2 + _ld(1, _ld(4, b"Constant") + _ld(5, attr))))
    assert m.graph is not None and m.graph.name == "second"
    assert [n.op_type for n in m.graph.nodes] == ["A", "B", "Constant"]
    assert [t.name for t in m.graph.initializers] == ["a", "b"]
    (a,) = m.graph.nodes[2].attributes
    assert a.type == 4 and a.t is not None and a.t.name == "t2" and a.t.dims == [2, 3] and a.t.external


def test_packed_dims_negative_values_and_wide_varints() -> None:
    packed = _ld(1, _varint(7) + _varint(-1) + _varint(1 << 40))
    overlong = _tag(1, 0) + b"\x85\x80\x80\x80\x80\x80\x80\x80\x80\x00"  # 5 in ten bytes
    tensor = packed + _vf(1, 9) + overlong + _vf(2, -3) + _ld(8, b"w")
    m = _same(_model_bytes(_graph_bytes([], [tensor])))
    assert m.graph is not None and m.graph.initializers[0].dims == [7, -1, 1 << 40, 9, 5]
    assert m.graph.initializers[0].data_type == -3


def test_oneofs_keep_their_last_member() -> None:
    tensor_type = _ld(1, _vf(1, T.FLOAT) + _ld(2, _ld(1, _vf(1, 3))))
    more_dims = _ld(1, _ld(2, _ld(1, _vf(1, 4) + _ld(2, b"n"))))  # a dim set twice: the param wins
    seq = _ld(4, _ld(1, tensor_type))
    inputs = [
        _ld(11, _ld(1, b"merged") + _ld(2, tensor_type + more_dims)),
        _ld(11, _ld(1, b"replaced") + _ld(2, tensor_type + seq)),
        _ld(11, _ld(1, b"back") + _ld(2, seq + tensor_type)),
    ]
    m = _same(_model_bytes(b"".join(inputs)))
    assert m.graph is not None
    merged, replaced, back = (v.type for v in m.graph.inputs)
    assert merged.kind == "tensor_type" and merged.shape == [3, "n"]
    assert replaced.kind == "sequence_type" and back.kind == "tensor_type" and back.shape == [3]


def test_strings_that_are_not_utf8() -> None:
    name = b"w\xff\xfe"
    t = _tensor("x", [1], _ld(8, name) + _ld(13, _ld(1, b"location") + _ld(2, b"d\xe9.bin")) + _vf(14, 1))
    m = _same(_model_bytes(_graph_bytes([], [t])))
    assert m.graph is not None
    (w,) = m.graph.initializers
    assert os.fsencode(w.name) == name and os.fsencode(w.external_info()["location"]) == b"d\xe9.bin"


@pytest.mark.parametrize(
    "data",
    [
        _model_bytes(b"")[:-1] + b"\x05",  # a length past the end
        _tag(0, 0) + b"\x01",  # field number 0
        _tag(5, 6) + b"\x00",  # wire type 6
        _tag(5, 4),  # an end-group tag outside a group
        _tag(5, 3) + _vf(1, 1) + _tag(6, 4),  # a group ended by another field's end tag
        _tag(5, 3) + _vf(1, 1),  # a group never ended
        _vf(1, 1)[:1] + b"\xff" * 10 + b"\x01",  # a varint of 11 bytes
        _ld(7, _ld(5, _ld(1, b"\x80"))),  # a truncated varint inside packed dims
        _ld(7, _ld(1, _tag(4, 1) + b"\0\0")),  # a truncated fixed64 in a nested message
    ],
)
def test_malformed_bytes_are_refused_like_protobuf(data: bytes) -> None:
    _both_refuse(data)


def _nested_ifs(depth: int) -> bytes:
    leaf = graph = h.make_graph([h.make_node("Identity", ["x"], ["y"])], "leaf", [], [])
    for _ in range(depth):
        node = h.make_node("If", ["c"], ["y"], then_branch=graph, else_branch=leaf)
        graph = h.make_graph([node], "g", [], [])
    return h.make_model(graph).SerializeToString()


def test_nesting_protobuf_accepts_is_read() -> None:
    """At every depth of nested subgraphs protobuf reads, so does onnxfile; past that both
    refuse, with a ParseError rather than a RecursionError."""
    deepest_ok = None
    for depth in range(20, 40):
        data = _nested_ifs(depth)
        try:
            onnx.load_from_string(data)
        except Exception:
            with pytest.raises(ParseError):
                onnxfile.parse(data)
            break
        _same(data)
        deepest_ok = depth
    assert deepest_ok is not None and deepest_ok < 39  # the limit was reached


def test_a_deep_or_wide_bomb_ends_quickly() -> None:
    chain = b""
    for _ in range(5000):  # graph -> node -> attribute -> graph ... 20,000 levels
        chain = _ld(1, _ld(5, _ld(6, chain)))
    start = time.perf_counter()
    with pytest.raises(ParseError, match="nested"):
        onnxfile.parse(_ld(7, chain))
    with pytest.raises(onnxfile.TooManyFields):
        onnxfile.parse(_vf(1000, 1) * 100_000, max_fields=10_000)
    assert time.perf_counter() - start < 5.0


def test_too_many_fields_is_its_own_error(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(mlp_model(layers=2, width=8, batch=1), path)
    assert isinstance(onnxfile.read(path), onnxfile.ModelFile)
    with pytest.raises(onnxfile.TooManyFields):
        onnxfile.read(path, max_fields=5)


def test_large_files_are_mapped_and_weights_left_unread(tmp_path: Path) -> None:
    big = nh.from_array(np.ones((1024, 1024), np.float32), "big")  # 4 MiB of raw_data
    graph = h.make_graph([h.make_node("Identity", ["big"], ["y"])], "g", [], [_vi("y", T.FLOAT, None)], [big])
    path = tmp_path / "big.onnx"
    onnx.save(_model(graph), path)
    m = onnxfile.read(path)
    assert m.graph is not None and m.graph.initializers[0].dims == [1024, 1024]
    assert m == onnxfile.from_proto(onnx.load(path))


def test_truncations_of_real_models(models: dict[str, str]) -> None:
    """Every prefix of a model: refused by both, or read alike (a prefix that ends between
    fields is a valid, smaller message)."""
    for name in ("if", "embedding"):
        data = Path(models[name]).read_bytes()
        for end in range(0, len(data), 3):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    proto = onnx.load_from_string(data[:end])
            except Exception:
                with pytest.raises(ParseError):
                    onnxfile.parse(data[:end])
                continue
            assert onnxfile.parse(data[:end]) == onnxfile.from_proto(proto), (name, end)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_random_bytes_never_crash_the_reader(data: bytes) -> None:
    with contextlib.suppress(ParseError):  # and nothing else
        onnxfile.parse(data)


SEEDS = [
    _if_in_loop().SerializeToString(),
    _with_function().SerializeToString(),
    _many_types().SerializeToString(),
    mlp_model(layers=2, width=4, batch="b").SerializeToString(),
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(SEEDS))),
    st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 255), st.sampled_from("sid")), min_size=1, max_size=4
    ),
)
def test_what_protobuf_reads_after_corruption_is_read_alike(
    seed: int, edits: list[tuple[int, int, str]]
) -> None:
    """Bytes of real models set, inserted or deleted at random: where protobuf still reads a
    model (so ONNX Runtime might), onnxfile reads the same facts; elsewhere a ParseError."""
    data = bytearray(SEEDS[seed])
    for where, value, how in edits:
        i = where % (len(data) + 1)
        if how == "s" and i < len(data):
            data[i] = value
        elif how == "i":
            data[i:i] = bytes([value])
        else:
            del data[i : i + 1 + value % 4]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proto = onnx.load_from_string(bytes(data))
    except Exception:
        proto = None
    try:
        mine = onnxfile.parse(bytes(data))
    except ParseError:
        assert proto is None, "protobuf reads what onnxfile refuses"
        return
    if proto is not None:
        assert mine == onnxfile.from_proto(proto)
