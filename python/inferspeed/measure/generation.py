"""A decoder's generations in the measurement path: the prompt and lengths chosen, whole
generations timed in the core, and what a generation's Result records.

:class:`GenerationTarget` is the measurement path's :class:`~inferspeed.measure.measurement.Target`
for a decoder (:mod:`inferspeed.facts.decoder` recognised it): each of its loop chunks runs whole
generations in the core (``_core.Session.generate``: a prompt's call, then one call per output
token, each present cache written straight into the buffer the next step reads as its past, the
next token picked by greedy argmax outside the timed calls) and hands the decode steps' call
times to the path as its samples. The warm-up until steady, the timed phase by time or
adaptive stopping, the machine-speed monitor and the interval for another run then apply to the
time per output token as they do to any latency; the prefill, sampling and per-step record of
every generation are kept apart and summarised in the Result's ``generation``
(:func:`~inferspeed.stats.generation.generation_figures`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _core
from ..config import DEFAULT_GEN_TOKENS, DEFAULT_PROMPT_TOKENS, Config
from ..errors import ConfigError, InputError
from ..facts.decoder import DecoderSpec
from ..facts.memory import MemoryProbe
from ..facts.signature import ELEMENT_TYPES
from ..stats.generation import generation_figures
from ..stats.summary import Stats
from .generation_load import LoadRun, load_record, run_generation_offline, run_generation_server, timed_load
from .loop import Timed
from .measurement import Target
from .model import ModelFacts
from .plan import read_npz
from .request_lengths import RequestLengths, request_lengths

__all__ = ["GenerationPlan", "GenerationTarget", "plan_generation"]


@dataclass(frozen=True)
class GenerationPlan:
    """What each generation does: ``prompt_ids`` ([batch, prompt_tokens] int64), the output
    tokens, and why they were chosen (``notes``). With ``lengths``, requests under load take
    lengths of their own, at most these (a request's prompt: the first of ``prompt_ids``)."""

    prompt_ids: np.ndarray
    gen_tokens: int
    notes: tuple[str, ...]
    lengths: RequestLengths | None = None

    @property
    def batch(self) -> int:
        return int(self.prompt_ids.shape[0])

    @property
    def prompt_tokens(self) -> int:
        return int(self.prompt_ids.shape[1])


def _given_prompt(config: Config) -> np.ndarray | None:
    """The prompt's ids from ``inputs_file`` (an .npz with ``input_ids``, [batch, tokens] or
    [tokens]); None when no file is given."""
    if config.inputs_file is None:
        return None
    arrays = read_npz(config.inputs_file)
    if "input_ids" not in arrays:
        raise InputError(
            f"inputs file {config.inputs_file}: a decoder's prompt is read from an array named "
            f"input_ids (found: {', '.join(sorted(arrays)) or 'none'})"
        )
    ids = np.asarray(arrays["input_ids"])
    if ids.dtype.kind not in "iu" or ids.ndim not in (1, 2) or ids.size == 0:
        raise InputError(
            f"inputs file {config.inputs_file}: input_ids must be integer token ids of shape "
            f"[tokens] or [batch, tokens], got {ids.dtype} {list(ids.shape)}"
        )
    return ids.reshape(1, -1) if ids.ndim == 1 else ids


def _lengths(spec: DecoderSpec, config: Config, prompt: int | None) -> tuple[int, int, list[str]]:
    """(prompt tokens, output tokens, notes): given, else the defaults, shortened to the
    model's context; ConfigError when given lengths exceed it."""
    notes: list[str] = []
    context = spec.max_length
    p = prompt or config.prompt_tokens
    g = config.gen_tokens
    if context is not None and (p or 0) + (g or 0) - 1 > context and p and g:
        raise ConfigError(
            f"a prompt of {p} tokens and {g} output tokens need {p + g - 1} positions; the model's "
            f"context holds {context}"
        )
    if p is None:
        p = DEFAULT_PROMPT_TOKENS if context is None else min(DEFAULT_PROMPT_TOKENS, max(1, context // 2))
        notes.append(f"prompt: {p} tokens (--prompt-tokens to change)")
    if g is None:
        room = DEFAULT_GEN_TOKENS if context is None else max(2, context - p + 1)
        g = min(DEFAULT_GEN_TOKENS, room)
        notes.append(f"output: {g} tokens per generation (--gen-tokens to change)")
    if context is not None and p + g - 1 > context:
        raise ConfigError(
            f"a prompt of {p} tokens and {g} output tokens need {p + g - 1} positions; the model's "
            f"context holds {context}"
        )
    return p, g, notes


def plan_generation(spec: DecoderSpec, config: Config) -> GenerationPlan:
    """The prompt (``inputs_file``'s ``input_ids``, else random ids below the vocabulary from
    ``seed``), the batch and the output tokens of each generation, with the notes that say why."""
    given = _given_prompt(config)
    if given is not None and config.batch is not None and config.batch != given.shape[0]:
        raise ConfigError(
            f"batch {config.batch} differs from the {given.shape[0]} rows of input_ids in the inputs file"
        )
    p, g, notes = _lengths(spec, config, None if given is None else int(given.shape[1]))
    lengths = request_lengths(config, p, g)
    if lengths is not None:
        p, g, notes = _longest(spec, lengths, given, notes)
        given = None if given is None else given[:, :p]
    vocab = spec.vocab or 2
    if given is not None:
        if given.min() < 0 or (spec.vocab is not None and given.max() >= spec.vocab):
            raise InputError(f"input_ids of the inputs file must lie in [0, {vocab}), the model's vocabulary")
        ids = given.astype(np.int64)
        notes.append(f"prompt: input_ids of {config.inputs_file} ({ids.shape[0]} x {ids.shape[1]} tokens)")
    else:
        batch = config.batch or 1
        ids = np.random.default_rng(config.seed).integers(0, vocab, size=(batch, p), dtype=np.int64)
        notes.append(
            f"prompt ids: random in [0, {vocab}) from seed {config.seed}, batch {batch} "
            "(--inputs an .npz with input_ids to give real ones)"
        )
    return GenerationPlan(np.ascontiguousarray(ids), g, (*spec.notes, *notes), lengths)


def _longest(
    spec: DecoderSpec, lengths: RequestLengths, given: np.ndarray | None, notes: list[str]
) -> tuple[int, int, list[str]]:
    """The plan's lengths with each request's own: the longest (the streams' buffers), checked
    against the model's context and a given prompt; the notes say how they vary."""
    p, g = lengths.max_prompt, lengths.max_output
    if spec.max_length is not None and p + g - 1 > spec.max_length:
        raise ConfigError(
            f"requests of up to {p} prompt and {g} output tokens need {p + g - 1} positions; the "
            f"model's context holds {spec.max_length} (shorter lengths or a smaller spread)"
        )
    if given is not None and given.shape[1] < p:
        raise ConfigError(
            f"request prompts of up to {p} tokens need as many input_ids in the inputs file, which "
            f"has {given.shape[1]} (a smaller spread, or a file of shorter lengths)"
        )
    lo_p, lo_g = int(lengths.prompt.min()), int(lengths.output.min())
    if lengths.path is not None:  # the file's lengths, not the defaults
        notes = [n for n in notes if not n.startswith(("prompt:", "output:"))]
        how = f"each request's from {lengths.path} ({lengths.prompt.size} lines, in order)"
    else:
        how = f"drawn uniformly from seed {lengths.seed}, spread ±{lengths.spread:.0%}"
    return p, g, [*notes, f"request lengths: prompt {lo_p}–{p}, output {lo_g}–{g} tokens, {how}"]


def one_step_config(spec: DecoderSpec, config: Config) -> tuple[Config, str]:
    """``config`` set up to time one decode step of the decoder (``single_call``): one token
    after a past of ``prompt_tokens`` positions (DEFAULT_PROMPT_TOKENS, at most the context
    less one), every input sized and filled to agree with it (the caches' sequence and open
    dims, the mask one longer, the position, the length inputs, the merged decoder's branch);
    the dims and values the user gave win. Returns the config and the note that says so."""
    past = config.prompt_tokens or DEFAULT_PROMPT_TOKENS
    if spec.max_length is not None:
        past = min(past, spec.max_length - 1)
    dims: dict[str, int] = {f"{spec.input_ids}:1": 1}
    values: dict[str, Any] = {}
    for c in spec.caches:
        for axis, size in enumerate(c.shape):
            if axis != c.batch_axis:
                dims[f"{c.past}:{axis}"] = past if axis == c.seq_axis else size
    if spec.attention_mask:
        dims[f"{spec.attention_mask}:1"] = past + 1
    if spec.position_ids:
        dims[f"{spec.position_ids}:1"] = 1
        values[spec.position_ids] = past
    if spec.cache_position:
        dims[f"{spec.cache_position}:0"] = 1
        values[spec.cache_position] = past
    if spec.use_cache_branch:
        values[spec.use_cache_branch] = True
    for x in spec.lengths:
        values[x.name] = past + 1 + x.offset
    values.update(dict(spec.extra_inputs))
    one = config.replace(dims={**dims, **config.dims}, values={**values, **config.values})
    return one, (
        f"--single-call: one decode step, a token after a past of {past} positions (the mask "
        f"{past + 1} long; --prompt-tokens sets the past)"
    )


def kv_cache_bytes(spec: DecoderSpec, batch: int, positions: int) -> int:
    """Bytes of every cache tensor holding ``positions`` positions of ``batch`` sequences (one
    buffer each; the loop keeps two for caches it swaps)."""
    total = 0
    for c in spec.caches:
        shape = list(c.shape)
        shape[c.batch_axis] = batch
        shape[c.seq_axis] = positions
        bits = ELEMENT_TYPES[c.element_code].bits if c.element_code in ELEMENT_TYPES else 32
        total += math.prod(shape) * bits // 8
    return total


def buffer_positions(spec: DecoderSpec, prompt_tokens: int, gen_tokens: int) -> int:
    """Positions each cache buffer holds: the generation's (P + G - 1), or for a shared buffer
    at least the model's sliding window (genai's GroupQueryAttention refuses a shorter one)."""
    needed = prompt_tokens + gen_tokens - 1
    return max(needed, spec.min_buffer or 0) if spec.share_buffer else needed


def core_spec(spec: DecoderSpec, prompt_tokens: int, gen_tokens: int) -> dict[str, Any]:
    """The decoder as the core's ``generation`` / ``generate`` take it (its fields by name),
    its buffers sized for generations of ``prompt_tokens`` and ``gen_tokens``."""
    return {
        "max_length": buffer_positions(spec, prompt_tokens, gen_tokens) if spec.share_buffer else None,
        "input_ids": spec.input_ids,
        "ids_code": spec.ids_code,
        "attention_mask": spec.attention_mask,
        "mask_code": spec.mask_code or 7,
        "position_ids": spec.position_ids,
        "position_code": spec.position_code or 7,
        "cache_position": spec.cache_position,
        "use_cache_branch": spec.use_cache_branch,
        "caches": spec.caches,
        "logits": spec.logits,
        "vocab": spec.vocab,
        "share_buffer": spec.share_buffer,
        "prefill_past": spec.prefill_past,
        "extra_inputs": dict(spec.extra_inputs),
        "lengths": spec.lengths,
    }


def describe(spec: DecoderSpec) -> dict[str, Any]:
    """What the Result records of the decoder: where its conventions come from, its caches
    (count, shape, type), the names of its other inputs, and whether past and present share
    one buffer."""
    first = spec.caches[0] if spec.caches else None
    return {
        "source": spec.source,
        "caches": len(spec.caches),
        "cache_shape": None if first is None else list(first.shape),
        "cache_type": None
        if first is None
        else ELEMENT_TYPES[first.element_code].name
        if first.element_code in ELEMENT_TYPES
        else f"type{first.element_code}",
        "batch_axis": None if first is None else first.batch_axis,
        "sequence_axis": None if first is None else first.seq_axis,
        "input_ids": spec.input_ids,
        "attention_mask": spec.attention_mask,
        "position_ids": spec.position_ids,
        "cache_position": spec.cache_position,
        "use_cache_branch": spec.use_cache_branch,
        "logits": spec.logits,
        "vocab": spec.vocab,
        "share_buffer": spec.share_buffer,
        "max_length": spec.max_length,
    }


def _started(record: Mapping[str, Any], gen_tokens: int) -> dict[str, Any]:
    """A core run's generations less one stopped before its prefill ended (it measured
    nothing)."""
    steps = np.asarray(record["step_ns"]).reshape(-1, gen_tokens)
    keep = steps[:, 0] >= 0
    tokens = np.asarray(record["tokens"])
    return {
        "step_ns": steps[keep],
        "sample_ns": np.asarray(record["sample_ns"]).reshape(-1, gen_tokens)[keep],
        "generation_ns": np.asarray(record["generation_ns"]).ravel()[keep],
        "tokens": tokens[keep] if tokens.shape[:1] == keep.shape else tokens,
    }


def _whole(record: Mapping[str, Any], gen_tokens: int) -> np.ndarray:
    """The end-to-end times of a core run's generations that reached their last step."""
    steps = np.asarray(record["step_ns"]).reshape(-1, gen_tokens)
    return np.asarray(record["generation_ns"]).ravel()[np.all(steps >= 0, axis=1)]


class GenerationTarget(Target):
    """One measurement of a decoder's generations (the module's docstring).

    Parameters
    ----------
    facts : ModelFacts
        The session, for the model, notices and memory figures of the Result.
    core : _core.Session
        The core session; nothing is bound in it (the generation binds its own).
    spec : DecoderSpec
        What the decoder's inputs and outputs are.
    plan : GenerationPlan
        The prompt and lengths.
    config : Config
        The measurement's configuration.
    environment : Mapping
        The machine and software record.
    """

    def __init__(
        self,
        facts: ModelFacts,
        core: _core.Session,
        spec: DecoderSpec,
        plan: GenerationPlan,
        config: Config,
        environment: Mapping[str, Any],
    ) -> None:
        super().__init__(config, environment)
        self._facts, self._core, self._spec, self._plan = facts, core, spec, plan
        # Set up once: the output buffers learned in its first generation serve every chunk.
        self._generation = self._new_generation()
        self._records: list[dict[str, Any]] = []
        self._warm_records: list[dict[str, Any]] = []
        self._load: LoadRun | None = None
        self._probe = MemoryProbe()
        self._run_peak: int | None = None

    def _new_generation(self) -> _core.Generation:
        """A Generation of the plan (its own cache buffers and IoBinding)."""
        plan = self._plan
        return self._core.generation(
            **core_spec(self._spec, plan.prompt_tokens, plan.gen_tokens),
            prompt_ids=plan.prompt_ids,
            gen_tokens=plan.gen_tokens,
        )

    def run_scenario(self, warm_ns: np.ndarray) -> Timed:
        """Generation requests under load (:mod:`~inferspeed.measure.generation_load`): the
        server's scheduled arrivals or offline, ``concurrency`` streams (this target's
        Generation the first)."""
        serve = run_generation_server if self.config.scenario == "server" else run_generation_offline
        self._load = serve(self._generation, self._new_generation, self.config, self._plan.lengths)
        return timed_load(self._load, self.config, self._plan.batch)

    def loop(self, iterations: int | None, seconds: float | None) -> dict[str, Any]:
        """Whole generations until ``iterations`` decode steps or ``seconds`` (at least one);
        the decode steps' call times as the samples."""
        steps = self._plan.gen_tokens - 1
        r = self._generation.run(
            warmup=0,
            max_repetitions=math.ceil(iterations / steps) if iterations else 0,
            max_ns=int(seconds * 1e9) if seconds else 0,
        )
        self._records.append(r)
        decode = np.asarray(r["step_ns"], dtype=np.int64)[:, 1:]
        return {"samples_ns": decode[decode >= 0], "interrupted": bool(r["interrupted"])}

    def start(self) -> None:
        self._probe.start()

    def noise_basis(self, samples: np.ndarray) -> tuple[np.ndarray, str | None]:
        """The decode steps with the position's trend taken out (each step over its position's
        median, times the median step): a cache that grows makes later steps slower on purpose,
        which is not noise. The samples as they are when they do not line up with the steps."""
        decode = self._joined()["steps"][:, 1:].astype(np.float64)
        measured = decode >= 0
        if int(measured.sum()) != samples.size or samples.size < 2:
            return samples, None
        with np.errstate(invalid="ignore"):
            curve = np.nanmedian(np.where(measured, decode, np.nan), axis=0)
        scaled = decode / curve * float(np.nanmedian(curve))
        return np.rint(scaled[measured]).astype(np.int64), "decode steps, each over its position's median"

    def timed_phase(self) -> None:
        """The timed phase begins: the generations so far were the warm-up's (kept apart: a
        result interrupted before the first timed step reports the warm-up's)."""
        self._warm_records, self._records = self._records, []

    def stop(self) -> None:
        self._run_peak, _ = self._probe.stop()

    def loop_fields(self) -> dict[str, Any]:
        return {"cache": self.config.cache, "flush_bytes": None, "input_sets": 1}

    def _joined(self) -> dict[str, np.ndarray]:
        """Every generation of the timed phase (the warm-up's when it was interrupted there)."""
        g = self._plan.gen_tokens
        records = self._records
        if not any((np.asarray(r["step_ns"]).reshape(-1, g)[:, 1:] >= 0).any() for r in records):
            records = self._warm_records  # the samples reported are the warm-up's
        records = [_started(r, g) for r in records]
        return {
            "steps": np.concatenate(
                [np.asarray(r["step_ns"]).reshape(-1, g) for r in records] or [np.zeros((0, g))]
            ),
            "sampling": np.concatenate(
                [np.asarray(r["sample_ns"]).reshape(-1, g) for r in records] or [np.zeros((0, g))]
            ),
            # Whole generations only: one cut short by Ctrl-C has no end-to-end time.
            "whole": np.concatenate([_whole(r, g) for r in records] or [np.zeros(0)]),
            "tokens": np.asarray(records[0]["tokens"])[0]
            if records and len(records[0]["tokens"])
            else np.zeros(0),
        }

    def generation_record(self) -> dict[str, Any]:
        """The Result's ``generation``: the plan, the figures, every per-step sample and the
        first generation's token ids."""
        p, g, b = self._plan.prompt_tokens, self._plan.gen_tokens, self._plan.batch
        spec = self._spec
        positions = buffer_positions(spec, p, g)  # what the core allocates
        if self._load is not None:  # requests under load: each stream has its own buffers
            return {
                "prompt_tokens": p,
                "gen_tokens": g,
                "batch": b,
                "kv_cache_bytes": kv_cache_bytes(spec, b, positions) * self._load.streams,
                "kv_cache_positions": positions,
                "decoder": describe(spec),
                **load_record(self._load, self.config),
            }
        j = self._joined()
        return {
            "prompt_tokens": p,
            "gen_tokens": g,
            "batch": b,
            "generations": int(j["steps"].shape[0]),
            **generation_figures(j["steps"], j["sampling"], j["whole"], prompt_tokens=p, batch=b),
            "kv_cache_bytes": kv_cache_bytes(spec, b, positions),
            "kv_cache_positions": positions,
            "decoder": describe(spec),
            "tokens": j["tokens"].astype(np.int64).tolist(),
            "step_ns": j["steps"].astype(np.int64).tolist(),
            "sample_ns": j["sampling"].astype(np.int64).tolist(),
            "generation_ns": j["whole"].astype(np.int64).tolist(),
        }

    def fields(self, stats: Stats) -> dict[str, Any]:
        return {
            "model": self._facts.model_info(),
            "config": self.config.to_dict(),
            "session": {**self._facts.session_info(), "call_mode": "binding"},
            "notices": self._facts.notices,
            "memory": self._facts.memory_info(self._run_peak, self._probe.peak_reset),
            "compute": None,
            "generation": self.generation_record(),
        }
