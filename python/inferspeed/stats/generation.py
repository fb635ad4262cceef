"""Statistics of a decoder's generations: per-step samples in, the figures LLM users state out.

A generation of G tokens is one call over the prompt (the prefill, whose last position gives
the first token) and G - 1 calls of one token each (decode steps). Its samples arrive as a
``[generations, G]`` array of call times (step 0 the prefill; -1 where a generation stopped
early). From them:

- time to first token (TTFT): the prefill call plus the first token's sampling, per
  generation; time per output token (TPOT): the decode steps' calls (the inter-token
  latency of each token after the first, sampling apart);
- the per-position curve: the median over generations of each position's step, and the
  positions far off it (:func:`slow_positions`): a position whose median is well above the
  curve around it (work the model does at that position only), and single steps far above
  their position's median (a stall one generation met);
- tokens per second: prompt tokens over the prefill, output tokens over a decode step, and
  end to end (every token a generation outputs over its whole time).

Generation requests under load (a server's scheduled arrivals, or offline) arrive as each
request's arrival, start and the time each token was chosen (:func:`request_times`): TTFT
from the arrival, TPOT, the inter-token latencies, end to end and the queue wait per request,
then :func:`goodput` against per-request limits and :func:`percentile_limit` for a limit on a
percentile of the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .summary import quantile_ci, summarize

__all__ = [
    "NEIGHBOURS",
    "SLOW_FACTOR",
    "STALL_FACTOR",
    "generation_figures",
    "goodput",
    "percentile_limit",
    "percentile_with_interval",
    "position_curve",
    "request_times",
    "short_stats",
    "single_stream_times",
    "slow_positions",
]

#: Positions on each side whose medians make the curve a position is judged against.
NEIGHBOURS = 8
#: A position whose median is this many times the curve around it (and beyond the curve's own
#: scatter) is called out.
SLOW_FACTOR = 1.5
#: A single step this many times its position's median is a stall.
STALL_FACTOR = 5.0


def position_curve(steps_ns: np.ndarray) -> np.ndarray:
    """The median over generations of each position's call time (NaN where no generation
    reached it); ``steps_ns`` as the module's docstring says, -1 where not measured."""
    x = np.asarray(steps_ns, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        return np.zeros(0)
    x = np.where(x >= 0, x, np.nan)
    out = np.full(x.shape[1], np.nan)
    seen = ~np.all(np.isnan(x), axis=0)
    out[seen] = np.nanmedian(x[:, seen], axis=0)
    return out


def _around(curve: np.ndarray, i: int) -> float:
    """The median of the decode positions around position ``i`` (NEIGHBOURS each side, ``i``
    and the prefill left out)."""
    lo, hi = max(1, i - NEIGHBOURS), min(curve.size, i + NEIGHBOURS + 1)
    near = np.concatenate([curve[lo:i], curve[i + 1 : hi]])
    near = near[np.isfinite(near)]
    return float(np.median(near)) if near.size else float("nan")


def slow_positions(steps_ns: np.ndarray, limit: int = 10) -> dict[str, Any]:
    """The decode positions far off the per-position curve, and the worst single stalls.

    A position is slow when its median over generations is at least SLOW_FACTOR times the
    median of its neighbours and beyond the scatter of the whole curve (its log ratio above
    the median ratio by more than 6 median absolute deviations). A stall is one step at least
    STALL_FACTOR times its position's median. Returns ``positions`` (position, median ns,
    ratio to its neighbours; at most ``limit``, the slowest first) and ``stalls``
    (generation, position, ns, ratio; at most ``limit``), with their counts.
    """
    curve = position_curve(steps_ns)
    ratios = np.full(curve.size, np.nan)
    for i in range(1, curve.size):
        base = _around(curve, i)
        if np.isfinite(curve[i]) and base > 0:
            ratios[i] = curve[i] / base
    logs = np.log(ratios[np.isfinite(ratios)])
    scatter = float(np.median(np.abs(logs - np.median(logs)))) if logs.size else 0.0
    centre = float(np.median(logs)) if logs.size else 0.0
    slow = [
        i
        for i in range(1, curve.size)
        if np.isfinite(ratios[i]) and ratios[i] >= SLOW_FACTOR and np.log(ratios[i]) - centre > 6 * scatter
    ]
    slow.sort(key=lambda i: -ratios[i])
    x = np.asarray(steps_ns, dtype=np.float64)
    stalls: list[dict[str, Any]] = []
    if x.ndim == 2 and x.shape[1] > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            over = np.where(x[:, 1:] >= 0, x[:, 1:] / curve[1:], np.nan)
        rows, cols = np.nonzero(np.nan_to_num(over, nan=0.0) >= STALL_FACTOR)
        stalls = [
            {
                "generation": int(r),
                "position": int(c) + 1,
                "ns": int(x[r, c + 1]),
                "ratio": round(float(over[r, c]), 2),
            }
            for r, c in zip(rows, cols, strict=True)
        ]
        stalls.sort(key=lambda s: -s["ratio"])
    return {
        "positions": [
            {"position": i, "median_ns": float(curve[i]), "ratio": round(float(ratios[i]), 2)}
            for i in slow[:limit]
        ],
        "slow_count": len(slow),
        "stalls": stalls[:limit],
        "stall_count": len(stalls),
    }


def _complete(steps_ns: np.ndarray) -> np.ndarray:
    """The rows of generations that reached their last position."""
    x = np.asarray(steps_ns)
    return x[np.all(x >= 0, axis=1)] if x.ndim == 2 and x.size else np.zeros((0, 0), np.int64)


def generation_figures(
    steps_ns: np.ndarray, sample_ns: np.ndarray, generation_ns: np.ndarray, *, prompt_tokens: int, batch: int
) -> dict[str, Any]:
    """TTFT, end-to-end time, tokens per second, sampling and the per-position curve of the
    generations in ``steps_ns`` / ``sample_ns`` (``[generations, G]``, -1 where not measured)
    and ``generation_ns`` (each complete generation's whole time)."""
    steps = np.asarray(steps_ns, dtype=np.int64)
    samples = np.asarray(sample_ns, dtype=np.int64)
    first = steps[:, 0] >= 0
    ttft = steps[first, 0] + np.maximum(samples[first, 0], 0)
    ttft_stats = summarize(ttft) if ttft.size else None
    prefill = float(np.median(steps[first, 0])) if first.any() else None
    decode = steps[:, 1:][steps[:, 1:] >= 0]
    tpot = float(np.median(decode)) if decode.size else None
    whole = np.asarray(generation_ns, dtype=np.int64)
    whole = whole[whole > 0]
    gen_tokens = steps.shape[1]
    picked = samples[samples >= 0]
    return {
        "ttft": None if ttft_stats is None else _short(ttft_stats.to_dict()),
        "prefill_median_ns": prefill,
        "prompt_tokens_per_s": batch * prompt_tokens / (prefill / 1e9) if prefill else None,
        "output_tokens_per_s": batch / (tpot / 1e9) if tpot else None,
        "end_to_end": None if not whole.size else _short(summarize(whole).to_dict()),
        "end_to_end_tokens_per_s": batch * gen_tokens / (float(np.median(whole)) / 1e9)
        if whole.size
        else None,
        "sampling_median_ns": float(np.median(picked)) if picked.size else None,
        "complete_generations": int(_complete(steps).shape[0]),
        "position_median_ns": [None if not np.isfinite(v) else float(v) for v in position_curve(steps)],
        "off_curve": _with_context_positions(slow_positions(steps), prompt_tokens),
    }


def _with_context_positions(off: dict[str, Any], prompt_tokens: int) -> dict[str, Any]:
    """``off`` with each step's position in the sequence (step s reads the token at position
    prompt_tokens + s - 1: the prompt's, then each one generated)."""
    for item in (*off["positions"], *off["stalls"]):
        item["context_position"] = prompt_tokens + item["position"] - 1
    return off


def _short(stats: dict[str, Any]) -> dict[str, Any]:
    """The figures of a summary a generation reports (count, median and its interval, spread
    and tail percentiles)."""
    keep = (
        "count",
        "min_ns",
        "median_ns",
        "mean_ns",
        "p90_ns",
        "p99_ns",
        "max_ns",
        "std_ns",
        "ci95_median_ns",
    )
    return {k: stats.get(k) for k in keep}


def short_stats(samples_ns: np.ndarray) -> dict[str, Any] | None:
    """The figures a generation reports of ``samples_ns`` (count, median and its interval,
    spread, tail percentiles); None for no samples."""
    x = np.asarray(samples_ns)
    return _short(summarize(x).to_dict()) if x.size else None


def request_times(
    arrivals_ns: np.ndarray,
    start_ns: np.ndarray,
    token_ns: np.ndarray,
    gen_tokens: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per request that chose its every token (``token_ns`` ``[requests, G]``, -1 where not
    reached; times after the start, as ``arrivals_ns`` and ``start_ns``; request i has
    ``gen_tokens[i]`` tokens, its first columns, or G each when None): ``ttft`` (the first
    token's time from the arrival), ``tpot`` (its last token's from the first, over its g - 1
    tokens after it), ``e2e`` (the last token's from the arrival), ``queue`` (the start's from
    the arrival), ``service`` (the last token's from the start), the ``index`` of each such
    request and its ``tokens``, and ``itl``: every gap between two tokens of those requests,
    in request order."""
    tokens = np.asarray(token_ns, dtype=np.int64)
    arrivals = np.asarray(arrivals_ns, dtype=np.int64)
    start = np.asarray(start_ns, dtype=np.int64)
    width = tokens.shape[1] if tokens.ndim == 2 else 0
    count = np.full(start.size, width, np.int64) if gen_tokens is None else np.asarray(gen_tokens, np.int64)
    own = np.arange(width)[None, :] < count[:, None] if width else np.zeros((start.size, 0), bool)
    done = np.all((tokens >= 0) | ~own, axis=1) & (start >= 0) if tokens.size else np.zeros(start.size, bool)
    done &= count >= 1
    t, g, mine = tokens[done], count[done], own[done]
    a, st = arrivals[done], start[done]
    first = t[:, 0] if width else np.zeros(0, np.int64)
    last = t[np.arange(t.shape[0]), g - 1] if width else np.zeros(0, np.int64)
    return {
        "index": np.flatnonzero(done),
        "tokens": g,
        "ttft": first - a,
        "tpot": np.rint((last - first) / np.maximum(g - 1, 1)).astype(np.int64),
        "e2e": last - a,
        "queue": st - a,
        "service": last - st,
        "itl": np.diff(t, axis=1)[mine[:, 1:]] if width > 1 else np.zeros(0, np.int64),
    }


def goodput(times: dict[str, np.ndarray], limits_ns: dict[str, float], span_s: float) -> dict[str, Any]:
    """The requests of ``times`` (:func:`request_times`) within every per-request limit
    (``limits_ns``: "ttft" and / or "tpot", nanoseconds): ``goodput_per_s`` (those requests
    over ``span_s``, the run's time to its last completion), their share, and how many missed
    each limit (``missed``: by limit, and ``both`` where two limits were missed)."""
    ok = np.ones(times["ttft"].size, dtype=bool)
    over: dict[str, np.ndarray] = {}
    for figure, limit in limits_ns.items():
        over[figure] = times[figure] > limit
        ok &= ~over[figure]
    missed = {figure: int(o.sum()) for figure, o in over.items()}
    if len(over) > 1:
        missed["both"] = int(np.logical_and.reduce(list(over.values())).sum())
    count = int(ok.sum())
    return {
        "limits_ns": dict(limits_ns),
        "requests": int(ok.size),
        "met": count,
        "met_share": count / ok.size if ok.size else None,
        "goodput_per_s": count / span_s if span_s > 0 else 0.0,
        "missed": missed,
    }


def percentile_limit(samples_ns: np.ndarray, percentile: float, limit_ns: float) -> dict[str, Any]:
    """The ``percentile`` of ``samples_ns`` (numpy's linear interpolation) with its
    distribution-free 95% interval (widened to hold the estimate), against ``limit_ns``:
    ``met`` is the estimate's verdict, ``decided`` whether the interval lies on one side."""
    if np.asarray(samples_ns).size == 0:
        return {"percentile": percentile, "limit_ns": limit_ns, "value_ns": None, "ci95_ns": [None, None],
                "met": False, "decided": False}  # fmt: skip
    value, lo, hi = percentile_with_interval(samples_ns, percentile)
    decided = (hi is not None and hi <= limit_ns) or (lo is not None and lo > limit_ns)
    return {
        "percentile": percentile,
        "limit_ns": limit_ns,
        "value_ns": value,
        "ci95_ns": [lo, hi],
        "met": value <= limit_ns,
        "decided": bool(decided),
    }


def percentile_with_interval(
    samples_ns: np.ndarray, percentile: float
) -> tuple[float, float | None, float | None]:
    """The ``percentile`` of ``samples_ns`` (numpy's linear interpolation) and its
    distribution-free 95% interval, widened where needed to contain the estimate.

    With very few samples the order statistic that bounds the quantile from below can be the
    largest sample, above the interpolated estimate (two samples, p99: the interval starts at
    the larger one, the estimate lies between them). Widening to the estimate only adds
    coverage; from :func:`~inferspeed.analysis.capacity.step_requests` samples on it never
    happens."""
    latency = np.sort(np.asarray(samples_ns, dtype=np.float64))
    value = float(np.percentile(latency, percentile))
    lo, hi = quantile_ci(latency, percentile / 100.0)
    lo = None if lo is None else min(lo, value)
    hi = None if hi is None else max(hi, value)
    return value, lo, hi


def single_stream_times(record: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Each whole generation of a single-stream record (the Result's ``generation``: its
    ``step_ns``, ``sample_ns`` and ``generation_ns``) as a request with no queue: ``ttft`` (the
    prefill's call and the first token's sampling) and ``tpot`` (the rest of the generation
    over its G - 1 tokens). A server's request is never faster: it binds, calls and samples the
    same steps, and may wait."""
    g = int(record.get("gen_tokens") or 0)
    steps = np.asarray(record.get("step_ns") or [], dtype=np.int64).reshape(-1, max(g, 1))
    picks = np.asarray(record.get("sample_ns") or [], dtype=np.int64).reshape(steps.shape)
    whole = np.asarray(record.get("generation_ns") or [], dtype=np.int64)
    complete = np.all(steps >= 0, axis=1)
    if g < 2 or whole.size != int(complete.sum()):
        return {"ttft": np.zeros(0, np.int64), "tpot": np.zeros(0, np.int64)}
    ttft = steps[complete, 0] + picks[complete, 0]
    return {"ttft": ttft, "tpot": np.rint((whole - ttft) / (g - 1)).astype(np.int64)}
