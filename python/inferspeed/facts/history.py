"""The machine's own history: what each run on this machine measured, kept in the user's cache.

One run cannot see how far the next session on the same machine will differ from it: a VM
that stays in one speed state for a whole run, a process whose threads land differently. The
pilot experiment of Kalibera and Jones (*Rigorous Benchmarking in Reasonable Time*, 2013)
measures that once per platform; here every run adds to it. Each top-level measurement (a
``run``, a ``benchmark()`` call, one side of a whole gate; never a round or a pilot) appends
one line (JSON) to ``history/<machine>.jsonl`` in the cache folder (``$INFERSPEED_CACHE_DIR``,
else ``$XDG_CACHE_HOME/inferspeed``, else ``~/.cache/inferspeed``): when, what was measured
(``key``, :func:`settings_key`), how (``kind``: a closed loop, pooled interleaved rounds,
pooled processes), the median, the variance of its log that the run saw in itself
(``log_var_run``), its length (``span_s``) and the machine's switching time the run saw.
:func:`load_runs` reads the most recent ``HISTORY_READ`` lines back, once per process (the
file is parsed again only when another process wrote to it);
:func:`inferspeed.stats.timeseries.between_sessions` makes the between-session variation of them.

The file is bounded: past ``HISTORY_MAX_BYTES`` it moves to ``<machine>.jsonl.1`` (replacing
the one before) and a new one starts; reading takes the tail of both.

``machine_key()`` names the machine by ``$INFERSPEED_MACHINE`` when set (a stable name for a
container or a CI runner that is the same machine each time), else by a hash of its CPU model,
/etc/machine-id and host name: two hosts that share a machine-id (a container image that
carries one) are still two machines. Writing never fails a run: a cache that cannot be written
(read-only, full, missing home) is skipped silently. ``INFERSPEED_HISTORY=0`` turns the history
off, reading and writing (the test suite does, so that tests neither read nor pollute the
user's cache).
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
from .modelfile import sha256_file

__all__ = [
    "FORMAT",
    "HISTORY_MAX_BYTES",
    "HISTORY_READ",
    "append",
    "enabled",
    "history_path",
    "load_runs",
    "machine_key",
    "settings_key",
]

#: Lines read back (the most recent): enough sessions for a variance, few enough to read fast.
HISTORY_READ = 2000
#: The file's size past which it is rotated (about 4000 lines).
HISTORY_MAX_BYTES = 1 << 20
#: The entries' format: lines of another (or none: the rounds the first format recorded as
#: runs) are not read.
FORMAT = 2
#: Config fields that say how long or how a run is summarized, not what is measured: runs
#: that differ only in them are sessions of one measurement (their length is in the entry).
_LENGTH_FIELDS = frozenset(
    {
        "iterations", "max_time", "warmup_iterations", "warmup_time", "target_ci",
        "target_percentile", "drop_outliers", "processes", "duration", "seed",
    }
)  # fmt: skip
#: Config fields that name a file: in the key by the file's content, not its path.
_FILE_FIELDS = ("inputs_file", "ort_lib")


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
    return ""


def machine_key(cpu_model: str | None = None) -> str:
    """A short name of this machine: ``$INFERSPEED_MACHINE`` (made safe for a file name) when
    set, else a hash of its CPU model, machine id and host name."""
    named = os.environ.get("INFERSPEED_MACHINE", "").strip()
    if named:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in named)[:64].lstrip(".")
        return safe or hashlib.sha256(named.encode()).hexdigest()[:16]
    if cpu_model is None:
        cpu_model = ""
        with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu_model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    text = f"{cpu_model}\n{_machine_id()}\n{socket.gethostname()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _content(path: Any) -> str | None:
    """A file's sha256 (its path when it cannot be read: the key then stays per path)."""
    if path is None:
        return None
    try:
        return sha256_file(os.fspath(path))
    except (OSError, TypeError, ValueError):
        return f"path:{path}"


def settings_key(
    model_sha256: str,
    config: Mapping[str, Any],
    runtime: str | None,
    *,
    threads: int | None = None,
    kind: str = "run",
) -> str:
    """The key of one measurement across sessions: the model (its sha256), the settings that
    change what is measured (``config`` less its length fields; files by content; ``threads``
    as resolved, so that the default and the number it resolves to are one key), the runtime's
    version and the ``kind`` of measurement."""
    what = {k: v for k, v in config.items() if k not in _LENGTH_FIELDS and k not in _FILE_FIELDS}
    for name in _FILE_FIELDS:
        what[name] = _content(config.get(name))
    if threads is not None:
        what["threads"] = threads
    text = json.dumps([model_sha256, what, runtime, kind], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def history_path(machine: str) -> str | None:
    """The history file of ``machine``; None when there is no cache folder."""
    macs = cache_dir()  # <cache>/macs: the history sits beside it
    if macs is None:
        return None
    return os.path.join(os.path.dirname(macs), "history", f"{machine}.jsonl")


def append(machine: str, entry: Mapping[str, Any]) -> bool:
    """Add ``entry`` (JSON-ready; ``format`` is added) to the machine's history; False,
    silently, when it cannot be written (or the history is off). One ``write`` of one line to a
    file opened for appending, so concurrent runs do not interleave their lines; a file past
    HISTORY_MAX_BYTES is rotated first."""
    path = history_path(machine)
    if path is None or not enabled():
        return False
    line = json.dumps({"format": FORMAT, **entry}, separators=(",", ":"), allow_nan=False) + "\n"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with contextlib.suppress(OSError):
            if os.path.getsize(path) > HISTORY_MAX_BYTES:
                os.replace(path, path + ".1")
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


#: The entries read per file, by (path, size, modification time): a process reads its
#: history once, and again only when the file changed.
_READ: dict[tuple[str, int], tuple[tuple[int, int], list[dict[str, Any]]]] = {}


def _tail(path: str, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` entries of the current format in ``path``, oldest first."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    stamp = (st.st_size, st.st_mtime_ns)
    known = _READ.get((path, limit))
    if known is not None and known[0] == stamp:
        return known[1]
    try:
        with open(path, "rb") as f:
            f.seek(max(0, st.st_size - limit * 600))  # lines are ~350 bytes: enough for `limit`
            lines = f.read().split(b"\n")
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for raw in lines[-limit - 1 :]:
        with contextlib.suppress(ValueError):
            entry = json.loads(raw)
            if isinstance(entry, dict) and entry.get("format") == FORMAT:
                out.append(entry)
    if len(_READ) > 16:
        _READ.clear()
    _READ[(path, limit)] = (stamp, out[-limit:])
    return out[-limit:]


def load_runs(machine: str, limit: int = HISTORY_READ) -> list[dict[str, Any]]:
    """The machine's most recent ``limit`` entries, oldest first (the rotated file's tail
    before the current one's); [] when there is none or the history is off. Lines that do not
    parse (a torn write) or of another format are skipped."""
    path = history_path(machine)
    if path is None or not enabled():
        return []
    current = _tail(path, limit)
    if len(current) >= limit:
        return current
    return _tail(path + ".1", limit - len(current)) + current
