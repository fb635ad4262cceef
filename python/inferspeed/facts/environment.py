"""The machine and software a result was measured on, recorded with every result."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .. import _core
from .machine import read_governor

__all__ = ["capture_environment"]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _cpu() -> dict[str, Any]:
    model: str | None = None
    physical: set[tuple[str, str]] = set()
    info = _read("/proc/cpuinfo") or ""
    phys_id = core_id = ""
    for line in info.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and value:
            model = value
        elif key == "physical id":
            phys_id = value
        elif key == "core id":
            core_id = value
            physical.add((phys_id, core_id))
    if model is None:
        # Only where /proc/cpuinfo names no model: on Linux platform.processor() runs
        # `uname -p` in a child process (0.1 s here), for a name cpuinfo gives for free.
        model = platform.processor() or None
    caches: dict[str, str] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        level, kind, size = (_read(str(index / f)) for f in ("level", "type", "size"))
        if level and kind and size:
            name = f"L{level}" + ({"Data": "d", "Instruction": "i"}.get(kind, ""))
            caches[name] = size
    return {
        "model": model,
        "logical_cores": os.cpu_count(),
        "physical_cores": len(physical) or None,
        "caches": caches,
        "governor": read_governor(),
    }


def _size_bytes(text: str) -> int | None:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip()
    try:
        if text and text[-1].upper() in units:
            return int(text[:-1]) * units[text[-1].upper()]
        return int(text)
    except ValueError:
        return None


def last_level_cache_bytes() -> int | None:
    """Size of the largest data or unified cache of CPU 0 (sysfs), or None."""
    best: tuple[int, int] | None = None
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        level, kind, size = (_read(str(index / f)) for f in ("level", "type", "size"))
        if not (level and kind and size) or kind == "Instruction":
            continue
        nbytes = _size_bytes(size)
        if nbytes is not None and level.isdigit() and (best is None or (int(level), nbytes) > best):
            best = (int(level), nbytes)
    return best[1] if best else None


def capture_environment(runtime: _core.Runtime | None = None) -> dict[str, Any]:
    """Machine, OS, Python, numpy, ONNX Runtime (version and the library actually loaded),
    its execution providers, the clock's overhead, inferspeed's version and the command line."""
    from ..version import __version__

    env: dict[str, Any] = {
        "cpu": _cpu(),
        "os": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
        },
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "inferspeed": __version__,
        "command_line": list(sys.argv),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "start_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "clock": {"source": "CLOCK_MONOTONIC", **_core.measure_clock(100_000)},
    }
    if runtime is not None:
        env["onnxruntime"] = {
            "version": runtime.version,
            "library": runtime.path,
            "api_version": _core.Runtime.api_version,
            "providers": runtime.available_providers(),
        }
    return env
