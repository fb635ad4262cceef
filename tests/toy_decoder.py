"""A tiny transformer-decoder-shaped ONNX model with a real KV cache, built with onnx.helper, and
a plain onnxruntime greedy loop over it: tests of the generation loop that need no exporter.

The logits depend on the ids, on the positions and on the cache's contents (a mask-weighted
mean over every present, or real attention with ``attention="gqa"``), so a loop that feeds a
wrong past, mask, position or branch flag produces other tokens, or an error.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

_NP: dict[int, Any] = {T.FLOAT: np.float32, T.FLOAT16: np.float16, T.INT64: np.int64, T.INT32: np.int32}


@dataclasses.dataclass(frozen=True)
class ToyOptions:
    """What the toy decoder looks like. ``kv_heads < heads`` gives GQA-like cache shapes."""

    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    head_size: int = 8
    vocab: int = 64
    max_positions: int = 256
    cache_code: int = T.FLOAT  # T.FLOAT or T.FLOAT16
    logits_code: int = T.FLOAT  # T.FLOAT or T.FLOAT16
    ids_code: int = T.INT64  # T.INT64 or T.INT32
    mask_code: int = T.INT64
    position_code: int = T.INT64
    position_ids: bool = True
    cache_position: bool = False  # an int64 cache_position [seq] input
    use_cache_branch: bool = False  # merged-decoder style: If(use_cache_branch) drops the past
    extra_input: bool = False  # a float [1] input "extra_scale" that scales a bias on the logits
    slow_position: int | None = None  # a step whose largest position is this one runs a MatMul chain
    slow_size: int = 256
    slow_repeats: int = 8
    attention: str = "mean"  # "mean": Concat + masked mean; "gqa": com.microsoft GroupQueryAttention
    length_inputs: bool = False  # gqa: seqlens_k [batch] and total_sequence_length [] as graph inputs
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class ToyDecoder:
    """A written toy decoder: its path, its options and the names the loop binds."""

    path: str
    options: ToyOptions

    @property
    def cache_names(self) -> list[tuple[str, str]]:
        """(past, present) names, layer by layer, key before value."""
        return [
            (f"past_key_values.{i}.{kind}", f"present.{i}.{kind}")
            for i in range(self.options.layers)
            for kind in ("key", "value")
        ]

    def generate_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """The keyword arguments of ``_core.Session.generate`` that describe this decoder."""
        o = self.options
        shape = (1, o.kv_heads, 1, o.head_size)
        kwargs: dict[str, Any] = {
            "input_ids": "input_ids",
            "ids_code": o.ids_code,
            "attention_mask": "attention_mask",
            "mask_code": o.mask_code,
            "position_ids": "position_ids" if o.position_ids else None,
            "position_code": o.position_code,
            "cache_position": "cache_position" if o.cache_position else None,
            "use_cache_branch": "use_cache_branch" if o.use_cache_branch else None,
            "caches": [(past, present, o.cache_code, shape, 0, 2) for past, present in self.cache_names],
            "logits": "logits",
            "vocab": o.vocab,
            "extra_inputs": {"extra_scale": np.array([1.5], np.float32)} if o.extra_input else {},
        }
        kwargs.update(overrides)
        return kwargs


def _vi(name: str, code: int, shape: list[Any]) -> onnx.ValueInfoProto:
    return h.make_tensor_value_info(name, code, shape)


class _Builder:
    """Nodes and initializers of one graph, with fresh names."""

    def __init__(self, seed: int) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        out = self.name(op_type.lower())
        self.nodes.append(h.make_node(op_type, inputs, [out], **attrs))
        return out

    def const(self, value: npt.ArrayLike, dtype: Any = np.float32) -> str:
        name = self.name("c")
        self.inits.append(nh.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def weight(self, *shape: int, scale: float = 1.0) -> str:
        return self.const(self.rng.standard_normal(shape) * scale / np.sqrt(shape[0]))


def _to_int64(b: _Builder, name: str, code: int) -> str:
    return name if code == T.INT64 else b.op("Cast", [name], to=T.INT64)


def _embed(b: _Builder, o: ToyOptions) -> str:
    """Token + position (+ cache_position) embeddings: x [batch, seq, heads*head_size]."""
    d = o.heads * o.head_size
    x = b.op("Gather", [b.weight(o.vocab, d, scale=3.0), _to_int64(b, "input_ids", o.ids_code)])
    if o.position_ids:
        pos = _to_int64(b, "position_ids", o.position_code)
        x = b.op("Add", [x, b.op("Gather", [b.weight(o.max_positions, d, scale=3.0), pos])])
    if o.cache_position:
        x = b.op("Add", [x, b.op("Gather", [b.weight(o.max_positions, d, scale=3.0), "cache_position"])])
    return x


def _new_kv(b: _Builder, o: ToyOptions, x: str) -> str:
    """x @ W as [batch, kv_heads, seq, head_size] in the cache's type."""
    d = o.heads * o.head_size
    y = b.op("MatMul", [x, b.weight(d, o.kv_heads * o.head_size, scale=3.0)])
    y = b.op("Reshape", [y, b.const([0, 0, o.kv_heads, o.head_size], np.int64)])
    y = b.op("Transpose", [y], perm=[0, 2, 1, 3])
    return y if o.cache_code == T.FLOAT else b.op("Cast", [y], to=o.cache_code)


