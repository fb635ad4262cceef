"""A model's core session in the measurement path: its closed loop (the cache flushed before each
call when cold), the server and offline scenarios, and what a model's Result records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from .. import _core
from ..config import CHUNK_TIME, Config
from ..errors import ConfigError
from ..facts.environment import last_level_cache_bytes
from ..facts.memory import MemoryProbe
from ..stats.summary import Stats
from . import scenarios
from .loop import Timed
from .measurement import Target

__all__ = ["ModelFacts", "ModelTarget", "cache_flusher"]


class ModelFacts(Protocol):
    """What a model's Result records of its session (:class:`~inferspeed.Session` has it)."""

    @property
    def notices(self) -> tuple[str, ...]: ...

    def model_info(self) -> dict[str, Any]: ...

    def session_info(self) -> dict[str, Any]: ...

    def memory_info(self, run_peak: int | None = None, run_peak_reset: bool = False) -> dict[str, Any]: ...

    def compute_info(self, median_ns: float) -> dict[str, Any] | None: ...

    def environment(self) -> dict[str, Any]: ...


def cache_flusher(config: Config, current: _core.CacheFlusher | None) -> _core.CacheFlusher:
    """The cold-cache flush buffer ``config`` asks for: ``current`` when it has that size (the
    buffer is large; a session keeps it between measurements), else a new one."""
    size = config.resolved_flush_bytes(last_level_cache_bytes())
    if current is not None and current.bytes == size:
        return current
    try:
        return _core.CacheFlusher(size)
    except MemoryError:
        raise ConfigError(f"not enough memory for a {size / 2**20:.0f} MiB cache-flush buffer") from None


class ModelTarget(Target):
    """One measurement of a model's core session.

    Parameters
    ----------
    facts : ModelFacts
        The session, for the model, notices, memory and compute figures of the Result.
    core : _core.Session
        The core session that is timed, inputs bound.
    batch : int
        The batch of the bound inputs (a scenario's samples per second).
    config : Config
        The measurement's configuration.
    environment : Mapping
        The machine and software record.
    flusher : _core.CacheFlusher or None
        The buffer flushed before each call for a cold cache (``cache_flusher``); None: warm.
    """

    def __init__(
        self,
        facts: ModelFacts,
        core: _core.Session,
        batch: int,
        config: Config,
        environment: Mapping[str, Any],
        flusher: _core.CacheFlusher | None,
    ) -> None:
        super().__init__(config, environment)
        self._facts = facts
        self._core = core
        self._batch = batch
        self._flusher = flusher
        self._mode = _core.CallMode.binding if config.mode == "binding" else _core.CallMode.run
        # Resident memory over the warm-up and timed phase (the session's own is the facts').
        self._probe = MemoryProbe()
        self._run_peak: int | None = None

    def loop(self, iterations: int | None, seconds: float | None) -> dict[str, Any]:
        return self._core.closed_loop(
            self._mode,
            max_iterations=iterations or 0,
            max_ns=int(seconds * 1e9) if seconds else 0,
            chunk_ns=int(CHUNK_TIME * 1e9),
            flusher=self._flusher,
        )

    def start(self) -> None:
        self._probe.start()

    def stop(self) -> None:
        self._run_peak, _ = self._probe.stop()

    def run_scenario(self, warm_ns: np.ndarray) -> Timed:
        if self.config.scenario == "server":
            return scenarios.run_server(self._core, self._batch, self.config)
        one_call = float(np.median(warm_ns)) if warm_ns.size else None
        return scenarios.run_offline(self._core, self._batch, self.config, one_call)

    def loop_fields(self) -> dict[str, Any]:
        return {
            "cache": self.config.cache,
            "flush_bytes": self._flusher.bytes if self._flusher is not None else None,
            "input_sets": int(self._core.input_set_count),
        }

    def _threads(self) -> dict[str, Any]:
        """The intra-op threads: as set, or what ONNX Runtime's default resolves to (one per
        physical core)."""
        if self.config.threads is not None:
            return {"intra_op_threads": self.config.threads, "intra_op_threads_default": False}
        cpu = self._facts.environment().get("cpu", {})
        n = cpu.get("physical_cores") or cpu.get("logical_cores")
        return {"intra_op_threads": n, "intra_op_threads_default": True}

    def fields(self, stats: Stats) -> dict[str, Any]:
        return {
            "model": self._facts.model_info(),
            "config": self.config.to_dict(),
            "session": {
                **self._facts.session_info(),
                "call_mode": self.config.mode,
                **self._threads(),
            },
            "notices": self._facts.notices,
            "memory": self._facts.memory_info(self._run_peak, self._probe.peak_reset),
            "compute": self._facts.compute_info(stats.median_ns),
        }
