"""MAC counts remembered on disk, once per model and input shapes.

Counting MACs needs ONNX shape inference, hence the onnx package: over a second to import
and run, against a few milliseconds to read a small answer back. The answer depends only on
the model's bytes, the input shapes it is counted at, the estimator (MACS_VERSION) and the
onnx version that inferred the shapes, so it is stored under a hash of those in the user's
cache folder: ``$INFERSPEED_CACHE_DIR``, else ``$XDG_CACHE_HOME/inferspeed``, else
``~/.cache/inferspeed`` (the folder the build keeps ONNX Runtime's headers in), in ``macs/``.

An entry is written to a temporary file and renamed into place, so a reader sees all of one
or none of it; an entry that does not parse, or whose key or content is not what this module
writes, is ignored (and overwritten). A cache that cannot be written is not an error.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MACS_VERSION", "cache_dir", "lookup", "onnx_version", "store"]

#: Bump when estimate_macs (facts/macs.py) changes what it returns: older entries then miss.
MACS_VERSION = 2

_KEYS = {
    "total",
    "by_op_type",
    "nodes_counted",
    "nodes_unknown",
    "uncounted",
    "subgraph_nodes",
    "dynamic_dims_as",
}


def cache_dir() -> str | None:
    """The folder of MAC entries (not created here); None when there is no home to put it in."""
    base = os.environ.get("INFERSPEED_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME")
        home = os.path.expanduser("~")
        if xdg:
            base = os.path.join(xdg, "inferspeed")
        elif home and home != "~":
            base = os.path.join(home, ".cache", "inferspeed")
        else:
            return None
    return os.path.join(base, "macs")


@functools.cache  # read once: it lists site-packages
def onnx_version() -> str:
    """The installed onnx package's version, from its dist-info folder's name: importing onnx
    to ask would cost the second this cache saves."""
    try:
        spec = importlib.util.find_spec("onnx")
        if spec is None or spec.origin is None:
            return "none"
        site = os.path.dirname(os.path.dirname(spec.origin))
        for name in os.listdir(site):
            if name.startswith("onnx-") and name.endswith(".dist-info"):
                return name[len("onnx-") : -len(".dist-info")]
    except (ImportError, ValueError, OSError):
        pass
    return "unknown"


def _key(
    model_sha256: str, shapes: Mapping[str, Sequence[int]] | None, values: Mapping[str, Any] | None
) -> dict[str, Any]:
    return {
        "model_sha256": model_sha256,
        "shapes": None
        if shapes is None
        else {name: [int(d) for d in dims] for name, dims in sorted(shapes.items())},
        "values": dict(sorted(values.items())) if values else None,
        "estimator": MACS_VERSION,
        "onnx": onnx_version(),
    }


def _path(key: Mapping[str, Any]) -> str | None:
    folder = cache_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return os.path.join(folder, f"{digest[:40]}.json")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _counts(value: Any) -> bool:
    """Whether ``value`` is a {op_type: int} dict."""
    return isinstance(value, dict) and all(isinstance(k, str) and _int(v) for k, v in value.items())


def _valid(macs: Any) -> bool:
    """Whether ``macs`` is something estimate_macs returns: None, or its dict."""
    if macs is None:
        return True
    return (
        isinstance(macs, dict)
        and set(macs) == _KEYS
        and all(_int(macs[k]) for k in ("total", "nodes_counted", "nodes_unknown"))
        and all(_counts(macs[k]) for k in ("by_op_type", "uncounted", "subgraph_nodes"))
        and macs["dynamic_dims_as"] in (None, 1)
    )


def lookup(
    model_sha256: str, shapes: Mapping[str, Sequence[int]] | None, values: Mapping[str, Any] | None = None
) -> tuple[bool, dict[str, Any] | None]:
    """(found, macs): the stored estimate_macs answer for this model, shapes and input values
    (JSON numbers or lists), if any."""
    key = _key(model_sha256, shapes, values)
    path = _path(key)
    if path is None:
        return False, None
    try:
        with open(path, encoding="utf-8") as f:
            entry = json.load(f)
    except (OSError, ValueError):  # missing, unreadable, or not JSON (a torn or corrupt entry)
        return False, None
    if (
        not isinstance(entry, dict)
        or entry.get("key") != key
        or "macs" not in entry
        or not _valid(entry["macs"])
    ):
        return False, None
    macs: dict[str, Any] | None = entry["macs"]
    return True, macs


def store(
    model_sha256: str,
    shapes: Mapping[str, Sequence[int]] | None,
    macs: dict[str, Any] | None,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Remember ``macs`` (what estimate_macs returned) for this model, shapes and input values;
    silently nothing when the cache folder cannot be written."""
    import tempfile  # only here: a write happens once per model and shapes

    key = _key(model_sha256, shapes, values)
    path = _path(key)
    if path is None or not _valid(macs):
        return
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".macs-", suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"key": key, "macs": macs}, f)
        os.replace(tmp, path)
    except OSError:
        _remove_quietly(tmp)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):  # already gone, or a folder we may not write to
        os.remove(path)
