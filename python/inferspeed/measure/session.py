"""The public Session: a model loaded once, its inputs bound, measured in C++ through the
measurement path it shares with callables (:mod:`~inferspeed.measure.measurement`)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import _core
from ..config import GRAPH_OPTIMIZATION_LEVELS, Config
from ..errors import ConfigError, InferspeedError, InputError, ModelError, OrtError
from ..events import emit
from ..facts import ortlib
from ..facts.decoder import DecoderSpec, NotGenerative, recognise
from ..facts.environment import capture_environment
from ..facts.identity import graph_sha256
from ..facts.memory import MemoryProbe
from ..facts.modelfile import (
    check_external_data,
    check_model_path,
    count_macs,
    load_proto,
    model_weights,
    serialized_model,
    sha256_file,
    unranked_inputs,
)
from ..facts.signature import ValueInfo, file_inputs
from ..metrics import metric_named
from ..results.result import Result, batch_from, compute_at
from .generation import GenerationPlan, GenerationTarget, core_spec, one_step_config, plan_generation
from .inputs import GeneratedInputs, make_inputs
from .measurement import run_measurement
from .model import ModelTarget, cache_flusher
from .plan import MAX_ATTEMPTS, bound_text, call_error, first_run_error, map_keys, ort_reason

__all__ = ["MEASURE_OPTIONS", "Session"]

#: Options measure() accepts: those that change the loop, not the session or the inputs.
MEASURE_OPTIONS = frozenset(
    {
        "mode", "iterations", "max_time", "warmup_iterations", "warmup_time", "cache", "flush_bytes",
        "target_ci", "target_percentile", "drop_outliers", "pin", "scenario", "qps", "arrival",
        "duration", "concurrency", "deadline",
    }
)  # fmt: skip


#: How long the first run may go on trying other candidate sizes after a failure.
FIRST_RUN_TRIALS_SECONDS = 30.0


def _trim_heap() -> None:
    """Give the C heap's free memory back to the system (glibc), so that a session made after
    another one was released starts from resident memory without its leftovers."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    with contextlib.suppress(OSError, AttributeError, TypeError):  # not glibc: the heap keeps it
        ctypes.CDLL(name).malloc_trim(0)


def _same_inputs(a: GeneratedInputs, b: GeneratedInputs) -> bool:
    return a.shapes == b.shapes and all(
        a.plan.choices[n].fill == b.plan.choices[n].fill for n in a.plan.choices
    )


def _retried_notice(tried: list[tuple[GeneratedInputs, str]], generated: GeneratedInputs) -> str:
    first, error = tried[0]
    changed = ", ".join(
        f"{name} {'x'.join(map(str, shape)) or 'scalar'}"
        for name, shape in generated.shapes.items()
        if shape != first.shapes[name] or generated.plan.choices[name].fill != first.plan.choices[name].fill
    )
    return (
        f"the first run failed at the sizes chosen first ({ort_reason(error.splitlines()[0], 160)}); "
        f"measured with {changed} (attempt {len(tried) + 1}), in a session made afresh: its "
        "creation, first run and memory figures leave the failed attempts out"
    )


def _from_file(inputs: tuple[ValueInfo, ...], declared: tuple[ValueInfo, ...]) -> tuple[ValueInfo, ...]:
    """The session's inputs, a sequence, map or optional taken as the file declares it when it
    names the same type: ONNX Runtime reports an element of no shape as a scalar, the file
    tells the two apart (``rank_known``)."""
    by_name = {v.name: v for v in declared}
    out = []
    for v in inputs:
        file = by_name.get(v.name)
        same = v.kind != "tensor" and file is not None and file.type_text == v.type_text
        out.append(file if same and file is not None else v)
    return tuple(out)


# ORT error codes that mean "this file is not a model ORT can load".
_LOAD_ERROR_CODES = {3, 4, 7, 9, 10}


