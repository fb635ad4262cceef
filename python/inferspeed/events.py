"""Progress events for a program that follows a run from outside (a dashboard, a CI wrapper, our
own tests): with ``INFERSPEED_EVENTS`` set to a file path, each phase of a measurement appends
one JSON line ``{"event": ..., "pid": ..., "time": ...}`` to it, flushed at once. Nothing is
written when the variable is unset, and never inside a timed region.

Events: ``session`` (a model's session is ready: loaded, inputs bound, first run done),
``warmup`` (the warm-up loop starts), ``timed`` (the timed loop or load scenario starts),
``measured`` (the measurement ended; ``interrupted`` says how), ``cell`` (a sweep cell was
written to its JSONL file). See docs/tool-authors.md.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

__all__ = ["EVENTS_ENV", "emit"]

EVENTS_ENV = "INFERSPEED_EVENTS"


def emit(event: str, **fields: Any) -> None:
    """Append one event line to the file named by ``INFERSPEED_EVENTS`` (no-op when unset).
    A file that cannot be written is ignored: following a run must never break it."""
    path = os.environ.get(EVENTS_ENV)
    if not path:
        return
    line = json.dumps({"event": event, "pid": os.getpid(), "time": time.time(), **fields})
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError:
        pass
