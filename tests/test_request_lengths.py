"""Generation requests of their own prompt and output lengths under load (``request_lengths``):
drawn around the run's lengths (``spread=R``, vLLM's random range ratio) or read from a JSONL
file; the core's streams built for the longest, each request's tokens those of a plain
onnxruntime loop over its prompt's prefix, and the figures per request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import inferspeed
from inferspeed import ConfigError, _core
from inferspeed.facts.models import demo_model_path
from inferspeed.measure.request_lengths import RequestLengths
from inferspeed.report.text import render_result
from inferspeed.stats.generation import request_times

from .decoder_reference import greedy_tokens
from .test_cli import cli

DECODERS = Path(__file__).parent / "data" / "decoders"
GPT2 = str(DECODERS / "gpt2" / "model.onnx")
SHORT: dict[str, Any] = {"threads": 1, "warmup_time": 0.05, "duration": 0.3}


def test_tpot_itl_and_end_to_end_count_each_request_s_own_tokens() -> None:
    arrivals = np.array([0, 10, 20, 30])
    start = np.array([0, 12, 40, 50])
    # Request 0: 3 tokens, request 1: 2, request 2: 4, request 3: 3 but stopped after its first.
    tokens = np.array([[5, 7, 11, -1], [20, 26, -1, -1], [50, 53, 56, 65], [55, -1, -1, -1]])
    t = request_times(arrivals, start, tokens, np.array([3, 2, 4, 3]))
    assert t["index"].tolist() == [0, 1, 2]
    assert t["tokens"].tolist() == [3, 2, 4]
    assert t["ttft"].tolist() == [5, 10, 30]
    assert t["tpot"].tolist() == [3, 6, 5]  # (11 - 5) / 2, (26 - 20) / 1, (65 - 50) / 3
    assert t["e2e"].tolist() == [11, 16, 45]
    assert t["service"].tolist() == [11, 14, 25]
    assert t["itl"].tolist() == [2, 4, 6, 3, 3, 9]


def test_a_jsonl_run_gives_each_request_the_file_s_lengths_in_order(tmp_path: Path) -> None:
    lines = [(3, 4), (8, 2), (5, 7)]
    path = tmp_path / "lengths.jsonl"
    path.write_text("".join(json.dumps({"prompt_tokens": p, "output_tokens": g}) + "\n" for p, g in lines))
    r = inferspeed.benchmark(GPT2, scenario="server", qps=100, request_lengths=str(path), **SHORT)
    g = r.generation
    n = len(g["arrival_ns"])
    assert n > 6 and g["completed"] == n
    assert g["prompt_tokens"] == 8 and g["gen_tokens"] == 7  # the streams: the longest
    assert g["request_prompt_tokens"] == [lines[i % 3][0] for i in range(n)]
    assert g["request_gen_tokens"] == [lines[i % 3][1] for i in range(n)]
    assert g["request_lengths"] == {"source": "file", "path": str(path), "lines": 3}
    token = np.asarray(g["token_ns"])
    reached = (token >= 0).sum(axis=1)
    assert reached.tolist() == g["request_gen_tokens"]  # -1 beyond each request's tokens
    last = token[np.arange(n), reached - 1]
    tpot = np.rint((last - token[:, 0]) / (reached - 1))
    assert g["tpot"]["median_ns"] == pytest.approx(np.median(tpot), abs=1)
    assert r.samples_ns.size == int((reached - 1).sum())  # every request's own gaps
    span = token.max() / 1e9
    assert r.scenario_stats["output_tokens_per_s"] == pytest.approx(reached.sum() / span)
    assert r.scenario_stats["prompt_tokens_per_s"] == pytest.approx(sum(g["request_prompt_tokens"]) / span)
    assert f"from {path}, 3 lengths" in render_result(r)


def test_a_spread_draws_lengths_that_vary_within_their_bounds() -> None:
    r = inferspeed.benchmark(
        GPT2, scenario="offline", prompt_tokens=8, gen_tokens=6, request_lengths="spread=0.5", **SHORT
    )
    g = r.generation
    assert g["request_lengths"] == {
        "source": "spread",
        "spread": 0.5,
        "prompt_range": [4, 12],
        "output_range": [3, 9],
    }
    started = np.asarray(g["start_ns"]) >= 0
    prompt, output = (np.asarray(g[k])[started] for k in ("request_prompt_tokens", "request_gen_tokens"))
    assert started.sum() >= 10 and g["completed"] == started.sum()
    assert prompt.min() >= 4 and prompt.max() <= 12 and len(set(prompt.tolist())) > 3
    assert output.min() >= 3 and output.max() <= 9 and len(set(output.tolist())) > 3
    assert g["prompt_tokens"] == 12 and g["gen_tokens"] == 9
    text = render_result(r)
    assert "varied lengths: prompt " in text and "spread ±50%" in text, text
    # Seeded: the same draws again.
    n = len(g["request_gen_tokens"])
    again = RequestLengths(np.array([4, 12]), np.array([3, 9]), spread=0.5, seed=0).draw(n)
    assert again[0].tolist() == g["request_prompt_tokens"] and again[1].tolist() == g["request_gen_tokens"]


@pytest.mark.parametrize("kind", ["gpt2", "genai_llama"])
def test_each_request_s_tokens_are_a_plain_loop_s_over_its_prompt_prefix(kind: str) -> None:
    """Streams built for 9 prompt and 6 output tokens serve requests shorter in either: each
    request's tokens are the reference loop's over the first p ids of the prompt, its own g
    tokens (a shorter prefill's logits read where ONNX Runtime put them, the longer ones'
    buffers still right after)."""
    model = str(DECODERS / kind / "model.onnx")
    session = inferspeed.Session(model, threads=1, prompt_tokens=9, gen_tokens=6, batch=2)
    plan = session.generation_plan
    assert plan is not None
    streams = [session.generation(), session.generation()]
    for s in streams:
        s.run(warmup=0, max_repetitions=1)
    lengths = [(9, 6), (3, 4), (9, 2), (1, 6), (5, 5), (9, 6), (2, 3)]
    r = _core.generation_load(
        streams,
        [0] * len(lengths),
        spin_ns=0,
        prompt_tokens=[p for p, _ in lengths],
        gen_tokens=[g for _, g in lengths],
    )
    assert not r["interrupted"] and r["tokens"].shape == (len(lengths), 2, 6)
    for i, (p, g) in enumerate(lengths):
        expected = greedy_tokens(model, plan.prompt_ids[:, :p], g)
        np.testing.assert_array_equal(r["tokens"][i][:, :g], expected, err_msg=f"request {i}: {p}, {g}")
        assert np.all(r["tokens"][i][:, g:] == -1) and np.all(r["token_ns"][i][g:] == -1)
    with pytest.raises(ValueError, match="do not fit streams of 9 and 6"):
        _core.generation_load(streams, [0], prompt_tokens=[10], gen_tokens=[2])
    with pytest.raises(ValueError, match="one each per arrival"):
        _core.generation_load(streams, [0, 0], prompt_tokens=[3], gen_tokens=[2])
    session.close()


def test_lengths_are_refused_where_no_generation_requests_run() -> None:
    with pytest.raises(ConfigError, match="server and offline scenarios"):
        inferspeed.Config(request_lengths="spread=0.5")
    with pytest.raises(ConfigError, match="not to single_call"):
        inferspeed.Config(scenario="offline", single_call=True, request_lengths="spread=0.5")
    with pytest.raises(ConfigError, match=r"R in \[0, 1\)"):
        inferspeed.Config(scenario="offline", request_lengths="spread=1.5")
    with pytest.raises(ConfigError, match="takes no prompt_tokens"):
        inferspeed.Config(scenario="offline", request_lengths="l.jsonl", gen_tokens=4)
    with pytest.raises(ConfigError, match="timed one call at a time"):
        inferspeed.Session(demo_model_path(), scenario="offline", request_lengths="spread=0.5")
    with pytest.raises(ConfigError, match="need 1059 positions; the model's context holds 1024"):
        inferspeed.Session(
            GPT2, scenario="offline", prompt_tokens=700, gen_tokens=7, request_lengths="spread=0.5"
        )


def test_the_cli_says_one_line_for_a_bad_lengths_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_tokens": 4, "output_tokens": 3}\n\n{"prompt_tokens": 4, "output_tokens": 1}\n')
    offline = ["--scenario", "offline", "--duration", "0.1"]
    for argv, message in (
        (
            [*offline, str(bad)],
            f"request lengths file {bad}, line 3: output_tokens must be an integer of at least 2",
        ),
        ([*offline, str(tmp_path / "none.jsonl")], "cannot read request lengths file"),
        ([*offline, "spread=2"], "R in [0, 1)"),
        (["spread=0.5"], "--request-lengths applies to the server and offline scenarios only"),
    ):
        p = cli("run", GPT2, "--request-lengths", argv[-1], *argv[:-1])
        assert p.returncode == 2 and message in p.stderr, (argv, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr
