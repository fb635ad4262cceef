"""Gating and comparing two decoders' generations on what a user of a generator asks about: the
time per output token (tpot, the median decode step), the time to first token (ttft, paired per
round) or output tokens per second (higher is better); the statistic a result cannot take is
refused in one line. Constructed interleaved generations first, then real gates of the GPT-2
fixture against its three-layer variant and against a byte-identical copy of itself."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from inferspeed import Result, summarize
from inferspeed.analysis.compare import GenerationComparison
from inferspeed.analysis.verdicts import compare_results, paired_slowdowns
from inferspeed.errors import ConfigError, InputError
from inferspeed.report.text import render_gate
from inferspeed.results.pool import pool_results, round_record
from inferspeed.results.result import load_json, write_json
from inferspeed.tools.gate import GATE_TIME, ROUND_TIME, GateVerdict, _notes, _reach, gate, generation_rounds
from inferspeed.units import format_duration

from .test_cli import cli

DECODERS = Path(__file__).parent / "data" / "decoders"
pytest_plugins = ["pytester"]

# --- constructed interleaved generations ---------------------------------------------------------

GEN = 9  # tokens a generation: the prefill's, then 8 decode steps


def _round(rng: np.random.Generator, level: float, step_ns: float, ttft_ns: float, batch: int) -> Result:
    """One round of 3 whole generations on a machine at speed ``level`` (both sides of a round
    share it): each generation's prefill about ``ttft_ns``, its decode steps about ``step_ns``."""
    steps = np.empty((3, GEN), dtype=np.int64)
    steps[:, 0] = np.rint(level * ttft_ns * rng.lognormal(0.0, 0.01, 3))
    steps[:, 1:] = np.rint(level * step_ns * rng.lognormal(0.0, 0.01, (3, GEN - 1)))
    picks = np.full((3, GEN), 500, dtype=np.int64)
    decode = steps[:, 1:].ravel()
    generation = {
        "prompt_tokens": 16,
        "gen_tokens": GEN,
        "batch": batch,
        "step_ns": steps.tolist(),
        "sample_ns": picks.tolist(),
        "generation_ns": (steps.sum(axis=1) + picks.sum(axis=1)).tolist(),
    }
    return Result(
        decode,
        summarize(decode),
        {"name": "m"},
        {"metric": "generation"},
        {},
        warmup={"iterations": 1, "time_ns": 1},
        generation=generation,
    )


def interleaved(
    step_ratio: float,
    ttft_ratio: float,
    *,
    rounds: int = 20,
    batches: tuple[int, int] = (1, 1),
    seed: int = 0,
) -> tuple[Result, Result]:
    """Two decoders' generations in interleaved rounds, pooled as measure_interleaved pools
    them (with the pairing they carry): B's decode steps ``step_ratio`` times A's, its prefills
    ``ttft_ratio`` times. The machine's speed moves 20% between rounds, the same for both."""
    rng = np.random.default_rng(seed)
    sides: tuple[list[Result], list[Result]] = ([], [])
    for _ in range(rounds):
        level = 1.0 + 0.2 * rng.random()
        sides[0].append(_round(rng, level, 1e5, 1e6, batches[0]))
        sides[1].append(_round(rng, level, 1e5 * step_ratio, 1e6 * ttft_ratio, batches[1]))
    pooled = []
    for session, parts in enumerate(sides):
        p = pool_results(parts)
        records = [{**round_record(r), "probe_ns": 1.0} for r in parts]
        interleave = {"id": f"gen{seed}", "session": session, "rounds": records}
        pooled.append(dataclasses.replace(p, loop={"rounds": rounds, "interleave": interleave}))
    return pooled[0], pooled[1]


def test_tpot_is_the_median_decode_step() -> None:
    a, b = interleaved(1.10, 1.0)
    median, tpot = compare_results(a, b, statistic="median"), compare_results(a, b, statistic="tpot")
    assert isinstance(tpot, GenerationComparison) and tpot.on == "tpot" == median.on
    assert tpot.decided_ratio == median.decided_ratio and tpot.verdict == median.verdict == "slower"
    assert tpot.decided_ratio[0] == pytest.approx(1.10, rel=0.01)
    assert tpot.rounds == 20 and tpot.method == "paired"
    assert tpot.worse_by_more_than(0.05) and not tpot.worse_by_more_than(0.15)


