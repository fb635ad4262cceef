"""Recognising a decoder from its signature (inferspeed.facts.decoder): each exporter's naming
convention, each layout, each role of the other inputs, and each error; then the real exported
decoders of tests/data/decoders/ when they are there."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from inferspeed.errors import ModelError
from inferspeed.facts.decoder import CacheTensor, DecoderSpec, LengthInput, recognise
from inferspeed.facts.signature import ELEMENT_TYPES, ValueInfo

F32, F16, I64, I32, BOOL = 1, 10, 7, 6, 9
#: ONNX Runtime's names of element types where they differ from inferspeed's.
ORT_NAMES = {"float32": "float", "float64": "double"}


def vi(name: str, code: int, *dims: int | str | None) -> ValueInfo:
    """A ValueInfo as the session reports it: ints fixed, strings named open dims, None unnamed."""
    shape = tuple(d if isinstance(d, int) else None for d in dims)
    symbols = tuple(d if isinstance(d, str) else None for d in dims)
    return ValueInfo(name, "tensor", ELEMENT_TYPES[code].name, shape, symbols, code)


def optimum_signature(
    layers: int = 2, heads: int | str = 4, head_size: int | str = 8, code: int = F32
) -> tuple[list[ValueInfo], list[ValueInfo]]:
    """The signature of optimum's text-generation-with-past export (GPT-2, Llama)."""
    total = "past_sequence_length + sequence_length"
    inputs = [
        vi("input_ids", I64, "batch_size", "sequence_length"),
        vi("attention_mask", I64, "batch_size", total),
        vi("position_ids", I64, "batch_size", "sequence_length"),
    ]
    outputs = [vi("logits", code, "batch_size", "sequence_length", 50)]
    for n in range(layers):
        for kv in ("key", "value"):
            inputs.append(
                vi(f"past_key_values.{n}.{kv}", code, "batch_size", heads, "past_sequence_length", head_size)
            )
            outputs.append(vi(f"present.{n}.{kv}", code, "batch_size", heads, total, head_size))
    return inputs, outputs


def with_dim(v: ValueInfo, axis: int, size: int | str | None) -> ValueInfo:
    """``v`` with one dim changed."""
    assert v.shape is not None and v.symbols is not None
    dims: list[int | str | None] = [
        d if d is not None else s for d, s in zip(v.shape, v.symbols, strict=True)
    ]
    dims[axis] = size
    return vi(v.name, v.element_code, *dims)


def error_of(inputs: Sequence[ValueInfo], outputs: Sequence[ValueInfo], path: Any = None, **kw: Any) -> str:
    with pytest.raises(ModelError) as info:
        recognise(inputs, outputs, path, **kw)
    text = str(info.value)
    assert "\n" not in text, "a recognition error is one line"
    return text


def spec_of(
    inputs: Sequence[ValueInfo], outputs: Sequence[ValueInfo], path: Any = None, **kw: Any
) -> DecoderSpec:
    spec = recognise(inputs, outputs, path, **kw)
    assert spec is not None
    return spec


# --- no cache ------------------------------------------------------------------------------


def test_a_model_without_a_cache_is_not_a_decoder() -> None:
    bert = [vi("input_ids", I64, "batch", "seq"), vi("attention_mask", I64, "batch", "seq")]
    assert recognise(bert, [vi("last_hidden_state", F32, "batch", "seq", 16)], None) is None
    image = [vi("pixel_values", F32, "batch", 3, 224, 224)]
    assert recognise(image, [vi("logits", F32, "batch", 1000)], None) is None
    # optimum's decoder without past: presents out, no past in: one call, as today
    _, outputs = optimum_signature()
    assert recognise(bert[:2], outputs, None) is None
    # a recurrent state (float, rank 3, no cache word) is not a KV cache
    rnn = [vi("x", F32, "batch", "seq", 8), vi("h0", F32, 1, "batch", 16)]
    assert recognise(rnn, [vi("y", F32, "batch", "seq", 16), vi("hn", F32, 1, "batch", 16)], None) is None


# --- naming conventions --------------------------------------------------------------------


def test_optimum_names_pair_past_key_values_with_present() -> None:
    inputs, outputs = optimum_signature()
    spec = spec_of(inputs, outputs, None)
    assert spec.source == "optimum"
    assert spec.input_ids == "input_ids" and spec.ids_code == I64
    assert (spec.attention_mask, spec.mask_code) == ("attention_mask", I64)
    assert (spec.position_ids, spec.position_code) == ("position_ids", I64)
    assert spec.cache_position is None and spec.use_cache_branch is None
    assert spec.logits == "logits" and spec.vocab == 50
    assert spec.prefill_past == 0 and not spec.share_buffer and spec.max_length is None
    assert spec.caches[0] == CacheTensor("past_key_values.0.key", "present.0.key", F32, (1, 4, 1, 8), 0, 2)
    assert [(c.past, c.present) for c in spec.caches] == [
        (f"past_key_values.{n}.{kv}", f"present.{n}.{kv}") for n in range(2) for kv in ("key", "value")
    ]
    assert not spec.extra_inputs and not spec.lengths
    assert spec.fixed_batch is None and spec.step_tokens is None
    notes = " | ".join(spec.notes)
    assert "4 tensors in 2 layers" in notes and "from the dim names" in notes
    assert "nothing masked" in notes and "counts up from the past length" in notes


def test_grouped_query_attention_caches_keep_their_own_head_count() -> None:
    inputs, outputs = optimum_signature(heads=2, head_size=16, code=F16)
    spec = spec_of(inputs, outputs, None)
    assert {c.shape for c in spec.caches} == {(1, 2, 1, 16)}
    assert {c.element_code for c in spec.caches} == {F16}


