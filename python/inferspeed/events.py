"""Progress events for a program that follows a run from outside (a dashboard, a CI wrapper, our
own tests): with ``INFERSPEED_EVENTS`` set to a file path, each phase of a measurement appends
one JSON line ``{"event": ..., "pid": ..., "time": ...}`` to it, flushed at once. Nothing is
written when the variable is unset, and never inside a timed region.

Events: ``session`` (a model's session is ready: loaded, inputs bound, first run done),
``warmup`` (the warm-up loop starts), ``timed`` (the timed loop or load scenario starts),
``measured`` (the measurement ended; ``interrupted`` says how), ``cell`` (a sweep cell was
written to its JSONL file), and, while instructions are counted, ``counting`` (the count
starts, with its estimated time), ``counting_session`` (the session under Valgrind is ready) and
``counted`` (more counted calls are done). See docs/tool-authors.md.

In this process, :func:`listening` hands every event to a callback as well (the CLI prints the
counting progress so), whether or not the variable is set.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["EVENTS_ENV", "emit", "listening"]

EVENTS_ENV = "INFERSPEED_EVENTS"

_listeners: list[Callable[[dict[str, Any]], None]] = []


@contextmanager
def listening(callback: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Within the block, call ``callback`` with every event this process emits (the dict of its
    JSON line)."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


def emit(event: str, **fields: Any) -> None:
    """Append one event line to the file named by ``INFERSPEED_EVENTS`` (no-op when unset).
    A file that cannot be written is ignored: following a run must never break it."""
    path = os.environ.get(EVENTS_ENV)
    if not path and not _listeners:
        return
    record = {"event": event, "pid": os.getpid(), "time": time.time(), **fields}
    for callback in list(_listeners):
        callback(record)
    if not path:
        return
    line = json.dumps(record)
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError:
        pass
