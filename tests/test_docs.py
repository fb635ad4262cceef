"""The docs stay true to the code: the CLI reference is current, every warning code is
explained, and the examples run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from make_cli_reference import reference
    finally:
        sys.path.pop(0)
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == reference(), (
        "docs/cli.md is out of date: run python docs/make_cli_reference.py"
    )


def test_every_warning_code_is_explained() -> None:
    codes = set()
    for path in (ROOT / "python" / "inferspeed").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        codes |= set(re.findall(r'Diagnostic\(\s*"([a-z_]+)"', text))
    assert {"warmup", "drift", "overloaded", "process_spread"} <= codes
    page = (ROOT / "docs" / "warnings.md").read_text(encoding="utf-8")
    missing = sorted(c for c in codes if f"| `{c}` |" not in page)
    assert not missing, f"docs/warnings.md does not explain {missing}"


@pytest.mark.parametrize("script", ["benchmark_model.py", "compare_two.py", "time_function.py"])
def test_python_examples_run(script: str, tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert "median" in p.stdout or "ns per call" in p.stdout


def test_ci_gate_example(models: dict[str, str]) -> None:
    env = {
        **os.environ,
        "GATE_TIME": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    gate = [str(ROOT / "examples" / "ci_gate.sh")]
    slower = subprocess.run(
        [*gate, models["mlp3"], models["mlp6"]], capture_output=True, text=True, env=env, timeout=120
    )
    assert slower.returncode == 1, slower.stdout + slower.stderr
    faster = subprocess.run(
        [*gate, models["mlp6"], models["mlp3"]], capture_output=True, text=True, env=env, timeout=120
    )
    assert faster.returncode == 0, faster.stdout + faster.stderr


def test_bad_input_table_lists_every_case() -> None:
    from .test_cli import BAD_INPUTS

    page = (ROOT / "docs" / "bad-inputs.md").read_text(encoding="utf-8")
    missing = [message for _, message in BAD_INPUTS if f"`{message}`" not in page]
    assert not missing, f"docs/bad-inputs.md lacks {missing}"
