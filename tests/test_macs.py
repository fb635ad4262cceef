"""Multiply-accumulate estimates of `inferspeed info` and of runs (count_macs, cached)."""

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from inferspeed.facts import maccache, modelfile
from inferspeed.facts import macs as macs_module
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


# --- hand counts of every counted form ----------------------------------------------------------


def _init(name: str, shape: list[int], dtype: Any = np.float32) -> Any:
    return nh.from_array(np.zeros(shape, dtype), name)


def _graph_model(
    nodes: list[Any],
    inputs: dict[str, tuple[int, list[Any] | None]],
    inits: list[Any] = (),  # type: ignore[assignment]
    ms: bool = False,
) -> Any:
    """A model of ``nodes`` whose outputs (every node's first) are left to shape inference."""
    graph = h.make_graph(
        nodes,
        "g",
        [h.make_tensor_value_info(name, et, dims) for name, (et, dims) in inputs.items()],
        [h.make_tensor_value_info(n.output[0], T.UNDEFINED, None) for n in nodes[-1:]],
        initializer=list(inits),
    )
    opsets = [h.make_opsetid("", 17), *([h.make_opsetid("com.microsoft", 1)] if ms else [])]
    return h.make_model(graph, opset_imports=opsets)


def _by_op(model: Any, shapes: dict[str, tuple[int, ...]] | None = None, **kwargs: Any) -> dict[str, int]:
    macs = estimate_macs(model, shapes, **kwargs)
    assert macs is not None and macs["total"] >= 0 and not macs["uncounted"], macs
    assert macs["total"] == sum(macs["by_op_type"].values())
    by_op: dict[str, int] = macs["by_op_type"]
    return by_op


