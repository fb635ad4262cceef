"""Input generation from signatures, checked against real sessions' signatures."""

import numpy as np
import pytest

from inferspeed import Config, InputError, Session
from inferspeed.facts.signature import ValueInfo
from inferspeed.measure.inputs import make_inputs

from .conftest import FAST


def sig(name: str, code: int, shape: list[int | None], symbols: list[str | None] | None = None) -> ValueInfo:
    return ValueInfo.from_core(
        {
            "name": name,
            "kind": 1,
            "element_type": code,
            "shape": [-1 if d is None else d for d in shape],
            "symbolic": [s or "" for s in (symbols or [None] * len(shape))],
        }
    )


def test_defaults_per_type_and_reproducible() -> None:
    inputs = [
        sig("f", 1, [4, 5]),
        sig("i", 7, [1000]),
        sig("b", 9, [50]),
        sig("s", 8, [3]),
        sig("h", 10, [2]),
    ]
    a = make_inputs(inputs, Config(seed=3))
    b = make_inputs(inputs, Config(seed=3))
    c = make_inputs(inputs, Config(seed=4))
    assert a.arrays["f"].dtype == np.float32 and a.arrays["f"].shape == (4, 5)
    assert ((a.arrays["f"] >= 0) & (a.arrays["f"] < 1)).all()
    ids = a.arrays["i"]
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 10 and len(set(ids.tolist())) == 10
    assert a.arrays["b"].dtype == np.bool_ and a.arrays["b"].any() and not a.arrays["b"].all()
    assert a.arrays["s"].tolist() == ["inferspeed"] * 3
    assert a.arrays["h"].dtype == np.float16
    for name in ("f", "i", "b"):
        assert np.array_equal(a.arrays[name], b.arrays[name])
    assert not np.array_equal(a.arrays["f"], c.arrays["f"])
    assert all(src == "random" for src in a.sources.values())


def test_dynamic_dims_are_chosen_with_a_notice_that_names_the_flags() -> None:
    inputs = [sig("x", 1, [None, 3, None], ["batch", None, None])]
    got = make_inputs(inputs, Config())
    assert got.shapes["x"] == (1, 3, 128)  # batch 1, a sequence of 128 steps
    assert len(got.notices) == 1
    assert "--batch N" in got.notices[0] and "--dim x:2=N" in got.notices[0], got.notices
    assert got.plan.choices["x"].because.startswith("batch 1")
    got = make_inputs(inputs, Config(dims={"batch": 8}, shapes={}))
    assert got.shapes["x"] == (8, 3, 128)
    got = make_inputs(inputs, Config(batch=4, dims={"x:2": 9}))
    assert got.shapes["x"] == (4, 3, 9) and got.notices == ()
    got = make_inputs(inputs, Config(shapes={"x": (2, 3, 7)}))
    assert got.shapes["x"] == (2, 3, 7) and got.notices == ()


def test_values_ranges_and_scalars() -> None:
    inputs = [sig("k", 7, []), sig("x", 1, [100]), sig("flag", 9, []), sig("t", 6, [10])]
    got = make_inputs(
        inputs, Config(values={"k": "5", "flag": "false"}, ranges={"x": (-3, -2), "t": (100, 103)})
    )
    assert got.arrays["k"].shape == () and got.arrays["k"] == 5 and got.arrays["k"].dtype == np.int64
    assert got.arrays["flag"].dtype == np.bool_ and not got.arrays["flag"]
    assert got.arrays["x"].min() >= -3 and got.arrays["x"].max() < -2
    assert set(got.arrays["t"].tolist()) <= {100, 101, 102}
    assert got.sources == {"k": "constant", "x": "range", "flag": "constant", "t": "range"}


def test_bfloat16_bits() -> None:
    got = make_inputs([sig("b", 16, [3])], Config(values={"b": 1.0}))
    assert got.arrays["b"].tolist() == [0x3F80] * 3  # bfloat16 1.0


