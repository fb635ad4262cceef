"""A decoder's generations measured end to end: recognised with no flags, timed in the core,
its tokens those of a plain onnxruntime greedy loop, its figures and JSON, its errors.

The decoders are the exported fixtures of ``tests/data/decoders`` (optimum GPT-2 and Llama,
onnxruntime-genai's builder, merged, legacy and int8) and the toy decoder of
``tests/toy_decoder.py`` (one whose chosen position does extra work).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import inferspeed
from inferspeed.errors import ConfigError, ModelError
from inferspeed.report.text import render_comparisons, render_result
from inferspeed.results.result import load_json
from inferspeed.stats.generation import generation_figures, position_curve, slow_positions

from .child_events import Events
from .decoder_reference import greedy_tokens
from .toy_decoder import ToyOptions, build_toy_decoder, reference_tokens

FIXTURES = Path(__file__).parent / "data" / "decoders"
KINDS = ("gpt2", "gpt2_int8", "gpt2_merged", "gpt2_legacy", "llama", "genai_llama")
#: A short generation: what the tests need of one, in a fraction of a second.
SHORT = {"prompt_tokens": 8, "gen_tokens": 6, "max_time": 0.2, "warmup_time": 0.05}


def _model(kind: str) -> str:
    return str(FIXTURES / kind / "model.onnx")


@pytest.mark.parametrize("kind", KINDS)
def test_generated_tokens_equal_a_plain_onnxruntime_greedy_loop(kind: str, tmp_path: Path) -> None:
    """Batch 2, a real prompt from --inputs: every generation's tokens are the reference loop's."""
    manifest = json.loads((FIXTURES / "manifest.json").read_text())
    prompt = np.asarray(manifest["prompt"], dtype=np.int64)
    np.savez(tmp_path / "p.npz", input_ids=prompt)
    r = inferspeed.benchmark(
        _model(kind), inputs_file=str(tmp_path / "p.npz"), gen_tokens=12, max_time=0.1, warmup_time=0.02
    )
    assert r.metric == "generation"
    expected = greedy_tokens(_model(kind), prompt.astype(np.int64), 12)
    assert np.array_equal(np.asarray(r.generation["tokens"]), expected)
    assert r.generation["batch"] == 2 and r.generation["prompt_tokens"] == prompt.shape[1]


def test_a_generation_result_reports_the_llm_figures(tmp_path: Path) -> None:
    r = inferspeed.benchmark(_model("gpt2"), **SHORT)
    g = r.generation
    steps = np.asarray(g["step_ns"])
    assert steps.shape[1] == 6 and steps.shape[0] == g["generations"] >= 1
    decode = steps[:, 1:].ravel()
    # The Result's samples are the decode steps: TPOT is their median.
    assert np.array_equal(np.sort(r.samples_ns), np.sort(decode))
    assert r.stats.median_ns == pytest.approx(float(np.median(decode)))
    ttft = steps[:, 0] + np.asarray(g["sample_ns"])[:, 0]
    assert g["ttft"]["median_ns"] == pytest.approx(float(np.median(ttft)))
    assert g["prompt_tokens_per_s"] == pytest.approx(8 / (np.median(steps[:, 0]) / 1e9))
    assert g["output_tokens_per_s"] == pytest.approx(1 / (np.median(decode) / 1e9))
    # 2 layers x key and value, [1, 4, P + G - 1, 16] float32 each.
    assert g["kv_cache_bytes"] == 4 * 4 * (8 + 6 - 1) * 16 * 4
    assert len(g["position_median_ns"]) == 6
    path = tmp_path / "g.json"
    r.to_json(path)
    (back,) = load_json(path)
    assert back.metric == "generation" and back.generation["step_ns"] == g["step_ns"]


def test_run_prints_a_generation_with_no_flags_but_its_length(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    p = subprocess.run(
        [
            sys.executable, "-m", "inferspeed", "run", _model("genai_llama"), "--prompt-tokens", "8",
            "--gen-tokens", "6", "-t", "0.2", "--json", str(out),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    for words in ("TTFT", "TPOT", "tokens/s", "KV cache", "note: past and present share one buffer"):
        assert words in p.stdout + p.stderr, words
    doc = json.loads(out.read_text())
    g = doc["results"][0]["generation"]
    assert g["decoder"]["share_buffer"] is True
    # One buffer per cache tensor, as long as the generation: 4 tensors [1, 2, 8 + 6 - 1, 16] float32.
    assert (g["kv_cache_positions"], g["kv_cache_bytes"]) == (13, 4 * 2 * 13 * 16 * 4)


def test_lengths_beyond_the_context_and_a_model_without_a_cache_are_refused(models: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="context holds 1024"):
        inferspeed.benchmark(_model("genai_llama"), prompt_tokens=1000, gen_tokens=100)
    with pytest.raises(ModelError, match="no KV-cache"):
        inferspeed.benchmark(models["mlp3"], metric="generation")
    with pytest.raises(ConfigError, match="gen_tokens must be at least 2"):
        inferspeed.Config(gen_tokens=1)


def test_the_cli_says_one_line_for_a_model_without_a_cache(models: dict[str, str]) -> None:
    p = subprocess.run(
        [sys.executable, "-m", "inferspeed", "run", models["mlp3"], "--metric", "generation"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and "no KV-cache" in p.stderr


def test_the_position_curve_and_slow_positions_on_known_data() -> None:
    rng = np.random.default_rng(3)
    steps = rng.normal(1000, 10, size=(20, 40)).astype(np.int64)
    steps[:, 0] = 50_000  # the prefill: not a decode position
    steps[:, 17] += 3000  # every generation slow at position 17
    steps[4, 30] = 40_000  # one stall
    steps[19, 35:] = -1  # a generation interrupted at position 35
    curve = position_curve(steps)
    assert curve[17] == pytest.approx(np.median(steps[:, 17]))
    assert curve[36] == pytest.approx(np.median(steps[:19, 36]))
    off = slow_positions(steps)
    assert [p["position"] for p in off["positions"]] == [17]
    assert off["stalls"][0]["position"] == 30 and off["stalls"][0]["generation"] == 4
    figures = generation_figures(
        steps, np.full_like(steps, 100), np.full(19, 90_000), prompt_tokens=16, batch=1
    )
    assert figures["ttft"]["median_ns"] == 50_100
    assert figures["complete_generations"] == 19


def test_a_steady_curve_calls_out_nothing() -> None:
    rng = np.random.default_rng(5)
    steps = rng.normal(1000, 30, size=(30, 64)).astype(np.int64)
    steps[:, 1:] += np.arange(63) * 5  # a cache growing: a rising, smooth curve
    off = slow_positions(steps)
    assert off["positions"] == [] and off["slow_count"] == 0


def test_a_position_slowed_in_the_model_is_called_out(tmp_path: Path) -> None:
    """The toy decoder runs a MatMul chain (through If) at context position 12 only: with a
    prompt of 4 tokens that is decode step 9, called out as slow in the per-position curve."""
    toy = build_toy_decoder(tmp_path / "slow.onnx", ToyOptions(slow_position=12))
    r = inferspeed.benchmark(str(toy.path), prompt_tokens=4, gen_tokens=24, max_time=0.3, warmup_time=0.05)
    off = r.generation["off_curve"]
    # The slowest called out (the step right after it may be too: the chain evicts the caches).
    assert (off["positions"][0]["position"], off["positions"][0]["context_position"]) == (9, 12)
    assert off["positions"][0]["ratio"] > 3
    assert {p["position"] for p in off["positions"]} <= {9, 10}
    assert f"SLOW POSITIONS {len(off['positions'])}: step 9 at position 12" in render_result(r)


def test_ctrl_c_during_decode_exits_130_with_the_partial_generation_saved(tmp_path: Path) -> None:
    out = tmp_path / "partial.json"
    events = Events(tmp_path / "events.jsonl")
    p = subprocess.Popen(
        [sys.executable, "-m", "inferspeed", "run", _model("gpt2"), "-t", "30", "--json", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env=events.env(),
    )
    try:
        events.wait("timed", proc=p)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err
    (result,) = json.loads(out.read_text())["results"]
    assert result["interrupted"] is True
    g = result["generation"]
    steps = np.asarray(g["step_ns"])
    assert steps.shape[0] == g["generations"] >= 1 and steps.shape[1] == 128
    assert len(result["samples_ns"]) == int((steps[:, 1:] >= 0).sum())


def test_two_generations_compare_on_their_time_per_output_token() -> None:
    """Two runs of one decoder compare as latencies (their samples are the decode steps); a
    generation and a single call's latency do not."""
    from inferspeed.analysis.verdicts import compare_results

    a = inferspeed.benchmark(_model("gpt2"), **SHORT)
    b = inferspeed.benchmark(_model("gpt2"), **SHORT)
    c = compare_results(a, b)
    assert c.metric == "generation"
    assert c.ratio_median == pytest.approx(b.stats.median_ns / a.stats.median_ns, rel=1e-6)
    ttft = dict(c.also)["ttft"]
    first = [
        np.asarray(r.generation["step_ns"])[:, 0] + np.asarray(r.generation["sample_ns"])[:, 0]
        for r in (a, b)
    ]
    assert ttft.ratio_median == pytest.approx(np.median(first[1]) / np.median(first[0]), rel=1e-6)
    text = render_comparisons([c])
    assert "time per output token (TPOT" in text and "time to first token (TTFT" in text
    assert c.to_dict()["also"]["ttft"]["ratio_median"] == ttft.ratio_median
    single = inferspeed.benchmark(_model("gpt2"), single_call=True, shapes={}, max_time=0.05, dims={
        "sequence_length": 1, "past_sequence_length": 7, "past_sequence_length + sequence_length": 8,
    })  # fmt: skip
    assert single.metric == "latency"
    with pytest.raises(ConfigError, match="A holds generation and B holds latency"):
        compare_results(a, single)


