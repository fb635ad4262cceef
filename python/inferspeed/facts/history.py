"""The machine's own history: what each run on this machine measured, kept in the user's cache.

One run cannot see how far the next session on the same machine will differ from it: a VM
that stays in one speed state for a whole run, a process whose threads land differently. The
pilot experiment of Kalibera and Jones (*Rigorous Benchmarking in Reasonable Time*, 2013)
measures that once per platform; here every run adds to it. Each single-stream run appends one
line (JSON) to ``history/<machine>.jsonl`` in the cache folder (``$INFERSPEED_CACHE_DIR``, else
``$XDG_CACHE_HOME/inferspeed``, else ``~/.cache/inferspeed``): when, which model and settings
(``key``: the model's sha256 and the settings that change what is measured, not how long),
the median, the run's own (within-run) uncertainty of it, its length, the monitor's reading
and the machine's switching time the run saw. :func:`load_runs` reads the most recent
``HISTORY_READ`` lines back; :func:`inferspeed.stats.timeseries.between_sessions` makes the
between-session variation of them.

``machine_key()`` names the machine by its CPU model and /etc/machine-id (else the host name).
Writing never fails a run: a cache that cannot be written (read-only, full, missing home) is
skipped silently. ``INFERSPEED_HISTORY=0`` turns the history off, reading and writing (the test
suite does, so that tests neither read nor pollute the user's cache).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from collections.abc import Mapping
from typing import Any

from .maccache import cache_dir

__all__ = ["HISTORY_READ", "append", "enabled", "history_path", "load_runs", "machine_key", "settings_key"]

#: Lines read back (the most recent): enough sessions for a variance, few enough to read fast.
HISTORY_READ = 2000
#: Config fields that say how long or how a run is summarized, not what is measured: runs
#: that differ only in them are sessions of one measurement.
_LENGTH_FIELDS = frozenset(
    {
        "iterations", "max_time", "warmup_iterations", "warmup_time", "target_ci",
        "target_percentile", "drop_outliers", "processes", "duration",
    }
)  # fmt: skip


def enabled() -> bool:
    """False when ``INFERSPEED_HISTORY`` is 0, off, no or false."""
    return os.environ.get("INFERSPEED_HISTORY", "1").strip().lower() not in {"0", "off", "no", "false"}


def _machine_id() -> str:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            with open(path, encoding="ascii") as f:
                value = f.read().strip()
            if value:
                return value
    return socket.gethostname()


def machine_key(cpu_model: str | None = None) -> str:
    """A short name of this machine: a hash of its CPU model and machine id (or host name)."""
    if cpu_model is None:
        cpu_model = ""
        with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu_model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    return hashlib.sha256(f"{cpu_model}\n{_machine_id()}".encode()).hexdigest()[:16]


def settings_key(model_sha256: str, config: Mapping[str, Any], runtime: str | None) -> str:
    """The key of one measurement across sessions: the model, the settings that change what is
    measured (all of ``config`` but its length fields) and the runtime's version."""
    what = {k: v for k, v in config.items() if k not in _LENGTH_FIELDS}
    text = json.dumps([model_sha256, what, runtime], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def history_path(machine: str) -> str | None:
    """The history file of ``machine``; None when there is no cache folder."""
    macs = cache_dir()  # <cache>/macs: the history sits beside it
    if macs is None:
        return None
    return os.path.join(os.path.dirname(macs), "history", f"{machine}.jsonl")


def append(machine: str, entry: Mapping[str, Any]) -> bool:
    """Add ``entry`` (JSON-ready) to the machine's history; False, silently, when it cannot be
    written (or the history is off). One ``write`` of one line to a file opened for appending,
    so concurrent runs do not interleave their lines."""
    path = history_path(machine)
    if path is None or not enabled():
        return False
    line = json.dumps(dict(entry), separators=(",", ":"), allow_nan=False) + "\n"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except (OSError, ValueError):
        return False
    try:
        os.write(fd, line.encode())
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def load_runs(machine: str, limit: int = HISTORY_READ) -> list[dict[str, Any]]:
    """The machine's most recent ``limit`` entries, oldest first; [] when there is none or the
    history is off. Lines that do not parse (a torn write) are skipped."""
    path = history_path(machine)
    if path is None or not enabled():
        return []
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit * 600))  # lines are ~300 bytes: enough for `limit`
            lines = f.read().split(b"\n")
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for raw in lines[-limit - 1 :]:
        with contextlib.suppress(ValueError):
            entry = json.loads(raw)
            if isinstance(entry, dict):
                out.append(entry)
    return out[-limit:]