@pytest.mark.parametrize("sep", [".", "_"])
def test_legacy_past_n_caches_stack_key_and_value(sep: str) -> None:
    inputs = [
        vi("input_ids", I64, "batch_size", "seq_len"),
        vi("attention_mask", F32, "batch_size", "total_seq_len"),
    ]
    outputs = [vi("logits", F32, "batch_size", "seq_len", 50)]
    for n in range(3):
        inputs.append(vi(f"past{sep}{n}", F32, 2, "batch_size", 4, "past_seq_len", 8))
        outputs.append(vi(f"present{sep}{n}", F32, 2, "batch_size", 4, "total_seq_len", 8))
    spec = spec_of(inputs, outputs, None)
    assert spec.source == "legacy past.N"
    assert spec.caches[2] == CacheTensor(f"past{sep}2", f"present{sep}2", F32, (2, 1, 4, 1, 8), 1, 3)
    assert spec.mask_code == F32 and spec.position_ids is None
    # the same layout when the dims have no names: the legacy GPT-2 layout by its stacked axis
    bare = [vi(v.name, v.element_code, *v.shape) if v.name.startswith("past") else v for v in inputs]
    bare_out = [vi(v.name, v.element_code, *v.shape) if v.name.startswith("present") else v for v in outputs]
    assert spec_of(bare, bare_out, None).caches == spec.caches


@pytest.mark.parametrize(
    ("past", "present"),
    [
        ("past_key.{n}", "present_key.{n}"),
        ("key_cache.{n}", "key_cache_out.{n}"),
        ("past_key_{n}", "present_key_{n}"),
        ("cache_key_in_{n}", "cache_key_out_{n}"),
        ("kv_past.{n}", "kv_new.{n}"),
        ("past_key_{n}_in", "past_key_{n}_out"),  # the past word kept, a present word added
    ],
)
def test_other_names_pair_by_swapping_past_for_present(past: str, present: str) -> None:
    inputs = [vi("input_ids", I64, "batch", "seq")]
    outputs = [vi("logits", F32, "batch", "seq", 50)]
    for n in range(2):
        inputs.append(vi(past.format(n=n), F32, "batch", 4, "past_seq", 8))
        outputs.append(vi(present.format(n=n), F32, "batch", 4, "total_seq", 8))
    spec = spec_of(inputs, outputs, None)
    assert spec.source == "past -> present names"
    assert [(c.past, c.present) for c in spec.caches] == [
        (past.format(n=n), present.format(n=n)) for n in range(2)
    ]
    assert spec.attention_mask is None and "no attention_mask" in " ".join(spec.notes)


def test_an_unpaired_cache_input_is_an_error_naming_it() -> None:
    inputs, outputs = optimum_signature()
    outputs = [o for o in outputs if o.name != "present.1.value"]
    text = error_of(inputs, outputs)
    assert "'past_key_values.1.value'" in text and "'present.1.value'" in text
    odd = [vi("input_ids", I64, "b", "s"), vi("key_cache.0", F32, "b", 4, "past", 8)]
    assert "'key_cache.0' [b, 4, past, 8] has no matching output" in error_of(
        odd, [vi("logits", F32, "b", "s", 5), vi("whatever", F32, "b", 4, "total", 8)]
    )


def test_an_unpaired_present_output_is_an_error() -> None:
    inputs, outputs = optimum_signature()
    outputs.append(vi("present.7.key", F32, "batch_size", 4, "total", 8))
    assert "output 'present.7.key'" in error_of(inputs, outputs)


def test_a_cache_that_could_pair_with_two_outputs_is_an_error() -> None:
    inputs = [vi("input_ids", I64, "b", "s"), vi("k_cache_0", F32, "b", 4, "past", 8)]
    outputs = [
        vi("logits", F32, "b", "s", 5),
        vi("k_cache_out_0", F32, "b", 4, "total", 8),
        vi("k_cache_new_0", F32, "b", 4, "total", 8),
    ]
    assert "could pair with any of" in error_of(inputs, outputs)


def test_a_cache_whose_past_and_present_types_differ_is_an_error() -> None:
    inputs, outputs = optimum_signature()
    outputs[1] = vi("present.0.key", F16, "batch_size", 4, "total", 8)
    assert "is float32 but its output 'present.0.key' is float16" in error_of(inputs, outputs)


# --- layout --------------------------------------------------------------------------------


def test_the_sequence_axis_comes_from_the_dim_names() -> None:
    inputs = [
        vi("input_ids", I64, "batch", "seq"),
        vi("past_key_values.0.key", F32, "batch", "past_len", 4, 8),
    ]
    outputs = [vi("logits", F32, "batch", "seq", 5), vi("present.0.key", F32, "batch", "total_len", 4, 8)]
    cache = spec_of(inputs, outputs).caches[0]
    assert (cache.batch_axis, cache.seq_axis, cache.shape) == (0, 1, (1, 1, 4, 8))
    # a fused cache [batch, seq, 2 x head_size] (gpt_bigcode's multi-query attention)
    inputs[1] = vi("past_key_values.0.key_value", F32, "batch_size", "past_sequence_length", 16)
    outputs[1] = vi("present.0.key_value", F32, "batch_size", "past_sequence_length + 1", 16)
    cache = spec_of(inputs, outputs).caches[0]
    assert (cache.batch_axis, cache.seq_axis, cache.shape) == (0, 1, (1, 1, 16))
    # old bloom exports merge the batch with the heads: not a batch axis that can be scaled
    inputs[1] = vi("past_key_values.0.key", F32, "batch_size x num_heads", 8, "past_sequence_length")
    outputs[1] = vi("present.0.key", F32, "batch_size x num_heads", 8, "past_sequence_length + 1")
    assert "is the batch times something else" in error_of(inputs, outputs)


