"""The public Session and benchmark(): a model loaded once, its inputs bound, timed in C++."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import _core, _ortlib
from .config import CHUNK_TIME, GRAPH_OPTIMIZATION_LEVELS, Config
from .environment import capture_environment
from .errors import BenchmarkInterrupted, ConfigError, InferspeedError, InputError, ModelError, OrtError
from .inputs import GeneratedInputs, make_inputs
from .result import Result
from .signature import ValueInfo

__all__ = ["Session", "benchmark"]

# ORT error codes that mean "this file is not a model ORT can load".
_LOAD_ERROR_CODES = {3, 4, 7, 9, 10}


def _check_model_path(path: str) -> None:
    if not os.path.exists(path):
        raise ModelError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ModelError(f"{path} is a directory, not an ONNX model file")
    try:
        size = os.path.getsize(path)
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror or exc}") from None
    if size == 0:
        raise ModelError(f"{path} is empty, not an ONNX model")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Session:
    """An ONNX Runtime session created through the C++ core, with inputs bound once.

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
        The model: a path, serialized bytes, or an in-memory ModelProto.
    config : Config, optional
        The configuration; ``options`` override its fields.
    **options
        Any :class:`~inferspeed.Config` field, e.g. ``threads=1, mode="run"``.

    The session keeps its input arrays alive for as long as the core binds them. Use it as a
    context manager, or call :meth:`close`, to release it early.
    """

    def __init__(self, model: Any, config: Config | None = None, **options: Any) -> None:
        self.config = Config.from_options(config, **options)
        self._tmpdir: str | None = None
        self.model_path = self._materialize(model)
        _check_model_path(self.model_path)
        self.runtime = _ortlib.load_runtime(self.config.ort_lib)
        self._check_providers()
        c = self.config
        try:
            self._core = _core.Session(
                self.runtime,
                self.model_path,
                intra_op_threads=c.threads or 0,
                inter_op_threads=c.inter_op_threads or 0,
                graph_optimization_level=GRAPH_OPTIMIZATION_LEVELS[c.graph_optimization],
                parallel_execution=c.execution_mode == "parallel",
                config_entries=list(c.session_config.items()),
                providers=[(p.name, list(p.options.items())) for p in c.providers],
            )
        except OrtError as exc:
            if exc.code in _LOAD_ERROR_CODES:
                raise ModelError(f"cannot load model {self.model_path}: {exc}") from None
            raise
        self.inputs = tuple(ValueInfo.from_core(d) for d in self._core.inputs)
        self.outputs = tuple(ValueInfo.from_core(d) for d in self._core.outputs)
        self._generated: GeneratedInputs = make_inputs(self.inputs, self.config)
        for v in self.inputs:
            array = self._generated.arrays[v.name]
            shape = list(self._generated.shapes[v.name])
            if array.dtype == object:
                self._core.bind_string_input(v.name, shape, [str(s) for s in array.ravel()])
            else:
                self._core.bind_input(v.name, array, v.element_code, shape)
        try:
            self._core.prepare()
        except OrtError as exc:
            raise InputError(
                f"the first run of {os.path.basename(self.model_path)} failed "
                f"(check the input shapes and values): {exc}"
            ) from None
        self._environment: dict[str, Any] | None = None

    def _materialize(self, model: Any) -> str:
        if isinstance(model, (str, os.PathLike)):
            return os.fspath(model)
        data: bytes
        if isinstance(model, (bytes, bytearray, memoryview)):
            data = bytes(model)
        elif hasattr(model, "SerializeToString"):
            data = model.SerializeToString()
        else:
            raise ModelError(f"model must be a path, bytes or onnx.ModelProto, not {type(model).__name__}")
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
            if p.name not in available:
                raise ConfigError(
                    f"execution provider {p.name} is not available in ONNX Runtime "
                    f"{self.runtime.version} ({self.runtime.path}); available: {', '.join(available)}"
                )

    @property
    def input_arrays(self) -> Mapping[str, np.ndarray]:
        """The arrays bound as inputs, by name."""
        return self._generated.arrays

    @property
    def notices(self) -> tuple[str, ...]:
        return self._generated.notices

    def model_info(self) -> dict[str, Any]:
        return {
            "path": os.path.abspath(self.model_path) if self._tmpdir is None else None,
            "name": os.path.basename(self.model_path) if self._tmpdir is None else "<in-memory>",
            "size_bytes": os.path.getsize(self.model_path),
            "sha256": _sha256(self.model_path),
            "inputs": [
                {
                    **v.to_dict(),
                    "bound_shape": list(self._generated.shapes[v.name]),
                    "source": self._generated.sources[v.name],
                }
                for v in self.inputs
            ],
            "outputs": [v.to_dict() for v in self.outputs],
        }

    def environment(self) -> dict[str, Any]:
        if self._environment is None:
            self._environment = capture_environment(self.runtime)
        return self._environment

    def _loop(self, mode: _core.CallMode, iterations: int | None, seconds: float | None) -> dict[str, Any]:
        if not hasattr(self, "_core"):
            raise InferspeedError("the session is closed")
        return self._core.closed_loop(
            mode,
            max_iterations=iterations or 0,
            max_ns=int(seconds * 1e9) if seconds else 0,
            chunk_ns=int(CHUNK_TIME * 1e9),
        )

    def measure(self, **overrides: Any) -> Result:
        """Warm up, then time the model in a closed loop (single stream).

        ``overrides`` change loop fields of the session's config for this call only
        (``mode``, ``iterations``, ``max_time``, ``warmup_iterations``, ``warmup_time``).

        Raises
        ------
        BenchmarkInterrupted
            On Ctrl-C; its ``result`` holds the samples measured so far (``interrupted=True``).
        """
        allowed = {"mode", "iterations", "max_time", "warmup_iterations", "warmup_time"}
        bad = sorted(set(overrides) - allowed)
        if bad:
            raise ConfigError(
                f"measure() takes only loop options ({', '.join(sorted(allowed))}); got {', '.join(bad)}"
            )
        config = self.config.replace(**overrides) if overrides else self.config
        mode = _core.CallMode.binding if config.mode == "binding" else _core.CallMode.run
        environment = self.environment()

        w_iters, w_time = config.warmup_limits
        warm: dict[str, Any] = {"samples_ns": np.zeros(0, np.int64), "interrupted": False}
        if (w_iters is None or w_iters > 0) and (w_time is None or w_time > 0):
            warm = self._loop(mode, w_iters, w_time)
        timed: dict[str, Any] = {"samples_ns": np.zeros(0, np.int64), "interrupted": True}
        if not warm["interrupted"]:
            iterations, seconds = config.loop_limits
            timed = self._loop(mode, iterations, seconds)
        samples = timed["samples_ns"]
        warm_samples = warm["samples_ns"]
        interrupted = bool(warm["interrupted"] or timed["interrupted"])
        if samples.size == 0:
            if interrupted:
                raise KeyboardInterrupt("benchmark interrupted during warm-up; nothing was measured")
            raise OrtError("the timed loop produced no samples")
        result = Result.from_samples(
            samples,
            timer_overhead_ns=float(environment["clock"]["overhead_ns"]),
            model=self.model_info(),
            config=config.to_dict(),
            environment=environment,
            session={
                "create_ns": int(self._core.create_ns),
                "first_run_ns": int(self._core.first_run_ns),
                "outputs_preallocated": bool(self._core.outputs_preallocated),
                "call_mode": config.mode,
            },
            warmup={
                "iterations": int(warm_samples.size),
                "time_ns": int(warm_samples.sum()),
            },
            interrupted=interrupted,
            notices=self.notices,
        )
        if interrupted:
            raise BenchmarkInterrupted(result)
        return result

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


def benchmark(model: Any, config: Config | None = None, **options: Any) -> Result:
    """Measure ``model`` once with ``config`` / ``options`` and return the :class:`Result`.

    Equivalent to ``Session(model, config, **options).measure()``; see :class:`Config` for
    the options. Raises an :class:`~inferspeed.InferspeedError` subclass for bad input and
    :class:`~inferspeed.BenchmarkInterrupted` (carrying the partial result) on Ctrl-C.
    """
    with Session(model, config, **options) as session:
        return session.measure()
