"""What reads a decoder's generation requests under load after they ran (the server and offline
scenarios' results, whose ``generation`` record holds each request's arrival, start and token
times rather than single-stream generations' steps): ``compare`` decides on each completed
request's TPOT with TTFT (from the schedule) and ITL beside it, and the HTML report plots them.
Constructed loads first, then a short real offline run of the GPT-2 fixture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inferspeed import Result, summarize
from inferspeed.analysis.compare import GenerationComparison
from inferspeed.analysis.verdicts import compare_results, ttft_samples
from inferspeed.errors import ConfigError
from inferspeed.report.text import render_comparisons
from inferspeed.results.result import load_json

MODEL = str(Path(__file__).parent / "data" / "decoders" / "gpt2" / "model.onnx")
G = 6  # tokens a request


def _load(tpot_ns: float, ttft_ns: float, *, scenario: str = "server", seed: int = 0) -> Result:
    """200 requests, one every 1 ms, each started on arrival: its first token ``ttft_ns``
    after it, then one every ``tpot_ns`` (lognormal scatter)."""
    rng = np.random.default_rng(seed)
    n = 200
    arrival = np.arange(n, dtype=np.int64) * 1_000_000
    first = arrival + np.rint(ttft_ns * rng.lognormal(0, 0.05, n)).astype(np.int64)
    gaps = np.rint(tpot_ns * rng.lognormal(0, 0.05, (n, G - 1))).astype(np.int64)
    tokens = np.concatenate([first[:, None], first[:, None] + np.cumsum(gaps, axis=1)], axis=1)
    itl = gaps.ravel()
    generation = {
        "prompt_tokens": 8, "gen_tokens": G, "batch": 1, "streams": 2, "requests": n, "completed": n,
        "ttft_from": "start" if scenario == "offline" else "scheduled arrival",
        "arrival_ns": arrival.tolist(), "start_ns": arrival.tolist(), "token_ns": tokens.tolist(),
        "request_step_ns": np.full((n, G), 1000).tolist(), "stream": [0] * n,
    }  # fmt: skip
    return Result(
        itl,
        summarize(itl),
        {"name": "m"},
        {"metric": "generation"},
        {},
        scenario=scenario,
        generation=generation,
    )


def test_compare_decides_on_each_request_s_figures() -> None:
    """TPOT alike, TTFT 1.5 times: the TPOT verdict sees nothing, the TTFT verdict 'slower';
    every table is there, and says it is of requests under load."""
    a, b = _load(1e5, 1e6), _load(1e5, 1.5e6, seed=1)
    assert np.array_equal(
        ttft_samples(a), np.asarray(a.generation["token_ns"])[:, 0] - np.arange(200) * 1_000_000
    )
    c = compare_results(a, b, statistic="ttft")
    assert isinstance(c, GenerationComparison) and c.requests == "server" and c.on == "ttft"
    also = dict(c.also)
    assert set(also) == {"ttft", "itl"} and also["ttft"].decided_ratio == c.decided_ratio
    assert c.decided_ratio[0] == pytest.approx(1.5, rel=0.03) and c.verdict == "slower"
    assert c.ratio_median == pytest.approx(1.0, abs=0.03)
    tpot = compare_results(a, b)
    assert tpot.on == "tpot" and tpot.verdict == "no significant difference"
    text = render_comparisons([c])
    assert text.startswith("generation requests under load (server): compared per completed request")
    assert (
        "time to first token (TTFT, each request's, from its scheduled arrival) (what the verdict is on):"
        in text
    )
    assert "inter-token latency (ITL, every gap between two tokens of a request):" in text
    assert c.to_dict()["requests"] == "server" and set(c.to_dict()["also"]) == {"ttft", "itl"}


def test_loads_of_other_scenarios_do_not_compare() -> None:
    with pytest.raises(ConfigError, match="of the server scenario and B of the offline"):
        compare_results(_load(1e5, 1e6), _load(1e5, 1e6, scenario="offline"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferspeed", *args], capture_output=True, text=True, timeout=120
    )


def test_a_real_offline_load_compares_and_plots(tmp_path: Path) -> None:
    """Two short offline runs of GPT-2 (2 streams): compare --statistic ttft decides on the
    requests' TTFT (before, it found no generation to take a TTFT from and stopped), and the
    report draws each request's TTFT and TPOT, the ITL by position and the tokens/s over time."""
    files = [tmp_path / f"{k}.json" for k in "ab"]
    for path in files:
        p = _cli(
            "run", MODEL, "--prompt-tokens", "8", "--gen-tokens", "4", "--scenario", "offline",
            "--concurrency", "2", "--duration", "0.3", "--json", str(path),
        )  # fmt: skip
        assert p.returncode == 0, p.stderr
    p = _cli("compare", *map(str, files), "--statistic", "ttft")
    assert p.returncode == 0, p.stderr
    assert "time to first token (TTFT, each request's, from its start) (what the verdict is on):" in p.stdout
    (a,) = load_json(files[0])
    assert a.generation is not None and ttft_samples(a).size == a.generation["completed"] > 2
    folder = tmp_path / "png"
    p = _cli("report", str(files[0]), "--png", str(folder))
    assert p.returncode == 0, p.stderr
    names = sorted(f.name.split("-", 1)[1] for f in folder.iterdir())
    for plot in ("itl-positions.png", "requests-ttft-tpot.png", "tokens-over-time.png"):
        assert any(n.endswith(plot) for n in names), names
