"""Values from how the graph uses each input (facts/uses.py, through measure/plan.py): indices
within the axis they index, valid axes and counts, shapes that fit the data, non-zero divisors.
Each model here fails with the old uniform ints in [0, 10); each runs in ONNX Runtime with no
flag, and the notice says why each value was chosen."""

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

from inferspeed import Session

I64, I32, F = TensorProto.INT64, TensorProto.INT32, TensorProto.FLOAT


def _save(
    path: Path, nodes: list[Any], inputs: list[Any], outputs: list[Any], opset: int = 18, init: Any = ()
) -> str:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(init))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, path)
    return str(path)


def _error_line(path: str) -> str:
    """The one error line of `inferspeed run` on ``path`` with no flag (exit 2)."""
    p = subprocess.run(
        [sys.executable, "-m", "inferspeed", "run", path, "-t", "0.05", "--warmup", "0", "-q"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    return p.stderr


def _in(name: str, elem: int, shape: list[Any]) -> Any:
    return helper.make_tensor_value_info(name, elem, shape)


def _run(path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays bound with no flag and each input's reason, after a measurement."""
    with Session(path, threads=1, warmup_time=0.0) as s:
        r = s.measure(iterations=3)
        assert r.stats.count == 3
        arrays = {k: np.array(v) for k, v in s.input_arrays.items()}
        because = {i["name"]: i["chosen_because"] or "" for i in r.to_dict()["model"]["inputs"]}
    return arrays, because


def test_gather_indices_stay_within_a_fixed_shape_input(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "gather.onnx",
        [helper.make_node("Gather", ["data", "idx"], ["y"], axis=0)],
        [_in("data", F, [3, 4]), _in("idx", I64, [5])],
        [_in("y", F, [5, 4])],
    )
    arrays, because = _run(path)
    assert arrays["idx"].min() >= 0 and arrays["idx"].max() < 3
    assert "indices in [0, 3) (axis 0 of 'data', which Gather indexes)" in because["idx"]


def test_gather_indices_within_an_intermediate_tensor_by_shape_inference(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "gather_mid.onnx",
        [
            helper.make_node("Transpose", ["data"], ["t"], perm=[1, 0]),
            helper.make_node("Gather", ["t", "idx"], ["y"], axis=1),
        ],
        [_in("data", F, [2, 6]), _in("idx", I64, [7])],
        [_in("y", F, None)],
    )
    arrays, because = _run(path)
    assert arrays["idx"].max() < 2 and "[0, 2)" in because["idx"]


def test_unsqueeze_axes_as_an_input(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "unsq.onnx",
        [helper.make_node("Unsqueeze", ["x", "axes"], ["y"])],
        [_in("x", F, [2, 3]), _in("axes", I64, [2])],
        [_in("y", F, None)],
    )
    arrays, because = _run(path)
    assert arrays["axes"].tolist() == [0, 1]
    assert "axes 0..1 (within the rank of Unsqueeze's output)" in because["axes"]


def test_reshape_target_shape_as_an_input_of_open_length(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "reshape.onnx",
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        [_in("x", F, [2, 3, 4]), _in("shape", I64, ["n"])],
        [_in("y", F, None)],
    )
    arrays, because = _run(path)
    assert arrays["shape"].tolist() == [2, 3, 4]
    assert "3 elements (the rank of 'x')" in because["shape"]
    assert "target shape [2, 3, 4]: the shape of 'x'" in because["shape"]


@pytest.mark.parametrize(("elem", "op"), [(I32, "Div"), (I64, "Div"), (I64, "Mod")])
def test_an_integer_divisor_is_never_zero(tmp_path: Path, elem: int, op: str) -> None:
    path = _save(
        tmp_path / "div.onnx",
        [helper.make_node(op, ["a", "b"], ["y"])],
        [_in("a", elem, [1000]), _in("b", elem, [1000])],
        [_in("y", elem, [1000])],
    )
    arrays, because = _run(path)
    assert arrays["b"].min() >= 1 and "a divisor, never zero" in because["b"]
    assert arrays["a"].min() == 0  # the dividend keeps [0, 10)


def test_top_k_with_k_as_an_input(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "topk.onnx",
        [helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1)],
        [_in("x", F, [2, 5]), _in("k", I64, [1])],
        [_in("v", F, None), _in("i", I64, None)],
    )
    arrays, because = _run(path)
    assert arrays["k"].tolist() == [1] and "k = 1" in because["k"]


def test_one_hot_with_depth_as_an_input(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "onehot.onnx",
        [helper.make_node("OneHot", ["indices", "depth", "values"], ["y"])],
        [_in("indices", I64, [6]), _in("depth", I64, []), _in("values", F, [2])],
        [_in("y", F, None)],
    )
    arrays, because = _run(path)
    assert arrays["depth"].tolist() == 10 and "depth 10" in because["depth"]
    assert arrays["indices"].max() < 10 and "below OneHot's depth" in because["indices"]


def test_loop_trip_count_and_condition_as_inputs(tmp_path: Path) -> None:
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["acc_in", "x"], ["acc_out"]),
        ],
        "body",
        [_in("i", I64, []), _in("cond_in", TensorProto.BOOL, []), _in("acc_in", F, [2])],
        [_in("cond_out", TensorProto.BOOL, []), _in("acc_out", F, [2])],
    )
    path = _save(
        tmp_path / "loop.onnx",
        [helper.make_node("Loop", ["M", "cond", "acc0"], ["acc"], body=body)],
        [_in("M", I64, []), _in("cond", TensorProto.BOOL, []), _in("acc0", F, [2]), _in("x", F, [2])],
        [_in("acc", F, [2])],
    )
    arrays, because = _run(path)
    assert arrays["M"].tolist() == 3 and "a trip count of 3" in because["M"]
    assert arrays["cond"].tolist() is True and "the loop runs" in because["cond"]


