"""inferspeed: latency and throughput of ONNX models under ONNX Runtime, timed in C++.

>>> import inferspeed
>>> result = inferspeed.benchmark("model.onnx", threads=1, max_time=1.0)  # doctest: +SKIP
>>> result.stats.median_ns  # doctest: +SKIP

The public names load on first use (PEP 562): ``import inferspeed`` costs the errors and the
compiled core only, so ``inferspeed --help`` and a flag error answer without numpy, and a
``run`` imports only what it measures with. The layers under this package are described in
docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import _cli_guard  # noqa: F401  (Ctrl-C while the CLI is importing: one line, exit 130)
from .errors import (
    BenchmarkInterrupted,
    ConfigError,
    InferspeedError,
    InputError,
    ModelError,
    OrtError,
    RuntimeLoadError,
    SessionInUseError,
    WorkerCrashed,
)
from .version import __version__

try:
    from . import _core  # noqa: F401  (fail here, with advice, if the build is broken)
except ImportError as exc:  # pragma: no cover - only in a broken install
    raise ImportError(
        "inferspeed's compiled core (inferspeed._core) is missing or does not load: "
        f"{exc}. Reinstall with 'pip install .' from the source tree (it builds the C++ core)."
    ) from exc

if TYPE_CHECKING:
    from .analysis.compare import Comparison, compare
    from .config import Config, ProviderSpec
    from .facts.signature import ValueInfo
    from .measure.benchmark import benchmark
    from .measure.callables import timeit
    from .measure.session import Session
    from .results.result import Result, load_json, write_json
    from .stats.summary import Stats, summarize
    from .tools.cluster import cluster_sweep
    from .tools.gate import GateSide, GateVerdict, gate
    from .tools.sweep import SweepResult, sweep
    from .tools.tradeoff import TradeoffResult, tradeoff

#: Public name -> the module that defines it, imported when the name is first used.
_LAZY = {
    "Comparison": "analysis.compare",
    "Config": "config",
    "GateSide": "tools.gate",
    "GateVerdict": "tools.gate",
    "ProviderSpec": "config",
    "Result": "results.result",
    "Session": "measure.session",
    "Stats": "stats.summary",
    "SweepResult": "tools.sweep",
    "TradeoffResult": "tools.tradeoff",
    "ValueInfo": "facts.signature",
    "benchmark": "measure.benchmark",
    "cluster_sweep": "tools.cluster",
    "compare": "analysis.compare",
    "gate": "tools.gate",
    "load_json": "results.result",
    "summarize": "stats.summary",
    "sweep": "tools.sweep",
    "timeit": "measure.callables",
    "tradeoff": "tools.tradeoff",
    "write_json": "results.result",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'inferspeed' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BenchmarkInterrupted",
    "Comparison",
    "Config",
    "ConfigError",
    "GateSide",
    "GateVerdict",
    "InferspeedError",
    "InputError",
    "ModelError",
    "OrtError",
    "ProviderSpec",
    "Result",
    "RuntimeLoadError",
    "Session",
    "SessionInUseError",
    "Stats",
    "SweepResult",
    "TradeoffResult",
    "ValueInfo",
    "WorkerCrashed",
    "__version__",
    "benchmark",
    "cluster_sweep",
    "compare",
    "gate",
    "load_json",
    "summarize",
    "sweep",
    "timeit",
    "tradeoff",
    "write_json",
]