def test_unnamed_dims_take_the_axis_where_past_and_present_differ_or_the_usual_layout() -> None:
    inputs = [vi("input_ids", I64, None, None), vi("past.0", F32, None, 4, "p", 8)]
    outputs = [vi("logits", F32, None, None, 5), vi("present.0", F32, None, 4, "p_plus_one", 8)]
    cache = spec_of(inputs, outputs).caches[0]
    assert (cache.batch_axis, cache.seq_axis) == (0, 2)
    inputs[1] = vi("past.0", F32, None, 4, None, 8)
    outputs[1] = vi("present.0", F32, None, 4, None, 8)
    spec = spec_of(inputs, outputs)
    assert (spec.caches[0].batch_axis, spec.caches[0].seq_axis) == (0, 2)
    assert "the usual [batch, heads, seq, head_size]" in " ".join(spec.notes)
    inputs[1] = vi("past.0", F32, None, 4, None, 8, None, 2)
    outputs[1] = vi("present.0", F32, None, 4, None, 8, None, 2)
    assert "cannot tell the batch and sequence axes" in error_of(inputs, outputs)


def test_a_static_cache_is_an_error() -> None:
    inputs, outputs = optimum_signature()
    inputs[3] = vi("past_key_values.0.key", F32, "batch_size", 4, 128, 8)
    assert "fixes its sequence length at 128 (a static cache)" in error_of(inputs, outputs)


def test_a_state_that_does_not_grow_is_an_error_saying_so() -> None:
    """A hybrid model's convolution state (LFM2's past_conv.N [batch, hidden, kernel - 1]) pairs
    like a cache but keeps its size: the error says it may be such a state, not only a static cache."""
    inputs, outputs = optimum_signature()
    inputs.insert(3, vi("past_conv.0", F32, "batch_size", 64, 3))
    outputs.insert(1, vi("present_conv.0", F32, "batch_size", 64, 3))
    text = error_of(inputs, outputs)
    assert "'past_conv.0' [batch_size, 64, 3] fixes its sequence length at 64" in text
    assert "a hybrid model's convolution or SSM state" in text and "--single-call" in text


def test_the_decoder_of_an_encoder_decoder_is_an_error() -> None:
    """optimum's Whisper (or T5, BART) decoder with past: cross-attention caches that are never
    output again, and the encoder's hidden states as an input."""
    total = "past_decoder_sequence_length + 1"
    inputs = [vi("input_ids", I64, "batch_size", "decoder_sequence_length")]
    outputs = [vi("logits", F32, "batch_size", "decoder_sequence_length", 50)]
    for part, seq in (("decoder", "past_decoder_sequence_length"), ("encoder", "encoder_seq_out")):
        inputs.append(vi(f"past_key_values.0.{part}.key", F32, "batch_size", 4, seq, 16))
    outputs.append(vi("present.0.decoder.key", F32, "batch_size", 4, total, 16))
    text = error_of(inputs, outputs)
    assert "the decoder of an encoder-decoder model" in text
    assert "cross-attention cache 'past_key_values.0.encoder.key'" in text
    hidden = vi("encoder_hidden_states", F32, "batch_size", "encoder_sequence_length", 64)
    text = error_of([*inputs[:2], hidden], outputs)
    assert "its input 'encoder_hidden_states' [batch_size, encoder_sequence_length, 64]" in text
    # without a cache it is measured one call at a time, as any model
    assert recognise([inputs[0], hidden], outputs[:1], None) is None


def test_a_fixed_batch_is_reported() -> None:
    inputs, outputs = optimum_signature()
    pinned = [with_dim(v, 0, 1) for v in inputs]
    assert spec_of(pinned, outputs).fixed_batch == 1
    pinned[0] = with_dim(inputs[0], 0, 2)
    assert "fixes the batch at" in error_of(pinned, outputs)


def test_a_fixed_step_length_is_reported() -> None:
    inputs, outputs = optimum_signature()
    inputs[0] = vi("input_ids", I64, "batch_size", 1)
    spec = spec_of(inputs, outputs)
    assert spec.step_tokens == 1 and "fixes the tokens of each call at 1" in " ".join(spec.notes)


# --- open cache dims -----------------------------------------------------------------------


def test_an_open_head_count_needs_a_flag_and_the_error_names_it() -> None:
    inputs, outputs = optimum_signature(heads="num_heads")
    text = error_of(inputs, outputs)
    assert "head count of the KV cache is open" in text and "--dim num_heads=N" in text
    assert spec_of(inputs, outputs, dims={"num_heads": 6}).caches[0].shape == (1, 6, 1, 8)
    by_axis = {f"past_key_values.{n}.{kv}:1": 3 for n in range(2) for kv in ("key", "value")}
    assert spec_of(inputs, outputs, dims=by_axis).caches[3].shape == (1, 3, 1, 8)
    unnamed, unnamed_out = optimum_signature(heads="unk__7", head_size="unk__8")
    text = error_of(unnamed, unnamed_out)
    assert "--dim past_key_values.0.key:" in text


def test_an_open_dim_fixed_in_the_present_takes_that_size() -> None:
    inputs, outputs = optimum_signature(heads="num_heads")
    outputs = [
        vi(o.name, o.element_code, "batch_size", 4, "total", 8) if o.name.startswith("present") else o
        for o in outputs
    ]
    assert spec_of(inputs, outputs).caches[0].shape == (1, 4, 1, 8)


# --- genai_config.json ---------------------------------------------------------------------


def genai_config(folder: Path, **changes: Any) -> Path:
    config: dict[str, Any] = {
        "model": {
            "context_length": 512,
            "decoder": {
                "filename": "model.onnx",
                "head_size": 16,
                "hidden_size": 64,
                "inputs": {
                    "input_ids": "input_ids",
                    "attention_mask": "attention_mask",
                    "past_key_names": "past_key_values.%d.key",
                    "past_value_names": "past_key_values.%d.value",
                },
                "outputs": {
                    "logits": "logits",
                    "present_key_names": "present.%d.key",
                    "present_value_names": "present.%d.value",
                },
                "num_attention_heads": 4,
                "num_hidden_layers": 2,
                "num_key_value_heads": 2,
            },
            "type": "llama",
            "vocab_size": 50,
        },
        "search": {"max_length": 256, "past_present_share_buffer": False},
    }
    for key, value in changes.items():  # search__NAME: the search section, else the decoder's
        if key.startswith("search__"):
            config["search"][key.removeprefix("search__")] = value
        else:
            config["model"]["decoder"][key] = value
    (folder / "genai_config.json").write_text(json.dumps(config))
    return folder / "model.onnx"


