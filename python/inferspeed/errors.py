"""Exceptions and warnings raised by inferspeed.

Every error inferspeed raises on purpose derives from :class:`InferspeedError`; the CLI turns
each into one line on stderr and exit status 2.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BenchmarkInterrupted",
    "ConfigError",
    "InferspeedError",
    "InputError",
    "ModelError",
    "OrtError",
    "RuntimeLoadError",
    "SessionInUseError",
    "ValgrindError",
    "WorkerCrashed",
]


class InferspeedError(Exception):
    """Base class of every error inferspeed raises."""


class ConfigError(InferspeedError, ValueError):
    """A configuration value or command-line flag is invalid."""


class ModelError(InferspeedError):
    """The model file is missing, unreadable or not an ONNX model."""


class InputError(InferspeedError, ValueError):
    """An input specification (shape, dim, value, range, .npz file) is invalid for this model."""


class RuntimeLoadError(InferspeedError):
    """The ONNX Runtime shared library could not be found, loaded, or is too old."""


class OrtError(InferspeedError):
    """ONNX Runtime returned an error status.

    Attributes
    ----------
    code : int
        ONNX Runtime's ``OrtErrorCode`` (1 FAIL, 2 INVALID_ARGUMENT, 3 NO_SUCHFILE, 4 NO_MODEL,
        5 ENGINE_ERROR, 6 RUNTIME_EXCEPTION, 7 INVALID_PROTOBUF, 8 MODEL_LOADED,
        9 NOT_IMPLEMENTED, 10 INVALID_GRAPH, 11 EP_FAIL).
    """

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class ValgrindError(InferspeedError):
    """Counting instructions (``metric="instructions"``) needs Valgrind, which is missing, or
    Valgrind failed; the message says how to install it or what it reported."""


class SessionInUseError(InferspeedError, RuntimeError):
    """A session was used from a second thread while a measurement on it was running (its
    loop runs without the GIL); one session measures one thing at a time."""


class WorkerCrashed(InferspeedError):
    """A worker process died without answering (ONNX Runtime crashed, the out-of-memory
    killer, ``kill -9``). ``exitcode``: negative for a signal, as multiprocessing reports it."""

    def __init__(self, message: str, exitcode: int | None = None) -> None:
        super().__init__(message)
        self.exitcode = exitcode


class BenchmarkInterrupted(KeyboardInterrupt):
    """A measurement was interrupted (Ctrl-C); ``result`` holds what was measured so far.

    ``result`` is the partial :class:`inferspeed.Result` (``interrupted`` True). It is typed
    ``Any`` here because this module is the foundation every layer imports, and the Result
    lives above it (results layer); every exception stays in this one module.
    """

    def __init__(self, result: Any) -> None:
        super().__init__("benchmark interrupted; partial result kept")
        self.result = result
