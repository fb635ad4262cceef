"""Multiply-accumulate estimates of `inferspeed info` and of runs (count_macs, cached)."""

import json
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h

from inferspeed.facts import maccache, modelfile
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
