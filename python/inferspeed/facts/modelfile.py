"""Facts read from a model file before ONNX Runtime sees it: path checks, its hash, external data
that must stay inside the model's folder, initializer sizes, inputs typed without a shape, and
MAC counts at given input shapes.

The file is read with :mod:`inferspeed.facts.onnxfile` (a protobuf reader of its own), not the
onnx package, whose import alone costs over a second: a run on a small model then starts in a
fraction of that. Only MAC counts need onnx (its shape inference), and only for models that
hold an operator estimate_macs counts; their answer is kept on disk once per model and input
shapes (:mod:`inferspeed.facts.maccache`).
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..errors import ModelError
from . import onnxfile
from .macs import COUNTED, estimate_macs, zero_count

__all__ = [
    "MAX_PARSE_BYTES",
    "check_external_data",
    "check_model_path",
    "constant_tensors",
    "count_macs",
    "lfs_pointer",
    "load_proto",
    "macs_for_file",
    "model_weights",
    "serialized_model",
    "sha256_file",
    "unranked_inputs",
]


def check_model_path(path: str) -> None:
    if not os.path.exists(path):
        raise ModelError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ModelError(f"{path} is a directory, not an ONNX model file{_models_in(path)}")
    try:
        size = os.path.getsize(path)
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ModelError(f"cannot read model {path}: {exc.strerror or exc}") from None
    if size == 0:
        raise ModelError(f"{path} is empty, not an ONNX model")
    pointer = lfs_pointer(path)
    if pointer is not None:
        raise ModelError(pointer)


def _models_in(folder: str) -> str:
    """What to give instead of a folder: the .onnx files in it (an exporter's output folder
    holds model.onnx, or decoder_model.onnx beside an encoder), or how to find one."""
    try:
        found = sorted(f for f in os.listdir(folder) if f.endswith(".onnx"))
    except OSError:
        return ""
    if not found:
        return ": it holds no .onnx file; give the path of the model file itself"
    shown = ", ".join(os.path.join(folder, f) for f in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return f": give one of the models it holds ({shown}{more})"


#: How a Git LFS pointer file begins (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md).
_LFS_SIGNATURE = b"version https://git-lfs.github.com/spec/"


def lfs_pointer(path: str) -> str | None:
    """What to tell a user whose ``path`` is a Git LFS pointer (a model cloned without its
    large files: a few lines of text that name the real file's size); None for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return None
    if not head.startswith(_LFS_SIGNATURE):
        return None
    size = next((line.split()[1] for line in head.decode("ascii", "replace").splitlines()
                 if line.startswith("size ") and len(line.split()) == 2), None)  # fmt: skip
    real = f" to a file of {int(size):,} bytes" if size is not None and size.isdigit() else ""
    fetch = "fetch the file with `git lfs pull` in its repository"
    return f"{path} is a Git LFS pointer{real}, not the model: {fetch}"


FileVersion = tuple[str, int, int, int, int, int]


def _version(path: str) -> FileVersion:
    """What tells one version of a file from another: path, device, inode, size, times."""
    st = os.stat(path)
    return (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _remember(memo: dict[FileVersion, Any], key: FileVersion, value: Any) -> None:
    if len(memo) > 64:  # a long-lived process measuring many models: keep it small
        memo.clear()
    memo[key] = value


def serialized_model(model: Any) -> bytes:
    """The bytes of an in-memory model: ``bytes``-like, or anything with
    ``SerializeToString()`` (an ``onnx.ModelProto``); ModelError for anything else."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    if hasattr(model, "SerializeToString"):
        return bytes(model.SerializeToString())
    raise ModelError(f"model must be a path, bytes or onnx.ModelProto, not {type(model).__name__}")


#: sha256 of files already hashed in this process.
_HASHES: dict[FileVersion, str] = {}


def sha256_file(path: str) -> str:
    """The file's sha256 (hex), remembered per file version for the life of the process: a
    session hashes its model for the cached MAC count and again for its result."""
    version = _version(path)
    known = _HASHES.get(version)
    if known is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        known = h.hexdigest()
        _remember(_HASHES, version, known)
    return known


#: Models above this size are not parsed by the onnx package (MAC counts; models with more
#: fields than onnxfile reads). onnxfile reads any size: it skips the weights unread.
MAX_PARSE_BYTES = 1 << 30


def load_proto(path: str) -> onnxfile.ModelFile | None:
    """The model's structure (:class:`~inferspeed.facts.onnxfile.ModelFile`), or None when it
    cannot be read here (ONNX Runtime may still load it; the run then has no weight figures
    and no external-data check, as when the onnx package could not parse it)."""
    model = _read(path)
    if model is not None:
        # What MAC counting needs to know, so that it need not read the file again.
        _remember(_MAC_SHORTCUTS, _version(path), _shortcut(model))
    return model


def _read(path: str) -> onnxfile.ModelFile | None:
    try:
        return onnxfile.read(path)
    except onnxfile.TooManyFields:  # a valid but huge graph: onnx's C++ parser is faster
        pass
    except (onnxfile.ParseError, OSError):
        return None
    if os.path.getsize(path) > MAX_PARSE_BYTES:
        return None
    try:
        import onnx

        return onnxfile.from_proto(onnx.load(path, load_external_data=False))
    except Exception:  # unparseable here too: no figures
        return None


def _model(proto: Any) -> onnxfile.ModelFile:
    """What the functions below take: a ModelFile, or (for older callers) an onnx ModelProto."""
    return proto if isinstance(proto, onnxfile.ModelFile) else onnxfile.from_proto(proto)


def unranked_inputs(proto: Any) -> set[str]:
    """Graph inputs typed as tensors with no shape at all (any rank)."""
    graph = _model(proto).graph
    if graph is None:
        return set()
    return {v.name for v in graph.inputs if v.type.kind == "tensor_type" and v.type.shape is None}


def check_external_data(proto: Any, path: str) -> None:
    """Refuse, before ONNX Runtime reads anything, a model whose external data (tensors stored
    in other files) is missing, or lies outside the model's folder (an absolute path, ``..``,
    or a symbolic link that leads out): a model downloaded from elsewhere must not make the
    benchmark read arbitrary files. Every tensor ONNX Runtime may load is checked
    (:meth:`~inferspeed.facts.onnxfile.ModelFile.external_data_tensors`)."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(path)))
    for tensor in _model(proto).external_data_tensors():
        if not tensor.external:
            continue
        location = tensor.external_info().get("location", "")
        # A NUL ends the path for the C library ORT calls, and os.path refuses it.
        target = os.path.realpath(os.path.join(folder, location)) if "\0" not in location else ""
        if (
            not location
            or not target
            or os.path.isabs(location)
            or os.path.commonpath([folder, target]) != folder
        ):
            raise ModelError(
                f"refused {path}: tensor {tensor.name!r} keeps its data in {location!r}, outside the "
                f"model's folder {folder}"
            )
        if not os.path.isfile(target):
            raise ModelError(f"{path}: external data file {location!r} of tensor {tensor.name!r} is missing")


#: Bytes per element by ONNX data type, as numpy sizes onnx's own mapping
#: (onnx.helper.tensor_dtype_to_np_dtype): a string is an object pointer (8), the 2-, 4- and
#: 6-bit types a byte each. Types onnx does not map count a byte.
_ITEM_SIZES = {
    1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 8: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
}  # fmt: skip


def _elements(dims: Sequence[int]) -> int:
    """The product of ``dims`` wrapped to int64, as numpy's prod computes it."""
    n = 1
    for d in dims:
        n = (n * d) & ((1 << 64) - 1)
    return n - (1 << 64) if n >> 63 else n


def model_weights(proto: Any) -> dict[str, Any]:
    """Number and total size (bytes, from dims and element type) of the main graph's
    initializers, stored in the file or as external data; of the tensors held by Constant
    nodes in any graph (``constants``, ``constant_bytes``: some exporters, Paddle's among them,
    keep every weight there); ``weight_bytes``, the two together. Nones when the model could
    not be parsed (``proto`` None)."""
    if proto is None:
        return {
            k: None
            for k in ("initializers", "initializer_bytes", "constants", "constant_bytes", "weight_bytes")
        }
    model = _model(proto)
    inits = model.graph.initializers if model.graph is not None else []
    total = sum(_elements(t.dims) * _ITEM_SIZES.get(t.data_type, 1) for t in inits)
    held = list(constant_tensors(model))
    constant_bytes = sum(nbytes for _, nbytes in held)
    return {
        "initializers": len(inits),
        "initializer_bytes": total,
        "constants": len(held),
        "constant_bytes": constant_bytes,
        "weight_bytes": total + constant_bytes,
    }


def constant_tensors(model: onnxfile.ModelFile) -> Iterator[tuple[int, int]]:
    """(elements, bytes) of the value each Constant node holds, in the main graph and its
    subgraphs: ``value`` (a tensor), ``sparse_value`` (its values; its bytes with its indices'),
    ``value_float(s)``, ``value_int(s)``. Strings are left out: they are no weights."""
    for graph in model.graphs():
        for node in graph.nodes:
            if node.op_type != "Constant" or node.domain not in ("", "ai.onnx"):
                continue
            for a in node.attributes:
                if a.name == "value" and a.t is not None:
                    n = _elements(a.t.dims)
                    yield n, n * _ITEM_SIZES.get(a.t.data_type, 1)
                elif a.name == "sparse_value" and a.sparse:
                    n = _elements(a.sparse[0].dims)
                    yield n, sum(_elements(t.dims) * _ITEM_SIZES.get(t.data_type, 1) for t in a.sparse)
                elif a.name in ("value_float", "value_int"):
                    yield 1, 4 if a.name == "value_float" else 8
                elif a.name in ("value_floats", "value_ints"):
                    yield a.count, a.count * (4 if a.name == "value_floats" else 8)


#: _shortcut's answer when the MAC count needs onnx.
_NEEDS_ONNX = "needs onnx"
#: _shortcut of each file version read in this process.
_MAC_SHORTCUTS: dict[FileVersion, Any] = {}
_UNREAD = object()


def _shortcut(model: onnxfile.ModelFile) -> Any:
    """estimate_macs's answer when it needs no onnx, else _NEEDS_ONNX. With no operator it
    counts anywhere (subgraphs and functions included) the answer is all zeros, or None where
    shape inference would fail at once: a main-graph node whose domain has no opset import
    ("" also finds "ai.onnx"), as onnx's shape inference checks."""
    if any(op in COUNTED for op in model.op_types()):
        return _NEEDS_ONNX
    domains = {domain for domain, _ in model.opset_import}
    for node in model.graph.nodes if model.graph is not None else []:
        if node.domain not in domains and not (node.domain == "" and "ai.onnx" in domains):
            return None
    return zero_count()


def macs_for_file(
    path: str,
    shapes: Mapping[str, Sequence[int]] | None = None,
    model: onnxfile.ModelFile | None = None,
    max_bytes: int | None = None,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """:func:`~inferspeed.facts.macs.estimate_macs` of a model file, with onnx imported only
    when the answer needs it and is not cached yet.

    Parameters
    ----------
    path : str
        The model file.
    shapes : mapping of str to sequence of int, optional
        Input shapes by name to count at (default: the model's own dims, dynamic ones as 1).
    model : ModelFile, optional
        The file as :func:`load_proto` read it, if at hand (else it is read again, unless
        load_proto read this version of the file in this process).
    max_bytes : int, optional
        The largest file onnx may parse; a larger one that needs onnx counts as unknown.
    values : mapping of str to number or list, optional
        Values a run feeds some inputs (estimate_macs's ``values``).

    Returns
    -------
    dict or None
        What estimate_macs returns for the file at ``shapes``; None when unknown.
    """
    if model is not None:
        shortcut = _shortcut(model)
    else:
        version = _version(path)
        shortcut = _MAC_SHORTCUTS.get(version, _UNREAD)
        if shortcut is _UNREAD:
            model = _read(path)
            if model is None:
                return None
            shortcut = _shortcut(model)
            _remember(_MAC_SHORTCUTS, version, shortcut)
    if shortcut != _NEEDS_ONNX:
        answer: dict[str, Any] | None = copy.deepcopy(shortcut)  # a dict of the caller's own
        if answer is not None and shapes is None:
            answer["dynamic_dims_as"] = 1
        return answer
    from . import maccache

    digest = sha256_file(path)
    found, macs = maccache.lookup(digest, shapes, values)
    if not found:
        macs, counted = _count_with_onnx(path, shapes, max_bytes, values)
        if counted:  # not a failure to load (too big here, out of memory): those may pass later
            maccache.store(digest, shapes, macs, values)
    return macs


def _count_with_onnx(
    path: str,
    shapes: Mapping[str, Sequence[int]] | None,
    max_bytes: int | None,
    values: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, bool]:
    """(estimate_macs's answer, True), or (None, False) when onnx could not load the file."""
    if max_bytes is not None and os.path.getsize(path) > max_bytes:
        return None, False
    try:
        import onnx

        proto = onnx.load(path, load_external_data=False)
    except Exception:  # ORT may load what onnx does not: no count
        return None, False
    try:
        return estimate_macs(proto, shapes, values), True
    except Exception:  # onnx's shape inference refuses models ORT runs (a declared rank wrong)
        return None, True


def count_macs(path: str, shapes: Mapping[str, Any]) -> dict[str, Any]:
    """MAC counts at the bound input ``shapes`` (estimate_macs's dict), {} when unknown."""
    bound = {name: tuple(int(d) for d in shape) for name, shape in shapes.items()}
    return macs_for_file(path, bound, max_bytes=MAX_PARSE_BYTES) or {}