def test_a_scalar_bfloat16_input_is_a_0d_array_and_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """numpy turns the bit arithmetic of a 0-d array into a scalar, which the core cannot bind:
    generated and constant scalars both stay arrays, and a session runs them."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h

    for config in (Config(), Config(values={"b": 1.0})):
        got = make_inputs([sig("b", 16, [])], config)
        assert isinstance(got.arrays["b"], np.ndarray) and got.arrays["b"].shape == ()
        assert got.arrays["b"].dtype == np.uint16
    x = h.make_tensor_value_info("b", T.BFLOAT16, [])
    y = h.make_tensor_value_info("y", T.BFLOAT16, [])
    graph = h.make_graph([h.make_node("Identity", ["b"], ["y"])], "g", [x], [y])
    path = tmp_path / "bf16_scalar.onnx"
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), path)
    with Session(str(path), **FAST, values={"b": 1.0}) as s:
        assert s.measure(iterations=5).stats.count == 5


def test_npz_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "in.npz"
    np.savez(path, x=np.arange(6, dtype=np.float64).reshape(2, 3))
    x = [sig("x", 1, [None, 3], ["n", None])]
    # float64 for a float32 input: refused, never converted silently; --cast converts, with a notice
    with pytest.raises(InputError, match=r"is float64 but the input is float32: .* or pass --cast"):
        make_inputs(x, Config(inputs_file=str(path)))
    got = make_inputs(x, Config(inputs_file=str(path), cast=True))
    assert got.arrays["x"].dtype == np.float32 and got.arrays["x"].shape == (2, 3)
    assert got.arrays["x"].ravel().tolist() == [0, 1, 2, 3, 4, 5] and got.sources["x"] == "file"
    assert any("converted float64" in n and "--cast" in n for n in got.notices)
    np.savez(path, x=np.arange(6, dtype=np.float32).reshape(2, 3))
    got = make_inputs(x, Config(inputs_file=str(path)))  # the input's own dtype: no notice
    assert got.arrays["x"].ravel().tolist() == [0, 1, 2, 3, 4, 5] and got.notices == ()
    np.savez(path, x=np.zeros((2, 4)))
    with pytest.raises(InputError, match="dimension 1 is 4"):
        make_inputs([sig("x", 1, [None, 3])], Config(inputs_file=str(path)))
    np.savez(path, y=np.zeros(3))
    with pytest.raises(InputError, match="no input named 'y'"):
        make_inputs([sig("x", 1, [3])], Config(inputs_file=str(path)))
    np.savez(path, x=np.zeros(3))
    with pytest.raises(InputError, match="is float64 but the input is int32"):
        make_inputs([sig("x", 6, [3])], Config(inputs_file=str(path)))
    np.savez(path, x=np.array(["a", "b", "c"]))
    with pytest.raises(InputError, match="cannot become int32"):
        make_inputs([sig("x", 6, [3])], Config(inputs_file=str(path), cast=True))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"bad.npz is not an .npz archive: give arrays by input name"):
        make_inputs([sig("x", 1, [3])], Config(inputs_file=str(tmp_path / "bad.npz")))


@pytest.mark.parametrize(
    ("config", "match"),
    [
        (Config(shapes={"nope": (1,)}), "no input named 'nope'"),
        (Config(values={"nope": 1}), "no input named 'nope'"),
        (Config(dims={"seq": 3}), "no input has a dimension named 'seq'"),
        (Config(shapes={"x": (1, 2, 3)}), "rank 3 differs"),
        (Config(shapes={"x": (1, 5)}), "dimension 1 is 5 but the model fixes it at 4"),
        (Config(values={"x": "abc"}), "cannot use 'abc'"),
        (Config(values={"x": 1}, ranges={"x": (0, 1)}), "both a constant value and a range"),
        (Config(values={"i": 2**40}), "out of its range"),
        (Config(values={"i": 1.5}), "not an integer"),
        (Config(ranges={"i": (0, 1e12)}), "does not fit int32"),
        (Config(shapes={"x": (100_000, 4)}, max_input_bytes=1 << 20), "more than max_input_bytes"),
    ],
)
def test_bad_specs(config: Config, match: str) -> None:
    inputs = [sig("x", 1, [None, 4], ["batch", None]), sig("i", 6, [2])]
    with pytest.raises(InputError, match=match):
        make_inputs(inputs, config)


def test_every_element_type_through_a_real_session(models: dict[str, str]) -> None:
    with Session(models["types"], **FAST) as s:
        kinds = {v.name: v.element_type for v in s.inputs}
        assert kinds["bf16"] == "bfloat16" and kinds["text"] == "string" and kinds["u64"] == "uint64"
        for v in s.inputs:
            assert s.input_arrays[v.name].shape == (2, 3) or v.name == "text"
        r = s.measure(iterations=20)
        assert r.stats.count == 20
        # String outputs cannot be preallocated: ORT allocates them each call.
        assert r.session["outputs_preallocated"] is False


def test_input_without_a_shape_takes_any_shape(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A tensor input typed without a shape (any rank): ONNX Runtime reports it as a scalar."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h

    graph = h.make_graph(
        [h.make_node("Relu", ["x"], ["y"])],
        "any_rank",
        [h.make_tensor_value_info("x", T.FLOAT, None)],
        [h.make_tensor_value_info("y", T.FLOAT, None)],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    path = str(tmp_path / "any_rank.onnx")
    onnx.save(model, path)
    with Session(path, Config(**FAST)) as s:
        assert not s.inputs[0].rank_known and s.inputs[0].shape_text == "[any rank]"
        assert s._generated.arrays["x"].shape == ()
        assert any("has no shape in the model; using a scalar" in n for n in s._generated.notices)
    with Session(path, Config(shapes={"x": [3, 4]}, **FAST)) as s:
        x = s.measure().to_dict()["model"]["inputs"][0]
        assert x["bound_shape"] == [3, 4] and x["shape"] is None


def test_non_tensor_inputs_of_unknown_contents_are_named_with_their_type() -> None:
    optional = ValueInfo("x", "optional", None, None, None)
    with pytest.raises(InputError, match=r"input 'x' is optional<\?>: inferspeed cannot build"):
        make_inputs([optional], Config())
    with pytest.raises(InputError, match=r"input 'q' is sequence<\?>"):
        make_inputs([ValueInfo("q", "sequence", None, None, None)], Config())


def test_a_string_output_longer_than_declared_falls_back_to_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """StringSplit declares y as [2, 3]; "a b c d" splits into 4. Run takes it; a binding checks
    the output against the declared shape and refuses it: the model is measured through Run,
    with a note giving ONNX Runtime's reason."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h

    x = h.make_tensor_value_info("x", T.STRING, [2])
    y = h.make_tensor_value_info("y", T.STRING, [2, 3])
    n = h.make_tensor_value_info("n", T.INT64, [2])
    graph = h.make_graph([h.make_node("StringSplit", ["x"], ["y", "n"], delimiter=" ")], "g", [x], [y, n])
    path = tmp_path / "split.onnx"
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 20)]), path)
    with Session(str(path), threads=1, values={"x": "a b c d"}) as s:
        r = s.measure(iterations=20)
    assert r.stats.count == 20 and r.config["mode"] == "run"
    (note,) = [n for n in r.notices if "declared shape" in n]
    assert "measured through Run" in note and "Got: 4 Expected: 3" in note and "\n" not in note
    with Session(str(path), threads=1, values={"x": "a b c"}) as s:  # fits: the binding is used
        assert s.measure(iterations=5).config["mode"] == "binding"


