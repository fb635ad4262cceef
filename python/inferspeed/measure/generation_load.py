"""A decoder's generation requests under load: the server scenario (scheduled arrivals) and
offline (every request queued at once), timed in the core.

Each request is one whole greedy generation of the plan's prompt and output tokens, or of its own
(``Config.request_lengths``, :mod:`~inferspeed.measure.request_lengths`: the streams are built for
the longest, a request's prompt is the first of the plan's ids). ``concurrency``
streams share the session, each a core ``Generation`` of its own (its own cache buffers and
IoBinding) on a C++ thread of its own (``_core.generation_load``); the first free stream takes the
oldest waiting request. The core reads the clock as each token is chosen, so a request's time to
first token counts from its **scheduled** arrival, queueing included (no coordinated omission),
and its time per output token, inter-token latencies and end-to-end time come from the same
clock. Python draws the schedule before (:func:`~inferspeed.measure.scenarios.arrival_offsets`)
and makes the figures after (:func:`~inferspeed.stats.generation.request_times`).

The Result's samples are the inter-token latencies of the completed requests (its headline is
their median: the time per output token under this load); the noise checks read the decode
steps' calls (the model's work). ``scenario_stats`` holds the load (rates offered, scheduled and
achieved, queue, service, the scheduler's lateness), ``generation`` the requests' figures (TTFT,
TPOT, ITL, end to end, goodput against ``slo``) and every request's times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core
from ..config import CHUNK_TIME, Config, slo_key
from ..stats.generation import goodput, percentile_limit, request_times, short_stats
from ..stats.summary import summarize
from .loop import Timed
from .request_lengths import RequestLengths
from .scenarios import arrival_offsets, scheduled_rate

__all__ = [
    "LoadRun",
    "load_record",
    "run_generation_offline",
    "run_generation_server",
    "scenario_figures",
    "slo_figures",
    "timed_load",
]

#: The offline run's requests: this many times what the streams could serve in the duration at
#: one stream's speed (a request left over is never started; none may run short).
OFFLINE_MARGIN = 2.0


@dataclass
class LoadRun:
    """What one load run served: the streams, each request's arrival, prompt and output tokens
    and the core's record (start_ns, token_ns, step_ns, stream, waited: ns after the start, -1
    not reached); ``lengths`` where the requests' lengths varied."""

    streams: int
    arrivals_ns: np.ndarray
    prompt_tokens: np.ndarray
    gen_tokens: np.ndarray
    record: dict[str, Any]
    single_generation_ns: float
    lengths: RequestLengths | None = None

    @property
    def times(self) -> dict[str, np.ndarray]:
        """Each completed request's figures (:func:`~inferspeed.stats.generation.request_times`)."""
        r = self.record
        return request_times(self.arrivals_ns, r["start_ns"], r["token_ns"], self.gen_tokens)

    def requests(self, config: Config) -> int:
        """The requests of the run: a server's scheduled ones, offline's started ones (more
        were queued than the duration could take)."""
        if config.scenario == "server":
            return int(self.arrivals_ns.size)
        return int((np.asarray(self.record["start_ns"]) >= 0).sum())

    @property
    def span_s(self) -> float:
        """Seconds from the start to the last token chosen (0 when none was)."""
        tokens = np.asarray(self.record["token_ns"])
        return float(tokens.max()) / 1e9 if tokens.size and tokens.max() > 0 else 0.0


def _streams(first: _core.Generation, make: Any, count: int) -> tuple[list[_core.Generation], float]:
    """``first`` and ``count`` - 1 more Generations from ``make()``, each having run one whole
    generation (the output buffers it learns serve every request it takes); and the shortest
    such generation's time (ns)."""
    streams = [first, *(make() for _ in range(count - 1))]
    times = [float(np.min(g.run(warmup=0, max_repetitions=1)["generation_ns"])) for g in streams]
    return streams, min(times)


