"""Speed against fidelity of model variants."""

import json
from pathlib import Path

import numpy as np
import pytest

from inferspeed import Config
from inferspeed.tools.tradeoff import fidelity, tradeoff

from .test_cli import cli


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
    found = tradeoff(
        models["mlp3"], config=Config(threads=1, max_time=1.5, warmup_time=0.05), quantize="dynamic", rounds=5
    )
    base, int8 = found.rows
    assert base["reference"] and base["speedup"] == 1.0 and base["fidelity"]["max_abs_error"] == 0
    assert int8["label"] == "int8 dynamic" and int8["speedup"] > 1.2
    assert 0 < int8["fidelity"]["relative_l2_error"] < 0.1
    assert int8["fidelity"]["cosine_similarity"] > 0.99
    assert int8["pareto"]


def test_static_and_fp16_variants_and_the_cli(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    p = cli(
        "tradeoff", models["mlp_small"], "--quantize", "static", "--fp16", "--dim", "batch=4",
        "-t", "0.6", "--rounds", "3", "--json", str(out),
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "reference" in p.stdout and "int8 static" in p.stdout and "float16" in p.stdout
    rows = json.loads(out.read_text())["variants"]
    assert [r["label"] for r in rows] == ["base", "int8 static", "float16"]
    assert all(r["fidelity"]["relative_l2_error"] < 0.2 for r in rows)
    assert rows[2]["fidelity"]["max_abs_error"] > 0  # float16 rounds
    p = cli("tradeoff", models["mlp_small"], "-t", "0.2")
    assert p.returncode == 2 and "needs a variant" in p.stderr


def test_bad_calibration_file_is_one_line(models: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "cal.npz"
    bad.write_bytes(b"not an npz")
    p = cli("tradeoff", models["mlp_small"], "--quantize", "static", "--calibration", str(bad), "-t", "0.2")
    assert p.returncode == 2 and "cannot read inputs file" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