def _present(b: _Builder, o: ToyOptions, past: str, new: str, present: str) -> None:
    """present = Concat(past, new) on the sequence axis; merged style: If(use_cache_branch)."""
    if not o.use_cache_branch:
        b.nodes.append(h.make_node("Concat", [past, new], [present], axis=2))
        return
    shape = ["batch", o.kv_heads, None, o.head_size]
    then_g = h.make_graph(
        [h.make_node("Concat", [past, new], ["with_past"], axis=2)], "with_past", [],
        [_vi("with_past", o.cache_code, shape)],
    )  # fmt: skip
    else_g = h.make_graph(
        [h.make_node("Identity", [new], ["no_past"])], "no_past", [], [_vi("no_past", o.cache_code, shape)]
    )
    b.nodes.append(h.make_node("If", ["branch"], [present], then_branch=then_g, else_branch=else_g))


def _mean_term(b: _Builder, o: ToyOptions, key: str, value: str, mask_f: str) -> str:
    """A [batch, vocab] term from the mask-weighted mean of a layer's present key and value."""
    m = b.op("Unsqueeze", [mask_f, b.const([1, 3], np.int64)])  # [batch, 1, total, 1]
    count = b.op("Unsqueeze", [b.op("ReduceSum", [mask_f, b.const([1], np.int64)]), b.const([2], np.int64)])
    means = []
    for present in (key, value):
        p = present if o.cache_code == T.FLOAT else b.op("Cast", [present], to=T.FLOAT)
        s = b.op("ReduceSum", [b.op("Mul", [p, m]), b.const([2], np.int64)], keepdims=0)
        means.append(b.op("Reshape", [b.op("Div", [s, count]), b.const([0, -1], np.int64)]))
    c = b.op("Tanh", [b.op("Concat", means, axis=1)])
    return b.op("MatMul", [c, b.weight(2 * o.kv_heads * o.head_size, o.vocab, scale=8.0)])


def _gqa_layer(b: _Builder, o: ToyOptions, x: str, layer: int, seqlens: str, total: str) -> str:
    """A GroupQueryAttention layer (the op onnxruntime-genai's models use); returns the new x."""
    d = o.heads * o.head_size
    q = b.op("MatMul", [x, b.weight(d, d)])
    k = b.op("MatMul", [x, b.weight(d, o.kv_heads * o.head_size)])
    v = b.op("MatMul", [x, b.weight(d, o.kv_heads * o.head_size)])
    out = b.name("attn")
    past_k, past_v = f"past_key_values.{layer}.key", f"past_key_values.{layer}.value"
    b.nodes.append(
        h.make_node(
            "GroupQueryAttention", [q, k, v, past_k, past_v, seqlens, total],
            [out, f"present.{layer}.key", f"present.{layer}.value"],
            domain="com.microsoft", num_heads=o.heads, kv_num_heads=o.kv_heads,
        )
    )  # fmt: skip
    return b.op("Add", [x, b.op("MatMul", [out, b.weight(d, d, scale=2.0)])])


