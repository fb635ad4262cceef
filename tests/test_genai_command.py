"""``inferspeed genai``: a builder-made model through onnxruntime-genai's loop and inferspeed's,
interleaved; with genai replaced by a plain onnxruntime stand-in (tests/fake_genai.py) where it
is not installed, and its absence said in one line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from inferspeed.cli import main
from inferspeed.config import Config
from inferspeed.errors import ModelError
from inferspeed.report.genai import render_beside_genai
from inferspeed.tools.genai import beside_genai

from . import fake_genai
from .decoder_reference import greedy_tokens

FOLDER = Path(__file__).parent / "data" / "decoders" / "genai_llama"


def test_both_loops_side_by_side_with_their_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime_genai", fake_genai)
    found = beside_genai(str(FOLDER), Config(prompt_tokens=8, gen_tokens=6, threads=1), rounds=4, seed=3)
    assert found.tokens_equal and found.rounds == len(found.rows) == 4
    assert (found.prompt_tokens, found.gen_tokens, found.genai_version) == (8, 6, "fake")
    ratios = [r["genai"]["per_token_ns"] / r["inferspeed"]["per_token_ns"] for r in found.rows]
    assert found.per_token_ratio[0] == pytest.approx(float(np.median(ratios)))
    text = render_beside_genai(found)
    assert "per output token" in text and "equal in every round (6 per generation)" in text


def test_the_fake_genai_loop_is_the_reference_loop() -> None:
    """The stand-in generates what a plain onnxruntime greedy loop does (so an equal-tokens
    result above is a real check of inferspeed's loop)."""
    prompt = np.arange(5, dtype=np.int64).reshape(1, 5) * 7
    model = fake_genai.Model(str(FOLDER))
    gen = fake_genai.Generator(model, fake_genai.GeneratorParams(model))
    gen.append_tokens(prompt)
    for _ in range(6):
        gen.generate_next_token()
    assert np.array_equal(gen.get_sequence(0)[5:], greedy_tokens(str(FOLDER / "model.onnx"), prompt, 6)[0])


def test_without_genai_or_a_builder_folder_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], models: dict[str, str]
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime_genai", None)  # import fails
    assert main(["genai", str(FOLDER)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'inferspeed[genai]'" in err[0]
    monkeypatch.setitem(sys.modules, "onnxruntime_genai", fake_genai)
    with pytest.raises(ModelError, match=r"no genai_config\.json"):
        beside_genai(models["mlp3"])
