"""The decoder fixtures in tests/data/decoders load, and the reference greedy loop generates with them.

The tokens are checked against those that bench/make_decoders.py recorded in manifest.json from
generators that share no code with the reference loop: the PyTorch models the fixtures were
exported from, and onnxruntime-genai's own generator for the genai builder's model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from .decoder_reference import greedy_tokens, model_file

DECODERS = Path(__file__).parent / "data" / "decoders"
MANIFEST: dict[str, Any] = json.loads((DECODERS / "manifest.json").read_text())
FIXTURES = sorted(MANIFEST["fixtures"])
PROMPT = np.array(MANIFEST["prompt"], dtype=np.int64)
GEN = int(MANIFEST["gen_tokens"])


def test_every_fixture_folder_is_in_the_manifest() -> None:
    folders = sorted(p.name for p in DECODERS.iterdir() if p.is_dir())
    assert folders == FIXTURES
    assert {"gpt2", "llama", "genai_llama", "gpt2_int8", "gpt2_merged", "gpt2_legacy"} <= set(FIXTURES)


def test_the_fixtures_stay_small() -> None:
    total = sum(p.stat().st_size for p in DECODERS.rglob("*") if p.is_file())
    assert total < 8_000_000
    assert not list(DECODERS.rglob("*.data")), "weights belong inside model.onnx"


@pytest.mark.parametrize("fixture", FIXTURES)
def test_fixture_loads_with_the_signature_its_manifest_records(fixture: str) -> None:
    session = ort.InferenceSession(str(model_file(DECODERS / fixture)), providers=["CPUExecutionProvider"])

    def describe(nodes: list[Any]) -> list[dict[str, Any]]:
        return [{"name": n.name, "shape": list(n.shape), "type": n.type} for n in nodes]

    recorded = MANIFEST["fixtures"][fixture]["signature"]
    assert describe(session.get_inputs()) == recorded["inputs"]
    assert describe(session.get_outputs()) == recorded["outputs"]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_reference_loop_is_deterministic_and_in_the_vocabulary(fixture: str) -> None:
    first = greedy_tokens(DECODERS / fixture, PROMPT, GEN)
    second = greedy_tokens(DECODERS / fixture, PROMPT, GEN)
    assert first.shape == (PROMPT.shape[0], GEN)
    assert first.dtype == np.int64
    np.testing.assert_array_equal(first, second)
    assert first.min() >= 0 and first.max() < 512
    # Greedy tokens of random weights still vary: a loop that feeds the wrong past or position
    # would show up as a different sequence, not as a constant one.
    assert len(np.unique(first)) > 3


@pytest.mark.parametrize("fixture", [f for f in FIXTURES if "torch" in MANIFEST["fixtures"][f]])
def test_reference_loop_gives_the_pytorch_models_tokens(fixture: str) -> None:
    tokens = greedy_tokens(DECODERS / fixture, PROMPT, GEN)
    assert tokens.tolist() == MANIFEST["fixtures"][fixture]["torch"]


def test_reference_loop_gives_onnxruntime_genais_tokens_with_either_past() -> None:
    want = MANIFEST["fixtures"]["genai_llama"]["onnxruntime_genai"]
    growing = greedy_tokens(DECODERS / "genai_llama", PROMPT, GEN)
    shared = greedy_tokens(DECODERS / "genai_llama", PROMPT, GEN, shared_buffer_length=PROMPT.shape[1] + GEN)
    assert growing.tolist() == want
    assert shared.tolist() == want


@pytest.mark.parametrize("fixture", ["gpt2", "gpt2_merged", "gpt2_legacy", "genai_llama"])
def test_a_row_alone_generates_what_it_generates_in_the_batch(fixture: str) -> None:
    batch = greedy_tokens(DECODERS / fixture, PROMPT, 4)
    alone = greedy_tokens(DECODERS / fixture, PROMPT[1:], 4)
    np.testing.assert_array_equal(alone[0], batch[1])


def test_genai_config_names_the_models_inputs_and_outputs() -> None:
    config = json.loads((DECODERS / "genai_llama" / "genai_config.json").read_text())
    decoder = config["model"]["decoder"]
    assert config["search"]["past_present_share_buffer"] is True
    session = ort.InferenceSession(str(DECODERS / "genai_llama" / decoder["filename"]))
    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    for layer in range(decoder["num_hidden_layers"]):
        assert decoder["inputs"]["past_key_names"] % layer in inputs
        assert decoder["inputs"]["past_value_names"] % layer in inputs
        assert decoder["outputs"]["present_key_names"] % layer in outputs
        assert decoder["outputs"]["present_value_names"] % layer in outputs
    assert decoder["inputs"]["input_ids"] in inputs and decoder["inputs"]["attention_mask"] in inputs
    assert decoder["outputs"]["logits"] in outputs


def test_genai_model_runs_with_past_and_present_bound_to_one_buffer() -> None:
    # What onnxruntime-genai does with past_present_share_buffer: each layer's past and present
    # bound to the same OrtValue of max length, written in place by GroupQueryAttention.
    session = ort.InferenceSession(
        str(DECODERS / "genai_llama" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    batch, length = PROMPT.shape[0], PROMPT.shape[1] + GEN
    buffers = {
        i.name: ort.OrtValue.ortvalue_from_numpy(np.zeros((batch, 2, length, 16), np.float32))
        for i in session.get_inputs()
        if i.name.startswith("past_key_values.")
    }
    binding = session.io_binding()
    ids, past_len, tokens = PROMPT, 0, []
    for _ in range(GEN):
        binding.clear_binding_inputs()
        binding.clear_binding_outputs()
        binding.bind_cpu_input("input_ids", ids)
        binding.bind_cpu_input("attention_mask", np.ones((batch, past_len + ids.shape[1]), np.int64))
        for name, buffer in buffers.items():
            binding.bind_ortvalue_input(name, buffer)
            binding.bind_ortvalue_output(name.replace("past_key_values", "present"), buffer)
        binding.bind_output("logits")
        session.run_with_iobinding(binding)
        token = binding.copy_outputs_to_cpu()[-1][:, -1].argmax(axis=-1)
        tokens.append(token)
        past_len += ids.shape[1]
        ids = token[:, None].astype(np.int64)
    assert np.stack(tokens, axis=1).tolist() == MANIFEST["fixtures"]["genai_llama"]["onnxruntime_genai"]