def test_split_sizes_as_an_input(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "split.onnx",
        [helper.make_node("Split", ["x", "split"], ["a", "b", "c"], axis=1)],
        [_in("x", F, [2, 7]), _in("split", I64, ["n"])],
        [_in("a", F, None), _in("b", F, None), _in("c", F, None)],
    )
    arrays, because = _run(path)
    assert arrays["split"].tolist() == [3, 2, 2]
    assert "3 elements (one per output of Split)" in because["split"]
    assert "summing to 7" in because["split"]


def test_slice_starts_ends_axes_steps_as_inputs(tmp_path: Path) -> None:
    names = ["starts", "ends", "axes", "steps"]
    path = _save(
        tmp_path / "slice.onnx",
        [helper.make_node("Slice", ["x", *names], ["y"])],
        [_in("x", F, [4, 5, 6]), *(_in(n, I64, [2]) for n in names)],
        [_in("y", F, None)],
    )
    arrays, because = _run(path)
    assert [arrays[n].tolist() for n in names] == [[0, 0], [4, 5], [0, 1], [1, 1]]
    assert "starts 0" in because["starts"] and "ends [4, 5]" in because["ends"]


def test_range_inputs(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "range.onnx",
        [helper.make_node("Range", ["start", "limit", "delta"], ["y"])],
        [_in("start", I32, []), _in("limit", I32, []), _in("delta", I32, [])],
        [_in("y", I32, None)],
    )
    arrays, because = _run(path)
    assert [int(arrays[n]) for n in ("start", "limit", "delta")] == [0, 10, 1]
    assert "delta 1" in because["delta"]


