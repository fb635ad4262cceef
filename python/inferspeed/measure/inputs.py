"""Input arrays generated from a model's signature, overridden by the user's specs.

Generated values (seeded, reproducible):

- floating point: uniform in [0, 1)
- integers (signed and unsigned): uniform integers in [0, 10), small and non-negative so
  they are valid indices and token ids for most models; use ``ranges`` for anything else
- bool: uniformly True/False
- string: the word "inferspeed"
- bfloat16, float8, int4: values of the same magnitude, stored as raw bits

A dynamic dimension with no ``dims``/``shapes`` entry becomes 1, with a notice.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import Config
from ..errors import InputError
from ..facts.signature import ELEMENT_TYPES, ElementType, ValueInfo

__all__ = ["GeneratedInputs", "make_inputs"]

DEFAULT_INT_RANGE = (0, 10)
DEFAULT_STRING = "inferspeed"


@dataclass(frozen=True)
class GeneratedInputs:
    """Input sets (arrays by input name; string inputs as numpy object arrays), their shapes,
    where each input came from and the notices to show."""

    sets: tuple[dict[str, np.ndarray], ...]
    shapes: dict[str, tuple[int, ...]]  # logical shapes (packed int4 arrays are shorter)
    notices: tuple[str, ...]
    sources: dict[str, str]  # name -> "random", "constant", "range", "file"

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The first input set."""
        return self.sets[0]

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for arrays in self.sets for a in arrays.values())


def _contiguous(a: np.ndarray) -> np.ndarray:
    """C-contiguous, keeping 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)."""
    return a if a.flags.c_contiguous else np.array(a, order="C")


def _names(values: Sequence[ValueInfo]) -> str:
    return ", ".join(v.name for v in values) or "(none)"


def _check_known(what: str, names: Sequence[str], inputs: Sequence[ValueInfo]) -> None:
    known = {v.name for v in inputs}
    for name in names:
        if name not in known:
            raise InputError(f"{what}: model has no input named {name!r} (inputs: {_names(inputs)})")


def _fits(model_shape: tuple[int | None, ...], shape: tuple[int, ...]) -> str | None:
    if len(model_shape) != len(shape):
        return f"rank {len(shape)} differs from the model's rank {len(model_shape)}"
    for i, (want, got) in enumerate(zip(model_shape, shape, strict=True)):
        if want is not None and want != got:
            return f"dimension {i} is {got} but the model fixes it at {want}"
    return None


def _resolve_shape(v: ValueInfo, config: Config, notices: list[str]) -> tuple[int, ...]:
    assert v.shape is not None and v.symbols is not None
    if not v.rank_known:  # the model allows any shape
        if v.name in config.shapes:
            return tuple(config.shapes[v.name])
        notices.append(
            f"input {v.name!r} has no shape in the model; using a scalar (set one with --shape {v.name}=...)"
        )
        return ()
    if v.name in config.shapes:
        shape = tuple(config.shapes[v.name])
        problem = _fits(v.shape, shape)
        if problem:
            raise InputError(
                f"shape {_fmt(shape)} given for input {v.name!r} does not fit the model's "
                f"{v.shape_text}: {problem}"
            )
        for k, (sym, given) in enumerate(zip(v.symbols, shape, strict=True)):
            if sym is not None and sym in config.dims and int(config.dims[sym]) != given:
                raise InputError(
                    f"--shape {v.name}={_fmt(shape)} contradicts --dim {sym}={config.dims[sym]} "
                    f"(dimension {k} of {v.name!r} is {sym!r})"
                )
        return shape
    out = []
    for i, (size, sym) in enumerate(zip(v.shape, v.symbols, strict=True)):
        if size is not None:
            out.append(size)
        elif sym is not None and sym in config.dims:
            out.append(int(config.dims[sym]))
        else:
            how = f"--dim {sym}=N" if sym else f"--shape {v.name}=..."
            label = f"{sym!r}" if sym else "unnamed"
            notices.append(
                f"input {v.name!r}: dimension {i} ({label}) is dynamic; using 1 (set it with {how})"
            )
            out.append(1)
    return tuple(out)


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _count(shape: tuple[int, ...]) -> int:
    return math.prod(shape)


def _storage_bytes(et: ElementType, shape: tuple[int, ...]) -> int:
    n = _count(shape)
    if et.kind == "string":
        return n * (len(DEFAULT_STRING) + 33)  # what ORT keeps per std::string, roughly
    return (n * et.bits + 7) // 8