def test_ttft_decides_on_the_time_to_first_token_paired_per_round(tmp_path: Path) -> None:
    """Decode steps alike, prefills 15% slower: the TPOT verdict sees nothing, the TTFT verdict
    fails. Paired per round, the 20% the machine moves between rounds cancels: the interval is
    far narrower than the same generations' taken as separate runs."""
    a, b = interleaved(1.0, 1.15)
    on_tpot = compare_results(a, b, statistic="tpot")
    assert on_tpot.verdict == "no significant difference" and not on_tpot.worse_by_more_than(0.05)
    c = compare_results(a, b, statistic="ttft")
    assert isinstance(c, GenerationComparison) and c.on == "ttft"
    ttft = dict(c.also)["ttft"]
    assert ttft.method == "paired" and ttft.rounds == 20
    assert c.decided_ratio == ttft.decided_ratio and c.verdict == ttft.verdict == "slower"
    assert c.decided_ratio[0] == pytest.approx(1.15, rel=0.01)
    assert c.worse_by_more_than(0.05) and not c.worse_by_more_than(0.20)
    assert c.ratio_median == on_tpot.ratio_median  # the table's figures stay the decode steps'
    ratios = paired_slowdowns(a, b, "ttft")
    assert ratios is not None and ratios.size == 20 and np.all(np.abs(ratios - 1.15) < 0.05)
    unpaired = compare_results(*(dataclasses.replace(r, loop={}) for r in (a, b)), statistic="ttft")
    (plo, phi), (ulo, uhi) = c.decided_ratio[1], unpaired.decided_ratio[1]
    assert dict(unpaired.also)["ttft"].method != "paired" and phi - plo < (uhi - ulo) / 2
    # Read back from JSON, the rounds pair the same way.
    write_json([a, b], tmp_path / "g.json")
    again = compare_results(*load_json(tmp_path / "g.json"), statistic="ttft")
    assert again.decided_ratio[:2] == (pytest.approx(c.decided_ratio[0]), pytest.approx(c.decided_ratio[1]))
    assert again.to_dict()["on"] == "ttft" and again.to_dict()["ratio"] == pytest.approx(c.decided_ratio[0])


def test_output_tokens_per_s_fails_when_it_drops() -> None:
    """Higher is better: decode steps 10% slower are 9.1% fewer tokens/s, which fails a gate
    that allows a 5% drop and passes one that allows 10%; 10% faster steps are 'faster'."""
    a, b = interleaved(1.10, 1.0)
    c = compare_results(a, b, statistic="output_tokens_per_s")
    assert isinstance(c, GenerationComparison) and c.higher_is_better
    ratio, (lo, hi), p = c.decided_ratio
    assert ratio == pytest.approx(1 / c.ratio_median) and lo < ratio < hi < 1.0
    assert (lo, hi) == pytest.approx((1 / c.ratio_median_ci[1], 1 / c.ratio_median_ci[0]))
    assert p == c.p_value and c.verdict == "slower"
    assert c.worse_by_more_than(0.05) and not c.worse_by_more_than(0.10)
    faster = compare_results(*interleaved(0.90, 1.0), statistic="output_tokens_per_s")
    assert faster.verdict == "faster" and not faster.worse_by_more_than(0.0)
    assert faster.decided_ratio[0] == pytest.approx(1 / 0.90, rel=0.01)


def test_output_tokens_per_s_counts_the_batch() -> None:
    """The same decode step for a batch of 2 is twice the tokens/s of a batch of 1: the TPOT
    verdict sees no difference, the tokens/s verdict sees B twice as fast (its interval decides:
    the test on the steps is not a test of the rates)."""
    a, b = interleaved(1.0, 1.0, batches=(1, 2))
    assert compare_results(a, b, statistic="tpot").verdict == "no significant difference"
    c = compare_results(a, b, statistic="output_tokens_per_s")
    assert c.decided_ratio[0] == pytest.approx(2.0, rel=0.02) and c.decided_ratio[2] is None
    assert c.verdict == "faster"


