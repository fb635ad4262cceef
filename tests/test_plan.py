"""Realistic inputs with no flags (measure/plan.py): sizes by role and metadata, values by role
and by the tables integer inputs index, other candidates when the first run fails, the one-line
error with the flags to set, --batch and --dim INPUT:AXIS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from inferspeed import InputError, Session
from inferspeed.measure.plan import shapes_for_file

FAST = ("-t", "0.05", "--warmup", "0.01")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferspeed", *args], capture_output=True, text=True, timeout=120
    )


def _save(model: Any, path: Path, metadata: dict[str, str] | None = None) -> str:
    for k, v in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return str(path)


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any]) -> Any:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def encoder(path: Path, vocab: int = 1000, hidden: int = 8) -> str:
    """BERT-like: input_ids into a vocab table, token_type_ids into a 2-row table, a mask."""
    rng = np.random.default_rng(0)
    inits = [
        helper.make_tensor("word", TensorProto.FLOAT, [vocab, hidden], rng.random(vocab * hidden)),
        helper.make_tensor("types", TensorProto.FLOAT, [2, hidden], rng.random(2 * hidden)),
        helper.make_tensor("axes", TensorProto.INT64, [1], [2]),
    ]
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32),  # through a cast
        helper.make_node("Gather", ["word", "ids32"], ["we"]),
        helper.make_node("Gather", ["types", "token_type_ids"], ["te"]),
        helper.make_node("Add", ["we", "te"], ["e"]),
        helper.make_node("Cast", ["attention_mask"], ["mf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mf", "axes"], ["m3"]),
        helper.make_node("Mul", ["e", "m3"], ["y"]),
    ]
    names = ("input_ids", "token_type_ids", "attention_mask")
    ins = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in names]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", hidden])]
    return _save(_model(nodes, ins, out, inits), path)


def image_model(
    path: Path, reshape_to: list[int] | None = None, metadata: dict[str, str] | None = None
) -> str:
    """A 3x3 Conv over an NCHW image with batch, height and width open (no names for the
    last two); ``reshape_to``: then a Reshape that only some sizes allow."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"])]
    inits = [w]
    if reshape_to is not None:
        inits.append(helper.make_tensor("s", TensorProto.INT64, [len(reshape_to)], reshape_to))
        nodes.append(helper.make_node("Reshape", ["x", "s"], ["r"]))
        nodes.append(helper.make_node("ReduceSum", ["r"], ["rs"], keepdims=0))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "?", "?"])
    conv_out = helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N", 4, "h", "w"])
    outs = (
        [conv_out]
        if reshape_to is None
        else [helper.make_tensor_value_info("rs", TensorProto.FLOAT, []), conv_out]
    )
    return _save(_model(nodes, [x], outs, inits), path, metadata)


def audio_model(path: Path) -> str:
    """[batch, samples] audio, recurrent state [2, batch, 16] and a scalar sample rate that must
    be 16000 (an Equal feeding a Where that divides by zero otherwise)."""
    inits = [helper.make_tensor("k", TensorProto.INT64, [], [16000])]
    nodes = [
        helper.make_node("Equal", ["sr", "k"], ["ok"]),
        helper.make_node("Cast", ["ok"], ["okf"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["input"], ["s"], keepdims=0),
        helper.make_node("Div", ["s", "okf"], ["y"]),
        helper.make_node("Identity", ["state"], ["state_out"]),
    ]
    ins = [
        helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, None]),
        helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, None, 16]),
        helper.make_tensor_value_info("sr", TensorProto.INT64, []),
    ]
    outs = [
        helper.make_tensor_value_info("y", TensorProto.FLOAT, []),
        helper.make_tensor_value_info("state_out", TensorProto.FLOAT, [2, None, 16]),
    ]
    return _save(_model(nodes, ins, outs, inits), path)


def _inputs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in doc["results"][0]["model"]["inputs"]}


def test_an_encoder_runs_with_no_flags_values_inside_their_tables(tmp_path: Path) -> None:
    path = encoder(tmp_path / "enc.onnx")
    with Session(path) as s:
        arrays = s.input_arrays
        ids, types, mask = arrays["input_ids"], arrays["token_type_ids"], arrays["attention_mask"]
        assert ids.shape == (1, 128)  # batch 1, a sequence of 128 tokens
        assert ids.min() >= 0 and ids.max() < 1000 and len(np.unique(ids)) > 50  # the vocab, not 0..9
        assert (types == 0).all() and (mask == 1).all()
        because = s.model_info()["inputs"][0]["chosen_because"]
        assert "batch 1" in because and "128 steps along 'sequence'" in because and "[0, 1000)" in because
    out = tmp_path / "r.json"
    p = cli("run", path, *FAST, "--json", str(out))
    assert p.returncode == 0, p.stderr
    notes = [line for line in p.stderr.splitlines() if line.startswith("note: input")]
    assert len(notes) == 3 and "set with --batch N, --dim sequence=N" in notes[0]
    assert _inputs(json.loads(out.read_text()))["token_type_ids"]["chosen_because"] == (
        "batch 1 (single stream); 128 steps along 'sequence'; values zeros (one segment)"
    )


