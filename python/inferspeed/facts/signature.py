"""Model signatures: the inputs and outputs a session reports, and ONNX element types."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "ELEMENT_TYPES",
    "ElementType",
    "ValueInfo",
    "element_type_name",
    "file_inputs",
    "ort_element_code",
    "value_from_type",
]


@dataclass(frozen=True)
class ElementType:
    """One ONNX tensor element type and how inferspeed stores it in numpy.

    ``storage`` is the numpy dtype of the buffer handed to ONNX Runtime. Types numpy lacks
    (bfloat16, float8, int4) are stored as raw bits of the same width; ``bits`` is the width
    of one element (4 for the packed int4 types).
    """

    code: int
    name: str
    storage: Any  # numpy dtype, or None for string
    bits: int
    kind: str  # "float", "int", "uint", "bool", "string", "complex", "raw"


def _t(code: int, name: str, storage: Any, bits: int, kind: str) -> ElementType:
    return ElementType(code, name, None if storage is None else np.dtype(storage), bits, kind)


#: ONNXTensorElementDataType code -> ElementType.
ELEMENT_TYPES: Mapping[int, ElementType] = MappingProxyType(
    {
        1: _t(1, "float32", np.float32, 32, "float"),
        2: _t(2, "uint8", np.uint8, 8, "uint"),
        3: _t(3, "int8", np.int8, 8, "int"),
        4: _t(4, "uint16", np.uint16, 16, "uint"),
        5: _t(5, "int16", np.int16, 16, "int"),
        6: _t(6, "int32", np.int32, 32, "int"),
        7: _t(7, "int64", np.int64, 64, "int"),
        8: _t(8, "string", None, 0, "string"),
        9: _t(9, "bool", np.bool_, 8, "bool"),
        10: _t(10, "float16", np.float16, 16, "float"),
        11: _t(11, "float64", np.float64, 64, "float"),
        12: _t(12, "uint32", np.uint32, 32, "uint"),
        13: _t(13, "uint64", np.uint64, 64, "uint"),
        14: _t(14, "complex64", np.complex64, 64, "complex"),
        15: _t(15, "complex128", np.complex128, 128, "complex"),
        16: _t(16, "bfloat16", np.uint16, 16, "raw"),
        17: _t(17, "float8e4m3fn", np.uint8, 8, "raw"),
        18: _t(18, "float8e4m3fnuz", np.uint8, 8, "raw"),
        19: _t(19, "float8e5m2", np.uint8, 8, "raw"),
        20: _t(20, "float8e5m2fnuz", np.uint8, 8, "raw"),
        21: _t(21, "uint4", np.uint8, 4, "raw"),
        22: _t(22, "int4", np.int8, 4, "raw"),
        23: _t(23, "float4e2m1", np.uint8, 4, "raw"),
        24: _t(24, "uint2", np.uint8, 2, "raw"),
        25: _t(25, "int2", np.int8, 2, "raw"),
        26: _t(26, "float8e8m0", np.uint8, 8, "raw"),
    }
)

#: ONNX's TensorProto.DataType codes that ONNX Runtime's C API numbers otherwise (ONNX: 24
#: float8e8m0, 25 uint2, 26 int2); the others are the same in both.
_ONNX_TO_ORT: Mapping[int, int] = MappingProxyType({24: 26, 25: 24, 26: 25})


def ort_element_code(onnx_code: int) -> int:
    """The C API's code (what :data:`ELEMENT_TYPES` and the core use) of an element type
    given by its ONNX ``TensorProto.DataType`` code (what a model file holds)."""
    return _ONNX_TO_ORT.get(onnx_code, onnx_code)


def element_type_name(code: int) -> str:
    """The name of a C API element type code; ``"type<code>"`` for one unknown here."""
    et = ELEMENT_TYPES.get(code)
    return et.name if et else f"type{code}"


#: ONNXType codes as ORT reports them.
VALUE_KINDS: Mapping[int, str] = MappingProxyType(
    {
        0: "unknown",
        1: "tensor",
        2: "sequence",
        3: "map",
        4: "opaque",
        5: "sparse_tensor",
        6: "optional",
    }
)


@dataclass(frozen=True)
class ValueInfo:
    """A graph input or output as the session sees it.

    ``shape`` holds None for a dimension the model leaves open; ``symbols`` names such a
    dimension where the model gives it a name ("batch"), else None. ``rank_known`` is False
    for a tensor whose type in the model has no shape at all (any rank): ONNX Runtime reports
    it as a scalar, so the session marks it from the model's graph. A sequence, map or optional
    holds what it contains in ``inner`` (a sequence's element type, a map's value type, an
    optional's contained type: a ValueInfo named like its holder; None when not known) and a
    map its key type's code in ``key_code``.
    """

    name: str
    kind: str
    element_type: str | None
    shape: tuple[int | None, ...] | None
    symbols: tuple[str | None, ...] | None
    element_code: int = 0
    rank_known: bool = True
    inner: ValueInfo | None = None
    key_code: int = 0

    @classmethod
    def from_core(cls, d: Mapping[str, Any], name: str | None = None) -> ValueInfo:
        name = d["name"] if name is None else name
        kind = VALUE_KINDS.get(int(d["kind"]), "unknown")
        if kind not in ("tensor", "sparse_tensor"):
            inner = d.get("inner")
            held = cls.from_core(inner, name) if inner is not None else None
            return cls(name, kind, None, None, None, 0, inner=held, key_code=int(d.get("key_type", 0)))
        code = int(d["element_type"])
        shape = tuple(None if int(x) < 0 else int(x) for x in d["shape"])
        symbols = tuple(s or None for s in d["symbolic"])
        return cls(name, kind, element_type_name(code), shape, symbols, code)

    @property
    def type_text(self) -> str:
        """The type as people write it: ``float32``, ``sequence<float32>``,
        ``map<string, float32>``, ``optional<sequence<int64>>``; ``sequence<?>`` when what it
        holds is not known."""
        if self.kind in ("tensor", "sparse_tensor"):
            text = self.element_type or "?"
            return text if self.kind == "tensor" else f"sparse_tensor<{text}>"
        if self.kind not in ("sequence", "map", "optional"):
            return self.kind
        held = self.inner.type_text if self.inner is not None else "?"
        if self.kind == "map":
            return f"map<{element_type_name(self.key_code) if self.key_code else '?'}, {held}>"
        return f"{self.kind}<{held}>"

    def leaf(self) -> ValueInfo | None:
        """The tensor type innermost in a sequence or optional (the value type of a map);
        the ValueInfo itself for a tensor; None when not known."""
        v: ValueInfo | None = self
        while v is not None and v.kind not in ("tensor", "sparse_tensor"):
            v = v.inner
        return v

    @property
    def shape_text(self) -> str:
        """The shape as people write it: [batch, 3, 224, 224], '?' for an unnamed open dim."""
        if self.shape is None:
            return self.kind
        if not self.rank_known:
            return "[any rank]"
        parts = []
        for size, sym in zip(self.shape, self.symbols or (), strict=False):
            parts.append(str(size) if size is not None else (sym or "?"))
        return "[" + ", ".join(parts) + "]"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "type": self.element_type if self.kind == "tensor" else self.type_text,
            "shape": None
            if self.shape is None or not self.rank_known
            else [
                s if s is not None else (sym or None)
                for s, sym in zip(self.shape, self.symbols or (), strict=False)
            ],
        }


def file_inputs(model: Any) -> tuple[ValueInfo, ...]:
    """The inputs of a model file as :class:`ValueInfo` (an :class:`~inferspeed.facts.onnxfile.ModelFile`,
    or None: no inputs), the way a session would report them: initializers left out, a dim
    without a positive size open (``-1`` included), a tensor with no shape of any rank; a
    sequence, map or optional with what it holds."""
    graph = getattr(model, "graph", None)
    if graph is None:
        return ()
    initializers = {t.name for t in graph.initializers}
    return tuple(value_from_type(v.name, v.type) for v in graph.inputs if v.name not in initializers)


def value_from_type(name: str, t: Any, depth: int = 0) -> ValueInfo:
    """A :class:`ValueInfo` named ``name`` of a file's type (an onnxfile ``ValueType``)."""
    if t.kind in ("tensor_type", "sparse_tensor_type"):
        code = ort_element_code(t.elem_type)
        dims = list(t.shape or [])
        shape = tuple(d if isinstance(d, int) and d > 0 else None for d in dims)
        symbols = tuple(d if isinstance(d, str) and d else None for d in dims)
        kind = t.kind.removesuffix("_type")
        return ValueInfo(name, kind, element_type_name(code), shape, symbols, code, t.shape is not None)
    kind = "unknown" if t.kind is None else t.kind.removesuffix("_type")
    inner = None
    if kind in ("sequence", "map", "optional") and t.inner is not None and depth < 8:
        inner = value_from_type(name, t.inner, depth + 1)
    key = ort_element_code(t.elem_type) if kind == "map" else 0
    return ValueInfo(name, kind, None, None, None, inner=inner, key_code=key)