def test_a_statistic_the_results_cannot_take_is_refused() -> None:
    a, b = interleaved(1.0, 1.0)
    latency = [dataclasses.replace(r, config={}, generation=None) for r in (a, b)]
    for statistic in ("tpot", "ttft", "output_tokens_per_s"):
        with pytest.raises(
            ConfigError, match=f"--statistic {statistic} is a generation's figure and A holds"
        ):
            compare_results(*latency, statistic=statistic)
    # One generation a side has no TTFT to compare.
    one = []
    for r in (a, b):
        g = r.generation or {}
        one.append(
            dataclasses.replace(
                r, generation={**g, "step_ns": g["step_ns"][:1], "sample_ns": g["sample_ns"][:1]}
            )
        )
    with pytest.raises(InputError, match="two whole generations or more on each side"):
        compare_results(*one, statistic="ttft")
    with pytest.raises(ConfigError, match="--statistic must be one of median, p90, p99, mean, tpot"):
        gate("a.onnx", "b.onnx", statistic="p50")


def test_the_gate_says_what_it_decided_on() -> None:
    """The gate's lines (report.text's latency gate, for generations too) carry a note that
    names the decided figure, and its ratio where the TPOT table does not show it."""
    a, b = interleaved(1.10, 1.15)
    lines = {}
    for statistic in ("tpot", "ttft", "output_tokens_per_s"):
        c = compare_results(a, b, statistic=statistic, threshold=0.05)
        verdict = GateVerdict(a, b, c, 0.05, 20, tuple(_notes(c, a, b, 0.05)), 7, statistic)
        assert verdict.failed and verdict.to_dict()["statistic"] == statistic
        lines[statistic] = render_gate(verdict)
    assert "note: the gate decided on the time per output token (TPOT: the median decode step, paired over " \
        "20 rounds)" in lines["tpot"]  # fmt: skip
    assert "note: the gate decided on the time to first token (TTFT: " in lines["ttft"]
    assert "paired over 20 rounds): ratio 1.1" in lines["ttft"]
    assert "note: the gate decided on output tokens/s (" in lines["output_tokens_per_s"]
    assert "higher is better): ratio 0.9" in lines["output_tokens_per_s"]
    assert (
        "it fails when the interval excludes 1 and the ratio is below 0.950" in lines["output_tokens_per_s"]
    )


def test_the_reach_of_a_rate_is_a_drop() -> None:
    """Six rounds: the sign test needs all six on one side; a rate's note speaks of a drop."""
    six = np.array([0.9, 0.95, 1.0, 1.0, 1.05, 1.1])
    assert _reach(six, 0.03, rate=True) is not None
    assert "can fail only on a drop of about" in str(_reach(six, 0.03, rate=True))
    assert "(all of them)" in str(_reach(six, 0.03, rate=True))
    assert "lower" in str(_reach(six, 0.03, rate=True)) and "slower" not in str(_reach(six, 0.03, rate=True))


@pytest.mark.parametrize(
    ("generation_s", "rounds", "each"),
    [
        (0.060, 66, 2),  # two generations of 60 ms make a round of 80 ms or more
        (0.006, 95, 14),  # 14 of 6 ms: rounds of 84 ms
        (0.5, 16, 1),  # one generation a round: 8 s / 500 ms
        (1.0, 8, 1),  # slow: as many rounds as generations fit, not more time
        (3.0, 6, 1),  # slower still: the six rounds a paired interval needs
    ],
)
def test_generation_rounds_hold_whole_generations(generation_s: float, rounds: int, each: int) -> None:
    assert generation_rounds(GATE_TIME, generation_s) == (rounds, each)
    assert each * generation_s >= ROUND_TIME or each == 1
    assert generation_rounds(GATE_TIME, 0.05, rounds=20) == (20, 8)  # given rounds: 400 ms each


# --- refusals in one line -----------------------------------------------------------------------


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line]


