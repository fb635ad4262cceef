"""inferspeed: latency and throughput of ONNX models under ONNX Runtime, timed in C++.

>>> import inferspeed
>>> result = inferspeed.benchmark("model.onnx", threads=1, max_time=1.0)  # doctest: +SKIP
>>> result.stats.median_ns  # doctest: +SKIP
"""

from __future__ import annotations

from . import _cli_guard  # noqa: F401  (Ctrl-C while the CLI is importing: one line, exit 130)
from .errors import (
    BenchmarkInterrupted,
    ConfigError,
    InferspeedError,
    InputError,
    ModelError,
    OrtError,
    RuntimeLoadError,
    WorkerCrashed,
)

__version__ = "0.1.0"

try:
    from . import _core  # noqa: F401  (fail here, with advice, if the build is broken)
except ImportError as exc:  # pragma: no cover - only in a broken install
    raise ImportError(
        "inferspeed's compiled core (inferspeed._core) is missing or does not load: "
        f"{exc}. Reinstall with 'pip install .' from the source tree (it builds the C++ core)."
    ) from exc

from .callables import timeit
from .compare import Comparison, compare
from .config import Config, ProviderSpec
from .result import Result, load_json, write_json
from .session import Session, benchmark
from .signature import ValueInfo
from .stats import Stats, summarize
from .sweep import SweepResult, sweep
from .tradeoff import TradeoffResult, tradeoff

__all__ = [
    "BenchmarkInterrupted",
    "Comparison",
    "Config",
    "ConfigError",
    "InferspeedError",
    "InputError",
    "ModelError",
    "OrtError",
    "ProviderSpec",
    "Result",
    "RuntimeLoadError",
    "Session",
    "Stats",
    "SweepResult",
    "TradeoffResult",
    "ValueInfo",
    "WorkerCrashed",
    "__version__",
    "benchmark",
    "compare",
    "load_json",
    "summarize",
    "sweep",
    "timeit",
    "tradeoff",
    "write_json",
]
