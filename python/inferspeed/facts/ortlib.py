"""Finding and loading the ONNX Runtime shared library the core measures."""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import re

from .. import _core
from ..errors import RuntimeLoadError

#: Environment variable naming the libonnxruntime to load.
ENV_VAR = "INFERSPEED_ORT_LIB"
#: ORT's logging level for the sessions inferspeed creates (0 verbose .. 4 fatal).
LOG_LEVEL_VAR = "INFERSPEED_ORT_LOG_LEVEL"


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", os.path.basename(path)))


def wheel_library() -> str | None:
    """libonnxruntime inside the installed onnxruntime wheel, found without importing it."""
    try:
        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        found = [
            p
            for pattern in ("libonnxruntime.so*", "libonnxruntime*.dylib", "onnxruntime.dll")
            for p in glob.glob(os.path.join(root, "capi", pattern))
            if "providers" not in os.path.basename(p)
        ]
        if found:
            # The real file (libonnxruntime.so.1.32.0), not a symlink to it.
            return max(found, key=lambda p: (not os.path.islink(p), _version_key(p)))
    return None


def find_library(explicit: str | None = None) -> str:
    """Path of the libonnxruntime to load: ``explicit``, then $INFERSPEED_ORT_LIB, then the
    onnxruntime wheel's. Raises RuntimeLoadError when there is none."""
    for candidate, origin in ((explicit, "--ort-lib"), (os.environ.get(ENV_VAR), ENV_VAR)):
        if candidate:
            path = os.path.abspath(os.path.expanduser(candidate))
            if not os.path.isfile(path):
                raise RuntimeLoadError(f"ONNX Runtime library {candidate!r} (from {origin}) does not exist")
            return path
    found = wheel_library()
    if found is None:
        raise RuntimeLoadError(
            "no ONNX Runtime library found: install the onnxruntime package "
            f"(pip install onnxruntime), or name one with --ort-lib PATH or {ENV_VAR}"
        )
    return found


def _log_level() -> int:
    raw = os.environ.get(LOG_LEVEL_VAR, "4")
    try:
        return min(4, max(0, int(raw)))
    except ValueError:
        raise RuntimeLoadError(f"{LOG_LEVEL_VAR} must be an integer 0..4, got {raw!r}") from None


@functools.cache
def _load(path: str, log_level: int) -> _core.Runtime:
    return _core.Runtime.load(path, log_level)


def load_runtime(explicit: str | None = None) -> _core.Runtime:
    """The loaded runtime (one per library path per process)."""
    return _load(find_library(explicit), _log_level())