def genai_signature(heads: int | str = "num_kv_heads") -> tuple[list[ValueInfo], list[ValueInfo]]:
    inputs = [
        vi("input_ids", I64, "batch_size", "sequence_length"),
        vi("attention_mask", I64, "batch_size", "total_sequence_length"),
    ]
    outputs = [vi("logits", F32, "batch_size", "sequence_length", "vocab_size")]
    for n in range(2):
        for kv in ("key", "value"):
            inputs.append(
                vi(f"past_key_values.{n}.{kv}", F32, "batch_size", heads, "past_sequence_length", "head_size")
            )
            outputs.append(
                vi(f"present.{n}.{kv}", F32, "batch_size", heads, "total_sequence_length", "head_size")
            )
    return inputs, outputs


def test_genai_config_names_the_caches_and_sizes_them(tmp_path: Path) -> None:
    path = genai_config(tmp_path)
    spec = spec_of(*genai_signature(), path)
    assert spec.source == "onnxruntime-genai"
    assert {c.shape for c in spec.caches} == {(1, 2, 1, 16)}
    assert spec.vocab == 50 and spec.max_length == 256 and not spec.share_buffer
    notes = " | ".join(spec.notes)
    assert "num_key_value_heads in genai_config.json" in notes and "head_size in genai_config.json" in notes
    assert "vocab_size in genai_config.json" in notes
    # past_present_share_buffer: one buffer of max_length (context_length when max_length is 0)
    path = genai_config(tmp_path, search__past_present_share_buffer=True, search__max_length=0)
    spec = spec_of(*genai_signature(), path)
    assert spec.share_buffer and spec.max_length == 512
    assert "share one buffer per cache" in " ".join(spec.notes)
    assert "at most 512 positions" in " ".join(spec.notes)


def test_genai_config_templates_of_any_name(tmp_path: Path) -> None:
    path = genai_config(
        tmp_path,
        inputs={"input_ids": "ids", "past_names": "kv_in_%d", "attention_mask": "mask"},
        outputs={"logits": "scores", "present_names": "kv_out_%d"},
    )
    inputs = [vi("ids", I32, "batch_size", "sequence_length"), vi("mask", I32, "batch_size", "total")]
    outputs = [vi("scores", F32, "batch_size", "sequence_length", 50)]
    for n in range(2):
        inputs.append(vi(f"kv_in_{n}", F32, 2, "batch_size", "kv_heads", "past", 16))
        outputs.append(vi(f"kv_out_{n}", F32, 2, "batch_size", "kv_heads", "total", 16))
    spec = spec_of(inputs, outputs, path)
    assert spec.input_ids == "ids" and spec.ids_code == I32 and spec.attention_mask == "mask"
    assert spec.logits == "scores"
    assert spec.caches[1] == CacheTensor("kv_in_1", "kv_out_1", F32, (2, 1, 2, 1, 16), 1, 3)


def test_genai_config_naming_a_missing_output_is_an_error(tmp_path: Path) -> None:
    path = genai_config(tmp_path, outputs={"present_key_names": "present_key.%d"})
    text = error_of(*genai_signature(), path)
    assert "'past_key_values.0.key' has no output 'present_key.0'" in text


def test_genai_config_of_another_file_is_not_used(tmp_path: Path) -> None:
    path = genai_config(tmp_path, filename="other.onnx")
    text = error_of(*genai_signature(), path)
    assert "--dim num_kv_heads=N" in text
    spec = spec_of(*genai_signature(), path, dims={"num_kv_heads": 2, "head_size": 16})
    assert spec.source == "optimum" and "describes 'other.onnx'" in " ".join(spec.notes)
    (tmp_path / "genai_config.json").write_text("{not json")
    spec = spec_of(*genai_signature(), path, dims={"num_kv_heads": 2, "head_size": 16})
    assert "cannot be read" in " ".join(spec.notes)


# --- the other inputs ----------------------------------------------------------------------


def test_a_merged_decoder_takes_use_cache_branch_and_a_dummy_past() -> None:
    inputs, outputs = optimum_signature()
    inputs.append(vi("use_cache_branch", BOOL, 1))
    spec = spec_of(inputs, outputs)
    assert spec.use_cache_branch == "use_cache_branch" and spec.prefill_past == 0
    assert "false at prefill" in " ".join(spec.notes)
    inputs[-1] = vi("use_cache_branch", BOOL, 2)
    assert "a merged decoder's is bool [1]" in error_of(inputs, outputs)


def test_cache_position_is_recognised() -> None:
    inputs, outputs = optimum_signature()
    inputs.append(vi("cache_position", I64, "sequence_length"))
    spec = spec_of(inputs, outputs)
    assert spec.cache_position == "cache_position" and spec.cache_position_code == I64


def test_group_query_attention_lengths_as_graph_inputs() -> None:
    inputs, outputs = genai_signature(heads=2)
    inputs = [
        vi(v.name, F32, "batch_size", 2, "past_sequence_length", 16) if "past" in v.name else v
        for v in inputs
    ]
    inputs += [vi("seqlens_k", I32, "batch_size"), vi("total_sequence_length", I32)]
    outputs = [
        vi(o.name, F32, "batch_size", 2, "total_sequence_length", 16) if "present" in o.name else o
        for o in outputs
    ]
    spec = spec_of(inputs, outputs)
    assert spec.lengths == (
        LengthInput("seqlens_k", I32, (1,), 0, -1),
        LengthInput("total_sequence_length", I32, (), None, 0),
    )
    assert spec.vocab is None and "allocated by ONNX Runtime" in " ".join(spec.notes)
    inputs[-1] = vi("total_sequence_length", F32, 1)
    assert "GroupQueryAttention's is int32" in error_of(inputs, outputs)


