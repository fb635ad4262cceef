"""Facts read from a model file before ONNX Runtime sees it: path checks, its hash, external data
that must stay inside the model's folder, initializer sizes, inputs typed without a shape, and
MAC counts at given input shapes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ModelError
from .macs import estimate_macs

__all__ = [
    "MAX_PARSE_BYTES",
    "check_external_data",
    "check_model_path",
    "count_macs",
    "load_proto",
    "model_weights",
    "sha256_file",
    "unranked_inputs",
]


def check_model_path(path: str) -> None:
    if not os.path.exists(path):
        raise ModelError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ModelError(f"{path} is a directory, not an ONNX model file")
    try:
        size = os.path.getsize(path)
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror or exc}") from None
    if size == 0:
        raise ModelError(f"{path} is empty, not an ONNX model")


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: Models above this size are not parsed in Python for MAC counts and initializer sizes.
MAX_PARSE_BYTES = 1 << 30


def load_proto(path: str) -> Any:
    if os.path.getsize(path) > MAX_PARSE_BYTES:
        return None
    try:
        import onnx

        return onnx.load(path, load_external_data=False)
    except Exception:  # unparseable here (ORT may still load it): no figures
        return None


def unranked_inputs(proto: Any) -> set[str]:
    """Graph inputs typed as tensors with no shape at all (any rank)."""
    return {
        i.name
        for i in proto.graph.input
        if i.type.HasField("tensor_type") and not i.type.tensor_type.HasField("shape")
    }


def count_macs(path: str, shapes: Mapping[str, Any]) -> dict[str, Any]:
    proto = load_proto(path)
    if proto is None:
        return {}
    found = estimate_macs(proto, {name: tuple(shape) for name, shape in shapes.items()})
    return found or {}


def check_external_data(proto: Any, path: str) -> None:
    """Refuse, before ONNX Runtime reads anything, a model whose external data (tensors stored
    in other files) is missing, or lies outside the model's folder (an absolute path, ``..``,
    or a symbolic link that leads out): a model downloaded from elsewhere must not make the
    benchmark read arbitrary files."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors

    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    for tensor in _get_all_tensors(proto):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = {e.key: e.value for e in tensor.external_data}.get("location", "")
        target = os.path.realpath(os.path.join(folder, location))
        if not location or os.path.isabs(location) or os.path.commonpath([folder, target]) != folder:
            raise ModelError(
                f"refused {path}: tensor {tensor.name!r} keeps its data in {location!r}, outside the "
                f"model's folder {folder}"
            )
        if not os.path.isfile(target):
            raise ModelError(f"{path}: external data file {location!r} of tensor {tensor.name!r} is missing")


def model_weights(proto: Any) -> dict[str, Any]:
    """Number and total size (bytes, from dims and element type) of the main graph's
    initializers, stored in the file or as external data; Nones when the model could not be
    parsed (``proto`` None)."""
    if proto is None:
        return {"initializers": None, "initializer_bytes": None}
    from onnx.helper import tensor_dtype_to_np_dtype

    total = 0
    for init in proto.graph.initializer:
        try:
            size = np.dtype(tensor_dtype_to_np_dtype(init.data_type)).itemsize
        except (KeyError, TypeError, ValueError):
            size = 1  # strings and exotic types: counted at a byte each
        total += int(np.prod(init.dims, dtype=np.int64)) * size
    return {"initializers": len(proto.graph.initializer), "initializer_bytes": total}