def test_through_cast_and_concat_and_into_an_if_branch(tmp_path: Path) -> None:
    """An Unsqueeze'd, cast scalar concatenated after a constant part: its slice of the target."""
    then = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["r"])], "then", [], [_in("r", F, None)]
    )
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "else", [], [_in("o", F, None)])
    zero = helper.make_tensor("zero", I64, [1], [0])
    nodes = [
        helper.make_node("Constant", [], ["head"], value=helper.make_tensor("h", I64, [1], [2])),
        helper.make_node("Cast", ["tail"], ["tail64"], to=I64),
        helper.make_node("Unsqueeze", ["tail64", "zero"], ["tail1"]),
        helper.make_node("Concat", ["head", "tail1"], ["shape"], axis=0),
        helper.make_node("If", ["flag"], ["y"], then_branch=then, else_branch=other),
    ]
    graph = helper.make_graph(
        nodes, "g", [_in("x", F, [2, 6]), _in("tail", I32, []), _in("flag", TensorProto.BOOL, [])],
        [_in("y", F, None)], [zero],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, tmp_path / "concat.onnx")
    arrays, because = _run(str(tmp_path / "concat.onnx"))
    assert int(arrays["tail"]) == 6 and "through Cast -> Unsqueeze -> Concat" in because["tail"]


def test_the_users_input_value_still_wins(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "div.onnx",
        [helper.make_node("Div", ["a", "b"], ["y"])],
        [_in("a", I64, [4]), _in("b", I64, [4])],
        [_in("y", I64, [4])],
    )
    with Session(path, threads=1, values={"b": "7"}, ranges={"a": (20, 30)}) as s:
        assert s.input_arrays["b"].tolist() == [7, 7, 7, 7]
        assert s.input_arrays["a"].min() >= 20
        because = {i["name"]: i["chosen_because"] for i in s.model_info()["inputs"]}
        assert not because["b"]


def test_cli_run_with_no_flag_notes_each_value(tmp_path: Path) -> None:
    path = _save(
        tmp_path / "tile.onnx",
        [helper.make_node("Tile", ["x", "repeats"], ["y"])],
        [_in("x", F, [2, 3]), _in("repeats", I64, ["r"])],
        [_in("y", F, None)],
    )
    out = tmp_path / "r.json"
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "inferspeed",
            "run",
            path,
            *("-t", "0.05", "--warmup", "0.01"),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "note: input 'repeats' 2: 2 elements (the rank of 'x'); values repeats 1" in p.stderr
    inputs = json.loads(out.read_text())["results"][0]["model"]["inputs"]
    assert "repeats 1" in next(i for i in inputs if i["name"] == "repeats")["chosen_because"]


def test_an_intermediate_shape_without_onnx_inference(tmp_path: Path) -> None:
    """Where onnx's inference leaves a shape open (or no file is given), a shape-keeping op and a
    Reshape to Shape(t) carry the shape they were given."""
    from inferspeed.facts import onnxfile
    from inferspeed.facts.uses import find_uses

    path = _save(
        tmp_path / "nll.onnx",
        [
            helper.make_node("LogSoftmax", ["x"], ["ls"], axis=1),
            helper.make_node("Shape", ["x"], ["sx"]),
            helper.make_node("Reshape", ["ls", "sx"], ["r"]),
            helper.make_node("NegativeLogLikelihoodLoss", ["r", "target"], ["loss"]),
        ],
        [_in("x", F, [3, 5]), _in("target", I64, [3])],
        [_in("loss", F, None)],
        opset=13,
    )
    found = find_uses(onnxfile.read(path), ["target"])  # no path: no onnx inference
    assert found is not None
    rule = found.rules({"x": (3, 5), "target": (3,)}, ["target"])["target"]
    assert (rule.fill, rule.low, rule.high) == ("ints", 0, 5)
    arrays, because = _run(path)
    assert arrays["target"].max() < 5 and "NegativeLogLikelihoodLoss" in because["target"]


