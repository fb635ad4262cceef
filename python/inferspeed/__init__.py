"""inferspeed: latency and throughput of ONNX models under ONNX Runtime, timed in C++."""

from __future__ import annotations

from .errors import (
    BenchmarkInterrupted,
    ConfigError,
    InferspeedError,
    InputError,
    ModelError,
    OrtError,
    RuntimeLoadError,
)

__version__ = "0.1.0"
