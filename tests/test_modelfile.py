"""Model-file facts read without the onnx package, checked against what onnx gave before:
initializer sizes, unranked inputs, the external-data check, `inferspeed info`; and that a
run on a small model imports neither onnx nor scipy."""

from __future__ import annotations

import collections
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh
from onnx.external_data_helper import _get_all_tensors

from inferspeed.errors import ModelError
from inferspeed.facts import info, modelfile, onnxfile
from inferspeed.facts.macs import estimate_macs
from inferspeed.facts.signature import ELEMENT_TYPES

from .test_onnxfile import DEMO, MODELS


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MAC counts go to a cache of this test's own, not the user's."""
    monkeypatch.setenv("INFERSPEED_CACHE_DIR", str(tmp_path / "cache"))


# --- what the package computed with onnx before (the reference) -----------------------------


def _old_weights(proto: Any) -> dict[str, Any]:
    from onnx.helper import tensor_dtype_to_np_dtype

    total = 0
    for init in proto.graph.initializer:
        try:
            size = np.dtype(tensor_dtype_to_np_dtype(init.data_type)).itemsize
        except (KeyError, TypeError, ValueError):
            size = 1
        total += int(np.prod(init.dims, dtype=np.int64)) * size
    held = _old_constants(proto.graph)
    constant_bytes = sum(b for _, b in held)
    return {
        "initializers": len(proto.graph.initializer),
        "initializer_bytes": total,
        "constants": len(held),
        "constant_bytes": constant_bytes,
        "weight_bytes": total + constant_bytes,
    }


def _old_constants(graph: Any) -> list[tuple[int, int]]:
    """(elements, bytes) of each Constant node's value in every graph, read with onnx."""
    from onnx.helper import tensor_dtype_to_np_dtype

    def size(t: Any) -> tuple[int, int]:
        n = int(np.prod(t.dims, dtype=np.int64))
        try:
            return n, n * np.dtype(tensor_dtype_to_np_dtype(t.data_type)).itemsize
        except (KeyError, TypeError, ValueError):
            return n, n

    out = []
    for g in _old_graphs(graph):
        for node in g.node:
            if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
                continue
            for a in node.attribute:
                if a.name == "value":
                    out.append(size(a.t))
                elif a.name == "sparse_value":
                    n, b = size(a.sparse_tensor.values)
                    out.append((n, b + size(a.sparse_tensor.indices)[1]))
                elif a.name in ("value_float", "value_int"):
                    out.append((1, 4 if a.name == "value_float" else 8))
                elif a.name in ("value_floats", "value_ints"):
                    n = len(a.floats) + len(a.ints)
                    out.append((n, n * (4 if a.name == "value_floats" else 8)))
    return out


def _old_unranked(proto: Any) -> set[str]:
    return {
        i.name
        for i in proto.graph.input
        if i.type.HasField("tensor_type") and not i.type.tensor_type.HasField("shape")
    }


def _old_type_text(tp: Any) -> tuple[str, list[Any] | None]:
    which = tp.WhichOneof("value")
    if which == "tensor_type":
        t = tp.tensor_type
        et = ELEMENT_TYPES.get(t.elem_type)
        name = et.name if et else f"type{t.elem_type}"
        if not t.HasField("shape"):
            return name, None
        dims = [
            int(d.dim_value) if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None
            for d in t.shape.dim
        ]
        return name, dims
    if which in ("sequence_type", "optional_type"):
        inner, inner_dims = _old_type_text(getattr(tp, which).elem_type)
        return (
            (f"sequence<{inner}>", None) if which == "sequence_type" else (f"optional<{inner}>", inner_dims)
        )
    if which == "map_type":  # map<key, value>, as ORT's type names have it
        key = ELEMENT_TYPES[tp.map_type.key_type].name if tp.map_type.key_type in ELEMENT_TYPES else "?"
        value = _old_type_text(tp.map_type.value_type)[0] if tp.map_type.HasField("value_type") else "?"
        return f"map<{key}, {value}>", None
    if which == "sparse_tensor_type":
        code = tp.sparse_tensor_type.elem_type
        return f"sparse_tensor<{ELEMENT_TYPES[code].name if code in ELEMENT_TYPES else f'type{code}'}>", None
    return (which or "unknown").removesuffix("_type"), None


