"""Speed against fidelity of model variants."""

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h

from inferspeed import Config
from inferspeed.report.text import render_tradeoff
from inferspeed.tools.tradeoff import TradeoffResult, _pareto, fidelity, tradeoff

from .conftest import until
from .test_cli import cli

QUICK = Config(threads=1, max_time=0.05, warmup_time=0.01)


def test_fidelity_metrics_on_known_outputs() -> None:
    ref = [[np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])]]
    same = fidelity(ref, ref)
    assert same["max_abs_error"] == 0 and same["relative_l2_error"] == 0 and same["top1_agreement"] == 1
    off = [[np.array([[1.0, 2.0, 3.5], [1.0, 2.0, 3.0]])]]
    f = fidelity(ref, off)
    assert f["max_abs_error"] == pytest.approx(2.0)
    assert f["mean_abs_error"] == pytest.approx(4.5 / 6)
    a = np.array([1, 2, 3, 3, 2, 1], dtype=float)
    b = np.array([1, 2, 3.5, 1, 2, 3], dtype=float)
    assert f["relative_l2_error"] == pytest.approx(np.linalg.norm(a - b) / np.linalg.norm(a))
    assert f["cosine_similarity"] == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert f["top1_agreement"] == 0.5


def test_dynamic_int8_variant_is_faster_with_small_error(models: dict[str, str]) -> None:
    def check() -> tuple[bool, Any]:
        # Six rounds or more: the comparison pairs them (fewer widen the interval to the
        # machine's drift, and a significant verdict, needed for the Pareto mark, is rarer).
        found = tradeoff(
            models["mlp3"],
            config=Config(threads=1, max_time=1.5, warmup_time=0.05),
            quantize="dynamic",
            rounds=6,
        )
        return found.rows[1]["pareto"], found

    base, int8 = until(check).rows
    assert base["reference"] and base["speedup"] == 1.0 and base["fidelity"]["max_abs_error"] == 0
    assert int8["label"] == "int8 dynamic" and int8["speedup"] > 1.2
    assert 0 < int8["fidelity"]["relative_l2_error"] < 0.1
    assert int8["fidelity"]["cosine_similarity"] > 0.99
    assert int8["pareto"] and int8["verdict"] == "faster", int8