def test_the_cli_refuses_a_statistic_that_no_generation_gives(models: dict[str, str], tmp_path: Path) -> None:
    p = cli("gate", models["add"], models["add"], "--statistic", "ttft")
    assert p.returncode == 2, p.stderr
    (line,) = _error_lines(p.stderr)
    assert line == (
        "inferspeed: error: --statistic ttft is a generation's figure and add.onnx (baseline) is timed one "
        "call at a time (no KV cache, or --single-call): decide on the median, p90, p99 or mean"
    )
    gpt2 = str(DECODERS / "gpt2" / "model.onnx")
    p = cli("gate", gpt2, gpt2, "--single-call", "--statistic", "output_tokens_per_s")
    assert p.returncode == 2 and _error_lines(p.stderr) == [
        "inferspeed gate: error: --statistic output_tokens_per_s is a generation's figure: --single-call "
        "times one decode step"
    ]
    out = tmp_path / "add.json"
    assert (
        cli("run", models["add"], "-t", "0.1", "--warmup", "10ms", "-q", "--json", str(out)).returncode == 0
    )
    p = cli("compare", str(out), str(out), "--statistic", "tpot")
    assert p.returncode == 2 and len(_error_lines(p.stderr)) == 1
    assert "--statistic tpot is a generation's figure" in p.stderr


# --- real gates: GPT-2 against its three-layer variant and against a copy ---------------------------

#: Short generations and a short gate: each invocation takes a few seconds on two busy cores.
SHORT = ("--prompt-tokens", "32", "--gen-tokens", "32", "-t", "1", "--threads", "1")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The GPT-2 fixture, a byte-identical copy, and the same GPT-2 with a third layer (its
    decode step about 1.3-1.5 times as long), side by side."""
    folder = tmp_path_factory.mktemp("decoders")
    shutil.copy(DECODERS / "gpt2" / "model.onnx", folder / "base.onnx")
    shutil.copy(DECODERS / "gpt2" / "config.json", folder / "config.json")
    shutil.copy(folder / "base.onnx", folder / "copy.onnx")
    shutil.copy(DECODERS / "gpt2_3layer" / "model.onnx", folder / "slower.onnx")
    return {name: str(folder / f"{name}.onnx") for name in ("base", "copy", "slower")}


@pytest.mark.parametrize("statistic", ["tpot", "output_tokens_per_s"])
def test_a_decoder_slower_per_token_fails_the_gate(
    pair: dict[str, str], statistic: str, tmp_path: Path
) -> None:
    out = tmp_path / "gate.json"
    # 2 s a side (about 25 rounds): the sign test then tolerates several rounds a busy runner
    # disturbs (with 11 rounds, two disturbed rounds in a CI run let a 1.38x decoder pass).
    p = cli("gate", pair["base"], pair["slower"], *SHORT, "-t", "2", "--statistic", statistic,
            "--fail-if-slower", "10%", "--json", str(out), timeout=180)  # fmt: skip
    assert p.returncode == 1, p.stdout + p.stderr
    assert "gate: FAIL: slower.onnx is slower than base.onnx" in p.stderr
    doc = json.loads(out.read_text())
    g = doc["gate"]
    assert g["statistic"] == statistic and g["failed"] and g["comparison"]["on"] == statistic
    assert [r["config"]["metric"] for r in doc["results"]] == ["generation", "generation"]
    for r in doc["results"]:  # each round holds whole generations, every one pooled
        steps = np.asarray(r["generation"]["step_ns"])
        assert steps.shape[0] >= g["rounds"] and np.all(steps >= 0)
        assert len(r["samples_ns"]) == steps.shape[0] * 31
    assert g["comparison"]["also"]["ttft"]["rounds"] == g["rounds"]  # the TTFT paired too
    if statistic == "output_tokens_per_s":
        assert g["comparison"]["ratio"] < 0.9 and "higher is better" in p.stdout


def test_a_copy_of_the_decoder_passes_the_gate(pair: dict[str, str]) -> None:
    p = cli("gate", pair["base"], pair["copy"], *SHORT, "--statistic", "ttft", "--fail-if-slower", "10%",
            timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stdout + p.stderr
    assert "deciding on the time to first token (TTFT)" in p.stderr
    assert "note: the gate decided on the time to first token (TTFT" in p.stdout
    assert "gate: pass: " in p.stderr


# --- the pytest plugin -----------------------------------------------------------------------------

DECODER_TEST = """
import os