def test_batch_sets_every_batch_dim_and_throughput_is_per_item(tmp_path: Path) -> None:
    path = encoder(tmp_path / "enc.onnx")
    out = tmp_path / "r.json"
    p = cli("run", path, *FAST, "--batch", "8", "--dim", "input_ids:1=16", "--json", str(out))
    assert p.returncode == 0, p.stderr
    shapes = {k: v["bound_shape"] for k, v in _inputs(json.loads(out.read_text())).items()}
    assert shapes == {"input_ids": [8, 16], "token_type_ids": [8, 16], "attention_mask": [8, 16]}
    assert "items (batch 8" in p.stdout and "threads=" in p.stdout
    assert "ONNX Runtime's default" in p.stdout  # the resolved thread count is said
    # One image model: batch by --batch although its batch dim has an unusable name.
    img = image_model(tmp_path / "img.onnx")
    assert shapes_for_file(img, _config(batch=4))[0]["x"][0] == 4


def _config(**kw: Any) -> Any:
    from inferspeed import Config

    return Config(**kw)


@pytest.mark.parametrize(
    ("flags", "match"),
    [
        (["--dim", "x:9=3"], "input 'x' has 4 dimensions"),
        (["--dim", "x:1=5"], "fixes that dimension at 3"),
        (["--dim", "height=5"], "no input has a dimension named 'height'.*INPUT:AXIS"),
    ],
)
def test_bad_dim_flags_are_one_line(tmp_path: Path, flags: list[str], match: str) -> None:
    import re

    p = cli("run", image_model(tmp_path / "img.onnx"), *FAST, *flags)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert re.search(match, p.stderr), p.stderr


def test_batch_without_a_batch_dim_is_refused(tmp_path: Path) -> None:
    from inferspeed.facts.models import add_model

    path = tmp_path / "add.onnx"
    onnx.save(add_model(width=4, batch=2), path)
    p = cli("run", str(path), *FAST, "--batch", "8")
    assert p.returncode == 2 and "--batch: no input has an open batch dimension" in p.stderr


def test_image_sizes_by_role_and_metadata(tmp_path: Path) -> None:
    shapes, notices, may_retry = shapes_for_file(image_model(tmp_path / "a.onnx"), _config())
    assert may_retry  # guessed, and a run whose first run fails there goes on to other sizes
    assert shapes["x"] == (1, 3, 640, 640)  # rank-4 output: a dense model
    assert "640x640: the usual input of detection and segmentation models" in notices[0]
    assert "--dim x:2=N" in notices[0] and "--dim x:3=N" in notices[0]  # '?' is not a usable name
    meta = image_model(tmp_path / "b.onnx", metadata={"imgsz": "[320, 256]"})
    shapes, notices, _ = shapes_for_file(meta, _config())
    assert shapes["x"] == (1, 3, 320, 256) and "image size in the model's metadata" in notices[0]


def test_a_failed_first_run_tries_the_next_sizes(tmp_path: Path) -> None:
    # Reshape to [1, 3, 48, -1]: no square candidate fits, the text-line 48x320 does.
    path = image_model(tmp_path / "line.onnx", reshape_to=[1, 3, 48, -1])
    with Session(path) as s:
        assert s.input_arrays["x"].shape == (1, 3, 48, 320)
        assert any("the first run failed at the sizes chosen first" in n for n in s.notices), s.notices


