"""One Result from several measurements of one model with one configuration: interleaved rounds
of a session, or repetitions in fresh worker processes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..config import STATISTICS
from ..stats.diagnostics import Diagnostic, check_bimodal, check_drift, check_few_samples, check_high_cv
from ..stats.generation import generation_figures
from ..stats.states import reading_states
from ..stats.summary import Stats, summarize
from .result import Result, compute_at

__all__ = [
    "SESSION_PEAKS",
    "max_memory",
    "pool_results",
    "pooled_generation",
    "pooled_monitor",
    "round_record",
]


#: The memory figures that differ between measurements of one session: the run's peak (the
#: session was created, and its memory measured, once).
SESSION_PEAKS = ("run_peak_bytes", "run_peak_delta_bytes")


def pool_results(parts: Sequence[Result], *, memory_keys: Sequence[str] | None = SESSION_PEAKS) -> Result:
    """The first part, with every part's samples in order and the figures that follow from them.

    Parameters
    ----------
    parts : sequence of Result
        Measurements of one model with one configuration, in the order they were made.
    memory_keys : sequence of str or None
        The memory figures that take the largest of the parts' values (the default: the run's
        peak, for rounds of one session); None: every ``*_bytes`` figure, for parts that each
        measured their own memory (separate processes).

    Returns
    -------
    Result
        Statistics of the pooled samples; the warm-up's calls and time summed, its cold-start
        figures the first part's; GFLOP/s at the pooled median; the parts' warnings about the
        machine merged by code, those about the samples found again on the pooled samples; the
        parts' monitors pooled (:func:`pooled_monitor`); everything else the first part's.
    """
    first = parts[0]
    samples = np.concatenate([p.samples_ns for p in parts])
    drop = bool(first.config.get("drop_outliers"))
    stats = summarize(samples, first.stats.timer_overhead_ns, drop_outliers=drop)
    return dataclasses.replace(
        first,
        samples_ns=samples,
        stats=stats,
        warmup={
            **first.warmup,  # the cold start is the first part's
            "iterations": sum(p.warmup["iterations"] for p in parts),
            "time_ns": sum(p.warmup["time_ns"] for p in parts),
        },
        memory=max_memory([p.memory for p in parts], memory_keys),
        compute=compute_at(first.compute, stats.median_ns),
        warnings=_pooled_warnings(parts, samples, stats),
        monitor=pooled_monitor([p.monitor for p in parts]) if len(parts) > 1 else first.monitor,
        generation=pooled_generation([p.generation for p in parts]) if len(parts) > 1 else first.generation,
    )


def pooled_generation(records: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The generation record of pooled parts (a decoder's rounds): every part's generations, in
    order, with the figures made again over all of them; the first part's lengths, decoder,
    KV-cache bytes and tokens. None when the first part has none."""
    have = [g for g in records if g]
    if not have or not records[0]:
        return None
    first = have[0]
    width = int(first["gen_tokens"])
    steps = np.concatenate([np.asarray(g["step_ns"], dtype=np.int64).reshape(-1, width) for g in have])
    picks = np.concatenate([np.asarray(g["sample_ns"], dtype=np.int64).reshape(-1, width) for g in have])
    whole = np.concatenate([np.asarray(g["generation_ns"], dtype=np.int64).ravel() for g in have])
    return {
        **first,
        "generations": int(steps.shape[0]),
        **generation_figures(
            steps, picks, whole, prompt_tokens=int(first["prompt_tokens"]), batch=int(first["batch"])
        ),
        "step_ns": steps.tolist(),
        "sample_ns": picks.tolist(),
        "generation_ns": whole.tolist(),
    }


def pooled_monitor(monitors: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The machine-speed monitor of pooled parts: every part's readings, in order, with the
    states and the speed's movement found again over all of them, and ``parts``; no time axis
    (each part's starts at its own zero) and no ``over_time`` (the pooled median's interval is
    the pooled samples' own). None when no part has a monitor."""
    have = [m for m in monitors if m]
    if not have:
        return None
    readings = [float(v) for m in have for v in m.get("readings_ns") or []]
    return {
        "probe_steps": have[0].get("probe_steps"),
        "probes_per_reading": have[0].get("probes_per_reading"),
        "parts": len(monitors),
        "readings_ns": [round(v, 1) for v in readings],
        **reading_states(readings),
    }


#: Findings about the samples themselves, found again on the pooled samples: a part's count,
#: spread or modes are not the pooled result's ("samples 3838" beside "too few samples (136)").
SAMPLE_FINDINGS = ("drift", "bimodal", "high_cv", "few_samples")


def _pooled_warnings(parts: Sequence[Result], samples: np.ndarray, stats: Stats) -> tuple[Diagnostic, ...]:
    """The parts' findings about the machine and the run (the last of each code; the warm-up's
    the first part's, whose warm-up was the full one), and the findings about the samples made
    again on the pooled ones."""
    kept = {w.code: w for p in parts for w in p.warnings if w.code not in SAMPLE_FINDINGS}
    first_warmup = next((w for w in parts[0].warnings if w.code == "warmup"), None)
    if first_warmup is not None:
        kept["warmup"] = first_warmup
    else:
        kept.pop("warmup", None)
    found = (check_drift(samples, 0), check_bimodal(samples), check_high_cv(stats), check_few_samples(stats))
    return (*kept.values(), *(d for d in found if d is not None))


def round_record(result: Result) -> dict[str, Any]:
    """One round of an interleaved measurement as the pooled result keeps it: each of
    config.STATISTICS (``median_ns``, ...) and the sample count."""
    s = result.stats
    record: dict[str, Any] = {f"{name}_ns": float(getattr(s, f"{name}_ns")) for name in STATISTICS}
    record["count"] = s.count
    return record


def max_memory(
    memories: Sequence[Mapping[str, Any] | None], keys: Sequence[str] | None = None
) -> dict[str, Any] | None:
    """The first memory record, with the largest value of each of ``keys`` (every ``*_bytes``
    figure when None) where every record has one; None when the first has none."""
    if not memories or memories[0] is None:
        return None
    out = dict(memories[0])
    for key in keys if keys is not None else [k for k in out if k.endswith("_bytes")]:
        values = [m.get(key) if m is not None else None for m in memories]
        if all(isinstance(v, int) for v in values):
            out[key] = max(int(v) for v in values if v is not None)
    return out
