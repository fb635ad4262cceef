"""A fixed sample of the corpus of models nobody here wrote (bench/corpus.py: ONNX's backend
node tests regenerated from the installed onnx package's test-case code, and the model sets
its wheel ships; not the classic-ML set, which needs skl2onnx), each run with
``inferspeed run MODEL`` and no input flag. Whatever a model does, inferspeed must not print a
traceback, crash or hang, and every failure must be one line with exit status 2. The share
measured is printed, not asserted: the full corpus's table is in bench/README.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_SPEC = importlib.util.spec_from_file_location("corpus", Path(__file__).parents[1] / "bench" / "corpus.py")
assert _SPEC is not None and _SPEC.loader is not None
corpus: Any = importlib.util.module_from_spec(_SPEC)
sys.modules["corpus"] = corpus
_SPEC.loader.exec_module(corpus)

SAMPLE = 30
SEED = 2026


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    cache = tmp_path_factory.mktemp("corpus")
    entries = corpus.choose(corpus.corpus(cache, ml=False), [], None, SAMPLE, SEED)
    assert len(entries) == SAMPLE
    return list(corpus.run_all(entries, cache, jobs=2))


def _show(rows: list[dict[str, Any]]) -> str:
    return "\n".join(f"{r['model']}: {r['outcome']}: {r.get('stderr') or r.get('error', '')}" for r in rows)


def test_no_traceback_crash_or_hang(rows: list[dict[str, Any]]) -> None:
    bad = [r for r in rows if r["outcome"] in ("traceback", "crash", "hang", "other exit", "not generated")]
    assert not bad, _show(bad)


def test_every_failure_is_one_line_with_exit_2(rows: list[dict[str, Any]]) -> None:
    failed = [r for r in rows if r["outcome"] != "measured"]
    bad = [r for r in failed if r["exit"] != 2 or len(str(r.get("stderr", "")).strip().splitlines()) != 1]
    assert not bad, _show(bad)


def test_each_failure_is_checked_against_onnx_runtime(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["outcome"] != "measured":
            assert r["ort"] in ("runs", "fails"), r
            assert r["kind"], r


def test_the_table_renders(rows: list[dict[str, Any]]) -> None:
    text = corpus.table(rows)
    print(text)
    totals = corpus.totals(rows)
    assert text.startswith("| outcome | models | what |")
    assert f"| measured | {totals['measured']} |" in text
    assert f"{totals['models']} models: {totals['measured']} of {totals['ort_runnable']}" in text
    assert totals["measured"] > 0
