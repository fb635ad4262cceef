"""A model's identity by what it computes: its graph and weights, not its doc strings.

Two files that differ only in documentation (doc strings, the producer's name and version, the
model version, metadata properties, graph and node names) run the same computation, so a
comparison of their speed is a comparison of one model, and the gate treats them as such.
:func:`graph_sha256` hashes the ONNX protobuf with those fields left out, read field by field
with :func:`inferspeed.facts.onnxfile.wire_fields` (no onnx import): every node (operator,
domain, inputs, outputs, attributes, subgraphs), every initializer's bytes (external data
files too), the inputs' and outputs' types, the opset imports and the model's functions.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Mapping

from .onnxfile import ParseError, wire_fields

__all__ = ["graph_sha256"]

#: Per message type of onnx.proto: fields left out (documentation), and fields that are
#: messages walked the same way (field number -> message type). Other fields are hashed as
#: they are in the file.
_SCHEMA: Mapping[str, tuple[frozenset[int], Mapping[int, str]]] = {
    # producer_name, producer_version, domain, model_version, doc_string, metadata_props,
    # training_info, configuration
    "model": (frozenset({2, 3, 4, 5, 6, 14, 20, 26}), {7: "graph", 25: "function"}),
    # name, doc_string, metadata_props
    "graph": (
        frozenset({2, 10, 16}),
        {1: "node", 5: "tensor", 15: "sparse", 11: "value", 12: "value", 13: "value"},
    ),
    # name, doc_string, metadata_props
    "node": (frozenset({3, 6, 9}), {5: "attribute"}),
    # doc_string
    "attribute": (
        frozenset({13}),
        {5: "tensor", 10: "tensor", 6: "graph", 11: "graph", 22: "sparse", 23: "sparse"},
    ),
    # doc_string, metadata_props; external_data entries (13) are read for the file they name
    "tensor": (frozenset({12, 16}), {13: "entry"}),
    "sparse": (frozenset(), {1: "tensor", 2: "tensor"}),
    # doc_string, metadata_props
    "value": (frozenset({3, 4}), {}),
    # doc_string, metadata_props
    "function": (frozenset({8, 14}), {7: "node", 11: "attribute", 12: "value"}),
    "entry": (frozenset(), {}),
}

#: Graph digests already made in this process, per file version, with the versions of the
#: external-data files they read.
_DIGESTS: dict[tuple[str, int, int], tuple[str, tuple[tuple[str, int, int], ...]]] = {}


def _version(path: str) -> tuple[str, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (os.path.abspath(path), -1, -1)
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size)


def graph_sha256(path: str) -> str | None:
    """The sha256 (hex) of the model at ``path`` with its documentation left out (see the
    module's docstring); None when the file is not a protobuf message this reader can walk
    (the caller then has only the file's own hash)."""
    key = _version(path)
    known = _DIGESTS.get(key)
    if known is not None and all(_version(v[0]) == v for v in known[1]):
        return known[0]
    locations: set[str] = set()
    try:
        digest = _file_digest(path, locations)
    except (ParseError, RecursionError):
        return None
    h = hashlib.sha256(digest)
    folder = os.path.dirname(os.path.abspath(path))
    files = []
    for location in sorted(locations):
        h.update(location.encode("utf-8", "surrogateescape"))
        name = os.path.join(folder, location)
        files.append(_version(name))
        try:
            with open(name, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError:
            h.update(b"\0missing")
    if len(_DIGESTS) > 64:
        _DIGESTS.clear()
    _DIGESTS[key] = (h.hexdigest(), tuple(files))
    return _DIGESTS[key][0]


#: Files above this size are mapped, not read: their weights are hashed from the page cache
#: without a copy of the whole file in memory.
_MAP_ABOVE = 1 << 20


def _file_digest(path: str, locations: set[str]) -> bytes:
    """The digest of the model file's ModelProto (:func:`_message`), mapped when large."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size <= _MAP_ABOVE:
            data = f.read()
            return _message(memoryview(data), 0, len(data), "model", locations)
        import mmap

        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                return _message(view, 0, size, "model", locations)
            finally:
                view.release()


def _message(data: memoryview, start: int, end: int, kind: str, locations: set[str]) -> bytes:
    """The digest of one message of type ``kind`` in data[start:end]; external-data file names
    found on the way are added to ``locations``."""
    skipped, nested = _SCHEMA[kind]
    h = hashlib.sha256(kind.encode())
    for number, wire, a, b in wire_fields(data, start, end):
        if number in skipped:
            continue
        h.update(struct.pack("<IB", number, wire))
        if wire == 0:
            h.update(struct.pack("<Q", a))
        elif number in nested and wire == 2:
            h.update(_message(data, a, b, nested[number], locations))
            if kind == "tensor" and number == 13:
                _external_location(data, a, b, locations)
        else:
            h.update(struct.pack("<Q", b - a))
            h.update(data[a:b])
    return h.digest()


def _external_location(data: memoryview, start: int, end: int, locations: set[str]) -> None:
    """The file an external-data entry (key "location") names, added to ``locations``."""
    fields = {number: bytes(data[a:b]) for number, wire, a, b in wire_fields(data, start, end) if wire == 2}
    if fields.get(1) == b"location" and 2 in fields:
        locations.add(str(fields[2], "utf-8", "surrogateescape"))