def test_decoder_speed(inferspeed):
    # 1.5 s: enough rounds that one round a stall slowed leaves the paired interval clear of 1
    # (with 6 rounds, the median's interval is their whole range).
    r = inferspeed.benchmark(os.environ["MODEL"], threads=1, max_time=1.5, warmup_time=0.05,
                             prompt_tokens=16, gen_tokens=16)
    assert r.metric == "generation"
"""


def test_the_plugin_gates_a_decoder_on_its_statistic(
    pytester: pytest.Pytester, pair: dict[str, str], models: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saved as the GPT-2, re-measured beside the three-layer GPT-2: output tokens/s dropped by
    more than 10%; --inferspeed-statistic ttft for a model that does not generate fails its test
    in one line."""
    pytester.makepyfile(test_speed=DECODER_TEST)
    run = ("-p", "no:cacheprovider")
    monkeypatch.setenv("MODEL", pair["base"])
    pytester.runpytest_subprocess(*run, "--inferspeed-save", "base", timeout=120).assert_outcomes(passed=1)
    monkeypatch.setenv("MODEL", pair["slower"])
    gated = ("--inferspeed-compare", "base", "--inferspeed-fail-if-slower", "10%")
    slower = pytester.runpytest_subprocess(
        *run, *gated, "--inferspeed-statistic", "output_tokens_per_s", timeout=120
    )
    slower.assert_outcomes(failed=1)
    slower.stdout.fnmatch_lines(
        [
            "*test_decoder_speed is slower than base (re-measured in this session, * interleaved rounds, "
            "seed *): output_tokens_per_s ratio 0.*more than the 10% allowed*",
            "*vs base: output_tokens_per_s x0.* slower (re-measured beside it*",
        ]
    )
    shutil.copy(models["add"], pytester.path / "add.onnx")
    monkeypatch.setenv("MODEL", str(pytester.path / "add.onnx"))
    pytester.makepyfile(
        test_speed="def test_decoder_speed(inferspeed):\n"
        "    import os\n    inferspeed.benchmark(os.environ['MODEL'], max_time=0.2)\n"
    )
    assert pytester.runpytest_subprocess(*run, "--inferspeed-save", "plain", timeout=120).ret == 0
    refused = pytester.runpytest_subprocess(
        *run, "--inferspeed-compare", "plain", "--inferspeed-statistic", "ttft", timeout=120
    )
    refused.assert_outcomes(failed=1)
    refused.stdout.fnmatch_lines(
        ["*inferspeed: *test_decoder_speed: --statistic ttft is a generation's figure and *"]
    )


@pytest.mark.parametrize("statistic", ["ttft", "output_tokens_per_s"])
def test_the_side_lines_show_the_decided_figure(statistic: str, tmp_path: Path) -> None:
    """With --statistic ttft each side's line leads with that side's own TTFT median (the
    median of its generations' prefill and first sampling, as the JSON keeps them), not the
    decode steps' median; with output_tokens_per_s, with the side's batch over its median
    decode step. The pooled ratio under them is the same figure's."""
    a, b = interleaved(1.10, 1.15)
    write_json([a, b], tmp_path / "g.json")
    a, b = load_json(tmp_path / "g.json")
    c = compare_results(a, b, statistic=statistic, baseline_label="base.onnx", candidate_label="new.onnx")
    lines = render_gate(GateVerdict(a, b, c, 0.05, 20, (), 7, statistic)).splitlines()
    figures = []
    for line, label, r in zip(lines, ("base.onnx", "new.onnx"), (a, b), strict=False):
        g = r.generation or {}
        steps, picks = np.asarray(g["step_ns"]), np.asarray(g["sample_ns"])
        if statistic == "ttft":
            figure = float(np.median(steps[:, 0] + picks[:, 0]))
            assert line.startswith(f"{label}: TTFT median {format_duration(figure)} (95% CI ")
            assert f", {steps.shape[0]} generations; TPOT median {format_duration(r.stats.median_ns)}" in line
        else:
            figure = g["batch"] * 1e9 / float(np.median(steps[:, 1:]))
            assert line.startswith(
                f"{label}: output tokens/s {figure:,.1f} (batch 1 over the median decode step"
            )
        figures.append(figure)
    name = "TTFT" if statistic == "ttft" else "output tokens/s"
    assert f"the pooled figures above give {name} {figures[1] / figures[0]:.3f}." in lines[2]