def test_info_counts_the_macs_at_the_sizes_run_measures_at(tmp_path: Path) -> None:
    """info makes the first run as run does where it could fail at guessed sizes: its MACs
    are those of the 48x320 line that runs, not of the 640x640 tried first (--no-call)."""
    path = image_model(tmp_path / "line.onnx", reshape_to=[1, 3, 48, -1])
    p = cli("info", path, "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["macs_at"] == {"x": [1, 3, 48, 320]}
    assert info["macs"]["total"] == 4 * 27 * 46 * 318  # Conv 3x3, 4 filters, no padding
    assert any("ran at these (candidate set" in n for n in info["macs_notices"]), info["macs_notices"]
    p = cli("info", path, "--json", "--no-call")
    first = json.loads(p.stdout)
    assert first["macs_at"] == {"x": [1, 3, 640, 640]} and first["macs"]["total"] == 4 * 27 * 638 * 638
    assert any("sizes a run tries first" in n for n in first["macs_notices"])
    never = image_model(tmp_path / "never.onnx", reshape_to=[1, 3, 47, -1])  # no guess has 47 | h*w
    p = cli("info", never)  # fails at every guess: said, counted at the first
    assert p.returncode == 0, p.stderr
    assert "failed: counted at the sizes tried first" in " ".join(p.stdout.split())


def test_first_run_and_memory_figures_are_those_of_the_attempt_that_ran(tmp_path: Path) -> None:
    # 640x640 is tried first (a dense model) and fails at the Reshape after its Conv ran; the
    # session is then made afresh at 320x320, so the failed attempt is in none of its figures.
    path = image_model(tmp_path / "sq.onnx", reshape_to=[1, 3, 320, 320])
    with Session(path, threads=1) as s:
        assert s.input_arrays["x"].shape == (1, 3, 320, 320)
        info = s.session_info()
        assert [f["inputs"] for f in info["failed_attempts"]] == [{"x": [1, 3, 640, 640]}]
        assert "Reshape" in info["failed_attempts"][0]["error"]
        # Only the fresh session's own first runs: its Run and one bound call, not the failed Run.
        assert s.untimed_calls == 2
        assert any("in a session made afresh" in n for n in s.notices), s.notices
        m = s.memory_info()
        if m["peak_reset"]:  # the 640x640 attempt's im2col and output buffers: ~33 MiB more
            assert m["failed_attempts_peak_delta_bytes"] - m["session_peak_delta_bytes"] > 16 * 2**20, m
        r = s.measure(iterations=5, warmup_iterations=1)
        assert r.session["failed_attempts"] == info["failed_attempts"]
        assert r.session["first_run_ns"] == info["first_run_ns"]
    with Session(path, threads=1, dims={"x:2": 320, "x:3": 320}) as direct:  # no attempt fails
        assert direct.session_info()["failed_attempts"] == [] and direct.untimed_calls == 2


def test_a_model_no_guess_fits_fails_with_one_line_that_names_the_flags(tmp_path: Path) -> None:
    # Reshape to [11, -1]: 3*H*W must be a multiple of 11, which no candidate size is.
    path = image_model(tmp_path / "odd.onnx", reshape_to=[11, -1])
    p = cli("run", path, *FAST)
    assert p.returncode == 2, p.stderr
    line = p.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "the first run of odd.onnx failed (5 sets of sizes tried, all failed)" in line
    assert "bound: x float32 1x3x640x640 random" in line
    assert "set the sizes the model needs: --dim x:2=N --dim x:3=N" in line
    p = cli("run", path, *FAST, "--dim", "x:2=11", "--dim", "x:3=11")  # the flags it names work
    assert p.returncode == 0, p.stderr
    with pytest.raises(InputError, match=r"the first run of odd\.onnx failed"):
        Session(path)


def test_audio_state_and_sample_rate(tmp_path: Path) -> None:
    with Session(audio_model(tmp_path / "vad.onnx")) as s:
        a = s.input_arrays
        assert a["sr"].shape == () and int(a["sr"]) == 16000
        assert a["input"].shape == (1, 16000)  # 1 s at 16 kHz
        assert a["state"].shape == (2, 1, 16) and (a["state"] == 0).all()
        because = {i["name"]: i["chosen_because"] for i in s.model_info()["inputs"]}
        assert because["sr"] == "values a sample rate of 16000 Hz"
        assert "16000 samples (1 s at 16000 Hz)" in because["input"]


def test_the_batch_is_the_first_dim_of_the_first_input_of_rank_two_or_more(tmp_path: Path) -> None:
    """A rank-1 input's length is not a batch: a model of one [7] input has no per-item
    throughput; a rank-1 input before a [4, 16] one leaves the batch to the latter."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h

    from inferspeed.results.result import batch_from

    assert batch_from([(7,)]) == 1 and batch_from([(), (3,), (4, 16)]) == 4 and batch_from([]) == 1
    x = h.make_tensor_value_info("x", T.FLOAT, [7])
    y = h.make_tensor_value_info("y", T.FLOAT, [7])
    path = tmp_path / "vec.onnx"
    graph = h.make_graph([h.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), path)
    p = cli("run", str(path), *FAST, "--scenario", "offline", "--duration", "0.2")
    assert p.returncode == 0, p.stderr
    (line,) = [line for line in p.stdout.splitlines() if line.startswith("throughput")]
    assert "items" not in line and "batch" not in line
    with Session(str(path), threads=1) as s:
        assert s.batch == 1


def test_an_error_reason_is_cut_between_words_without_source_locations() -> None:
    """ONNX Runtime's messages are long and start with where in its sources they were raised:
    a line that names them drops that and is cut at a word's end, never mid-word."""
    from inferspeed.measure.plan import ort_reason

    error = (
        "/onnxruntime_src/onnxruntime/core/providers/cpu/tensor/reshape_helper.h:91 "
        "onnxruntime::ReshapeHelper::ReshapeHelper(const onnxruntime::TensorShape&, bool) "
        "The input tensor cannot be reshaped to the requested shape. Input shape:{2,3}, requested shape:{7}"
    )
    text = ort_reason(error, 80)
    assert text == "The input tensor cannot be reshaped to the requested shape. Input ..."
    assert len(text) <= 80
    assert ort_reason("short\nmessage", 80) == "short message"
