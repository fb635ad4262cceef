"""A decoder's generation requests under load as a saved result holds them: each request's
figures read back from the per-request arrays of its ``generation`` record (the server or
offline scenario; :func:`~inferspeed.measure.generation_load.load_record` writes them), for
what compares and plots a load after it ran.

A single-stream generation record holds every generation's steps (``step_ns``); a load's holds
every request's arrival, start and the time each token was chosen (``arrival_ns``,
``start_ns``, ``token_ns`` ``[requests, G]``), the calls it made (``request_step_ns``) and
``ttft_from``: whether its time to first token counts from the scheduled arrival (server) or
from the request's start (offline).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .generation import request_times

__all__ = ["is_load", "position_medians", "request_figures", "tokens_over_time"]


def is_load(generation: Mapping[str, Any] | None) -> bool:
    """Whether a result's ``generation`` record is of requests under load (it has their
    per-request arrays) rather than of single-stream generations."""
    return bool(generation) and "token_ns" in (generation or {})


def request_figures(generation: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Each completed request's figures, in request order (:func:`request_times`): ``ttft``
    as the load's report counts it (from the scheduled arrival; offline from the request's
    start), ``tpot``, ``e2e``, ``queue``, ``itl`` (every gap between two tokens of a request)
    and the ``index`` of each completed request."""
    lengths = generation.get("request_gen_tokens")  # each request's own output length, when varied
    times = request_times(
        np.asarray(generation.get("arrival_ns") or [], dtype=np.int64),
        np.asarray(generation.get("start_ns") or [], dtype=np.int64),
        np.asarray(generation.get("token_ns") or [], dtype=np.int64),
        None if lengths is None else np.asarray(lengths, dtype=np.int64),
    )
    if generation.get("ttft_from") == "start":
        times = {**times, "ttft": times["ttft"] - times["queue"]}
    return times


def position_medians(generation: Mapping[str, Any]) -> np.ndarray:
    """The median over the completed requests of each token's gap from the token before it
    (position 1 to G - 1; NaN where none): the load's latency by position."""
    tokens = np.asarray(generation.get("token_ns") or [], dtype=np.float64)
    index = request_figures(generation)["index"]
    if tokens.ndim != 2 or tokens.shape[1] < 2 or index.size == 0:
        return np.zeros(0)
    done = tokens[index]
    done[done < 0] = np.nan  # beyond a shorter request's own length (varied lengths)
    diffs = np.diff(done, axis=1)
    gaps = np.full(diffs.shape[1], np.nan)
    have = np.isfinite(diffs).any(axis=0)
    gaps[have] = np.nanmedian(diffs[:, have], axis=0)
    return gaps


def tokens_over_time(generation: Mapping[str, Any], bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Tokens chosen per second over the run, in ``bins`` equal slices from the start to the
    last token: (each slice's middle in seconds, its tokens/s); empty without tokens."""
    tokens = np.asarray(generation.get("token_ns") or [], dtype=np.float64).ravel()
    tokens = tokens[tokens >= 0]
    if tokens.size == 0 or tokens.max() <= 0:
        return np.zeros(0), np.zeros(0)
    edges = np.linspace(0.0, float(tokens.max()), bins + 1)
    counts, _ = np.histogram(tokens, bins=edges)
    width_s = (edges[1] - edges[0]) / 1e9
    batch = int(generation.get("batch") or 1)
    return (edges[:-1] + edges[1:]) / 2e9, counts * batch / width_s