@pytest.mark.parametrize(
    ("onnx_code", "name"),
    [(24, "float8e8m0"), (25, "uint2"), (26, "int2"), (21, "uint4"), (22, "int4"), (17, "float8e4m3fn")],
)
def test_every_narrow_element_type_is_named_alike_and_measures(tmp_path, onnx_code: int, name: str) -> None:  # type: ignore[no-untyped-def]
    """ONNX numbers float8e8m0, uint2 and int2 24, 25, 26; ONNX Runtime's C API 26, 24, 25.
    `info` (the file) and `run` (the session) name each by one name, and a Cast of each
    measures with no flag."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h

    from inferspeed.facts.info import info_document

    x = h.make_tensor_value_info("x", onnx_code, [2, 5])
    y = h.make_tensor_value_info("y", T.FLOAT, [2, 5])
    graph = h.make_graph([h.make_node("Cast", ["x"], ["y"], to=T.FLOAT)], "g", [x], [y])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 25)])
    model.ir_version = 12
    path = str(tmp_path / f"{name}.onnx")
    onnx.save(model, path)
    assert info_document(path)["inputs"][0]["type"] == name
    with Session(path, threads=1) as s:
        assert [v.element_type for v in s.inputs] == [name]
        assert s.measure(iterations=10).stats.count == 10
        raw = s.input_arrays["x"]
    assert raw.nbytes == (10 * {"uint2": 2, "int2": 2, "uint4": 4, "int4": 4}.get(name, 8) + 7) // 8
    if name == "float8e8m0":  # exponents of 2^-3 .. 2^3, never the NaN 0xFF
        assert raw.min() >= 124 and raw.max() <= 130