def _old_graphs(graph: Any) -> Any:
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _old_graphs(attr.g)
            for sub in attr.graphs:
                yield from _old_graphs(sub)


def _old_info(path: str) -> dict[str, Any]:
    model = onnx.load(path, load_external_data=False)
    graph = model.graph
    init_names = {i.name for i in graph.initializer}

    def io(values: Any) -> list[dict[str, Any]]:
        out = []
        for v in values:
            if v.name not in init_names:
                type_name, shape = _old_type_text(v.type)
                out.append({"name": v.name, "type": type_name, "shape": shape})
        return out

    ops: collections.Counter[str] = collections.Counter()
    params = external = initializers = 0
    for g in _old_graphs(graph):
        for node in g.node:
            ops[f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type] += 1
        for init in g.initializer:
            initializers += 1
            params += math.prod(init.dims)
            external += init.data_location == 1
    held = _old_constants(graph)
    params += sum(n for n, _ in held)
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
        "constants": len(held),
        "parameters": int(params),
        "nodes": sum(ops.values()),
        "operators": dict(ops.most_common()),
        "macs": estimate_macs(model),
    }


# --- models ---------------------------------------------------------------------------------


def _external(tensor: Any, location: str) -> Any:
    tensor.ClearField("raw_data")
    tensor.data_location = T.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    return tensor