def _serve(
    streams: list[_core.Generation],
    arrivals: np.ndarray,
    config: Config,
    stop_after_s: float,
    lengths: RequestLengths | None,
    single: float,
) -> LoadRun:
    """The requests arriving at ``arrivals``, of the streams' lengths or each of its own from
    ``lengths``."""
    first = streams[0]
    count = int(arrivals.size)
    if lengths is None:
        prompt = np.full(count, first.prompt_tokens, dtype=np.int64)
        gen = np.full(count, first.gen_tokens, dtype=np.int64)
    else:
        prompt, gen = lengths.draw(count)
    record = _core.generation_load(
        streams,
        arrivals.tolist(),
        spin_ns=int(config.scheduler_spin * 1e9),
        chunk_ns=int(CHUNK_TIME * 1e9),
        stop_after_ns=int(stop_after_s * 1e9),
        prompt_tokens=[] if lengths is None else prompt.tolist(),
        gen_tokens=[] if lengths is None else gen.tolist(),
    )
    return LoadRun(len(streams), arrivals, prompt, gen, record, single, lengths)


def run_generation_server(
    first: _core.Generation, make: Any, config: Config, lengths: RequestLengths | None = None
) -> LoadRun:
    """The server scenario: requests at ``config.qps`` (Poisson or constant, seeded) for the
    scenario's duration, ``config.concurrency`` streams (``first`` and more from ``make()``),
    each request of the streams' lengths or of its own from ``lengths``; every scheduled
    request is served unless interrupted."""
    assert config.qps is not None
    arrivals = arrival_offsets(config.qps, config.scenario_duration, config.arrival, config.seed)
    streams, single = _streams(first, make, config.concurrency)
    return _serve(streams, arrivals, config, 0.0, lengths, single)


def run_generation_offline(
    first: _core.Generation, make: Any, config: Config, lengths: RequestLengths | None = None
) -> LoadRun:
    """The offline scenario: every request queued at the start, ``config.concurrency`` streams
    take them back to back; none starts after the scenario's duration. The requests queued:
    OFFLINE_MARGIN times what the streams could serve, a request taking the longest
    generation's time scaled to the mean output tokens where the lengths vary."""
    duration = config.scenario_duration
    streams, single = _streams(first, make, config.concurrency)
    per_request = single if lengths is None else single * lengths.mean_output / first.gen_tokens
    k = len(streams)
    count = math.ceil(OFFLINE_MARGIN * duration * 1e9 / max(per_request, 1.0) * k) + 2 * k
    arrivals = np.zeros(count, dtype=np.int64)
    return _serve(streams, arrivals, config, duration, lengths, single)


def slo_figures(
    times: Mapping[str, np.ndarray], slo: Mapping[str, float], span_s: float
) -> dict[str, Any] | None:
    """The requests against ``slo`` (Config.slo: seconds by key): goodput against each figure's
    per-request limit (the tightest where a figure has several keys), and each percentile key
    judged on the run (``percentiles``: by key, :func:`~inferspeed.stats.generation.percentile_limit`);
    None without limits."""
    if not slo:
        return None
    limits: dict[str, float] = {}
    percentiles: dict[str, Any] = {}
    for key, seconds in slo.items():
        figure, pct = slo_key(key)
        limits[figure] = min(limits.get(figure, math.inf), seconds * 1e9)
        if pct is not None:
            percentiles[key] = {"figure": figure, **percentile_limit(times[figure], pct, seconds * 1e9)}
    return {**goodput(dict(times), limits, span_s), "percentiles": percentiles}


def _lateness(run: LoadRun) -> np.ndarray:
    """start - arrival of the requests that found their stream idle and waiting."""
    r = run.record
    start, waited = np.asarray(r["start_ns"]), np.asarray(r["waited"]).astype(bool)
    took = (start >= 0) & waited
    late: np.ndarray = (start - run.arrivals_ns)[took]
    return late