def _parse_constant(name: str, et: ElementType, value: Any) -> Any:
    if not isinstance(value, str) or et.kind == "string":
        return value
    text = value.strip()
    try:
        if et.kind == "bool":
            lowered = text.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError(text)
        if et.kind in ("int", "uint"):
            return int(text, 0)
        if et.kind == "complex":
            return complex(text)
        return float(text)
    except ValueError:
        raise InputError(f"input {name!r} is {et.name}: cannot use {value!r} as its value") from None


def _constant(name: str, et: ElementType, shape: tuple[int, ...], value: Any) -> np.ndarray:
    value = _parse_constant(name, et, value)
    if et.kind == "string":
        return np.full(shape, str(value), dtype=object)
    if et.kind == "raw":
        if et.name != "bfloat16":
            raise InputError(f"input {name!r} is {et.name}: constant values are not supported for it")
        as_f32 = np.full(shape, float(value), dtype=np.float32)
        return (as_f32.view(np.uint32) >> 16).astype(np.uint16)
    try:
        given = np.asarray(value)
        if et.kind in ("int", "uint"):
            if given.dtype.kind not in "iub":
                raise InputError(f"input {name!r} is {et.name}: {value!r} is not an integer")
            info = np.iinfo(et.storage)
            if given.size and (given.min() < info.min or given.max() > info.max):
                raise InputError(f"input {name!r} is {et.name}: {value!r} is out of its range")
        return _contiguous(np.broadcast_to(given.astype(et.storage), shape))
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"input {name!r}: cannot fill a {et.name} {_fmt(shape)} tensor with {value!r}: {exc}"
        ) from None


def _uniform(
    name: str,
    et: ElementType,
    shape: tuple[int, ...],
    lo: float,
    hi: float,
    rng: np.random.Generator,
) -> np.ndarray:
    if et.kind in ("int", "uint"):
        ilo, ihi = math.ceil(lo), math.ceil(hi)
        if ilo >= ihi:
            raise InputError(f"range of {name!r}: no integer in [{lo}, {hi})")
        info = np.iinfo(et.storage)
        if ilo < info.min or ihi - 1 > info.max:
            raise InputError(f"range of {name!r}: [{lo}, {hi}) does not fit {et.name}")
        return rng.integers(ilo, ihi, size=shape, dtype=et.storage)
    if et.kind == "float":
        return rng.uniform(lo, hi, size=shape).astype(et.storage)
    if et.kind == "complex":
        re = rng.uniform(lo, hi, size=shape)
        im = rng.uniform(lo, hi, size=shape)
        return (re + 1j * im).astype(et.storage)
    if et.name == "bfloat16":
        as_f32 = rng.uniform(lo, hi, size=shape).astype(np.float32)
        return (as_f32.view(np.uint32) >> 16).astype(np.uint16)
    raise InputError(f"range of {name!r}: ranges are not supported for {et.name} inputs")