def test_a_tensor_scatter_cache_update_is_timed_as_any_model(tmp_path: Path) -> None:
    """TensorScatter (opset 24) writes an update into a static cache: its past_cache and
    present_cache pair like a KV cache, but the cache never grows, so with no metric asked for
    it is timed one call at a time (said in a note), its write positions within the room the
    update leaves; asking for generation still gets the one line."""
    from inferspeed import ModelError

    path = _save(
        tmp_path / "scatter.onnx",
        [helper.make_node("TensorScatter", ["past_cache", "update", "write_indices"], ["present_cache"])],
        [_in("past_cache", F, [2, 3, 4, 5]), _in("update", F, [2, 3, 1, 5]), _in("write_indices", I64, [2])],
        [_in("present_cache", F, [2, 3, 4, 5])],
        opset=24,
    )
    arrays, because = _run(path)
    assert arrays["write_indices"].min() >= 0 and arrays["write_indices"].max() < 4
    assert "write positions in [0, 4) (an update of 1 fits a cache of 4)" in because["write_indices"]
    with Session(path, threads=1) as s:
        assert s.decoder is None
        (note,) = [n for n in s.notices if "fixes its sequence length at 4" in n]
        assert "timed one call at a time" in note
    with pytest.raises(ModelError, match="fixes its sequence length at 4"):
        Session(path, threads=1, metric="generation")


def test_a_cache_named_input_without_token_ids_is_any_model(tmp_path: Path) -> None:
    """RotaryEmbedding's cos_cache / sin_cache are named like a KV cache and have no present
    output; with no token ids input either, the model is no decoder: it is timed one call at a
    time with a note, not refused."""
    path = _save(
        tmp_path / "rotary_like.onnx",
        [helper.make_node("Add", ["x", "cos_cache"], ["y"])],
        [_in("x", F, [2, 3, 4]), _in("cos_cache", F, [2, 3, 4])],
        [_in("y", F, [2, 3, 4])],
    )
    _run(path)
    with Session(path, threads=1) as s:
        assert s.decoder is None
        (note,) = [n for n in s.notices if "'cos_cache'" in n and "has no matching output" in n]
        assert note.endswith("timed one call at a time, its inputs as any model's")
        assert "exporting" not in note


def test_col2im_image_and_block_shapes_fit_its_input(tmp_path: Path) -> None:
    """Col2Im's [1, 5, 15] input with pads 1 a side on the second axis: an image and blocks
    whose count of blocks is 15 at those pads (ONNX's test_col2im_pads, which ids in [0, 10)
    broke)."""
    path = _save(
        tmp_path / "col2im.onnx",
        [helper.make_node("Col2Im", ["x", "image", "block"], ["y"], pads=[0, 1, 0, 1])],
        [_in("x", F, [1, 5, 15]), _in("image", I64, [2]), _in("block", I64, [2])],
        [_in("y", F, None)],
    )
    arrays, because = _run(path)
    image, block = arrays["image"].tolist(), arrays["block"].tolist()
    pads = [0, 1, 0, 1]
    counts = [image[a] + pads[a] + pads[2 + a] - (block[a] - 1) for a in range(2)]  # strides 1
    assert 5 % (block[0] * block[1]) == 0 and counts[0] * counts[1] == 15, (image, block)
    assert "fit Col2Im's [1, 5, 15]" in because["image"] and "block_shape" in because["block"]