def test_other_inputs_get_a_value_or_an_error_naming_the_flag() -> None:
    inputs, outputs = optimum_signature()
    spec = spec_of([*inputs, vi("num_logits_to_keep", I64)], outputs)
    assert spec.extra_inputs["num_logits_to_keep"].tolist() == 1
    assert spec.extra_inputs["num_logits_to_keep"].dtype == np.int64
    text = error_of([*inputs, vi("temperature", F32, 1)], outputs)
    assert "'temperature' float32 [1] has no known role" in text and "--input temperature=VALUE" in text
    spec = spec_of([*inputs, vi("temperature", F32, 1)], outputs, values={"temperature": "0.5"})
    assert spec.extra_inputs["temperature"].tolist() == [0.5]
    spec = spec_of([*inputs, vi("flag", BOOL, "n")], outputs, values={"flag": "true"}, dims={"n": 3})
    assert spec.extra_inputs["flag"].tolist() == [True, True, True]
    assert "cannot use 'x'" in error_of([*inputs, vi("flag", BOOL)], outputs, values={"flag": "x"})
    text = error_of([*inputs, vi("token_type_ids", I64, "batch_size", "sequence_length")], outputs)
    assert "depends on the batch or the sequence" in text


def test_the_roles_check_their_inputs() -> None:
    inputs, outputs = optimum_signature()
    assert "no input 'input_ids'" in error_of(inputs[1:], outputs)
    embeds = [vi("inputs_embeds", F32, "batch_size", "sequence_length", 16), *inputs[1:]]
    assert "'inputs_embeds': embeddings, not token ids" in error_of(embeds, outputs)
    bad = [vi("input_ids", F32, "batch_size", "sequence_length"), *inputs[1:]]
    assert "a decoder's input_ids is int of rank 2" in error_of(bad, outputs)
    fixed_mask = [inputs[0], vi("attention_mask", I64, "batch_size", 64), *inputs[2:]]
    assert "fixes the attended length at 64" in error_of(fixed_mask, outputs)


# --- logits --------------------------------------------------------------------------------


def test_logits_by_shape_when_not_named() -> None:
    inputs, outputs = optimum_signature()
    outputs[0] = vi("output_0", F32, "batch_size", "sequence_length", 50)
    spec = spec_of(inputs, outputs)
    assert spec.logits == "output_0" and spec.vocab == 50
    two = [outputs[0], vi("hidden", F32, "batch_size", "sequence_length", None), *outputs[1:]]
    assert spec_of(inputs, two).logits == "output_0"  # the one with a fixed last dim
    three = [*two, vi("other", F32, "batch_size", "sequence_length", 7)]
    assert "cannot tell which output holds the logits" in error_of(inputs, three)
    assert "none is named 'logits'" in error_of(inputs, outputs[1:])


@pytest.mark.parametrize("name", ["hidden_states", "last_hidden_state", "inputs_embeds_out"])
def test_hidden_states_are_not_logits(name: str, tmp_path: Path) -> None:
    """A model exported without its LM head (genai's builder with exclude_lm_head, optimum's
    feature-extraction-with-past) outputs hidden states: an error, not their argmax as tokens."""
    inputs, outputs = optimum_signature()
    hidden = vi(name, F32, "batch_size", "sequence_length", 64)
    text = error_of(inputs, [hidden, *outputs[1:]])
    assert f"no output holds the logits: {name!r} [batch_size, sequence_length, 64] holds hidden" in text
    assert "--single-call" in text
    # beside logits that are not named so, the hidden states are left out
    unnamed = vi("output_0", F32, "batch_size", "sequence_length", 50)
    assert spec_of(inputs, [unnamed, hidden, *outputs[1:]]).logits == "output_0"
    # genai_config.json's vocabulary tells an unnamed hidden state from the logits by its width
    path = genai_config(tmp_path)
    inputs, outputs = genai_signature(heads=2)
    outputs[0] = vi("output_0", F32, "batch_size", "sequence_length", 64)
    text = error_of(inputs, outputs, path)
    assert "'output_0' [batch_size, sequence_length, 64] holds hidden states" in text
    outputs[0] = vi("output_0", F32, "batch_size", "sequence_length", 50)
    assert spec_of(inputs, outputs, path).logits == "output_0"


# --- the graph -----------------------------------------------------------------------------


def _concat_decoder(path: Path) -> None:
    """A one-layer decoder whose signature leaves the heads and head size open: the new keys
    are Reshaped to [0, 0, 2, 4] and Transposed to [batch, heads, seq, head_size] before the
    Concat with the past; the logits come from a MatMul with a [8, 11] weight."""
    x = h.make_tensor_value_info("input_ids", T.INT64, ["batch", "seq"])
    past = h.make_tensor_value_info("past_key_values.0.key", T.FLOAT, ["batch", "heads", "past_seq", "hsize"])
    logits = h.make_tensor_value_info("logits", T.FLOAT, ["batch", "seq", "vocab"])
    present = h.make_tensor_value_info("present.0.key", T.FLOAT, ["batch", "heads", "total_seq", "hsize"])
    inits = [
        nh.from_array(np.zeros((11, 8), np.float32), "embed"),
        nh.from_array(np.array([0, 0, 2, 4], np.int64), "kshape"),
        nh.from_array(np.zeros((8, 11), np.float32), "lm_head"),
    ]
    nodes = [
        h.make_node("Gather", ["embed", "input_ids"], ["hidden"]),
        h.make_node("Reshape", ["hidden", "kshape"], ["k4"]),
        h.make_node("Transpose", ["k4"], ["kt"], perm=[0, 2, 1, 3]),
        h.make_node("Mul", ["kt", "kt"], ["kr"]),  # stands for the rotary embedding
        h.make_node("Concat", ["past_key_values.0.key", "kr"], ["present.0.key"], axis=2),
        h.make_node("MatMul", ["hidden", "lm_head"], ["logits"]),
    ]
    graph = h.make_graph(nodes, "g", [x, past], [logits, present], inits)
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), path)


