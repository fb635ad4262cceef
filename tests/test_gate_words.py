"""What the gate says and decides beyond its median: paired tails, one threshold behind the table
and the exit, a fresh and recorded round order, a note when the rounds are too few to fail, side
lines that give the ratio, and one rule for every percentage flag."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from inferspeed import Config, InputError, Result, summarize
from inferspeed.analysis.compare import (
    PAIRED_MIN_ROUNDS,
    _tail_ratio_ci,
    compare,
    paired_ratios,
    paired_tail,
    tail_calls,
)
from inferspeed.analysis.verdicts import one_threshold
from inferspeed.cli import build_parser
from inferspeed.cli.values import parse_fraction, parse_slowdown
from inferspeed.errors import ConfigError
from inferspeed.report.text import gate_decision, render_gate
from inferspeed.results.pool import pool_results, round_record
from inferspeed.results.result import write_json
from inferspeed.tools.gate import GateVerdict, _check_tail, _reach, gate, plan_gate
from inferspeed.tools.tradeoff import TradeoffResult, speedup_notes

from .test_cli import cli

# --- constructed interleaved runs -----------------------------------------------------------------


def _part(x: np.ndarray) -> Result:
    x = np.round(x).astype(np.int64)
    return Result(x, summarize(x), {"name": "m"}, {}, {}, warmup={"iterations": 1, "time_ns": 1})


def _pooled(parts: list[Result], run: str, session: int) -> Result:
    """Rounds pooled as measure_interleaved pools them, with the pairing they carry."""
    pooled = pool_results(parts)
    records = [{**round_record(p), "probe_ns": 1.0} for p in parts]
    return dataclasses.replace(
        pooled, loop={"interleave": {"id": run, "session": session, "rounds": records}}
    )


def bursty_side(rng: np.random.Generator, rounds: int, calls: int) -> list[Result]:
    """One side's rounds on a machine with bursts: in 15% of a side's rounds a tenth of its
    calls run 1.5 times slower. Both sides of an A/A draw from this; a side's pooled p99 then
    depends on how many bursts it happened to get, which no per-sample interval sees."""
    parts = []
    for _ in range(rounds):
        x = rng.lognormal(np.log(1e5), 0.05, calls)
        if rng.random() < 0.15:
            start = int(rng.integers(0, calls - calls // 10))
            x[start : start + calls // 10] *= 1.5
        parts.append(_part(x))
    return parts


def aa_pair(seed: int, rounds: int = 60, calls: int = 250) -> tuple[Result, Result]:
    rng = np.random.default_rng(seed)
    return (
        _pooled(bursty_side(rng, rounds, calls), f"aa{seed}", 0),
        _pooled(bursty_side(rng, rounds, calls), f"aa{seed}", 1),
    )


def shifted_pair(ratio: float, rounds: int = 20, calls: int = 300, seed: int = 0) -> tuple[Result, Result]:
    """Interleaved rounds of B = A * ``ratio`` (1% noise within a round, 3% between rounds,
    which both sides of a round share)."""
    rng = np.random.default_rng(seed)
    base, cand = [], []
    for _ in range(rounds):
        level = 1e5 * (1 + 0.03 * rng.standard_normal())
        base.append(_part(level * rng.lognormal(0.0, 0.01, calls)))
        cand.append(_part(ratio * level * rng.lognormal(0.0, 0.01, calls)))
    return _pooled(base, f"s{seed}", 0), _pooled(cand, f"s{seed}", 1)


# --- tails, paired -----------------------------------------------------------------------------------


def test_the_p99_is_paired_where_the_unpaired_interval_calls_an_a_a_slower() -> None:
    """A/A on a bursty machine: each run's own p99 interval (unpaired) excludes 1 in most pairs;
    the p99 paired over blocks of rounds (here each round holds 250 >= 200 calls: one round a
    block) keeps its 95%: the false alarms of the tail note are gone."""
    unpaired = paired = 0
    reps = 30
    for seed in range(reps):
        a, b = aa_pair(seed)
        c = compare(a, b)
        ratio = float(b.stats.p99_ns / a.stats.p99_ns)
        lo, hi = _tail_ratio_ci(a, b, ratio)
        unpaired += lo > 1.0 or hi < 1.0
        plo, phi = c.ratio_p99_ci
        paired += plo > 1.0 or phi < 1.0
        assert c.p99_blocks == 60 and c.p99_quantile == pytest.approx(0.99)
    assert unpaired >= reps // 3, unpaired
    assert paired <= 3, paired


def test_a_tail_too_short_for_its_quantile_is_refused_or_named_by_its_real_level() -> None:
    # 12 rounds of 20 calls a side: 240 calls, too few for six blocks of 200 calls.
    a, b = (
        _pooled([_part(np.full(20, 1e5) * (1 + 0.01 * k)) for k in range(12)], "short", s) for s in (0, 1)
    )
    with pytest.raises(InputError, match=r"too few calls for a paired p99: .* the p97\.6 at best"):
        compare(a, b, statistic="p99")
    c = compare(a, b)
    # The column is then the p97.6: six blocks of two rounds (40 calls: level 40 / 41).
    assert c.p99_blocks == PAIRED_MIN_ROUNDS and c.p99_quantile == pytest.approx(40 / 41)
    assert tail_calls(0.99) == 200 and tail_calls(0.90) == 20
    # Blocks of consecutive rounds that hold the quantile: 30 rounds of 50 calls -> 7 blocks of 4
    # rounds (the two left over join the last), each an estimate of the p99 itself.
    rng = np.random.default_rng(3)
    rounds = [rng.lognormal(0, 0.1, 50) for _ in range(30)]
    found = paired_tail(rounds, rounds, 0.99)
    assert found is not None and found.blocks == 7 and found.quantile == pytest.approx(0.99)
    assert found.ratio == 1.0 and found.p_value == 1.0


def test_the_gate_refuses_a_p99_its_calls_cannot_hold_before_it_measures() -> None:
    plan = plan_gate(Config(max_time=0.5))
    with pytest.raises(ConfigError, match=r"--statistic p99 needs 1200 calls a side .* give --max-time 8s"):
        _check_tail("p99", plan, 0.005)  # 5 ms a call: 100 calls in 0.5 s
    _check_tail("p99", plan, 1e-5)  # 50 000 calls: enough
    _check_tail("median", plan, 0.005)  # the median needs no blocks


# --- one threshold, the rule, the notes ------------------------------------------------------------


def test_the_table_and_the_exit_agree_around_the_threshold(tmp_path: Path) -> None:
    """A paired slowdown of 1.5% is significant; a 1% gate fails it and its table says
    "slower", a 2% gate passes it and its table says "no significant difference" (once the
    table said that above "gate: FAIL", its threshold fixed at 2%)."""
    a, b = shifted_pair(1.015)
    for limit, failed, verdict in ((0.01, True, "slower"), (0.02, False, "no significant difference")):
        c = compare(a, b, threshold=one_threshold(None, limit))
        assert c.significant and c.verdict == verdict and gate_decision(c, limit)[0] is failed
    write_json([a, b], tmp_path / "ab.json")
    for pct, code, verdict in (("1%", 1, "slower (vs"), ("2%", 0, "no significant difference (vs")):
        p = cli("compare", str(tmp_path / "ab.json"), "--fail-if-slower", pct)
        assert p.returncode == code and verdict in p.stdout and f"threshold {pct}" in p.stdout, p.stdout
        assert (
            "gate: FAIL" if code else "fails when the interval excludes 1 and the ratio exceeds"
        ) in p.stderr
    both = cli("compare", str(tmp_path / "ab.json"), "--fail-if-slower", "1%", "--threshold", "2%")
    assert both.returncode == 2 and len(both.stderr.strip().splitlines()) == 1
    assert "--threshold 2.0% and --fail-if-slower 1.0% disagree" in both.stderr
    assert (
        cli("compare", str(tmp_path / "ab.json"), "--fail-if-slower", "1%", "--threshold", "1%").returncode
        == 1
    )
    with pytest.raises(ConfigError, match="disagree"):
        one_threshold(0.02, 0.01)
    assert one_threshold(None, None) == 0.02 and one_threshold(0.05, None) == 0.05


def test_a_note_says_when_the_rounds_are_too_few_for_the_gate_to_fail() -> None:
    six = np.array([1.01, 0.99, 1.02, 0.98, 1.0, 1.03])
    assert _reach(six, 0.03) == "with 6 paired rounds the gate fails only when all 6 are slower"
    wide = np.array([0.8, 1.2, 0.9, 1.1, 1.0, 0.85, 1.15, 0.95, 1.05, 1.0, 0.9, 1.1])
    note = _reach(wide, 0.03)
    # 12 rounds: the sign test needs 10 of them; the 3rd smallest ratio is 0.9 of the median.
    assert note is not None and "slowdown of about 11.1% or more, not 3.0%" in note
    assert "needs 10 of the 12 slower" in note
    many = np.random.default_rng(0).lognormal(0, 0.005, 100)
    assert _reach(many, 0.03) is None


# --- the side lines and the seed ------------------------------------------------------------------


def test_the_side_lines_give_the_ratio_they_sit_above() -> None:
    a, b = shifted_pair(1.05)
    c = compare(a, b, threshold=0.03, baseline_label="a.onnx", candidate_label="b.onnx")
    text = render_gate(GateVerdict(a, b, c, 0.03, 20, seed=42))
    pooled = b.stats.median_ns / a.stats.median_ns
    assert f"the pooled figures above give median {pooled:.3f}" in text
    assert "(random order, seed 42)" in text and "the p99's over 20 blocks of rounds" in text
    on_mean = compare(a, b, statistic="mean", baseline_label="a.onnx", candidate_label="b.onnx")
    text = render_gate(GateVerdict(a, b, on_mean, 0.03, 20, seed=1))
    assert re.search(r"b\.onnx: median [^,]+ \(95% CI [^)]+\), mean ", text)
    assert f"median {pooled:.3f}, mean {b.stats.mean_ns / a.stats.mean_ns:.3f}" in text


def test_the_round_order_is_fresh_recorded_and_repeated_by_its_seed(models: dict[str, str]) -> None:
    config = Config(threads=1, max_time=0.06, warmup_time=0.01)
    runs = [gate(models["mlp3"], models["mlp3"], config, rounds=8, seed=s) for s in (7, 7, None, None)]
    orders = [v.baseline.loop["interleave"]["orders"] for v in runs]
    assert runs[0].seed == runs[1].seed == 7 and orders[0] == orders[1]
    assert runs[2].seed is not None and runs[3].seed is not None and runs[2].seed != runs[3].seed
    for v in runs:
        assert v.baseline.loop["interleave"]["seed"] == v.seed and v.to_dict()["seed"] == v.seed
    assert runs[0].to_dict()["threshold"] == 0.02


def test_the_gate_command_prints_and_saves_its_seed(models: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    quick = (models["mlp3"], models["mlp3"], "--threads", "1", "--max-time", "0.1", "--rounds", "6")
    p = cli("gate", *quick, "--seed", "11", "--json", str(out), "--fail-if-slower", "50%")
    assert p.returncode == 0, p.stderr
    assert "(--seed 11)" in p.stderr and "(random order, seed 11)" in p.stdout
    doc = json.loads(out.read_text())
    assert doc["gate"]["seed"] == 11 and doc["gate"]["threshold"] == 0.5
    assert doc["results"][0]["config"]["seed"] == 11
    fresh = cli("gate", *quick)
    seed = re.search(r"\(--seed (\d+)\)", fresh.stderr)
    assert fresh.returncode == 0 and seed is not None and f"seed {seed.group(1)})" in fresh.stdout
    assert "note: with 6 paired rounds the gate " in fresh.stdout


# --- percentages ---------------------------------------------------------------------------------


def _percent_flags() -> dict[tuple[str, str], argparse.Action]:
    """Every flag that takes a percentage, by (command, flag), found by its parser or metavar."""
    found = {}
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for a in sub._actions:
                    if a.type in (parse_fraction, parse_slowdown) or a.metavar == "PCT":
                        found[(name, a.option_strings[0])] = a
    return found


def test_every_percentage_flag_takes_one_rule() -> None:
    flags = _percent_flags()
    expected = {
        ("gate", "--fail-if-slower"), ("gate", "--fail-if-more"), ("gate", "--threshold"),
        ("compare", "--fail-if-slower"), ("compare", "--fail-if-more"), ("compare", "--threshold"),
        ("run", "--target-ci"),
    }  # fmt: skip
    assert expected <= set(flags), sorted(flags)
    for where, action in flags.items():
        assert action.type is not None and action.type("3%") == pytest.approx(0.03), where
        for bare, reading in (("3", "write 3% for 3 percent, or 300% for the fraction 3"), ("0.05", "or 5%")):
            with pytest.raises(argparse.ArgumentTypeError, match=re.escape(reading)):
                action.type(bare)


@pytest.mark.parametrize(
    "argv",
    [
        ["gate", "a.onnx", "b.onnx", "--fail-if-slower", "3"],
        ["gate", "a.onnx", "b.onnx", "--threshold", "2"],
        ["gate", "a.onnx", "b.onnx", "--metric", "instructions", "--fail-if-more", "1"],
        ["compare", "a.json", "b.json", "--fail-if-slower", "3"],
        ["compare", "a.json", "b.json", "--threshold", "0.02"],
        ["run", "a.onnx", "--target-ci", "1"],
    ],
)
def test_a_bare_number_is_refused_in_one_line(argv: list[str]) -> None:
    p = cli(*argv)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "needs a % sign" in p.stderr


def test_the_tradeoff_speedup_and_its_median_column_do_not_contradict() -> None:
    def row(label: str, median: float, speedup: float, ci: tuple[float, float]) -> dict[str, object]:
        pooled = 7.5e6 / median
        return {"label": label, "median_ns": median, "speedup": speedup, "speedup_ci": list(ci),
                "pooled_speedup": pooled, "rounds": 30, "reference": False}  # fmt: skip

    base = {"label": "base", "median_ns": 7.5e6, "reference": True}
    found = TradeoffResult(
        [base, row("int8", 8.64e6, 1.01, (0.99, 1.03)), row("fp16", 7.4e6, 1.01, (0.99, 1.03))]
    )
    (note,) = speedup_notes(found)
    assert note.startswith("note: int8: the medians give 0.87x (7.50 ms / 8.64 ms); its speedup 1.01x")
    assert paired_ratios(*shifted_pair(1.0)) is not None