def test_dft_axis_maxunpool_output_shape_and_resize_sizes_by_axes(tmp_path: Path) -> None:
    dft = _save(
        tmp_path / "dft.onnx",
        [helper.make_node("DFT", ["x", "", "axis"], ["y"], inverse=1)],
        [_in("x", F, [1, 10, 10, 2]), _in("axis", I64, [])],
        [_in("y", F, None)],
        opset=20,
    )
    arrays, because = _run(dft)
    assert arrays["axis"].tolist() == 2 and "DFT's default signal axis" in because["axis"]
    unpool = _save(
        tmp_path / "unpool.onnx",
        [helper.make_node("MaxUnpool", ["x", "i", "shape"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
        [_in("x", F, [1, 3, 2, 2]), _in("i", I64, [1, 3, 2, 2]), _in("shape", I64, [4])],
        [_in("y", F, None)],
    )
    arrays, because = _run(unpool)
    assert arrays["shape"].tolist() == [1, 3, 4, 4] and arrays["i"].max() < 48
    assert "MaxUnpool's own output shape" in because["shape"]
    resize = _save(
        tmp_path / "resize.onnx",
        [
            helper.make_node(
                "Resize",
                ["x", "roi", "", "sizes"],
                ["y"],
                axes=[3, 2],
                mode="linear",
                coordinate_transformation_mode="tf_crop_and_resize",
            )
        ],
        [_in("x", F, [1, 1, 4, 6]), _in("roi", F, [4]), _in("sizes", I64, [2])],
        [_in("y", F, None)],
    )
    arrays, because = _run(resize)
    assert arrays["sizes"].tolist() == [6, 4] and arrays["roi"].tolist() == [0, 0, 1, 1]
    assert "the dims of 'x' at axes [3, 2]" in because["sizes"]


def test_a_one_hot_encoders_string_input_holds_a_known_category(tmp_path: Path) -> None:
    """skl2onnx's categorical column: a string input, through a Gather, into an
    ai.onnx.ml OneHotEncoder that refuses unknown categories (zeros=0)."""
    nodes = [
        helper.make_node("Gather", ["cat", "col"], ["c"], axis=1),
        helper.make_node(
            "OneHotEncoder", ["c"], ["y"], domain="ai.onnx.ml", cats_strings=["blue", "red"], zeros=0
        ),
    ]
    col = helper.make_tensor("col", I64, [1], [0])
    graph = helper.make_graph(
        nodes, "g", [_in("cat", TensorProto.STRING, ["N", 2])], [_in("y", F, None)], [col]
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    path = str(tmp_path / "onehot.onnx")
    onnx.save(model, path)
    arrays, because = _run(path)
    assert arrays["cat"].tolist() == [["blue", "blue"]]
    assert "category 'blue' (the first OneHotEncoder knows) (through Gather)" in because["cat"]


def test_a_failure_nothing_explains_names_the_made_up_input_and_its_flag(tmp_path: Path) -> None:
    """An int64 size read through ops no rule follows (Mul, then a Gather into a small table):
    the error line names the input whose values were made up and the flag that gives them."""
    table = helper.make_tensor("table", F, [2], [1.0, 2.0])
    nodes = [
        helper.make_node("Mul", ["size", "size"], ["sq"]),
        helper.make_node("Add", ["sq", "size"], ["k"]),
        helper.make_node("GatherElements", ["table", "k"], ["g"]),
        helper.make_node("Add", ["g", "x"], ["y"]),
    ]
    inputs = [_in("x", F, [4]), _in("size", I64, [4]), _in("n", I64, [])]
    err = _error_line(_save(tmp_path / "deep.onnx", nodes, inputs, [_in("y", F, None)], init=[table]))
    assert "the failing GatherElements reads size, whose values were made up here" in err
    assert "--inputs FILE.npz (arrays named size)" in err and "reads x" not in err


def test_values_a_rule_chose_count_as_made_up_when_the_op_they_reach_fails(tmp_path: Path) -> None:
    """axes 0 (Unsqueeze's rule) also feed an index of 5 into a table of 2 through an Add no
    rule follows: the input a rule filled is named as made up, not taken for a user's --input."""
    table = helper.make_tensor("table", F, [2], [1.0, 2.0])
    five = helper.make_tensor("five", I64, [1], [5])
    nodes = [
        helper.make_node("Unsqueeze", ["x", "axes"], ["u"]),
        helper.make_node("Add", ["axes", "five"], ["k"]),
        helper.make_node("GatherElements", ["table", "k"], ["g"]),
    ]
    inputs, outputs = [_in("x", F, [3]), _in("axes", I64, [1])], [_in("u", F, None), _in("g", F, None)]
    err = _error_line(_save(tmp_path / "axes.onnx", nodes, inputs, outputs, init=[table, five]))
    assert "the failing GatherElements reads axes, whose values were made up here" in err
    assert "--input axes=V" in err