def _random(name: str, et: ElementType, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if et.kind == "string":
        return np.full(shape, DEFAULT_STRING, dtype=object)
    if et.kind == "bool":
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if et.kind in ("int", "uint"):
        return _uniform(name, et, shape, *DEFAULT_INT_RANGE, rng)
    if et.kind in ("float", "complex") or et.name == "bfloat16":
        return _uniform(name, et, shape, 0.0, 1.0, rng)
    # float8 and int4: bytes with a small positive exponent / small values, never NaN.
    nbytes = _storage_bytes(et, shape)
    raw = rng.integers(0, 256, size=nbytes, dtype=np.uint8) & np.uint8(0x37)
    return raw.view(et.storage)


def read_npz(path: str) -> dict[str, np.ndarray]:
    """Arrays by name from an .npz file; InputError when it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise InputError(f"inputs file {path}: expected an .npz archive of named arrays")
            return {name: np.asarray(data[name]) for name in data.files}
    except InputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"cannot read inputs file {path}: {exc}") from None


def _file_array(v: ValueInfo, et: ElementType, array: np.ndarray, path: str) -> np.ndarray:
    assert v.shape is not None
    problem = _fits(v.shape, tuple(array.shape))
    if problem:
        raise InputError(f"array {v.name!r} in {path} does not fit the model's {v.shape_text}: {problem}")
    if et.kind == "string":
        if array.dtype.kind not in "UO":
            raise InputError(f"array {v.name!r} in {path} is {array.dtype}, input is string")
        return array.astype(object)
    if et.kind == "raw":
        if array.dtype.itemsize * 8 != et.bits and not (et.bits == 4 and array.dtype.itemsize == 1):
            raise InputError(f"array {v.name!r} in {path} is {array.dtype}: {et.name} needs its raw bits")
        return _contiguous(array).view(et.storage)
    if not np.can_cast(array.dtype, et.storage, casting="same_kind"):
        raise InputError(f"array {v.name!r} in {path} is {array.dtype}; the input is {et.name}")
    return _contiguous(array.astype(et.storage, copy=False))


def make_inputs(inputs: Sequence[ValueInfo], config: Config) -> GeneratedInputs:
    """``config.input_sets`` sets of arrays for every model input, following ``config``
    (shapes, dims, values, ranges, inputs_file, seed). Raises InputError for a spec that does
    not fit the model."""
    _check_known("shape", list(config.shapes), inputs)
    _check_known("value", list(config.values), inputs)
    _check_known("range", list(config.ranges), inputs)
    for name in config.values:
        if name in config.ranges:
            raise InputError(f"input {name!r} has both a constant value and a range: give one")
    symbols = {s for v in inputs for s in (v.symbols or ()) if s}
    for sym in config.dims:
        if sym not in symbols:
            known = ", ".join(sorted(symbols)) or "none"
            raise InputError(f"dim: no input has a dimension named {sym!r} (named dims: {known})")
    from_file: Mapping[str, np.ndarray] = {}
    if config.inputs_file is not None:
        from_file = read_npz(config.inputs_file)
        _check_known(f"inputs file {config.inputs_file}", list(from_file), inputs)
        for name in from_file:
            if name in config.values or name in config.ranges or name in config.shapes:
                raise InputError(f"input {name!r} is given both in {config.inputs_file} and by a flag")

    notices: list[str] = []
    plans: list[tuple[ValueInfo, ElementType, tuple[int, ...]]] = []
    total = 0
    for v in inputs:
        if v.kind != "tensor" or v.shape is None:
            article = "an" if v.kind[:1] in "aeiou" else "a"
            raise InputError(f"input {v.name!r} is {article} {v.kind}: only tensor inputs can be supplied")
        et = ELEMENT_TYPES.get(v.element_code)
        if et is None:
            raise InputError(
                f"input {v.name!r} has element type {v.element_type}, which inferspeed cannot make"
            )
        if v.name in from_file:
            shape = tuple(int(d) for d in from_file[v.name].shape)
        else:
            shape = _resolve_shape(v, config, notices)
        plans.append((v, et, shape))
        total += _storage_bytes(et, shape)
    total *= config.input_sets
    if total > config.max_input_bytes:
        from ..units import format_bytes

        raise InputError(
            f"the inputs would need {format_bytes(total)}{f' ({total} bytes)' if total >= 1024 else ''}, "
            "more than max_input_bytes "
            f"({format_bytes(config.max_input_bytes)}); check the shapes or raise the limit "
            f"(--max-input-bytes)"
        )

    # One generator for every set: set 0 is the same whatever the number of sets, and each
    # later set draws new values (constants and file arrays are copied, so each set has
    # buffers of its own).
    rng = np.random.default_rng(config.seed)
    sets: list[dict[str, np.ndarray]] = []
    try:
        for _ in range(config.input_sets):
            arrays, sources = _generate(plans, config, from_file, rng)
            sets.append(arrays)
    except MemoryError:
        raise InputError(
            f"not enough memory to make the inputs ({total / 2**20:.1f} MiB); check the shapes"
        ) from None
    shapes = {v.name: shape for v, _, shape in plans}
    return GeneratedInputs(tuple(sets), shapes, tuple(notices), sources)


def _generate(
    plans: Sequence[tuple[ValueInfo, ElementType, tuple[int, ...]]],
    config: Config,
    from_file: Mapping[str, np.ndarray],
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    arrays: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for v, et, shape in plans:
        if v.name in from_file:
            # A copy: every input set gets buffers of its own.
            arrays[v.name] = _file_array(v, et, from_file[v.name], str(config.inputs_file)).copy()
            sources[v.name] = "file"
        elif v.name in config.values:
            arrays[v.name] = _constant(v.name, et, shape, config.values[v.name])
            sources[v.name] = "constant"
        elif v.name in config.ranges:
            lo, hi = config.ranges[v.name]
            if et.kind in ("bool", "string"):
                raise InputError(f"range of {v.name!r}: ranges are not supported for {et.name} inputs")
            arrays[v.name] = _uniform(v.name, et, shape, float(lo), float(hi), rng)
            sources[v.name] = "range"
        else:
            arrays[v.name] = _random(v.name, et, shape, rng)
            sources[v.name] = "random"
        if et.kind != "string":
            arrays[v.name] = _contiguous(arrays[v.name])
    return arrays, sources