def _external_model(where: str, location: str) -> Any:
    """A model with one tensor stored in ``location``: a main-graph initializer ("init"), a
    subgraph initializer ("subgraph"), a Constant's value ("constant"), a sparse
    initializer's values ("sparse")."""
    w = nh.from_array(np.ones(4, np.float32), "w")
    x, y = h.make_tensor_value_info("x", T.FLOAT, [4]), h.make_tensor_value_info("y", T.FLOAT, [4])
    if where == "init":
        graph = h.make_graph([h.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [_external(w, location)])
    elif where == "subgraph":
        branch = h.make_graph([h.make_node("Add", ["x", "w"], ["o"])], "b", [], [y], [_external(w, location)])
        node = h.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
        graph = h.make_graph([node], "g", [h.make_tensor_value_info("c", T.BOOL, []), x], [y])
    elif where == "constant":
        const = h.make_node("Constant", [], ["w"], value=_external(w, location))
        graph = h.make_graph([const, h.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y])
    else:
        values = _external(nh.from_array(np.ones(2, np.float32), "v"), location)
        sparse = h.make_sparse_tensor(values, nh.from_array(np.array([0, 2], np.int64), "i"), [4])
        graph = h.make_graph([h.make_node("Add", ["x", "s"], ["y"])], "g", [x], [y])
        sparse.values.name = "s"
        graph.sparse_initializer.append(sparse)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _all_paths(models: dict[str, str], quantized: str, tmp_path: Path) -> dict[str, str]:
    paths = {**models, "quantized": quantized, "demo": str(DEMO)}
    for name, build in MODELS.items():
        paths[name] = str(tmp_path / f"{name}.onnx")
        onnx.save(build(), paths[name])
    return paths


def test_weights_and_unranked_inputs_as_before(
    models: dict[str, str], quantized_model: str, tmp_path: Path
) -> None:
    for name, path in _all_paths(models, quantized_model, tmp_path).items():
        proto = onnx.load(path, load_external_data=False)
        model = modelfile.load_proto(path)
        assert model is not None, name
        assert modelfile.model_weights(model) == _old_weights(proto), name
        assert modelfile.unranked_inputs(model) == _old_unranked(proto), name
        # Callers that still hold an onnx ModelProto get the same answers.
        assert modelfile.model_weights(proto) == _old_weights(proto), name
        assert modelfile.unranked_inputs(proto) == _old_unranked(proto), name
    assert modelfile.model_weights(None) == dict.fromkeys(
        ("initializers", "initializer_bytes", "constants", "constant_bytes", "weight_bytes")
    )


def test_weights_of_every_element_type() -> None:
    graph = h.make_graph([], "g", [], [])
    for code in range(30):
        t = graph.initializer.add(name=f"t{code}", data_type=code)
        t.dims.extend([3, 5])
    graph.initializer.add(name="huge", data_type=T.FLOAT).dims.extend([1 << 40, 1 << 40])  # wraps as numpy's
    model = h.make_model(graph)
    assert modelfile.model_weights(onnxfile.parse(model.SerializeToString())) == _old_weights(model)


def test_info_as_before(models: dict[str, str], quantized_model: str, tmp_path: Path) -> None:
    for name, path in _all_paths(models, quantized_model, tmp_path).items():
        if name == "no_graph":
            with pytest.raises(ModelError, match="no graph"):
                info.info_document(path)
            continue
        assert info.info_document(path) == _old_info(path), name


def test_info_of_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x0a\xff\xff\xff\x0fnot a model")
    with pytest.raises(ModelError, match="not a readable ONNX model"):
        info.info_document(str(path))
    assert modelfile.load_proto(str(path)) is None


def test_names_that_are_not_utf8_print(tmp_path: Path) -> None:
    model = onnx.load(str(DEMO))
    model.graph.name = "demo"
    data = model.SerializeToString().replace(b"\x12\x04demo", b"\x12\x04d\xffm\xfe")
    path = tmp_path / "bad_name.onnx"
    path.write_bytes(data)
    assert info.info_document(str(path))["graph_name"] == "d\ufffdm\ufffd"


def test_too_many_fields_falls_back_to_onnx(monkeypatch: pytest.MonkeyPatch, models: dict[str, str]) -> None:
    monkeypatch.setattr(onnxfile, "MAX_FIELDS", 10)
    for name in ("if", "mlp3"):
        expected = onnxfile.from_proto(onnx.load(models[name], load_external_data=False))
        assert modelfile.load_proto(models[name]) == expected
        assert info.info_document(models[name]) == _old_info(models[name])


@pytest.mark.parametrize("where", ["init", "subgraph", "constant", "sparse"])
def test_external_data_must_stay_in_the_models_folder(tmp_path: Path, where: str) -> None:
    inside = tmp_path / "models"
    inside.mkdir()
    (inside / "w.bin").write_bytes(b"\0" * 16)
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    (inside / "link.bin").symlink_to(tmp_path / "secret.bin")
    path = str(inside / "m.onnx")

    def check(location: str) -> None:
        model = _external_model(where, location)
        onnx.save(model, path)
        proto = modelfile.load_proto(path)
        assert proto is not None
        if where != "sparse":  # onnx's own walk sees the same tensors
            assert any(t.data_location == T.EXTERNAL for t in _get_all_tensors(model))
        modelfile.check_external_data(proto, path)

    check("w.bin")
    for location in (
        "../secret.bin",
        str(tmp_path / "secret.bin"),
        "link.bin",
        "",
        "w.bin\0../../etc/passwd",
    ):
        with pytest.raises(ModelError, match="refused"):
            check(location)
    with pytest.raises(ModelError, match="missing"):
        check("nothing.bin")


def _run_python(code: str, tmp_path: Path) -> str:
    env = {**os.environ, "INFERSPEED_CACHE_DIR": str(tmp_path / "cache"), "INFERSPEED_PLAIN": "1"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


HEAVY = "sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'scipy', 'rich'))"


def test_a_run_on_a_small_model_imports_neither_onnx_nor_scipy(
    models: dict[str, str], tmp_path: Path
) -> None:
    code = (
        "import sys, inferspeed\n"
        f"s = inferspeed.Session({models['add']!r}, threads=1)\n"
        "r = s.measure(iterations=20, warmup_iterations=0)\n"
        "assert r.stats.ci95_p90_ns[0] is not None\n"
        f"print({HEAVY})\n"
    )
    assert _run_python(code, tmp_path).strip() == "[]"


def test_macs_cached_once_per_model(models: dict[str, str], tmp_path: Path) -> None:
    """The first session on a model with MatMul/Gemm imports onnx to count MACs; later ones,
    in new processes, read the count back."""
    code = (
        "import sys, inferspeed\n"
        f"s = inferspeed.Session({models['mlp_small']!r}, threads=1)\n"
        "r = s.measure(iterations=5, warmup_iterations=0)\n"
        "print(r.compute['macs'], 'onnx' in sys.modules)\n"
    )
    first, second = _run_python(code, tmp_path).split(), _run_python(code, tmp_path).split()
    assert first == [str(2 * 64 * 64), "True"] and second == [str(2 * 64 * 64), "False"]


def test_cli_run_and_info_import_neither_onnx_nor_scipy(models: dict[str, str], tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from inferspeed.cli import main\n"
        f"sys.argv = ['inferspeed', 'run', {models['add']!r}, '-n', '1', '--warmup', '0']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"sys.argv = ['inferspeed', 'info', {models['add']!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print({HEAVY}, file=sys.stderr)\n"
    )
    env = {**os.environ, "INFERSPEED_CACHE_DIR": str(tmp_path / "cache"), "INFERSPEED_PLAIN": "1"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip().splitlines()[-1] == "[]", p.stderr


def test_a_file_onnx_could_not_load_is_not_cached(models: dict[str, str]) -> None:
    """No count because of a limit of this call (the file over ``max_bytes``) is not the model's
    answer: it is not kept, and a later call without the limit counts."""
    path = models["mlp_small"]
    assert modelfile.macs_for_file(path, None, max_bytes=1) is None
    found = modelfile.macs_for_file(path, None)
    assert found is not None and found["total"] == 2 * 64 * 64


def _constant_weights_model() -> Any:
    """A model whose every weight is held by a Constant node (as Paddle exports keep them): a
    4x3 float tensor, a sparse 2x3 tensor of 2 values, value_floats, value_ints, value_float,
    value_int, and a 5-element tensor in an If branch."""
    w = nh.from_array(np.ones((4, 3), np.float32), "w")
    sparse = h.make_sparse_tensor(
        h.make_tensor("v", T.FLOAT, [2], [1.0, 2.0]), h.make_tensor("i", T.INT64, [2], [0, 4]), [2, 3]
    )
    branch = h.make_graph(
        [h.make_node("Constant", [], ["five"], value=nh.from_array(np.zeros(5, np.float32), "f"))],
        "then",
        [],
        [h.make_tensor_value_info("five", T.FLOAT, [5])],
    )
    nodes = [
        h.make_node("Constant", [], ["W"], value=w),
        h.make_node("Constant", [], ["S"], sparse_value=sparse),
        h.make_node("Constant", [], ["b"], value_floats=[1.0, 2.0, 3.0]),
        h.make_node("Constant", [], ["k"], value_ints=[1, 2]),
        h.make_node("Constant", [], ["one"], value_float=1.0),
        h.make_node("Constant", [], ["two"], value_int=2),
        h.make_node("Constant", [], ["cond"], value=nh.from_array(np.array(True), "c")),
        h.make_node("If", ["cond"], ["z"], then_branch=branch, else_branch=branch),
        h.make_node("MatMul", ["x", "W"], ["y0"]),
        h.make_node("Add", ["y0", "b"], ["y"]),
    ]
    x = h.make_tensor_value_info("x", T.FLOAT, ["n", 4])
    outputs = [h.make_tensor_value_info("y", T.FLOAT, ["n", 3]), h.make_tensor_value_info("z", T.FLOAT, [5])]
    model = h.make_model(
        h.make_graph(nodes, "constants", [x], outputs), opset_imports=[h.make_opsetid("", 18)]
    )
    model.ir_version = 8
    return model


def test_weights_held_by_constant_nodes_are_counted(tmp_path: Path) -> None:
    model = _constant_weights_model()
    path = str(tmp_path / "constants.onnx")
    onnx.save(model, path)
    # 12 + 2 + 3 + 2 + 1 + 1 + 1 (cond) + 5 + 5 (both branches) elements
    elements = 12 + 2 + 3 + 2 + 1 + 1 + 1 + 5 + 5
    nbytes = 48 + (8 + 16) + 12 + 16 + 4 + 8 + 1 + 20 + 20
    expected = {
        "initializers": 0,
        "initializer_bytes": 0,
        "constants": 9,
        "constant_bytes": nbytes,
        "weight_bytes": nbytes,
    }
    assert modelfile.model_weights(modelfile.load_proto(path)) == expected == _old_weights(model)
    assert modelfile.model_weights(model) == expected  # read through the onnx package
    document = info.info_document(path)
    assert (document["parameters"], document["constants"], document["initializers"]) == (elements, 9, 0)
    from inferspeed.report.text import render_info

    assert f"parameters   {elements} in 0 initializers and 9 Constant nodes" in render_info(document)
    from inferspeed import Session

    with Session(path) as s:  # a run's memory figures say the same
        assert s.memory_info()["weight_bytes"] == nbytes