def scenario_figures(run: LoadRun, config: Config, batch: int) -> dict[str, Any]:
    """The Result's ``scenario_stats`` of a load run: the rates (tokens per second: the
    completed requests' own output and prompt tokens, times the batch, over the span), the
    queue, each request's service (its start to its last token) and the scheduler's lateness."""
    times = run.times
    completed = int(times["e2e"].size)
    span = run.span_s
    achieved = completed / span if span > 0 else 0.0
    output_tokens = int(times["tokens"].sum()) * batch
    prompt_tokens = int(run.prompt_tokens[times["index"]].sum()) * batch
    figures: dict[str, Any] = {
        "duration_s": config.scenario_duration,
        "concurrency": run.streams,
        "requests": run.requests(config),
        "completed": completed,
        "throughput_per_s": achieved,
        "samples_per_s": achieved * batch,
        "output_tokens_per_s": output_tokens / span if span > 0 else 0.0,
        "prompt_tokens_per_s": prompt_tokens / span if span > 0 else 0.0,
        "queue_stats": summarize(times["queue"]).to_dict() if completed else None,
        "service_stats": summarize(times["service"]).to_dict() if completed else None,
    }
    if config.scenario == "server":
        assert config.qps is not None
        lateness = _lateness(run)
        figures.update(
            offered_qps=float(config.qps),
            scheduled_qps=scheduled_rate(run.arrivals_ns, float(config.qps)),
            achieved_qps=achieved,
            arrival=config.arrival,
            scheduler_lateness_stats=summarize(lateness).to_dict() if lateness.size else None,
        )
    return figures


def load_record(run: LoadRun, config: Config) -> dict[str, Any]:
    """The requests' part of the Result's ``generation``: each figure's summary (TTFT from the
    scheduled arrival, or for offline from the request's start; TPOT, ITL, end to end, queue),
    the SLO's verdicts, and every request's times (``arrival_ns``, ``start_ns``, ``token_ns``
    [requests, G] and ``request_step_ns`` [requests, G], ns after the start, -1 not reached or
    beyond the request's tokens; ``stream``), its ``request_prompt_tokens`` and
    ``request_gen_tokens``, and how they were chosen (``request_lengths``: None when every
    request has the plan's)."""
    times = run.times
    r = run.record
    offline = config.scenario == "offline"
    ttft = times["ttft"] - times["queue"] if offline else times["ttft"]
    return {
        "streams": run.streams,
        "requests": run.requests(config),
        "completed": int(times["e2e"].size),
        "ttft_from": "start" if offline else "scheduled arrival",
        "ttft": short_stats(ttft),
        "tpot": short_stats(times["tpot"]),
        "itl": short_stats(times["itl"]),
        "end_to_end": short_stats(times["e2e"]),
        "queue": short_stats(times["queue"]),
        "single_generation_ns": run.single_generation_ns,
        "slo": None if offline else slo_figures(times, config.slo, run.span_s),
        "arrival_ns": run.arrivals_ns.astype(np.int64).tolist(),
        "start_ns": np.asarray(r["start_ns"], dtype=np.int64).tolist(),
        "token_ns": np.asarray(r["token_ns"], dtype=np.int64).tolist(),
        "request_step_ns": np.asarray(r["step_ns"], dtype=np.int64).tolist(),
        "stream": np.asarray(r["stream"], dtype=np.int64).tolist(),
        "request_prompt_tokens": run.prompt_tokens.astype(np.int64).tolist(),
        "request_gen_tokens": run.gen_tokens.astype(np.int64).tolist(),
        "request_lengths": None if run.lengths is None else run.lengths.describe(),
    }


def timed_load(run: LoadRun, config: Config, batch: int) -> Timed:
    """The measurement path's timed phase of a load run: the completed requests' inter-token
    latencies as the samples, their decode steps' calls as what the noise checks read, the
    scenario's figures."""
    times = run.times
    steps = np.asarray(run.record["step_ns"], dtype=np.int64)[times["index"]]
    decode = steps[:, 1:].ravel() if steps.size else np.zeros(0, np.int64)
    return Timed(
        times["itl"].astype(np.int64),
        bool(run.record["interrupted"]),
        service_ns=decode[decode >= 0],
        figures=scenario_figures(run, config, batch),
    )