class Session:
    """An ONNX Runtime session created through the C++ core, with inputs bound once.

    Creating it checks the model file (external data included) before ONNX Runtime reads it,
    loads the runtime, creates the session, generates and binds the inputs and makes the first
    (untimed) run; when that run fails at input sizes that were guessed, the next candidate
    sizes are tried (:attr:`notices` says what was chosen and why).

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
        The model: a path (its external data beside it), serialized bytes, or an in-memory
        ModelProto (written to a temporary file, removed by :meth:`close`).
    config : Config, optional
        The configuration (default ``Config()``); ``options`` replace its fields.
    profile_prefix : str, optional
        Turn on ONNX Runtime's profiler, its trace file named with this path prefix;
        :meth:`end_profiling` ends it and returns the file's path. None (the default): no
        profiling.
    **options
        Any :class:`~inferspeed.Config` field, e.g. ``threads=1, mode="run"``; an unknown name
        is a ConfigError.

    Raises
    ------
    ConfigError
        A bad option, or a provider the runtime lacks.
    ModelError
        A model file that is missing or unreadable, whose external data lies outside its
        folder or is missing, or that ONNX Runtime cannot load.
    RuntimeLoadError
        No ONNX Runtime library can be loaded (``ort_lib``).
    InputError
        Inputs that cannot be made or bound, or a first run that fails at every size tried.

    The session keeps its input arrays alive for as long as the core binds them. Use it as a
    context manager, or call :meth:`close`, to release it early.
    """

    def __init__(
        self, model: Any, config: Config | None = None, *, profile_prefix: str | None = None, **options: Any
    ) -> None:
        self.config = Config.from_options(config, **options)
        self._tmpdir: str | None = None
        self.model_path = self._materialize(model)
        check_model_path(self.model_path)
        self.runtime = ortlib.load_runtime(self.config.ort_lib)
        self._check_providers()
        c = self.config
        proto = load_proto(self.model_path)
        self._weights = model_weights(proto)
        unranked: set[str] = set()
        if proto is not None:
            check_external_data(proto, self.model_path)
            unranked = unranked_inputs(proto)
        probe = MemoryProbe().start()
        self._core = self._create_core(profile_prefix)
        self.inputs = _from_file(
            tuple(
                dataclasses.replace(v, rank_known=False) if v.name in unranked and v.kind == "tensor" else v
                for v in (ValueInfo.from_core(d) for d in self._core.inputs)
            ),
            file_inputs(proto),
        )
        self.outputs = tuple(ValueInfo.from_core(d) for d in self._core.outputs)
        self._notices: list[str] = []
        self._failed: list[dict[str, Any]] = []
        #: The decoder this session generates with (``metric="generation"``), else None.
        self.decoder: DecoderSpec | None = self._decoder()
        self._generated: GeneratedInputs | None = None
        #: Which candidate sizes the first run ran at (0: the first; see plan_inputs' attempt);
        #: None for a generation, whose calls change shape step by step.
        self.first_run_attempt: int | None = None
        if self.decoder is None:
            self._one_call_of_a_decoder()
            self._generated = self._first_run(proto)
        else:
            self.config = self.config.replace(metric="generation")
            self._plan = plan_generation(self.decoder, self.config)
        del proto
        failed: dict[str, Any] = {
            "failed_attempts_peak_bytes": None,
            "failed_attempts_peak_delta_bytes": None,
        }
        before = probe.before
        if self._failed:
            failed, probe = self._afresh(profile_prefix, probe)
        if not self._core.binding_usable and c.mode == "binding":
            self.config = c.replace(mode="run")
            why = " ".join(self._core.binding_error.split()).rstrip(".") or "a bound call failed"
            self._notices.append(
                "this model's outputs break their declared shape or rank, which ONNX Runtime "
                f"refuses in a binding ({why}): measured through Run (--mode run), outputs "
                "allocated on every call"
            )
        peak, rss = probe.stop()
        # Resident memory around session creation, input binding and the first run (of the
        # attempt that ran; failed attempts' peak apart).
        self._memory: dict[str, Any] = {
            # Before the first session: a session made afresh finds the runtime's own state
            # already resident, as a session made once at these sizes would have made it.
            "rss_before_session_bytes": before,
            "session_peak_bytes": peak,
            "session_rss_bytes": rss,
            "peak_reset": probe.peak_reset,
            **failed,
        }
        self._environment: dict[str, Any] | None = None
        self._flusher: _core.CacheFlusher | None = None
        self._compute: dict[str, Any] | None = None
        self._hash: str | None = None
        emit("session", model=os.path.basename(self.model_path))

    def _create_core(self, profile_prefix: str | None) -> _core.Session:
        """The core session with this configuration; ModelError when ORT cannot load the file."""
        c = self.config
        try:
            return _core.Session(
                self.runtime,
                self.model_path,
                intra_op_threads=c.threads or 0,
                inter_op_threads=c.inter_op_threads or 0,
                graph_optimization_level=GRAPH_OPTIMIZATION_LEVELS[c.graph_optimization],
                parallel_execution=c.execution_mode == "parallel",
                cpu_mem_arena=c.arena,
                mem_pattern=c.mem_pattern,
                profile_prefix=profile_prefix or "",
                config_entries=list(c.ort_session_config.items()),
                providers=[(p.name, list(p.options.items())) for p in c.providers],
            )
        except OrtError as exc:
            why = ort_reason(str(exc), 1000)  # without where in ONNX Runtime's sources it was raised
            if exc.code in _LOAD_ERROR_CODES:
                raise ModelError(f"cannot load model {self.model_path}: {why}") from None
            raise OrtError(f"cannot create a session for {self.model_path}: {why}", exc.code) from None

    def _decoder(self) -> DecoderSpec | None:
        """The decoder recognised in the model (:func:`~inferspeed.facts.decoder.recognise`) when
        this session is to generate: with ``metric="generation"``, or with the default metric
        when the configuration is one a generation takes and ``single_call`` is off. None:
        time single calls. ModelError when ``metric="generation"`` finds no KV cache."""
        c = self.config
        auto = c.metric == "latency" and not c.single_call and not metric_named("generation").refused(c)
        if c.metric != "generation" and not auto:
            return None
        try:
            spec = recognise(self.inputs, self.outputs, self.model_path, dims=c.dims)
        except NotGenerative as exc:
            if not auto:
                raise
            reason = str(exc).split("; ")[0]  # the advice after it is for a decoder
            self._notices.append(f"{reason}: so it is timed one call at a time, its inputs as any model's")
            return None
        if spec is None and c.metric == "generation":
            raise ModelError(
                f"{os.path.basename(self.model_path)} has no KV-cache inputs and outputs: it is no "
                "decoder to generate with (leave the metric at latency to time one call)"
            )
        return spec

    def _one_call_of_a_decoder(self) -> None:
        """A session that times single calls: with ``single_call`` on a decoder, its inputs set
        up as one decode step (:func:`~inferspeed.measure.generation.one_step_config`); the
        generation's lengths refused (ConfigError) where no generation runs."""
        c = self.config
        name = os.path.basename(self.model_path)
        if c.slo:
            raise ConfigError(
                f"--slo limits a decoder's generation requests; {name} is timed one call at a time here"
            )
        if c.request_lengths is not None:
            raise ConfigError(
                f"--request-lengths varies a decoder's generation requests; {name} is timed one call at "
                "a time here"
            )
        lengths = c.prompt_tokens is not None or c.gen_tokens is not None
        if not c.single_call and not lengths:
            return
        try:
            spec = recognise(self.inputs, self.outputs, self.model_path, dims=c.dims)
        except ModelError:
            spec = None  # a decoder it cannot tell everything of: its inputs as any model's
        if spec is None and lengths:
            raise ConfigError(
                f"--prompt-tokens and --gen-tokens apply to a decoder's generation; {name} has no "
                "KV cache inferspeed recognises"
            )
        if spec is not None and not c.single_call:
            refused = ", ".join(metric_named("generation").refused(c)) or f"metric {c.metric}"
            raise ConfigError(
                f"--prompt-tokens and --gen-tokens apply to a decoder's generation; {name} is timed "
                f"one call at a time here (a generation does not take its {refused})"
            )
        if spec is not None:
            self.config, note = one_step_config(spec, c)
            self._notices.append(note)

    def _afresh(self, profile_prefix: str | None, probe: MemoryProbe) -> tuple[dict[str, Any], MemoryProbe]:
        """After failed first runs: the session released and made again, bound and run first at
        the sizes that ran, so that its creation time, first run and memory peak are those of
        the attempt that ran alone (the failed ones had warmed it and grown its arena). Returns
        the peak over the first session and its failed attempts (also above the resident
        memory before it) and the probe of the fresh session."""
        peak, _ = probe.stop()
        before = probe.before
        failed = {
            "failed_attempts_peak_bytes": peak,
            "failed_attempts_peak_delta_bytes": peak - before
            if peak is not None and before is not None
            else None,
        }
        del self._core
        _trim_heap()
        probe = MemoryProbe().start()
        self._core = self._create_core(profile_prefix)
        assert self._generated is not None  # failed attempts come from the first run
        try:
            self._bind(self._generated)
            self._core.prepare()
        except OrtError as exc:  # ran a moment ago in the first session: say what was bound
            raise self._call_error("the first run, in a session made afresh,", exc) from None
        return failed, probe

    def _materialize(self, model: Any) -> str:
        if isinstance(model, (str, os.PathLike)):
            return os.fspath(model)
        data = serialized_model(model)
        self._tmpdir = tempfile.mkdtemp(prefix="inferspeed-")
        path = os.path.join(self._tmpdir, "model.onnx")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def _check_providers(self) -> None:
        if not self.config.providers:
            return
        available = self.runtime.available_providers()
        for p in self.config.providers:
            if p.name == "CPUExecutionProvider" and p.options:
                raise ConfigError(
                    f"the CPU execution provider takes no options here (got {', '.join(p.options)}); "
                    "its settings are session options: --no-arena, --session-config KEY=VALUE"
                )
            if p.name not in available:
                raise ConfigError(
                    f"execution provider {p.name} is not available in ONNX Runtime "
                    f"{self.runtime.version} ({self.runtime.path}); available: {', '.join(available)}"
                )

    @property
    def input_arrays(self) -> Mapping[str, np.ndarray]:
        """The arrays bound as inputs, by name."""
        return self._generated.arrays if self._generated is not None else {"input_ids": self._plan.prompt_ids}

    @property
    def input_sets(self) -> tuple[Mapping[str, np.ndarray], ...]:
        """Every input set bound (arrays by input name), in the order the loop cycles through
        them (``config.input_sets`` of them); the first is :attr:`input_arrays`."""
        return self._generated.sets if self._generated is not None else (self.input_arrays,)

    @property
    def batch(self) -> int:
        """The batch: the first dimension of the first input of rank 2 or more as bound (1
        when there is none: :func:`~inferspeed.results.result.batch_from`)."""
        if self._generated is None:
            return self._plan.batch
        return batch_from(self._generated.tensor_shapes.get(v.name) for v in self.inputs)

    @property
    def notices(self) -> tuple[str, ...]:
        """What was chosen for the user (input sizes and values, with the reasons) and how."""
        if self._generated is None:
            return (*self._plan.notes, *self._notices)
        return (*self._generated.notices, *self._notices)

    def _bind(self, generated: GeneratedInputs) -> None:
        self._core.set_input_set_count(len(generated.sets))
        for k, arrays in enumerate(generated.sets):
            for v in self.inputs:
                array = arrays[v.name]
                shape = list(generated.shapes[v.name])
                holds = generated.plan.choices[v.name].holds
                leaf = v.leaf()
                code = leaf.element_code if leaf is not None else 0
                if holds == "sequence":  # axis 0 counts the elements
                    # each element an array, 0-d ones too (iterating makes numpy scalars of those)
                    elements = [np.asarray(array[i]) for i in range(len(array))]
                    self._core.bind_sequence_input(v.name, elements, code, shape[1:], k)
                elif holds == "map":
                    held = v.inner if v.kind == "optional" and v.inner is not None else v
                    keys = np.array(map_keys(held.key_code, len(array)))
                    keys = keys.astype(object) if held.key_code == 8 else keys.astype(np.int64)
                    self._core.bind_map_input(v.name, keys, array, held.key_code, code, k)
                elif array.dtype == object:
                    self._core.bind_string_input(v.name, shape, [str(x) for x in array.ravel()], k)
                else:
                    self._core.bind_input(v.name, array, code, shape, k)

    def _first_run(self, model: Any) -> GeneratedInputs:
        """Bind the inputs and make the first run; when it fails at sizes or values that were
        guessed, try the next candidates (a few, within FIRST_RUN_TRIALS_SECONDS). Raises
        InputError with the one line that says what was bound and which flags set it."""
        tried: list[tuple[GeneratedInputs, str]] = []
        give_up = time.monotonic() + FIRST_RUN_TRIALS_SECONDS
        for attempt in range(MAX_ATTEMPTS):
            generated = make_inputs(self.inputs, self.config, model, attempt, self.model_path)
            if tried and _same_inputs(generated, tried[-1][0]):
                continue
            try:
                self._bind(generated)
            except OrtError as exc:
                name = os.path.basename(self.model_path)
                bound = bound_text(self.inputs, generated.plan, generated.sources)
                raise InputError(f"cannot bind the inputs of {name}: {exc} | bound: {bound}") from None
            try:
                self._core.prepare()
            except OrtError as exc:
                tried.append((generated, str(exc)))
                self._failed.append(
                    {
                        "inputs": {k: list(v) for k, v in generated.shapes.items()},
                        "error": str(exc).splitlines()[0][:300] if str(exc) else "",
                    }
                )
                if not generated.plan.guessed or time.monotonic() > give_up:
                    break
                continue
            if tried:
                self._notices.append(_retried_notice(tried, generated))
            self.first_run_attempt = attempt
            return generated
        name = os.path.basename(self.model_path)
        sources = tried[0][0].sources if tried else None
        raise InputError(first_run_error(name, self.inputs, [(g.plan, e) for g, e in tried], sources, model))

    def _model_sha256(self) -> str:
        """The model file's hash, read once per session (not on every measure())."""
        if self._hash is None:
            self._hash = sha256_file(self.model_path)
        return self._hash

    def model_info(self) -> dict[str, Any]:
        return {
            "path": os.path.abspath(self.model_path) if self._tmpdir is None else None,
            "name": os.path.basename(self.model_path) if self._tmpdir is None else "<in-memory>",
            "size_bytes": os.path.getsize(self.model_path),
            "sha256": self._model_sha256(),
            "graph_sha256": graph_sha256(self.model_path),
            "inputs": [self._input_info(v) for v in self.inputs],
            "outputs": [v.to_dict() for v in self.outputs],
        }

    def _input_info(self, v: ValueInfo) -> dict[str, Any]:
        """An input as the Result records it: its signature, and the shape, source and reason
        of what was bound (a generation binds its inputs step by step: none)."""
        g = self._generated
        if g is None:
            return {**v.to_dict(), "bound_shape": None, "source": "generation", "chosen_because": None}
        return {
            **v.to_dict(),
            "bound_shape": list(g.shapes[v.name]),
            "source": g.sources[v.name],
            "chosen_because": g.plan.choices[v.name].because or None,
        }

    def _macs(self) -> dict[str, Any]:
        """MAC counts at the bound input shapes (the model parsed again, on first use)."""
        if self._generated is None:  # a generation's calls change shape step by step
            return {"total": None, "by_op_type": {}}
        if self._compute is None:
            self._compute = count_macs(self.model_path, self._generated.tensor_shapes)
        return self._compute

    def memory_info(self, run_peak: int | None = None, run_peak_reset: bool = False) -> dict[str, Any]:
        """Resident memory of this process (see :mod:`inferspeed.facts.memory`) before the session,
        at its peak while the session was created and first run, after that, and at its peak
        during a measurement (warm-up and timed loop); the model file's and initializers'
        sizes. The ``*_delta_bytes`` figures are above ``rss_before_session_bytes``. When a
        first run failed at other sizes, the session was made afresh: the figures are the fresh
        session's, and ``failed_attempts_peak_bytes`` (with its delta above the memory before
        the first session) the peak over the first session and its failed attempts."""
        m = dict(self._memory)
        m["run_peak_bytes"] = run_peak
        m["peak_reset"] = bool(m["peak_reset"] and run_peak_reset)
        before = m["rss_before_session_bytes"]
        for key in ("session_peak", "session_rss", "run_peak"):
            value = m[f"{key}_bytes"]
            m[f"{key}_delta_bytes"] = value - before if value is not None and before is not None else None
        m["model_file_bytes"] = os.path.getsize(self.model_path)
        m.update(self._weights)
        return m

    def compute_info(self, median_ns: float) -> dict[str, Any] | None:
        """Multiply-accumulates per call at the bound input shapes (Gemm, MatMul, Conv and
        their integer forms; :mod:`inferspeed.facts.macs`) and the achieved GFLOP/s at ``median_ns``
        (2 FLOPs per MAC); None when the count is unknown."""
        found = self._macs()
        macs = found.get("total")
        if not macs:
            return None
        return compute_at({"macs": int(macs), "macs_by_op_type": found["by_op_type"]}, median_ns)

    @property
    def untimed_calls(self) -> int:
        """Calls made outside measure()'s loops so far: the cold first run and the first bound
        call of each input set (prepare), and each server worker's first calls."""
        return int(self._core.untimed_calls)

    def end_profiling(self) -> str | None:
        """End ONNX Runtime profiling (sessions made with ``profile_prefix``) and return the
        trace file's path; None when not profiling."""
        return self._core.end_profiling() or None

    def environment(self) -> dict[str, Any]:
        if self._environment is None:
            self._environment = capture_environment(self.runtime)
        return self._environment

    def measure(self, **overrides: Any) -> Result:
        """Warm up, then time the model in a closed loop (single stream) or the configured
        load scenario, through the measurement path timeit shares
        (:func:`~inferspeed.measure.measurement.run_measurement`).

        Parameters
        ----------
        **overrides
            Loop fields of the session's :class:`~inferspeed.Config` changed for this call
            only (validated again): ``mode``, ``iterations``, ``max_time``,
            ``warmup_iterations``, ``warmup_time``, ``cache``, ``flush_bytes``, ``target_ci``,
            ``target_percentile``, ``drop_outliers``, ``pin``, and the scenario's
            (``scenario``, ``qps``, ``arrival``, ``duration``, ``concurrency``,
            ``deadline``) (:data:`MEASURE_OPTIONS`). Any other field (one that changes the
            session or the inputs) is a ConfigError: make a new Session for it.

        Returns
        -------
        Result
            The samples, their statistics and diagnostics, the model, the configuration used
            and the machine's environment.

        Raises
        ------
        ConfigError
            An override that is not a loop field; ``processes`` > 1 or a metric measured in a
            process of its own (``metric="instructions"``): use
            :func:`~inferspeed.benchmark` for those.
        BenchmarkInterrupted
            On Ctrl-C; its ``result`` holds the samples measured so far (``interrupted=True``).
        """
        bad = sorted(set(overrides) - MEASURE_OPTIONS)
        if bad:
            allowed = ", ".join(sorted(MEASURE_OPTIONS))
            raise ConfigError(f"measure() takes only loop options ({allowed}); got {', '.join(bad)}")
        config = self.config.replace(**overrides) if overrides else self.config
        if config.processes > 1:
            raise ConfigError("processes > 1 runs in worker processes: use inferspeed.benchmark() for that")
        if not metric_named(config.metric).in_session:
            raise ConfigError(
                f"metric {config.metric!r} is measured in a process of its own: use inferspeed.benchmark()"
            )
        if not hasattr(self, "_core"):
            raise InferspeedError("the session is closed")
        environment = self.environment()
        flusher = None
        if config.cache == "cold":
            flusher = self._flusher = cache_flusher(config, self._flusher)
        # Work whose first call is slow (parsing the model for MACs), done before the loop rather
        # than after it: a run stopped by Ctrl-C then ends within milliseconds.
        self._macs()
        target: GenerationTarget | ModelTarget
        if self.decoder is not None:
            target = GenerationTarget(self, self._core, self.decoder, self._plan, config, environment)
        else:
            target = ModelTarget(self, self._core, self.batch, config, environment, flusher)
        try:
            return run_measurement(target)
        except OrtError as exc:
            raise self._call_error("a measured call", exc) from None

    def _call_error(self, what: str, exc: OrtError) -> OrtError:
        """ONNX Runtime's error of a call after the first run, as one line that names the
        model and what was bound (:func:`~inferspeed.measure.plan.call_error`)."""
        name = os.path.basename(self.model_path)
        g = self._generated
        if g is None:
            return OrtError(f"{what} of {name} failed: {ort_reason(str(exc))}", exc.code)
        return OrtError(call_error(name, what, str(exc), self.inputs, g.plan, g.sources), exc.code)

    @property
    def generation_plan(self) -> GenerationPlan | None:
        """The prompt, batch and output tokens of each generation (a decoder's session), with
        the notes that say why; None for a session that times single calls."""
        return self._plan if self.decoder is not None else None

    def generation(self) -> _core.Generation:
        """A core Generation of this session's decoder and prompt, set up afresh: for a tool
        that times whole generations its own way (beside another loop); its ``run()`` returns
        each step's call and sampling times and the tokens. ConfigError when the session does
        not generate (a model without a KV cache, or ``single_call``)."""
        if self.decoder is None:
            raise ConfigError(
                f"{os.path.basename(self.model_path)}: this session times single calls, not generations"
            )
        if not hasattr(self, "_core"):
            raise InferspeedError("the session is closed")
        plan = self._plan
        return self._core.generation(
            **core_spec(self.decoder, plan.prompt_tokens, plan.gen_tokens),
            prompt_ids=plan.prompt_ids,
            gen_tokens=plan.gen_tokens,
        )

    def counted_calls(self, warmup: int, calls: int, *, client_requests: bool = True) -> dict[str, Any]:
        """Calls for Valgrind's Callgrind to count (the instruction-count metric,
        :mod:`inferspeed.measure.instructions`): ``warmup`` uncounted calls, then ``calls`` counted
        ones, each collected alone and dumped. Returns each counted call's wall time (``ns``,
        under Valgrind: not a latency), whether client requests bracketed them, and the
        session's creation and first-run times."""
        if not hasattr(self, "_core"):
            raise InferspeedError("the session is closed")
        mode = _core.CallMode.binding if self.config.mode == "binding" else _core.CallMode.run
        try:
            done = dict(self._core.counted_calls(mode, warmup, calls, client_requests))
        except OrtError as exc:
            raise self._call_error("a counted call", exc) from None
        done["session"] = self.session_info()
        return done

    def session_info(self) -> dict[str, Any]:
        """The session's cold start: its creation (``create_ns``) and first run
        (``first_run_ns``), whether bound calls reuse preallocated outputs, and the input sizes
        whose first run failed before the sizes that ran (``failed_attempts``: ``inputs``,
        ``error``; the figures here are then those of a session made afresh at the sizes
        that ran)."""
        if not hasattr(self, "_core"):
            raise InferspeedError("the session is closed")
        return {
            "create_ns": int(self._core.create_ns),
            "first_run_ns": int(self._core.first_run_ns),
            "outputs_preallocated": bool(self._core.outputs_preallocated),
            "failed_attempts": [dict(f) for f in self._failed],
        }

    def close(self) -> None:
        """Release the ONNX Runtime session (and any temporary model file)."""
        core = getattr(self, "_core", None)
        if core is not None:
            del self._core
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        tmp = getattr(self, "_tmpdir", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