def test_static_and_fp16_variants_and_the_cli(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    saved = tmp_path / "variants"  # made by --save
    p = cli(
        "tradeoff", models["mlp_small"], "--quantize", "static", "--fp16", "--dim", "batch=4",
        "-t", "0.6", "--rounds", "3", "--json", str(out), "--save", str(saved),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "reference" in p.stdout and "int8 static" in p.stdout and "float16" in p.stdout
    doc = json.loads(out.read_text())
    rows = doc["variants"]
    assert [r["label"] for r in rows] == ["base", "int8 static", "float16"]
    assert all(r["fidelity"]["relative_l2_error"] < 0.2 for r in rows)
    assert rows[2]["fidelity"]["max_abs_error"] > 0  # float16 rounds
    # --save: every variant made is kept, under a clear name, and the JSON and table say where.
    assert doc["saved_to"] == str(saved)
    assert [r["path"] for r in rows[1:]] == [
        str(saved / "mlp_small.int8-static.onnx"),
        str(saved / "mlp_small.fp16.onnx"),
    ]
    assert sorted(f.name for f in saved.iterdir()) == ["mlp_small.fp16.onnx", "mlp_small.int8-static.onnx"]
    x = np.random.default_rng(0).random((4, 64), dtype=np.float32)
    want = ort.InferenceSession(models["mlp_small"], providers=["CPUExecutionProvider"]).run(None, {"x": x})[
        0
    ]
    for r in rows[1:]:
        assert f"saved as {r['path']}" in p.stdout
        onnx.checker.check_model(r["path"])
        sess = ort.InferenceSession(r["path"], providers=["CPUExecutionProvider"])
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        assert got.shape == want.shape and np.linalg.norm(got - want) < 0.2 * np.linalg.norm(want)
    assert "fidelity measured on 8 generated input sets" in p.stdout
    p = cli("tradeoff", models["mlp_small"], "-t", "0.2")
    assert p.returncode == 2 and "needs a variant" in p.stderr


def test_bad_calibration_file_is_one_line(models: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "cal.npz"
    bad.write_bytes(b"not an npz")
    p = cli("tradeoff", models["mlp_small"], "--quantize", "static", "--calibration", str(bad), "-t", "0.2")
    assert p.returncode == 2 and "is not an .npz archive" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_save_errors_are_one_line(models: dict[str, str], tmp_path: Path) -> None:
    afile = tmp_path / "a_file"
    afile.write_text("")
    p = cli("tradeoff", models["mlp_small"], "--fp16", "--save", str(afile), "-t", "0.05")
    assert p.returncode == 2 and "is not a folder" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = cli("tradeoff", models["mlp_small"], models["mlp_small"], "--save", str(tmp_path), "-t", "0.05")
    assert p.returncode == 2 and "--save applies to the variants made" in p.stderr
    # A variant's file would overwrite a model being measured: refused before anything is written.
    given = tmp_path / "m.fp16.onnx"
    shutil.copyfile(models["mlp_small"], given)
    shutil.copyfile(models["mlp_small"], tmp_path / "m.onnx")
    before = given.read_bytes()
    p = cli("tradeoff", str(tmp_path / "m.onnx"), str(given), "--fp16", "--save", str(tmp_path), "-t", "0.05")
    assert p.returncode == 2 and "would overwrite a model measured" in p.stderr
    assert given.read_bytes() == before


def _fid(err: float) -> dict[str, Any]:
    return {
        "max_abs_error": err,
        "mean_abs_error": err,
        "relative_l2_error": err,
        "cosine_similarity": 1.0,
        "top1_agreement": None,
    }


def _row(label: str, median_ns: float, err: float, verdict: str) -> dict[str, Any]:
    return {
        "label": label,
        "how": "given",
        "path": None,
        "median_ns": median_ns,
        "fidelity": _fid(err),
        "reference": verdict == "reference",
        "verdict": verdict,
        "speedup": 100.0 / median_ns,
        "speedup_ci": [0.9, 1.1],
    }


def test_pareto_front_only_among_significantly_different_variants() -> None:
    rows = [
        _row("base", 100.0, 0.0, "reference"),
        _row("same", 95.0, 0.0, "no significant difference"),  # would dominate the base
        _row("int8", 50.0, 0.01, "faster"),
        _row("noisy", 40.0, 0.02, "no significant difference"),  # would be the fastest
        _row("worse", 60.0, 0.05, "faster"),  # dominated by int8
    ]
    _pareto(rows)
    assert {r["label"]: r["pareto"] for r in rows} == {
        "base": True,
        "same": False,
        "int8": True,
        "noisy": False,
        "worse": False,
    }
    text = render_tradeoff(TradeoffResult(rows))
    lines = {line[2:].split()[0]: line for line in text.splitlines()[1:6]}
    assert lines["same"].startswith("  ") and lines["same"].endswith("not significantly faster")
    assert lines["noisy"].endswith("not significantly faster")
    assert lines["int8"].startswith("* ") and lines["int8"].endswith("faster")


def test_identical_models_are_never_pareto_optimal(models: dict[str, str], tmp_path: Path) -> None:
    copy = tmp_path / "copy.onnx"
    shutil.copyfile(models["mlp_small"], copy)

    def check() -> tuple[bool, Any]:
        found = tradeoff(models["mlp_small"], [copy], config=QUICK, rounds=6)
        return found.rows[1]["verdict"] == "no significant difference", found

    found = until(check)
    base, same = found.rows
    assert same["verdict"] == "no significant difference", same
    assert same["fidelity"]["max_abs_error"] == 0.0
    assert base["pareto"] and not same["pareto"]
    line = next(x for x in render_tradeoff(found).splitlines() if " copy.onnx " in x)
    assert line.startswith("  ") and line.endswith("not significantly faster"), line


def _one_op(path: Path, op: str) -> str:
    """y = op(x) on a [2, 4] float input."""
    graph = h.make_graph(
        [h.make_node(op, ["x"], ["y"])],
        op.lower(),
        [h.make_tensor_value_info("x", T.FLOAT, [2, 4])],
        [h.make_tensor_value_info("y", T.FLOAT, [2, 4])],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return str(path)


def test_fidelity_is_measured_on_the_inputs_file(tmp_path: Path) -> None:
    """Relu agrees with Identity on the generated inputs (uniform in [0, 1)), not on negative
    arrays from --inputs: the fidelity figures follow the file, and the output says so."""
    base = _one_op(tmp_path / "identity.onnx", "Identity")
    relu = _one_op(tmp_path / "relu.onnx", "Relu")
    generated = tradeoff(base, [relu], config=QUICK, rounds=2)
    assert generated.rows[1]["fidelity"]["max_abs_error"] == 0.0
    assert generated.fidelity_inputs["source"] == "generated" and generated.fidelity_inputs["sets"] == 8
    npz, out = tmp_path / "x.npz", tmp_path / "t.json"
    np.savez(npz, x=np.full((2, 4), -3.0, np.float32))
    p = cli(
        "tradeoff", base, relu, "--inputs", str(npz), "-t", "0.05", "--warmup", "10ms", "--rounds", "2",
        "--json", str(out),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert doc["variants"][1]["fidelity"]["max_abs_error"] == 3.0
    assert doc["variants"][1]["fidelity"]["relative_l2_error"] == 1.0
    assert doc["fidelity_inputs"] == {
        "source": "file",
        "file": str(npz),
        "sets": 1,
        "seed": 0,
        "inputs": {"x": "file"},
    }
    assert f"fidelity measured on the arrays of {npz} as one input set (x from the file)" in p.stdout