def _signature(path: Path) -> tuple[list[ValueInfo], list[ValueInfo]]:
    """The signature ONNX Runtime reports for a model file, as ValueInfos."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    codes = {f"tensor({ORT_NAMES.get(et.name, et.name)})": code for code, et in ELEMENT_TYPES.items()}

    def convert(args: Any) -> ValueInfo:
        dims = [
            d if isinstance(d, int) and d >= 0 else (d if isinstance(d, str) and d else None)
            for d in args.shape
        ]
        return vi(args.name, codes[args.type], *dims)

    return [convert(a) for a in session.get_inputs()], [convert(a) for a in session.get_outputs()]


def _declared(path: Path) -> tuple[list[ValueInfo], list[ValueInfo]]:
    """The signature as the file declares it (a session fills in output dims it infers)."""
    graph = onnx.load(path).graph

    def convert(v: Any) -> ValueInfo:
        dims = [
            d.dim_param or (d.dim_value if d.HasField("dim_value") else None)
            for d in v.type.tensor_type.shape.dim
        ]
        return vi(v.name, v.type.tensor_type.elem_type, *dims)

    return [convert(v) for v in graph.input], [convert(v) for v in graph.output]


def test_the_graph_gives_open_head_sizes_and_the_vocabulary(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    _concat_decoder(path)
    inputs, outputs = _declared(path)
    assert outputs[1].shape_text == "[batch, heads, total_seq, hsize]"
    spec = spec_of(inputs, outputs, path)
    assert spec.caches[0].shape == (1, 2, 1, 4)
    assert spec.vocab == 11
    notes = " | ".join(spec.notes)
    assert "heads = 2: the Reshape that makes the new keys and values in the graph" in notes
    assert "hsize = 4: the Reshape" in notes
    assert "the weight that makes the logits" in notes
    # without the file, the same signature needs the flag
    assert "--dim heads=N" in error_of(inputs, outputs, None)
    # a session reports the output dims ONNX Runtime infers: the present's fixed dims answer
    inputs, outputs = _signature(path)
    assert outputs[1].shape_text == "[batch, 2, total_seq, 4]"
    assert spec_of(inputs, outputs, None).caches == spec.caches


def _gqa_decoder(path: Path, packed: bool) -> None:
    """A GroupQueryAttention layer (genai's builder) with open kv heads and head size: 4 query
    heads, 2 kv heads of size 8; q/k/v projections (or one packed projection) feed it."""
    hidden = h.make_tensor_value_info("inputs_embeds_free", T.FLOAT, ["batch", "seq", 32])
    names = ["past_key_values.0.key", "past_key_values.0.value"]
    pasts = [h.make_tensor_value_info(n, T.FLOAT, ["batch", "kv", "past_seq", "hs"]) for n in names]
    presents = [
        h.make_tensor_value_info(
            n.replace("past_key_values", "present"), T.FLOAT, ["batch", "kv", "total", "hs"]
        )
        for n in names
    ]
    out = h.make_tensor_value_info("attn", T.FLOAT, ["batch", "seq", 32])
    if packed:
        inits = [nh.from_array(np.zeros((32, 64), np.float32), "qkv_w")]
        nodes = [h.make_node("MatMul", ["inputs_embeds_free", "qkv_w"], ["q"])]
        qkv = ["q", "", ""]
    else:
        inits = [
            nh.from_array(np.zeros((32, w), np.float32), f"{n}_w")
            for n, w in (("q", 32), ("k", 16), ("v", 16))
        ]
        nodes = [h.make_node("MatMul", ["inputs_embeds_free", f"{n}_w"], [n]) for n in "qkv"]
        qkv = ["q", "k", "v"]
    nodes.append(
        h.make_node(
            "GroupQueryAttention",
            [*qkv, *names, "seqlens_k", "total_sequence_length"],
            ["attn", *(p.name for p in presents)],
            domain="com.microsoft",
            num_heads=4,
            kv_num_heads=2,
        )
    )
    lengths = [
        h.make_tensor_value_info("seqlens_k", T.INT32, ["batch"]),
        h.make_tensor_value_info("total_sequence_length", T.INT32, []),
    ]
    graph = h.make_graph(nodes, "g", [hidden, *pasts, *lengths], [out, *presents], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("com.microsoft", 1)])
    onnx.save(model, path)


@pytest.mark.parametrize("packed", [False, True])
def test_group_query_attention_attributes_give_the_kv_heads(tmp_path: Path, packed: bool) -> None:
    path = tmp_path / "model.onnx"
    _gqa_decoder(path, packed)
    _signature(path)  # ONNX Runtime takes it
    inputs, outputs = _declared(path)
    inputs = [vi("input_ids", I64, "batch", "seq"), *(v for v in inputs if v.name != "inputs_embeds_free")]
    outputs = [vi("logits", F32, "batch", "seq", 9), *outputs]
    spec = spec_of(inputs, outputs, path)
    assert {c.shape for c in spec.caches} == {(1, 2, 1, 8)}
    assert "GroupQueryAttention" in " ".join(spec.notes)
    assert [x.name for x in spec.lengths] == ["seqlens_k", "total_sequence_length"]


def _dynamo_decoder(path: Path, op: str) -> None:
    """One layer as torch.onnx.export(dynamo=True) names it when no output names are given: the
    caches ``past_key_values_0_0`` / ``_0_1`` in, the presents out as ``cat_7`` / ``cat_8`` (the
    Concat that appends the new keys, here through a Cast as an fp16 export has), the logits as
    ``linear_3``. With ``op`` an attention operator instead, its own present outputs."""
    dims = ["batch", 2, "past", 4]
    names = ["past_key_values_0_0", "past_key_values_0_1"]
    ids = h.make_tensor_value_info("input_ids", T.INT64, ["batch", "seq"])
    pasts = [h.make_tensor_value_info(n, T.FLOAT, dims) for n in names]
    total = ["batch", 2, "past + seq", 4]
    presents = [h.make_tensor_value_info(n, T.FLOAT, total) for n in ("cat_7", "cat_8")]
    logits = h.make_tensor_value_info("linear_3", T.FLOAT, ["batch", "seq", 11])
    inits = [
        nh.from_array(np.zeros((11, 8), np.float32), "embed"),
        nh.from_array(np.array([0, 0, 2, 4], np.int64), "kshape"),
        nh.from_array(np.zeros((8, 11), np.float32), "lm_head"),
    ]
    nodes = [
        h.make_node("Gather", ["embed", "input_ids"], ["hidden"]),
        h.make_node("MatMul", ["hidden", "lm_head"], ["linear_3"]),
    ]
    if op == "Concat":
        nodes += [
            h.make_node("Reshape", ["hidden", "kshape"], ["k4"]),
            h.make_node("Transpose", ["k4"], ["new"], perm=[0, 2, 1, 3]),
        ]
        for n, (past, out) in enumerate(zip(names, ("cat_7", "cat_8"), strict=True)):
            nodes += [
                h.make_node("Concat", [past, "new"], [f"c{n}"], axis=-2),
                h.make_node("Cast", [f"c{n}"], [out], to=T.FLOAT),
            ]
    else:
        attention = h.make_node(
            "GroupQueryAttention",
            ["hidden", "hidden", "hidden", *names, "seqlens_k", "total_sequence_length"],
            ["attn", "cat_7", "cat_8"],
            domain="com.microsoft",
            num_heads=2,
            kv_num_heads=2,
        )
        nodes.append(attention)
    graph = h.make_graph(nodes, "g", [ids, *pasts], [logits, *presents], inits)
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), path)


@pytest.mark.parametrize("op", ["Concat", "GroupQueryAttention"])
def test_caches_named_by_no_convention_pair_by_the_graph(op: str, tmp_path: Path) -> None:
    """torch.onnx.export(dynamo=True) without output names: each present is the output the graph
    makes by appending to its past (a Concat, or an attention operator's present output)."""
    path = tmp_path / "model.onnx"
    _dynamo_decoder(path, op)
    inputs, outputs = _declared(path)
    spec = spec_of(inputs, outputs, path)
    assert spec.source == "the graph"
    assert [(c.past, c.present) for c in spec.caches] == [
        ("past_key_values_0_0", "cat_7"),
        ("past_key_values_0_1", "cat_8"),
    ]
    assert spec.caches[0] == CacheTensor("past_key_values_0_0", "cat_7", F32, (1, 2, 1, 4), 0, 2)
    assert spec.logits == "linear_3" and spec.vocab == 11
    assert "paired by the node in the graph that appends to each past" in " | ".join(spec.notes)
    if op == "Concat":  # ONNX Runtime takes it, and reports the same signature
        assert spec_of(*_signature(path), path).caches == spec.caches
    # without the graph the names alone do not tell: the error says how to name them
    text = error_of(inputs, outputs, None)
    assert "'past_key_values_0_0' [batch, 2, past, 4] has no matching output" in text
    assert "name each present output after its past input" in text


# --- the real exported decoders ------------------------------------------------------------


def _fixture_root() -> Path | None:
    """tests/data/decoders/ beside this file, else the folder INFERSPEED_DECODER_FIXTURES names."""
    import os

    for root in (
        Path(__file__).resolve().parent / "data" / "decoders",
        os.environ.get("INFERSPEED_DECODER_FIXTURES"),
    ):
        if root and (Path(root) / "manifest.json").is_file():
            return Path(root)
    return None


ROOT = _fixture_root()
needs_fixtures = pytest.mark.skipif(ROOT is None, reason="no exported decoders in tests/data/decoders/")

#: What each fixture must be recognised as (its README gives the signatures): source, the
#: first cache, the caches' count, mask, positions, merged, shared buffer, max length.
EXPECTED: dict[str, dict[str, Any]] = {
    "gpt2": {
        "source": "optimum",
        "cache": CacheTensor("past_key_values.0.key", "present.0.key", F32, (1, 4, 1, 16), 0, 2),
        "max_length": 1024,  # n_positions of the config.json beside it
    },
    "gpt2_3layer": {
        "source": "optimum",
        "cache": CacheTensor("past_key_values.0.key", "present.0.key", F32, (1, 4, 1, 16), 0, 2),
        "count": 6,
        "max_length": 1024,  # n_positions of the config.json beside it
    },
    "gpt2_int8": {
        "source": "optimum",
        "cache": CacheTensor("past_key_values.0.key", "present.0.key", F32, (1, 4, 1, 16), 0, 2),
    },
    "gpt2_merged": {
        "source": "optimum",
        "cache": CacheTensor("past_key_values.0.key", "present.0.key", F32, (1, 4, 1, 16), 0, 2),
        "use_cache_branch": "use_cache_branch",
        "max_length": 1024,  # n_positions of the config.json beside it
    },
    "gpt2_legacy": {
        "source": "legacy past.N",
        "cache": CacheTensor("past.0", "present.0", F32, (2, 1, 4, 1, 16), 1, 3),
        "count": 2,
    },
    "llama": {
        "source": "optimum",
        "cache": CacheTensor("past_key_values.0.key", "present.0.key", F32, (1, 2, 1, 16), 0, 2),
        "max_length": 1024,  # max_position_embeddings of the config.json beside it
    },
    "genai_llama": {
        "source": "onnxruntime-genai",
        "cache": CacheTensor("past_key_values.0.key", "present.0.key", F32, (1, 2, 1, 16), 0, 2),
        "position_ids": None,
        "share_buffer": True,
        "max_length": 1024,
    },
}


def _manifest() -> dict[str, Any]:
    assert ROOT is not None
    return dict(json.loads((ROOT / "manifest.json").read_text()))


@needs_fixtures
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_exported_decoders_are_recognised(name: str) -> None:
    assert ROOT is not None
    path = ROOT / name / "model.onnx"
    spec = spec_of(*_signature(path), path)
    want = {
        "count": 4,
        "position_ids": "position_ids",
        "use_cache_branch": None,
        "share_buffer": False,
        "max_length": None,
        **EXPECTED[name],
    }
    assert spec.source == want["source"]
    assert spec.caches[0] == want["cache"] and len(spec.caches) == want["count"]
    assert len({(c.shape, c.batch_axis, c.seq_axis) for c in spec.caches}) == 1
    assert (spec.input_ids, spec.ids_code, spec.attention_mask, spec.mask_code) == (
        "input_ids",
        I64,
        "attention_mask",
        I64,
    )
    assert spec.position_ids == want["position_ids"] and spec.use_cache_branch == want["use_cache_branch"]
    assert (spec.share_buffer, spec.max_length) == (want["share_buffer"], want["max_length"])
    assert (spec.logits, spec.vocab, spec.prefill_past) == ("logits", 512, 0)
    assert not spec.extra_inputs and not spec.lengths and spec.cache_position is None


@needs_fixtures
def test_every_fixture_folder_is_checked() -> None:
    assert set(_manifest()["fixtures"]) == set(EXPECTED)


def _spec_greedy(path: Path, spec: DecoderSpec, prompt: np.ndarray, gen: int) -> np.ndarray:
    """Greedy tokens from a loop that knows nothing of the model but its DecoderSpec: what the
    core's generation loop does, in plain onnxruntime (a shared buffer bound as past and
    present through an IoBinding, as onnxruntime-genai binds it)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    dtype = {code: et.storage for code, et in ELEMENT_TYPES.items()}
    batch, length = prompt.shape[0], prompt.shape[1] + gen - 1

    def cache_array(c: CacheTensor, seq: int) -> np.ndarray:
        shape = list(c.shape)
        shape[c.batch_axis] *= batch
        shape[c.seq_axis] = seq
        return np.zeros(shape, dtype[c.element_code])

    buffers = {c.past: ort.OrtValue.ortvalue_from_numpy(cache_array(c, length)) for c in spec.caches}
    past = {c.past: cache_array(c, spec.prefill_past) for c in spec.caches}
    ids, past_len = prompt, 0
    tokens = np.zeros((batch, gen), np.int64)
    for step in range(gen):
        n = ids.shape[1]
        feeds: dict[str, np.ndarray] = {spec.input_ids: ids.astype(dtype[spec.ids_code]), **spec.extra_inputs}
        if spec.attention_mask:
            feeds[spec.attention_mask] = np.ones((batch, past_len + n), dtype[spec.mask_code])
        if spec.position_ids:
            rows = np.arange(past_len, past_len + n, dtype=dtype[spec.position_code])
            feeds[spec.position_ids] = np.broadcast_to(rows, (batch, n)).copy()
        if spec.use_cache_branch:
            feeds[spec.use_cache_branch] = np.array([step > 0])
        if spec.share_buffer:
            binding = session.io_binding()
            for name, value in feeds.items():
                binding.bind_cpu_input(name, np.ascontiguousarray(value))
            binding.bind_output(spec.logits)  # first: get_outputs() keeps the binding's order
            for c in spec.caches:
                binding.bind_ortvalue_input(c.past, buffers[c.past])
                binding.bind_ortvalue_output(c.present, buffers[c.past])
            session.run_with_iobinding(binding)
            logits = binding.get_outputs()[0].numpy()
        else:
            names = [spec.logits, *(c.present for c in spec.caches)]
            results = session.run(names, feeds | past)
            logits = results[0]
            past = {c.past: r for c, r in zip(spec.caches, results[1:], strict=True)}
        tokens[:, step] = np.argmax(logits[:, -1, :], axis=-1)
        past_len += n
        ids = tokens[:, step : step + 1]
    return tokens


@needs_fixtures
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_loop_fed_by_the_spec_gives_the_reference_tokens(name: str) -> None:
    assert ROOT is not None
    manifest = _manifest()
    path = ROOT / name / "model.onnx"
    spec = spec_of(*_signature(path), path)
    prompt = np.array(manifest["prompt"], np.int64)
    tokens = _spec_greedy(path, spec, prompt, manifest["gen_tokens"])
    assert tokens.tolist() == manifest["fixtures"][name]["reference"]


@needs_fixtures
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_graph_alone_sizes_every_real_cache(name: str, tmp_path: Path) -> None:
    """With the heads, head size and vocabulary hidden from the signature (and no
    genai_config.json), the graph gives them: the Reshape to [batch, seq, -1, head_size] after
    a projection of known width (optimum's GPT-2 and Llama, int8, merged, legacy), or
    GroupQueryAttention's attributes (genai's builder)."""
    assert ROOT is not None
    source = ROOT / name / "model.onnx"
    truth = spec_of(*_signature(source), source)
    path = tmp_path / "model.onnx"
    path.write_bytes(source.read_bytes())
    inputs, outputs = _signature(path)

    def hide(v: ValueInfo) -> ValueInfo:
        if v.name == "logits":
            return vi(v.name, v.element_code, "batch_size", "sequence_length", "vocab")
        if not any(c.past == v.name or c.present == v.name for c in truth.caches):
            return v
        for axis, size in enumerate(v.shape or ()):
            if size is not None and not (axis == 0 and size == 2):  # not the stacked key/value axis
                v = with_dim(v, axis, f"open{axis}")
        return v

    hidden = [hide(v) for v in inputs], [hide(v) for v in outputs]
    assert "--dim open" in error_of(*hidden, None)
    spec = spec_of(*hidden, path)
    assert spec.caches == truth.caches and spec.vocab == 512
    assert "in the graph" in " ".join(spec.notes)
