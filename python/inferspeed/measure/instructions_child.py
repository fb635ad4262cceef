"""The process Valgrind runs for the instruction-count metric (``python -m
inferspeed.measure.instructions_child SPEC OUT``): it creates the session, makes the counted calls
(:meth:`Session.counted_calls <inferspeed.measure.session.Session.counted_calls>`) and writes
what it knows as JSON to OUT. The counts themselves are in Callgrind's dumps, which the parent
reads (:mod:`inferspeed.measure.instructions`).

SPEC is a pickle written by the parent: ``{"model": path, "config": Config, "client_requests":
bool, "ready": path}``; once the session is ready (before the counted calls) the child writes
``{"created": monotonic time, "first_run_ns": ..., "untimed_calls": ...}`` to the ``ready``
file, from which the parent estimates the calls' time. Every clock read here is
``time.monotonic()``, system-wide on Linux, so the parent splits the run's time with them
(Valgrind's start, session creation, counted calls).
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from typing import Any

__all__ = ["count_in_this_process", "run_child"]


def count_in_this_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Create the session of ``spec`` and make its counted calls; what the parent needs of it,
    or ``error`` (its class name and message) for an InferspeedError."""
    from .. import _core
    from ..errors import InferspeedError
    from .session import Session

    out: dict[str, Any] = {"times": {"imported": time.monotonic()}}
    config = spec["config"]
    warmup, _ = config.warmup_limits
    calls, _ = config.loop_limits
    try:
        with Session(spec["model"], config) as session:
            out["times"]["created"] = time.monotonic()
            _ready(spec.get("ready"), out["times"]["created"], session)
            done = session.counted_calls(
                int(warmup or 0), int(calls), client_requests=spec["client_requests"]
            )
            out["times"]["counted"] = time.monotonic()
            out["ns"] = [int(x) for x in done["ns"]]
            out["client_requests"] = bool(done["client_requests"])
            out["session"] = done["session"]
            out["model"] = session.model_info()
            out["notices"] = list(session.notices)
            out["mode"] = session.config.mode
            out["batch"] = session.batch
            out["runtime"] = {"path": session.runtime.path, "version": session.runtime.version}
    except InferspeedError as exc:
        out["error"] = {"type": type(exc).__name__, "message": str(exc)}
    out["guest_cpu"] = list(_core.cpu_extensions())
    out["on_valgrind"] = bool(_core.running_on_valgrind())
    return out


def _ready(path: str | None, created: float, session: Any) -> None:
    """Tell the parent that the session is ready, and how long its first run took."""
    if not path:
        return
    facts = {
        "created": created,
        "first_run_ns": session.session_info()["first_run_ns"],
        "untimed_calls": session.untimed_calls,
    }
    with open(path + ".part", "w", encoding="utf-8") as f:
        json.dump(facts, f)
    os.replace(path + ".part", path)  # whole or absent for a reader


def run_child(argv: list[str]) -> int:
    """The child's entry point: read SPEC, count, write OUT (argv: SPEC OUT)."""
    started = time.monotonic()
    spec_path, out_path = argv
    with open(spec_path, "rb") as f:
        spec = pickle.load(f)  # written by this package's parent process, in a private folder
    out = count_in_this_process(spec)
    out["times"]["started"] = started
    out["times"]["done"] = time.monotonic()
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(run_child(sys.argv[1:]))
