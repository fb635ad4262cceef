"""A sweep's file (results/sweepfile.py): its lines both ways, appending, the reads for a resume
and for a report, the label of a cell, the fold of a cluster sweep's superseded lines."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferspeed.errors import InputError
from inferspeed.results.sweepfile import (
    SweepLine,
    append_line,
    cell_key,
    cell_label,
    fold_hosts,
    is_sweep_file,
    read_for_resume,
    read_sweep,
)
from inferspeed.stats.summary import summarize


def _result(median: float = 1000.0, batch: int = 1) -> dict[str, Any]:
    stats = summarize(np.array([median] * 5, dtype=np.int64)).to_dict()
    model = {"name": "m.onnx", "inputs": [{"bound_shape": [batch, 4]}]}
    return {"model": model, "config": {}, "stats": stats}


HOST = {"name": "instance=a", "node_id": "n1", "ip": "10.0.0.1", "labels": {"instance": "a"}}


def test_lines_are_written_as_they_always_were() -> None:
    """The JSON a sweep wrote before this module existed, byte for byte, for each kind of line."""
    cell = {"threads": 2, "dims": {"seq": 128}}
    result = _result()
    cases = [
        (SweepLine(cell, result=result), {"cell": cell, "result": result}),
        (SweepLine(cell, error="bad shape"), {"cell": cell, "error": "bad shape"}),
        (
            SweepLine(cell, error="crashed: killed by SIGKILL", crashed=True, exitcode=-9),
            {"cell": cell, "error": "crashed: killed by SIGKILL", "crashed": True, "exitcode": -9},
        ),
        (
            SweepLine(cell, error="crashed: no status", crashed=True),
            {"cell": cell, "error": "crashed: no status", "crashed": True, "exitcode": None},
        ),
        (SweepLine(cell, result=result, host=HOST), {"cell": cell, "result": result, "host": HOST}),
        (
            SweepLine(cell, error="lost", host=HOST, lost=True, order=("cell", "host", "error")),
            {"cell": cell, "host": HOST, "error": "lost", "lost": True},
        ),
    ]
    for line, old in cases:
        assert line.to_json() == json.dumps(old, allow_nan=False)
        assert dict(line) == old and line["cell"] == cell  # it reads as its JSON form too
        assert SweepLine.from_dict(json.loads(line.to_json())) == line


def test_a_line_with_unknown_keys_round_trips() -> None:
    text = json.dumps(
        {"cell": {"batch": 1}, "note": "kept", "result": _result(), "future": [1, 2], "lost": False}
    )
    line = SweepLine.from_dict(json.loads(text))
    assert line.extra == {"note": "kept", "future": [1, 2]} and not line.lost
    assert line.to_json() == text  # every key, in its place, even one at its default


def test_append_is_one_write_of_one_whole_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    path = tmp_path / "s.jsonl"
    first, second = SweepLine({"threads": 1}, result=_result()), SweepLine({"threads": 2}, error="x")
    append_line(path, first)
    append_line(path, second)
    assert writes == [(first.to_json() + "\n").encode(), (second.to_json() + "\n").encode()]
    assert path.read_bytes() == b"".join(writes)
    assert read_for_resume(path) == [first, second]


def test_resume_read_cuts_a_partial_last_line_and_the_report_read_leaves_it_out(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    whole = SweepLine({"threads": 1}, result=_result()).to_json() + "\n"
    path.write_text(whole + '{"cell": {"threads": 2}, "res')
    report = read_sweep(path)  # the report reads the file as it is
    assert [x.cell for x in report.lines] == [{"threads": 1}]
    assert len(report.notes) == 1 and "the last line is cut short" in report.notes[0]
    assert path.read_text().endswith('"res')
    lines = read_for_resume(path)  # the resume cuts the partial line off the file
    assert [x.cell for x in lines] == [{"threads": 1}] and path.read_text() == whole
    # A last line that is not JSON although whole (a newline written) is cut as well.
    path.write_text(whole + "{\n")
    assert len(read_for_resume(path)) == 1 and path.read_text() == whole
    assert read_for_resume(tmp_path / "none.jsonl") == []  # no file yet


def test_any_other_bad_line_names_the_file_and_line(tmp_path: Path) -> None:
    good = SweepLine({"threads": 1}, result=_result()).to_json()
    cases = {
        f"{good}\nnot json\n{good}\n": "line 2 is not JSON",
        f'{good}\n{{"threads": 1}}\n': "line 2 is not a sweep cell",
        f'\n{good}\n{{"cell": {{}}}}\n': "line 3 is not a sweep cell",
        f'{good}\n{{"cell": {{}}, "result": {{"stats": {{}}}}}}\n': "line 2: malformed result",
    }
    for n, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{n}.jsonl"
        path.write_text(text)
        with pytest.raises(InputError, match=f"{path} {message}"):
            read_sweep(path)
        if "malformed" not in message:  # a resume reads lines, not results
            with pytest.raises(InputError, match=f"{path} {message}"):
                read_for_resume(path)
            assert path.read_text() == text  # left as it was: nothing of it is cut
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="holds no sweep cells"):
        read_sweep(empty)


def test_one_label_for_dims_hosts_and_plain_axes() -> None:
    cell = {"threads": 2, "batch": 8, "dims": {"seq": 128}}
    assert cell_label(cell) == "threads=2, batch=8, seq=128"
    assert cell_label(cell, "instance=a") == "threads=2, batch=8, seq=128, host=instance=a"
    assert cell_label({**cell, "host": "instance=a"}, "instance=a") == cell_label(cell, "instance=a")
    assert SweepLine(cell, error="x", host=HOST).label == cell_label(cell, "instance=a")
    assert SweepLine(cell, error="x", host={}).label == cell_label(cell)
    assert cell_key({"b": 1, "a": {"y": 2, "x": 1}}) == cell_key({"a": {"x": 1, "y": 2}, "b": 1})


def test_a_later_line_of_the_same_cell_and_host_supersedes_an_earlier_one() -> None:
    def on(host: str, cell: dict[str, Any], **fields: Any) -> SweepLine:
        return SweepLine(cell, host={"name": host}, **fields)

    lines = [
        on("a", {"batch": 1}, result=_result(1000.0)),
        on("b", {"batch": 1}, error="node b was lost", lost=True),
        on("b", {"batch": 2}, result=_result(2000.0)),
        on("b", {"batch": 1}, result=_result(900.0)),
    ]
    folded = fold_hosts(lines)
    assert [(x.cell, x.error) for x in folded] == [
        ({"batch": 1, "host": "a"}, None),
        ({"batch": 2, "host": "b"}, None),
        ({"batch": 1, "host": "b"}, None),
    ]
    assert fold_hosts(folded) == folded  # folding again changes nothing
    local = [SweepLine({"batch": 1}, result=_result()), SweepLine({"batch": 1}, error="again")]
    assert fold_hosts(local) == local  # a local sweep's lines are kept as they are


def test_ranked_values_and_the_cells_metric() -> None:
    line = SweepLine({"batch": 4}, result=_result(4000.0, batch=4))
    assert line.batch == 4 and line.value(("stats", "median_ns")) == 4000.0
    assert line.value(("instructions", "instructions")) is None and line.metric == "latency"
    counted = {**_result(), "config": {"metric": "instructions"}, "instructions": {"instructions": 7}}
    assert SweepLine({}, result=counted).metric == "instructions"
    assert SweepLine({}, result=counted).value(("instructions", "instructions")) == 7.0
    assert SweepLine({}, error="x").batch == 1


def test_a_sweep_file_is_told_from_other_documents(tmp_path: Path) -> None:
    sweep = tmp_path / "s.jsonl"
    sweep.write_text("\n" + SweepLine({"threads": 1}, error="x").to_json() + "\n")
    result = tmp_path / "r.json"
    result.write_text(json.dumps({"schema": "inferspeed/1", "cell": {}, "results": []}, indent=2))
    one_line = tmp_path / "one.json"
    one_line.write_text(json.dumps({"schema": "inferspeed/1", "cell": {}}))
    assert is_sweep_file(sweep)
    assert not is_sweep_file(result) and not is_sweep_file(one_line)
    assert not is_sweep_file(tmp_path / "missing.jsonl") and not is_sweep_file(tmp_path)