def _slow_term(b: _Builder, o: ToyOptions) -> str:
    """0, computed through a chain of MatMuls when the step's largest position is slow_position."""
    assert o.slow_position is not None
    pos = _to_int64(b, "position_ids", o.position_code)
    cond = b.op("Equal", [b.op("ReduceMax", [pos], keepdims=0), b.const(o.slow_position, np.int64)])
    w = b.weight(o.slow_size, o.slow_size)
    # Depends on an input, so ONNX Runtime cannot fold the chain into a constant.
    cond_f = b.op("Cast", [cond], to=T.FLOAT)
    chain = [
        h.make_node("Mul", [cond_f, b.const(0.0)], ["slow_offset"]),
        h.make_node("Add", [w, "slow_offset"], ["slow_start"]),
    ]
    m = "slow_start"
    for r in range(o.slow_repeats):
        prod = f"slow_prod_{r}"
        chain.append(h.make_node("MatMul", [m, w], [prod]))
        m = f"slow_tanh_{r}"
        chain.append(h.make_node("Tanh", [prod], [m]))
    chain += [
        h.make_node("ReduceSum", [m], ["slow_sum"], keepdims=0),
        h.make_node("Mul", ["slow_sum", b.const(0.0)], ["slow_zero"]),
    ]
    then_g = h.make_graph(chain, "slow", [], [_vi("slow_zero", T.FLOAT, [])])
    zero = b.const(0.0)
    else_g = h.make_graph(
        [h.make_node("Identity", [zero], ["fast_zero"])], "fast", [], [_vi("fast_zero", T.FLOAT, [])]
    )
    out = b.name("slow")
    b.nodes.append(h.make_node("If", [cond], [out], then_branch=then_g, else_branch=else_g))
    return out


def _inputs(o: ToyOptions) -> list[onnx.ValueInfoProto]:
    inputs = [
        _vi("input_ids", o.ids_code, ["batch", "sequence_length"]),
        _vi("attention_mask", o.mask_code, ["batch", "total_sequence_length"]),
    ]
    if o.position_ids:
        inputs.append(_vi("position_ids", o.position_code, ["batch", "sequence_length"]))
    if o.cache_position:
        inputs.append(_vi("cache_position", T.INT64, ["sequence_length"]))
    if o.use_cache_branch:
        inputs.append(_vi("use_cache_branch", T.BOOL, [1]))
    if o.extra_input:
        inputs.append(_vi("extra_scale", T.FLOAT, [1]))
    if o.length_inputs:
        inputs.append(_vi("seqlens_k", T.INT32, ["batch"]))
        inputs.append(_vi("total_sequence_length", T.INT32, []))
    for i in range(o.layers):
        for kind in ("key", "value"):
            shape = ["batch", o.kv_heads, "past_sequence_length", o.head_size]
            inputs.append(_vi(f"past_key_values.{i}.{kind}", o.cache_code, shape))
    return inputs


def _outputs(o: ToyOptions) -> list[onnx.ValueInfoProto]:
    outputs = [_vi("logits", o.logits_code, ["batch", "sequence_length", o.vocab])]
    for i in range(o.layers):
        for kind in ("key", "value"):
            shape = ["batch", o.kv_heads, "present_sequence_length", o.head_size]
            outputs.append(_vi(f"present.{i}.{kind}", o.cache_code, shape))
    return outputs


def _body(b: _Builder, o: ToyOptions) -> str:
    """Every node up to the float32 logits; returns their name."""
    x = _embed(b, o)
    mask_f = b.op("Cast", ["attention_mask"], to=T.FLOAT)
    if o.use_cache_branch:
        b.nodes.append(h.make_node("Squeeze", ["use_cache_branch", b.const([0], np.int64)], ["branch"]))
    terms: list[str] = []
    if o.attention == "gqa" and o.length_inputs:
        for i in range(o.layers):
            x = _gqa_layer(b, o, x, i, "seqlens_k", "total_sequence_length")
    elif o.attention == "gqa":
        reduced = b.op("ReduceSum", ["attention_mask", b.const([1], np.int64)], keepdims=0)
        seqlens = b.op("Cast", [b.op("Sub", [reduced, b.const(1, _NP[o.mask_code])])], to=T.INT32)
        total = b.op(
            "Cast", [b.op("Gather", [b.op("Shape", ["attention_mask"]), b.const(1, np.int64)])], to=T.INT32
        )
        for i in range(o.layers):
            x = _gqa_layer(b, o, x, i, seqlens, total)
    else:
        for i in range(o.layers):
            for kind in ("key", "value"):
                _present(b, o, f"past_key_values.{i}.{kind}", _new_kv(b, o, x), f"present.{i}.{kind}")
            terms.append(_mean_term(b, o, f"present.{i}.key", f"present.{i}.value", mask_f))
    logits = b.op("MatMul", [x, b.weight(o.heads * o.head_size, o.vocab, scale=4.0)])
    for term in terms:
        logits = b.op("Add", [logits, b.op("Unsqueeze", [term, b.const([1], np.int64)])])
    if o.use_cache_branch:
        bias = b.op(
            "Where", ["use_cache_branch", b.weight(1, o.vocab, scale=6.0), b.weight(1, o.vocab, scale=6.0)]
        )
        logits = b.op("Add", [logits, bias])
    if o.extra_input:
        logits = b.op("Add", [logits, b.op("Mul", ["extra_scale", b.weight(1, o.vocab, scale=3.0)])])
    if o.slow_position is not None:
        logits = b.op("Add", [logits, _slow_term(b, o)])
    return logits