@pytest.mark.parametrize("batch", [1, 3])
def test_length_inputs_are_fed_step_by_step(tmp_path: Path, batch: int) -> None:
    """GroupQueryAttention's seqlens_k and total_sequence_length as graph inputs (no mask to
    derive them from in the graph): the loop feeds each step's lengths, and the tokens are a
    plain loop's that feeds them."""
    toy = build_toy_decoder(
        tmp_path / "lengths.onnx",
        ToyOptions(attention="gqa", length_inputs=True, heads=4, kv_heads=2, head_size=16),
    )
    prompt = np.random.default_rng(2).integers(0, toy.options.vocab, size=(batch, 5))
    np.savez(tmp_path / "p.npz", input_ids=prompt)
    r = inferspeed.benchmark(toy.path, inputs_file=str(tmp_path / "p.npz"), gen_tokens=9, max_time=0.05)
    assert np.array_equal(np.asarray(r.generation["tokens"]), reference_tokens(toy, prompt, 9))


def test_rounds_of_a_decoder_pool_every_generation(tmp_path: Path) -> None:
    """Interleaved rounds (two thread counts) pool every round's generations into the
    result's generation record, its decode steps the result's samples."""
    out = tmp_path / "il.json"
    p = subprocess.run(
        [
            sys.executable, "-m", "inferspeed", "run", _model("gpt2"), "--threads", "1,2", "-t", "0.3",
            "--rounds", "3", "--prompt-tokens", "8", "--gen-tokens", "5", "-q", "--json", str(out),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    for r in json.loads(out.read_text())["results"]:
        steps = np.asarray(r["generation"]["step_ns"])
        assert steps.shape[0] == r["generation"]["generations"] >= 3  # at least one a round
        assert len(r["samples_ns"]) == int((steps[:, 1:] >= 0).sum())


@pytest.mark.parametrize("kind", ["gpt2_merged", "genai_llama", "gpt2_legacy"])
def test_single_call_times_one_decode_step_with_no_other_flag(kind: str) -> None:
    r = inferspeed.benchmark(_model(kind), single_call=True, prompt_tokens=20, max_time=0.05)
    assert r.metric == "latency" and r.generation is None
    bound = {i["name"]: i["bound_shape"] for i in r.model["inputs"]}
    assert bound["input_ids"] == [1, 1] and bound["attention_mask"] == [1, 21]
    assert any("one decode step, a token after a past of 20 positions" in n for n in r.notices)


def test_generation_lengths_are_refused_where_no_generation_runs(models: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="apply to a decoder's generation"):
        inferspeed.benchmark(models["mlp3"], prompt_tokens=16, max_time=0.05)
    with pytest.raises(ConfigError, match="a generation does not take its cache"):
        inferspeed.benchmark(_model("gpt2"), gen_tokens=8, cache="cold", max_time=0.05)
    with pytest.raises(ConfigError, match="gen_tokens is a generation's"):
        inferspeed.Config(single_call=True, gen_tokens=8)
