"""A sweep's file: one JSON line per cell, written by ``inferspeed sweep`` (and by
``sweep --cluster``, whose lines add the host), read to resume a sweep and to report it.

This module owns that format, as :mod:`~inferspeed.results.result` owns the result JSON: the
line (:class:`SweepLine`) and its JSON form both ways, a cell's key and its label, appending a
line, reading the file for a resume (a partial last line cut off the file) and for a report (a
last line cut short left out, with a note), telling a sweep's file from other documents, and
folding a cluster sweep's superseded lines. No other module opens a sweep's file.

A line::

    {"cell": {"threads": 2, "dims": {"seq": 128}}, "result": {...}}        measured
    {"cell": {...}, "error": "...", "crashed": true, "exitcode": -9}       its process died
    {"cell": {...}, "result": {...}, "host": {"name": "instance=a", ...}}  on a Ray cluster
    {"cell": {...}, "host": {...}, "error": "node ... was lost ...", "lost": true}

``result`` is the cell's Result in its JSON form without ``samples_ns`` (a sweep keeps
statistics only: :func:`line_result`). A decoder's generation keeps its figures but not its
per-step arrays (``step_ns``, ``sample_ns``: ``[generations, G]``); each generation's
``per_generation`` (``prefill_ns``, the prompt's call; ``decode_ns``, its decode steps' calls
added up; ``decode_steps``, how many) takes their place, so that the sweep's tokens per second
and their spread over the generations (:func:`token_rates`) are read back from the file. A cell
of ``streams`` (generation requests, the offline scenario) folds its per-request arrays
(``request_step_ns`` each request's calls, ``token_ns``, ``arrival_ns``, ``start_ns``,
``stream``) the same way, one ``per_generation`` entry per request started, and keeps the
output tokens/s of all its streams (``output_tokens_per_s``, as ``end_to_end_tokens_per_s``). Keys
this version does not know are kept, in their place, when a line is read and written again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import InputError
from ..metrics import DEFAULT_METRIC
from ..stats.diagnostics import Diagnostic
from ..stats.summary import Stats
from .result import Result, batch_of

__all__ = [
    "Cell",
    "CellResult",
    "SweepFile",
    "SweepLine",
    "TokenRates",
    "append_line",
    "cell_key",
    "cell_label",
    "fold_hosts",
    "is_sweep_file",
    "line_result",
    "per_generation",
    "read_for_resume",
    "read_sweep",
    "token_rates",
]

#: The keys a line may have, in the order a line written by this version has them.
KEYS = ("cell", "result", "error", "crashed", "exitcode", "host", "lost", "missing")
_NOT_A_LINE = "is not a sweep cell (an object with 'cell' and 'result' or 'error')"


#: A cell of a sweep: its axes and their values (``{"threads": 2, "dims": {"seq": 128}}``).
Cell = Mapping[str, object]


def cell_key(cell: Cell) -> str:
    """What makes two cells the same cell: its axes and values, in any order."""
    return json.dumps(cell, sort_keys=True)


def cell_label(cell: Cell, host: str | None = None) -> str:
    """How a cell reads wherever it is shown: ``threads=2, batch=8, seq=128`` (dims by their
    symbol), then ``host=NAME`` when the cell ran on a cluster's host (``host``) and does not
    name it among its axes already."""
    parts = []
    for name, value in cell.items():
        if name == "dims" and isinstance(value, Mapping):
            parts += [f"{symbol}={size}" for symbol, size in value.items()]
        else:
            parts.append(f"{name}={value}")
    if host is not None and "host" not in cell:
        parts.append(f"host={host}")
    return ", ".join(parts)


def line_result(result: Mapping[str, object]) -> dict[str, object]:
    """A Result's JSON form as a sweep's line keeps it: without ``samples_ns``; a generation's
    per-step arrays (``step_ns``, ``sample_ns``) folded into each generation's figures
    (``per_generation``: :func:`per_generation`)."""
    out = {key: value for key, value in result.items() if key != "samples_ns"}
    g = out.get("generation")
    if isinstance(g, Mapping) and "step_ns" in g:
        kept = {key: value for key, value in g.items() if key not in ("step_ns", "sample_ns")}
        out["generation"] = {**kept, "per_generation": per_generation(g)}
    elif isinstance(g, Mapping) and "request_step_ns" in g:
        kept = {key: value for key, value in g.items() if key not in _REQUEST_ARRAYS}
        rate = result.get("output_tokens_per_s")  # every stream's: the load's achieved rate
        out["generation"] = {
            **kept,
            "output_tokens_per_s": rate,
            "end_to_end_tokens_per_s": rate,
            "per_generation": per_generation(g),
        }
    return out


#: A cell's calls per second (one worker's in a load scenario; its result's own are all workers').
_CALLS_PER_S = ("stats", "throughput_per_s")

#: A load's per-request arrays (measure.generation_load.load_record), folded in a sweep's line.
_REQUEST_ARRAYS = ("arrival_ns", "start_ns", "token_ns", "request_step_ns", "stream")


#: The figures a sweep's line keeps of each generation (:func:`per_generation`).
_PER_GENERATION = ("prefill_ns", "decode_ns", "decode_steps")


def per_generation(generation: Mapping[str, object]) -> dict[str, list[int]]:
    """Each generation's prefill call (``prefill_ns``, -1 where it was not measured), its decode
    steps' calls added up (``decode_ns``) and how many of them were measured
    (``decode_steps``): a sweep's line holds them as they are; a whole Result's generation
    gives them from its ``step_ns`` (``[generations, G]``, step 0 the prefill; a load's from
    its ``request_step_ns``, a request's calls, the requests never started left out). ValueError
    when the arrays are malformed."""
    kept = generation.get("per_generation")
    if isinstance(kept, Mapping):
        found = {key: [int(v) for v in _array(kept.get(key))] for key in _PER_GENERATION}
        if len({len(values) for values in found.values()}) > 1:
            raise ValueError("its per_generation arrays differ in length")
        return found
    own = generation.get("step_ns", generation.get("request_step_ns"))  # a load's: per request
    steps = np.asarray(_array(own), dtype=np.int64)
    if steps.ndim != 2 or steps.shape[1] < 1:
        return {key: [] for key in _PER_GENERATION}
    if "step_ns" not in generation:  # a load's requests never started are no generations
        steps = steps[steps[:, 0] >= 0]
    measured = steps[:, 1:] >= 0
    return {
        "prefill_ns": steps[:, 0].tolist(),
        "decode_ns": np.where(measured, steps[:, 1:], 0).sum(axis=1).tolist(),
        "decode_steps": measured.sum(axis=1).tolist(),
    }


@dataclass(frozen=True)
class TokenRates:
    """A generation result's tokens per second as a sweep shows them, llama-bench's way: each
    generation's own rate, then the mean and the standard deviation (n - 1) of those rates
    over the generations.

    ``prompt`` (the test ``pp{P}``): batch x P over each generation's prefill call.
    ``output`` (``tg{G}``): each generation's output tokens after the first (batch a step)
    over its decode steps' time, i.e. batch over the mean of its decode steps. ``generations``
    counts the generations with a prefill; an SD needs two. ``ttft_ns`` and ``tpot_ns`` are the
    result's medians (TTFT: the prefill plus the first token's sampling; TPOT: a decode step),
    ``end_to_end_per_s`` batch x G over the median whole generation.

    A load's (``streams`` streams back to back, the offline scenario) counts its requests as
    generations: ``ttft_ns`` is the median over its requests (from each request's start),
    ``tpot_ns`` its headline, the median inter-token latency (what one stream sees, waiting
    for the cores the other streams share included), and ``end_to_end_per_s`` the output
    tokens/s of all its streams (every request's tokens over the run's time)."""

    prompt_tokens: int
    gen_tokens: int
    batch: int
    generations: int
    prompt_per_s: float | None
    prompt_sd: float | None
    output_per_s: float | None
    output_sd: float | None
    ttft_ns: float | None
    tpot_ns: float | None
    end_to_end_per_s: float | None
    streams: int = 1

    @property
    def pp(self) -> str:
        """llama-bench's name of the prompt's test: ``pp512``."""
        return f"pp{self.prompt_tokens}"

    @property
    def tg(self) -> str:
        """llama-bench's name of the output's test: ``tg128``."""
        return f"tg{self.gen_tokens}"


def _mean_sd(rates: np.ndarray) -> tuple[float | None, float | None]:
    """The mean of ``rates`` and their standard deviation (n - 1); None where too few."""
    mean = float(np.mean(rates)) if rates.size else None
    return mean, float(np.std(rates, ddof=1)) if rates.size > 1 else None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _array(value: object) -> list[Any]:
    """A JSON array (an empty one for null); TypeError for anything else."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"expected an array, got {type(value).__name__}")
    return value


def _count(value: object) -> int:
    if not isinstance(value, int | float | str) or isinstance(value, bool):
        raise TypeError(f"expected a count, got {value!r}")
    return int(value)


def token_rates(result: Mapping[str, object]) -> TokenRates | None:
    """The tokens per second of a result's JSON form (a sweep line's ``result``, or a whole
    Result's) and their spread (:class:`TokenRates`); None when it holds no generation.
    ValueError (or KeyError, TypeError) when its generation is malformed."""
    g = result.get("generation")
    if not isinstance(g, Mapping):
        return None
    runs = {key: np.asarray(values, dtype=np.float64) for key, values in per_generation(g).items()}
    prompt, gen, batch = _count(g["prompt_tokens"]), _count(g["gen_tokens"]), _count(g["batch"])
    prefill = runs["prefill_ns"][runs["prefill_ns"] > 0]
    timed = (runs["decode_steps"] > 0) & (runs["decode_ns"] > 0)
    pp_mean, pp_sd = _mean_sd(batch * prompt * 1e9 / prefill)
    tg_mean, tg_sd = _mean_sd(batch * runs["decode_steps"][timed] * 1e9 / runs["decode_ns"][timed])
    ttft, stats = g.get("ttft"), result.get("stats")
    load = "streams" in g  # generation requests: every stream's rate
    end_to_end = g.get("end_to_end_tokens_per_s", result.get("output_tokens_per_s") if load else None)
    return TokenRates(
        prompt_tokens=prompt,
        gen_tokens=gen,
        batch=batch,
        generations=int(prefill.size),
        prompt_per_s=pp_mean,
        prompt_sd=pp_sd,
        output_per_s=tg_mean,
        output_sd=tg_sd,
        ttft_ns=_number(ttft.get("median_ns")) if isinstance(ttft, Mapping) else None,
        tpot_ns=_number(stats.get("median_ns")) if isinstance(stats, Mapping) else None,
        end_to_end_per_s=_number(end_to_end),
        streams=_count(g.get("streams") or 1),
    )


@dataclass(frozen=True)
class CellResult:
    """A sweep cell's result as its line holds it: what a report shows of a Result, but no
    samples (a sweep keeps statistics only) and no environment (a local sweep records none)."""

    stats: Stats
    model: Mapping[str, Any]
    config: Mapping[str, Any]
    environment: Mapping[str, Any]
    scenario: str
    session: Mapping[str, Any]
    loop: Mapping[str, Any]
    warnings: tuple[Diagnostic, ...]
    notices: tuple[str, ...]
    interrupted: bool
    scenario_stats: Mapping[str, Any]
    generation: Mapping[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> CellResult:
        """From a line's ``result``; KeyError, TypeError or ValueError when it is malformed."""
        # Result.from_dict parses every field; one placeholder sample passes its check and is
        # dropped here with the Result.
        r = Result.from_dict({**data, "samples_ns": [0]}, {})
        return cls(
            r.stats, r.model, r.config, r.environment, r.scenario, r.session, r.loop,
            r.warnings, r.notices, r.interrupted, r.scenario_stats, r.generation,
        )  # fmt: skip


@dataclass(frozen=True)
class SweepLine(Mapping[str, Any]):
    """One line of a sweep's file: a cell and what became of it.

    It also reads as its JSON form (``line["cell"]``, ``"error" in line``), as the lines did
    when they were dicts.

    Attributes
    ----------
    cell : mapping
        The cell's axes and values (``{"threads": 2, "dims": {"seq": 128}}``).
    result : mapping or None
        The cell's Result in its JSON form, without samples.
    error : str or None
        Why the cell has no result.
    crashed : bool
        The cell's process died without answering; ``exitcode`` is its exit status
        (negative: a signal).
    host : mapping or None
        On a cluster: the node that measured the cell (``name``, ``node_id``, ``ip``,
        ``labels``, ``reserved``, ``hostname``, ``pid``, ``model``, ``started``, ``ended``).
    lost : bool
        The node died under the cell; a resume measures it again.
    missing : bool
        Not run (its node went away): never written, only in a SweepResult.
    extra : mapping
        Keys this version does not know, kept for a line written again.
    order : tuple of str
        The order of the line's keys as read (or as the writer wants them); a key it names is
        written even at its default. Keys it does not name follow in the order of ``KEYS``.
    """

    cell: Mapping[str, Any]
    result: Mapping[str, Any] | None = None
    error: str | None = None
    crashed: bool = False
    exitcode: int | None = None
    host: Mapping[str, Any] | None = None
    lost: bool = False
    missing: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    order: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: object) -> SweepLine:
        """A line from its parsed JSON; ValueError when it is not a sweep's line."""
        if not isinstance(data, dict) or not isinstance(data.get("cell"), dict):
            raise ValueError(_NOT_A_LINE)
        if "result" not in data and "error" not in data:
            raise ValueError(_NOT_A_LINE)
        for key in ("result", "host"):
            if data.get(key) is not None and not isinstance(data[key], dict):
                raise ValueError(f"its {key!r} is not an object")
        error, exitcode = data.get("error"), data.get("exitcode")
        return cls(
            cell=data["cell"],
            result=data.get("result"),
            error=None if error is None else str(error),
            crashed=bool(data.get("crashed", False)),
            exitcode=None if exitcode is None else int(exitcode),
            host=data.get("host"),
            lost=bool(data.get("lost", False)),
            missing=bool(data.get("missing", False)),
            extra={k: v for k, v in data.items() if k not in KEYS},
            order=tuple(data),
        )

    def to_dict(self) -> dict[str, object]:
        """The line's JSON form: its keys in ``order``, then the others it has."""
        values: dict[str, Any] = {
            "cell": dict(self.cell),
            "result": None if self.result is None else dict(self.result),
            "error": self.error,
            "crashed": self.crashed,
            "exitcode": self.exitcode,
            "host": None if self.host is None else dict(self.host),
            "lost": self.lost,
            "missing": self.missing,
        }
        has = {
            "cell": True,
            "result": self.result is not None,
            "error": self.error is not None,
            "crashed": self.crashed,
            "exitcode": self.crashed or self.exitcode is not None,  # null: died of no known status
            "host": self.host is not None,
            "lost": self.lost,
            "missing": self.missing,
        }
        out: dict[str, Any] = {}
        for key in (*self.order, *KEYS, *self.extra):
            if key in out:
                continue
            if key in values and (has[key] or key in self.order):
                out[key] = values[key]
            elif key in self.extra:
                out[key] = self.extra[key]
        return out

    def to_json(self) -> str:
        """The line as the file holds it, without its newline."""
        return json.dumps(self.to_dict(), allow_nan=False)

    # The line as a mapping: its JSON form.
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    @property
    def host_name(self) -> str | None:
        """The name of the cluster's host that measured the cell; None for a local sweep."""
        name = self.host.get("name") if self.host is not None else None
        return str(name) if name else None

    @property
    def label(self) -> str:
        """The cell as people read it (:func:`cell_label`), with its host."""
        return cell_label(self.cell, self.host_name)

    @property
    def metric(self) -> str:
        """The metric of the cell's result ("latency" when it has none recorded)."""
        config = (self.result or {}).get("config") or {}
        return str(config.get("metric") or DEFAULT_METRIC)

    @property
    def batch(self) -> int:
        """The batch of the cell's result (1 without a result)."""
        return batch_of(self.result) if self.result is not None else 1

    def value(self, path: Sequence[str]) -> float | None:
        """The number at ``path`` (keys) in the result's JSON form; None where there is none.
        A load's cell (``streams``, the offline scenario) gives its achieved rate of all its
        workers (the result's ``throughput_per_s``) for the calls' ``stats.throughput_per_s``."""
        found: Any = self.result
        if (
            tuple(path) == _CALLS_PER_S
            and (self.result or {}).get("scenario", "single-stream") != "single-stream"
        ):
            path = ("throughput_per_s",)
        for key in path:
            found = found.get(key) if isinstance(found, Mapping) else None
        return float(found) if isinstance(found, int | float) and not isinstance(found, bool) else None

    def cell_result(self) -> CellResult:
        """The result, parsed; KeyError, TypeError or ValueError when it is malformed or absent."""
        if self.result is None:
            raise ValueError("the line has no result")
        return CellResult.from_dict(self.result)


def append_line(path: str | os.PathLike[str], line: SweepLine) -> None:
    """Append ``line`` to the file with one write and an fsync: a kill leaves the line whole
    or partial, never two lines mixed, and a partial line is always the last."""
    data = (line.to_json() + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _line(path: str, n: int, data: object) -> SweepLine:
    """Line ``n`` of ``path`` from its parsed JSON; InputError when it is not a sweep's line."""
    try:
        return SweepLine.from_dict(data)
    except (TypeError, ValueError) as exc:
        sep = " " if str(exc) == _NOT_A_LINE else ": "
        raise InputError(f"{path} line {n}{sep}{exc}") from None


def read_for_resume(path: str | os.PathLike[str]) -> list[SweepLine]:
    """Every line of the file, in order, for a resume; none when there is no file. A last
    line that a kill left partial (no newline, or not JSON) is cut off the file, so that the
    next line appended starts a line of its own; any other bad line is an InputError, and the
    file is left as it is."""
    name = os.fspath(path)
    if not os.path.exists(name):
        return []
    with open(name, "rb") as f:
        data = f.read()
    chunks = data.splitlines(keepends=True)
    lines: list[SweepLine] = []
    good_end = 0
    for n, chunk in enumerate(chunks, 1):
        last = n == len(chunks)
        if chunk.strip():
            if last and not chunk.endswith(b"\n"):
                break
            try:
                parsed = json.loads(chunk)
            except ValueError as exc:
                if last:
                    break
                raise InputError(f"{name} line {n} is not JSON: {exc}") from None
            lines.append(_line(name, n, parsed))
        good_end += len(chunk)
    if good_end < len(data):
        with open(name, "r+b") as f:
            f.truncate(good_end)
    return lines


@dataclass(frozen=True)
class SweepFile:
    """A sweep's file as a report reads it: its lines, and notes on what was left out."""

    path: str
    lines: tuple[SweepLine, ...]
    notes: tuple[str, ...] = ()


def read_sweep(path: str | os.PathLike[str]) -> SweepFile:
    """The lines of a sweep's file for a report, the file left as it is. A last line cut short
    (a sweep still writing, or killed while writing) is left out with a note; any other bad
    line, a malformed result among them, is an InputError naming the file and the line."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InputError(f"{name} is not JSON: {exc}") from None
    lines: list[SweepLine] = []
    notes: list[str] = []
    rows = text.split("\n")
    for n, row in enumerate(rows, 1):
        if not row.strip():
            continue
        try:
            parsed = json.loads(row)
        except ValueError as exc:
            if n == len(rows):
                notes.append(
                    f"{name}: the last line is cut short (a sweep still running, or killed): left out"
                )
                continue
            raise InputError(f"{name} line {n} is not JSON: {exc}") from None
        line = _line(name, n, parsed)
        if line.error is None:
            try:
                line.cell_result()
                token_rates(line.result or {})
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"{name} line {n}: malformed result ({exc})") from None
        lines.append(line)
    if not lines:
        raise InputError(f"{name} holds no sweep cells")
    return SweepFile(name, tuple(lines), tuple(notes))


def is_sweep_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a sweep's file: its first line that is not blank an object with a
    ``cell`` (and no ``schema``, which a results document has). False for a file that cannot
    be read: its reader says why."""
    try:
        with open(path, encoding="utf-8") as f:
            first = next((row for row in f if row.strip()), "")
    except (OSError, ValueError):
        return False
    try:
        data = json.loads(first)
    except ValueError:
        return False
    return isinstance(data, dict) and "cell" in data and "schema" not in data


def fold_hosts(lines: Sequence[SweepLine]) -> list[SweepLine]:
    """A cluster sweep's lines as a report shows them: each host put among its cell's axes
    (``host``), and a line that a later line of the same cell and host supersedes (a cell
    measured again by a resume after its node was lost) left out. Lines without a host (a
    local sweep's) are kept as they are."""
    if not any(line.host_name for line in lines):
        return list(lines)
    last: dict[tuple[str, str], int] = {}
    for n, line in enumerate(lines):
        if line.host_name:
            last[(line.host_name, cell_key(_axes(line)))] = n
    keep = set(last.values())
    out = []
    for n, line in enumerate(lines):
        host = line.host_name
        if host is None:
            out.append(line)
        elif n in keep:
            out.append(replace(line, cell={**_axes(line), "host": host}))
    return out


def _axes(line: SweepLine) -> dict[str, Any]:
    """The cell's axes without the host that a fold put among them."""
    return {k: v for k, v in line.cell.items() if k != "host"}