def test_conv() -> None:
    model = _graph_model(
        [h.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        {"x": (T.FLOAT, [2, 3, 32, 32])},
        [_init("w", [16, 3, 3, 3])],
    )
    # Y [2, 16, 32, 32]; each output element sums C_in 3 x kernel 3x3 products
    assert _by_op(model) == {"Conv": 2 * 16 * 32 * 32 * (3 * 3 * 3)}  # 884,736


def test_grouped_and_depthwise_conv() -> None:
    grouped = _graph_model(
        [h.make_node("Conv", ["x", "w"], ["y"], group=2)],
        {"x": (T.FLOAT, [1, 8, 10, 10])},
        [_init("w", [12, 4, 3, 3])],  # C_out 12, C_in/group 8/2 = 4
    )
    # Y [1, 12, 8, 8]; each output element sums 4 channels x 3x3
    assert _by_op(grouped) == {"Conv": 1 * 12 * 8 * 8 * (4 * 3 * 3)}  # 27,648
    depthwise = _graph_model(
        [h.make_node("Conv", ["x", "w"], ["y"], group=8, strides=[2, 2], pads=[1, 1, 1, 1])],
        {"x": (T.FLOAT, [1, 8, 10, 10])},
        [_init("w", [8, 1, 3, 3])],
    )
    # spatial floor((10 + 2 - 3) / 2) + 1 = 5: Y [1, 8, 5, 5]; 1 channel x 3x3 per output
    assert _by_op(depthwise) == {"Conv": 8 * 5 * 5 * (1 * 3 * 3)}  # 1,800


def test_conv_transpose_with_group_and_stride() -> None:
    model = _graph_model(
        [h.make_node("ConvTranspose", ["x", "w"], ["y"], group=2, strides=[2, 2])],
        {"x": (T.FLOAT, [1, 4, 5, 5])},
        [_init("w", [4, 3, 3, 3])],  # [C_in 4, C_out/group 3, 3, 3]: C_out 6
    )
    # every input element (N 1 x 5x5 x C_in 4) spreads over C_out/group 3 x kernel 3x3 outputs
    assert _by_op(model) == {"ConvTranspose": 1 * 5 * 5 * 4 * (3 * 3 * 3)}  # 2,700


def test_gemm_transposed() -> None:
    model = _graph_model(
        [h.make_node("Gemm", ["a", "b"], ["y"], transA=1, transB=1)],
        {"a": (T.FLOAT, [64, 32])},  # A^T: M 32, K 64
        [_init("b", [16, 64])],  # B^T: K 64, N 16
    )
    assert _by_op(model) == {"Gemm": 32 * 16 * 64}  # M x N x K = 32,768


def test_matmul_batched_broadcast_and_1d() -> None:
    model = _graph_model(
        [h.make_node("MatMul", ["a", "b"], ["y"])],
        {"a": (T.FLOAT, [2, 1, 5, 6]), "b": (T.FLOAT, [3, 6, 7])},
    )
    # batch dims [2, 1] and [3] broadcast to [2, 3]: Y [2, 3, 5, 7], K 6
    assert _by_op(model) == {"MatMul": 2 * 3 * 5 * 7 * 6}  # 1,260
    vector = _graph_model(
        [h.make_node("MatMul", ["a", "b"], ["y"])], {"a": (T.FLOAT, [6]), "b": (T.FLOAT, [4, 6, 7])}
    )
    assert _by_op(vector) == {"MatMul": 4 * 7 * 6}  # Y [4, 7], K 6


def _quantised_conv(op: str) -> Any:
    x = (T.UINT8, [1, 3, 8, 8])
    w = _init("w", [4, 3, 3, 3], np.uint8)
    if op == "ConvInteger":
        return _graph_model([h.make_node(op, ["x", "w"], ["y"])], {"x": x}, [w])
    scales = [_init(n, [], np.float32) for n in ("xs", "ws", "ys")]
    zps = [_init(n, [], np.uint8) for n in ("xz", "wz", "yz")]
    node = h.make_node(op, ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"])
    return _graph_model([node], {"x": x}, [w, *scales, *zps])


@pytest.mark.parametrize("op", ["QLinearConv", "ConvInteger"])
def test_quantised_conv(op: str) -> None:
    # Y [1, 4, 6, 6]; each output element sums 3 channels x 3x3
    assert _by_op(_quantised_conv(op)) == {op: 4 * 6 * 6 * (3 * 3 * 3)}  # 3,888


def test_quantised_matmul() -> None:
    inits = [_init("b", [8, 5], np.uint8), *(_init(n, [], np.float32) for n in ("as", "bs", "ys"))]
    inits += [_init(n, [], np.uint8) for n in ("az", "bz", "yz")]
    qlinear = _graph_model(
        [h.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"], ["y"])],
        {"a": (T.UINT8, [4, 8])},
        inits,
    )
    assert _by_op(qlinear) == {"QLinearMatMul": 4 * 5 * 8}  # Y [4, 5], K 8
    integer = _graph_model(
        [h.make_node("MatMulInteger", ["a", "b"], ["y"])], {"a": (T.UINT8, [3, 4, 8])}, inits[:1]
    )
    assert _by_op(integer) == {"MatMulInteger": 3 * 4 * 5 * 8}  # Y [3, 4, 5], K 8


def test_qdq_conv_counts_as_conv() -> None:
    """QuantizeLinear -> DequantizeLinear -> Conv, the weight dequantised from int8."""
    nodes = [
        h.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        h.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        h.make_node("DequantizeLinear", ["wq", "s", "wz"], ["wd"]),
        h.make_node("Conv", ["xd", "wd"], ["y"]),
    ]
    inits = [_init("wq", [4, 3, 3, 3], np.int8), _init("s", [], np.float32)]
    inits += [_init("z", [], np.uint8), _init("wz", [], np.int8)]
    model = _graph_model(nodes, {"x": (T.FLOAT, [1, 3, 8, 8])}, inits)
    assert _by_op(model) == {"Conv": 4 * 6 * 6 * (3 * 3 * 3)}  # Y [1, 4, 6, 6]: 3,888


def test_microsoft_forms_and_the_nodes_after_them() -> None:
    """onnx's shape inference knows no com.microsoft operator: their output shapes are worked out
    here, so that the standard nodes after them are counted too."""
    nodes = [
        h.make_node("FusedConv", ["x", "w"], ["c1"], domain="com.microsoft", activation="Relu"),
        h.make_node("Conv", ["c1", "w2"], ["c2"]),
        h.make_node("FusedMatMul", ["a", "b"], ["m1"], domain="com.microsoft", transA=1),
        h.make_node("MatMul", ["m1", "b2"], ["m2"]),
        h.make_node("QGemm", ["qa", "s", "z", "qb", "s", "z"], ["g"], domain="com.microsoft", transB=1),
        h.make_node("DynamicQuantizeMatMul", ["d", "ib", "s"], ["dq"], domain="com.microsoft"),
        h.make_node("MatMulIntegerToFloat", ["qd", "qb2", "s", "s"], ["mf"], domain="com.microsoft"),
        h.make_node(
            "MatMulNBits", ["n", "packed"], ["nb"], domain="com.microsoft", K=16, N=8, bits=4, block_size=16
        ),
    ]
    inits = [_init("w", [4, 3, 3, 3]), _init("w2", [2, 4, 1, 1]), _init("b", [8, 5]), _init("b2", [5, 3])]
    inits += [_init("qb", [5, 8], np.uint8), _init("s", [], np.float32), _init("z", [], np.uint8)]
    inits += [
        _init("ib", [8, 4], np.int8),
        _init("qb2", [8, 4], np.uint8),
        _init("packed", [8, 1, 8], np.uint8),
    ]
    inputs = {
        "x": (T.FLOAT, [1, 3, 8, 8]), "a": (T.FLOAT, [2, 8, 4]), "qa": (T.UINT8, [4, 8]),
        "d": (T.FLOAT, [3, 8]), "qd": (T.UINT8, [3, 8]), "n": (T.FLOAT, [2, 16]),
    }  # fmt: skip
    assert _by_op(_graph_model(nodes, inputs, inits, ms=True)) == {
        "FusedConv": 4 * 6 * 6 * (3 * 3 * 3),  # Y [1, 4, 6, 6]: 3,888
        "Conv": 2 * 6 * 6 * 4,  # after FusedConv: Y [1, 2, 6, 6], 4 channels x 1x1
        "FusedMatMul": 2 * 4 * 5 * 8,  # A^T [2, 4, 8] x B [8, 5]: Y [2, 4, 5], K 8
        "MatMul": 2 * 4 * 3 * 5,  # after FusedMatMul: [2, 4, 5] x [5, 3]
        "QGemm": 4 * 5 * 8,  # A [4, 8] x B^T [8, 5]
        "DynamicQuantizeMatMul": 3 * 4 * 8,
        "MatMulIntegerToFloat": 3 * 4 * 8,
        "MatMulNBits": 2 * 8 * 16,  # A [2, 16 = K] x N 8
    }


# --- dynamic and unknown dims ---------------------------------------------------------------------


def _minus_one_model() -> Any:
    """A Conv on an input declared [-1, 3, -1, -1], as some exporters write dynamic dims."""
    model = _graph_model(
        [h.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        {"x": (T.FLOAT, [1, 3, 1, 1])},
        [_init("w", [8, 3, 3, 3])],
    )
    for i in (0, 2, 3):
        model.graph.input[0].type.tensor_type.shape.dim[i].dim_value = -1
    return model


def test_a_dim_of_minus_one_is_dynamic_never_negative() -> None:
    macs = estimate_macs(_minus_one_model())
    assert macs is not None and macs["dynamic_dims_as"] == 1
    assert macs["by_op_type"] == {"Conv": 8 * 3 * 3 * 3}  # per unit of N, H and W: 216
    assert _by_op(_minus_one_model(), {"x": (2, 3, 10, 10)}) == {"Conv": 2 * 8 * 10 * 10 * (3 * 3 * 3)}


def test_bound_shapes_scale_the_count() -> None:
    one = _by_op(_minus_one_model(), {"x": (1, 3, 16, 16)})["Conv"]
    assert _by_op(_minus_one_model(), {"x": (4, 3, 16, 16)})["Conv"] == 4 * one
    assert _by_op(_minus_one_model(), {"x": (1, 3, 32, 32)})["Conv"] == 4 * one  # 4x the pixels


def _data_dependent() -> Any:
    """A Conv whose input is reshaped to a shape the run feeds: unknown before the run."""
    return _graph_model(
        [h.make_node("Reshape", ["x", "shape"], ["r"]), h.make_node("Conv", ["r", "w"], ["y"])],
        {"x": (T.FLOAT, [48]), "shape": (T.INT64, [4])},
        [_init("w", [2, 3, 1, 1])],
    )


def test_a_node_of_unknown_shape_is_reported_not_counted_as_zero() -> None:
    macs = estimate_macs(_data_dependent(), {"x": (48,), "shape": (4,)})
    assert macs is not None and macs["uncounted"] == {"Conv": 1} and macs["nodes_unknown"] == 1
    assert macs["total"] == 0 and macs["nodes_counted"] == 0
    # the values a run feeds decide it: [1, 3, 4, 4] -> Y [1, 2, 4, 4], 3 channels each
    assert _by_op(_data_dependent(), {"x": (48,), "shape": (4,)}, values={"shape": [1, 3, 4, 4]}) == {
        "Conv": 2 * 4 * 4 * 3
    }


def test_shape_computations_are_folded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pads made the way PyTorch exports them (Reshape, Transpose, Reshape, Cast), which onnx's
    shape inference does not follow alone."""
    const = h.make_node(
        "Constant", [], ["p0"], value=nh.from_array(np.array([0, 0, 0, 0, 1, 1, 1, 1], np.int64))
    )
    nodes = [
        const,
        h.make_node("Reshape", ["p0", "two"], ["p1"]),
        h.make_node("Transpose", ["p1"], ["p2"], perm=[1, 0]),
        h.make_node("Reshape", ["p2", "flat"], ["p3"]),
        h.make_node("Cast", ["p3"], ["pads"], to=T.INT64),
        h.make_node("Pad", ["x", "pads"], ["xp"]),
        h.make_node("Conv", ["xp", "w"], ["y"]),
    ]
    inits = [
        nh.from_array(np.array([4, 2], np.int64), "two"),
        nh.from_array(np.array([-1], np.int64), "flat"),
    ]
    model = _graph_model(nodes, {"x": (T.FLOAT, [1, 3, 8, 8])}, [*inits, _init("w", [4, 3, 3, 3])])
    # [[0, 0], [0, 0], [1, 1], [1, 1]] transposed: pads [0, 0, 1, 1, 0, 0, 1, 1], X [1, 3, 10, 10],
    # Y [1, 4, 8, 8]
    assert _by_op(copy.deepcopy(model), {"x": (1, 3, 8, 8)}) == {"Conv": 4 * 8 * 8 * (3 * 3 * 3)}
    monkeypatch.setattr(macs_module, "_fold", lambda *args: False)
    unfolded = estimate_macs(model, {"x": (1, 3, 8, 8)})
    assert unfolded is not None and unfolded["uncounted"] == {"Conv": 1}


def _rate_switch() -> Any:
    """An If on the input sample rate, a Conv in each branch (as silero-vad is built)."""

    def branch(name: str, channels: int) -> Any:
        w = _init(f"w_{name}", [channels, 1, 4])
        y = h.make_tensor_value_info(f"y_{name}", T.FLOAT, None)
        return h.make_graph([h.make_node("Conv", ["x", w.name], [y.name])], name, [], [y], [w])

    nodes = [
        h.make_node("Constant", [], ["k"], value=nh.from_array(np.array(16000, np.int64))),
        h.make_node("Equal", ["sr", "k"], ["is16k"]),
        h.make_node("If", ["is16k"], ["y"], then_branch=branch("then", 8), else_branch=branch("else", 4)),
    ]
    return _graph_model(nodes, {"x": (T.FLOAT, [1, 1, 100]), "sr": (T.INT64, [])})


def test_an_if_on_a_known_value_counts_the_branch_taken() -> None:
    shapes = {"x": (1, 1, 100), "sr": ()}
    macs = estimate_macs(_rate_switch(), shapes)
    assert macs is not None and macs["total"] == 0 and macs["subgraph_nodes"] == {"Conv": 2}
    # 16 kHz: the then branch, Y [1, 8, 97], 1 channel x kernel 4
    assert _by_op(_rate_switch(), shapes, values={"sr": 16000}) == {"Conv": 8 * 97 * 4}
    assert _by_op(_rate_switch(), shapes, values={"sr": 8000}) == {"Conv": 4 * 97 * 4}


# --- count_macs: onnx only when needed, and once per model and shapes -----------------------


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INFERSPEED_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "macs"


def _old_count_macs(path: str, shapes: dict[str, Any]) -> dict[str, Any]:
    """count_macs as it was: onnx.load, then estimate_macs at the shapes."""
    found = estimate_macs(onnx.load(path, load_external_data=False), {k: tuple(v) for k, v in shapes.items()})
    return found or {}


def _no_onnx(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("estimate_macs ran")

    monkeypatch.setattr(modelfile, "estimate_macs", refuse)


CASES = [
    ("mlp3", {"x": (8, 512)}),
    ("mlp_small", {"x": (3, 64)}),
    ("mlp_small", {"x": (5, 64)}),
    ("add", {"x": (1, 16)}),
    ("embedding", {"ids": (2, 7), "scale": ()}),
    ("if", {"cond": (), "x": (3, 4)}),
    ("loop", {"n": (), "cond": (), "a0": (4,)}),
    ("gru", {"X": (5, 1, 16), "h0": (1, 1, 32)}),
]


def test_count_macs_as_before_then_from_the_cache(
    models: dict[str, str], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = [_old_count_macs(models[name], shapes) for name, shapes in CASES]
    assert [modelfile.count_macs(models[name], shapes) for name, shapes in CASES] == expected
    assert len(list(cache.glob("*.json"))) == 3  # the models with Gemm: one entry per shapes
    _no_onnx(monkeypatch)
    assert [modelfile.count_macs(models[name], shapes) for name, shapes in CASES] == expected


def test_quantized_and_conv_models(quantized_model: str, tmp_path: Path, cache: Path) -> None:
    assert modelfile.count_macs(quantized_model, {"x": (4, 64)}) == _old_count_macs(
        quantized_model, {"x": (4, 64)}
    )
    w = h.make_tensor("w", T.FLOAT, [16, 3, 3, 3], [0.0] * (16 * 3 * 3 * 3))
    graph = h.make_graph(
        [h.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        "g",
        [h.make_tensor_value_info("x", T.FLOAT, ["n", 3, 32, 32])],
        [h.make_tensor_value_info("y", T.FLOAT, None)],
        initializer=[w],
    )
    path = str(tmp_path / "conv.onnx")
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), path)
    assert modelfile.count_macs(path, {"x": (2, 3, 32, 32)}) == _old_count_macs(path, {"x": (2, 3, 32, 32)})


def test_a_corrupt_or_foreign_cache_entry_is_ignored(models: dict[str, str], cache: Path) -> None:
    path, shapes = models["mlp3"], {"x": (8, 512)}
    expected = _old_count_macs(path, shapes)
    modelfile.count_macs(path, shapes)
    (entry,) = cache.glob("*.json")
    good = entry.read_text()
    for bad in ("", "{", "[]", '{"key": 1, "macs": null}', good.replace('"total": ', '"total": -0.5 + ')):
        entry.write_text(bad)
        assert modelfile.count_macs(path, shapes) == expected
        assert json.loads(entry.read_text()) == json.loads(good)  # written again
    tampered = json.loads(good)
    tampered["macs"]["by_op_type"] = {"Gemm": "many"}
    entry.write_text(json.dumps(tampered))
    assert modelfile.count_macs(path, shapes) == expected


def test_no_cache_folder_is_no_error(
    models: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("INFERSPEED_CACHE_DIR", str(blocker))  # the folder cannot be made
    assert modelfile.count_macs(models["mlp3"], {"x": (8, 512)}) == _old_count_macs(
        models["mlp3"], {"x": (8, 512)}
    )
    monkeypatch.delenv("INFERSPEED_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert maccache.cache_dir() == str(tmp_path / "xdg" / "inferspeed" / "macs")


def _custom(node_domain: str, imports: list[tuple[str, int]], op: str = "Relu") -> Any:
    graph = h.make_graph(
        [h.make_node(op, ["x"], ["y"], domain=node_domain)],
        "g",
        [h.make_tensor_value_info("x", T.FLOAT, [2, 3])],
        [h.make_tensor_value_info("y", T.FLOAT, None)],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid(d, v) for d, v in imports])
    model.ir_version = 8
    return model


@pytest.mark.parametrize(
    ("domain", "imports"),
    [
        ("", [("", 17)]),
        ("", [("ai.onnx", 17)]),
        ("ai.onnx", [("", 17)]),
        ("ai.onnx", [("ai.onnx", 17)]),
        ("com.example", [("", 17)]),
        ("com.example", [("", 17), ("com.example", 1)]),
        ("", []),
    ],
)
def test_models_without_counted_operators_need_no_onnx(
    domain: str, imports: list[tuple[str, int]], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "m.onnx")
    onnx.save(_custom(domain, imports), path)
    expected = _old_count_macs(path, {"x": (2, 3)})
    info_expected = estimate_macs(onnx.load(path))
    _no_onnx(monkeypatch)
    assert modelfile.count_macs(path, {"x": (2, 3)}) == expected
    assert modelfile.macs_for_file(path) == info_expected
    assert not cache.exists()


def test_a_file_onnx_cannot_read_counts_nothing(tmp_path: Path, cache: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x0a\x03abc\xff")
    assert modelfile.count_macs(str(path), {"x": (1,)}) == {}


def test_a_session_reads_its_model_once(
    models: dict[str, str], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_proto (at session start) leaves what MAC counting needs; a changed file is read again."""
    import shutil

    from inferspeed.facts import onnxfile

    path = str(tmp_path / "add.onnx")
    shutil.copy(models["add"], path)
    assert modelfile.load_proto(path) is not None
    real_read = onnxfile.read
    reads: list[str] = []
    monkeypatch.setattr(onnxfile, "read", lambda p, *a: reads.append(p) or real_read(p, *a))
    assert modelfile.count_macs(path, {"x": (1, 16)}) == _old_count_macs(path, {"x": (1, 16)})
    assert reads == []
    shutil.copy(models["mlp_small"], path)  # another model at the same path
    assert modelfile.count_macs(path, {"x": (2, 64)}) == _old_count_macs(path, {"x": (2, 64)})
    assert reads == [path]


def test_cache_entries_are_per_input_values(models: dict[str, str], cache: Path) -> None:
    found = {"total": 1, "by_op_type": {"Conv": 1}, "nodes_counted": 1, "nodes_unknown": 0}
    found.update({"uncounted": {}, "subgraph_nodes": {}, "dynamic_dims_as": None})
    maccache.store("abc", {"x": (1, 3)}, found, {"sr": 16000})
    assert maccache.lookup("abc", {"x": (1, 3)}, {"sr": 16000}) == (True, found)
    assert maccache.lookup("abc", {"x": (1, 3)}) == (False, None)
    assert maccache.lookup("abc", {"x": (1, 3)}, {"sr": 8000}) == (False, None)


# --- inferspeed info ----------------------------------------------------------------------------


def _info(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from inferspeed.cli import main

    code = main(["info", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _conv_model(tmp_path: Path) -> str:
    """A Conv on [batch, 3, height, width]."""
    model = _graph_model(
        [h.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
        {"x": (T.FLOAT, ["batch", 3, "height", "width"])},
        [_init("w", [8, 3, 3, 3])],
    )
    path = str(tmp_path / "conv.onnx")
    onnx.save(model, path)
    return path


def test_info_counts_at_the_shapes_a_run_binds(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _conv_model(tmp_path)
    runs = {}
    for batch in ("1", "4"):
        code, out, err = _info(
            capsys, path, "--batch", batch, "--dim", "height=32", "--dim", "width=16", "--json"
        )
        assert code == 0, err
        runs[batch] = json.loads(out)
    assert runs["1"]["macs_at"] == {"x": [1, 3, 32, 16]} and runs["4"]["macs_at"] == {"x": [4, 3, 32, 16]}
    # Y [1, 8, 32, 16], 3 channels x 3x3 per output element
    assert runs["1"]["macs"]["total"] == 8 * 32 * 16 * (3 * 3 * 3)  # 110,592
    assert runs["4"]["macs"]["total"] == 4 * runs["1"]["macs"]["total"]
    code, out, err = _info(capsys, path, "--shape", "x=2x3x8x8")
    assert code == 0, err
    assert "MACs         27.6 k (Conv 27.6 k)\n  at         x 2x3x8x8\n" in out  # 2 x 8 x 8x8 x 27
    code, out, err = _info(capsys, path)  # no flags: the sizes a run would choose, and why
    assert code == 0 and "\n  at         x 1x3x" in out and "input 'x' 1x3x" in out


def test_info_says_what_it_could_not_count(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(tmp_path / "reshaped.onnx")
    onnx.save(_data_dependent(), path)
    code, out, err = _info(capsys, path)
    assert code == 0, err
    assert (
        "MACs         0 (no Gemm/MatMul/Conv; 1 Conv node not counted: unknown shapes; give --shape)" in out
    )
    code, out, err = _info(capsys, path, "--json")
    assert json.loads(out)["macs"]["uncounted"] == {"Conv": 1}


def test_info_of_a_bad_model_or_flag_is_one_line(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x0a\x03abc\xff")
    code, out, err = _info(capsys, str(junk))
    assert code == 2 and not out and err.count("\n") == 1 and "not a readable ONNX model" in err
    code, out, err = _info(capsys, _conv_model(tmp_path), "--shape", "x=1x3")
    assert code == 2 and not out and err.count("\n") == 1 and "does not fit" in err


def test_info_without_bound_shapes_counts_dynamic_dims_as_one(tmp_path: Path, cache: Path) -> None:
    from inferspeed.facts.info import info_document
    from inferspeed.report.text import render_info

    info = info_document(_conv_model(tmp_path))
    assert "macs_at" not in info and info["macs"]["dynamic_dims_as"] == 1
    assert "MACs         216 (Conv 216; dynamic dims as 1)" in render_info(info)  # 8 x 27 per pixel