def build_toy_decoder(path: Path | str, options: ToyOptions | None = None) -> ToyDecoder:
    """Write the toy decoder to ``path`` and describe it."""
    o = options or ToyOptions()
    if o.attention == "gqa" and (o.cache_code != T.FLOAT or o.use_cache_branch):
        raise ValueError("the GroupQueryAttention toy is float32 and has no use_cache_branch")
    b = _Builder(o.seed)
    logits = _body(b, o)
    if o.logits_code == T.FLOAT:
        b.nodes.append(h.make_node("Identity", [logits], ["logits"]))
    else:
        b.nodes.append(h.make_node("Cast", [logits], ["logits"], to=o.logits_code))
    graph = h.make_graph(b.nodes, "toy_decoder", _inputs(o), _outputs(o), initializer=b.inits)
    opsets = [h.make_opsetid("", 17)]
    if o.attention == "gqa":
        opsets.append(h.make_opsetid("com.microsoft", 1))
    model = h.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    if o.attention != "gqa":
        onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return ToyDecoder(str(path), o)


def reference_tokens(
    toy: ToyDecoder,
    prompt_ids: npt.NDArray[np.int64],
    gen_tokens: int,
    *,
    prefill_past: int = 0,
    **wrong: bool,
) -> npt.NDArray[np.int64]:
    """Greedy tokens [batch, gen_tokens] from a plain onnxruntime loop (InferenceSession.run,
    a past that grows by concatenation). ``wrong`` breaks one thing on purpose, to show the
    tokens depend on it: ``positions_from_zero``, ``zero_past``."""
    import onnxruntime as ort

    o = toy.options
    session = ort.InferenceSession(toy.path, providers=["CPUExecutionProvider"])
    batch = prompt_ids.shape[0]
    past = {
        name: np.zeros((batch, o.kv_heads, prefill_past, o.head_size), _NP[o.cache_code])
        for name, _ in toy.cache_names
    }
    ids, length, tokens = prompt_ids, 0, []
    for step in range(gen_tokens):
        n = ids.shape[1]
        start = 0 if wrong.get("positions_from_zero") else length
        positions = np.tile(np.arange(start, start + n), (batch, 1))
        feeds: dict[str, Any] = {
            "input_ids": ids.astype(_NP[o.ids_code]),
            "attention_mask": np.ones((batch, length + n), _NP[o.mask_code]),
            **{k: np.zeros_like(v) if wrong.get("zero_past") else v for k, v in past.items()},
        }
        if o.position_ids:
            feeds["position_ids"] = positions.astype(_NP[o.position_code])
        if o.cache_position:
            feeds["cache_position"] = np.arange(start, start + n, dtype=np.int64)
        if o.use_cache_branch:
            feeds["use_cache_branch"] = np.array([step > 0])
        if o.extra_input:
            feeds["extra_scale"] = np.array([1.5], np.float32)
        if o.length_inputs:
            feeds["seqlens_k"] = np.full(batch, length + n - 1, np.int32)
            feeds["total_sequence_length"] = np.array(length + n, np.int32)
        out = dict(zip([v.name for v in session.get_outputs()], session.run(None, feeds), strict=True))
        token = out["logits"][:, -1, :].astype(np.float32).argmax(axis=-1)
        tokens.append(token)
        past = {p: out[q] for p, q in toy.cache_names}
        ids, length = token[:, None].astype(np.int64), length + n
    return np.stack(tokens, axis=1).astype(np.int64)
