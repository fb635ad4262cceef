"""Input arrays generated from a model's signature, overridden by the user's specs.

Generated values (seeded, reproducible):

- floating point: uniform in [0, 1)
- integers (signed and unsigned): uniform integers in [0, 10), small and non-negative so
  they are valid indices and token ids for most models; use ``ranges`` for anything else
- bool: uniformly True/False
- string: the word "inferspeed"
- bfloat16, float8, float4, int4, int2: values of the same magnitude, stored as raw bits
  (float8e8m0, an exponent alone: powers of two from 2^-3 to 2^3)

Inputs no flag fills get what :mod:`inferspeed.measure.plan` chose for them by their role
(sizes of dynamic dimensions, masks of ones, zero state, ids within their table...), with a
notice and the reason.

Inputs that are not tensors are built of their element type: a sequence as one array whose
axis 0 counts its elements, a map as the array of its values (its keys from
:func:`~inferspeed.measure.plan.map_keys`), an optional as the value it holds (see
``InputChoice.holds``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import Config
from ..errors import InputError
from ..facts import onnxfile
from ..facts.signature import ELEMENT_TYPES, ElementType, ValueInfo
from .plan import InputChoice, InputPlan, as_tensor, fits, plan_inputs, read_npz

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
    sources: dict[str, str]  # name -> "random", "constant", "range", "file", "arange"
    plan: InputPlan

    @property
    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shapes of the inputs bound as tensors (sequences and maps left out)."""
        return {name: shape for name, shape in self.shapes.items() if not self.plan.choices[name].holds}

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


def _bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) of float32 values, truncated; a 0-d array stays an array (numpy's
    operators turn one into a scalar, which cannot be bound)."""
    return np.asarray((np.asarray(x, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16))


def _constant(name: str, et: ElementType, shape: tuple[int, ...], value: Any) -> np.ndarray:
    value = _parse_constant(name, et, value)
    if et.kind == "string":
        return np.full(shape, str(value), dtype=object)
    if et.kind == "raw":
        if et.name != "bfloat16":
            raise InputError(f"input {name!r} is {et.name}: constant values are not supported for it")
        as_f32 = np.full(shape, float(value), dtype=np.float32)
        return _bfloat16_bits(as_f32)
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
        return _bfloat16_bits(as_f32)
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
    nbytes = _storage_bytes(et, shape)
    if et.name == "float8e8m0":  # a power of two's exponent: 2^-3 .. 2^3 (0xFF is NaN)
        return rng.integers(124, 131, size=nbytes, dtype=np.uint8)
    # float8, float4, int4 and int2: bytes with a small positive exponent / small values, never NaN.
    raw = rng.integers(0, 256, size=nbytes, dtype=np.uint8) & np.uint8(0x37)
    return raw.view(et.storage)


def _file_array(v: ValueInfo, et: ElementType, array: np.ndarray, path: str, cast: bool) -> np.ndarray:
    assert v.shape is not None
    problem = fits(v.shape, tuple(array.shape))
    if problem:
        raise InputError(f"array {v.name!r} in {path} does not fit the model's {v.shape_text}: {problem}")
    if et.kind == "string":
        if array.dtype.kind not in "UO":
            raise InputError(f"array {v.name!r} in {path} is {array.dtype}, input is string")
        return array.astype(object)
    if et.kind == "raw":
        if array.dtype.itemsize * 8 != et.bits and not (et.bits < 8 and array.dtype.itemsize == 1):
            raise InputError(f"array {v.name!r} in {path} is {array.dtype}: {et.name} needs its raw bits")
        return _contiguous(array).view(et.storage)
    if array.dtype != np.dtype(et.storage):
        if not cast:
            raise InputError(
                f"array {v.name!r} in {path} is {array.dtype} but the input is {et.name}: "
                f"store it as {np.dtype(et.storage)}, or pass --cast to convert it"
            )
        if not np.can_cast(array.dtype, et.storage, casting="unsafe") or array.dtype.kind in "UOSV":
            raise InputError(f"array {v.name!r} in {path} is {array.dtype}; it cannot become {et.name}")
    return _contiguous(array.astype(et.storage, copy=False))


def _cast_notices(
    inputs: Sequence[ValueInfo], from_file: Mapping[str, np.ndarray], config: Config
) -> list[str]:
    out = []
    for v in map(as_tensor, inputs):
        et = ELEMENT_TYPES.get(v.element_code)
        if v.name in from_file and et is not None and et.kind not in ("string", "raw"):
            have = from_file[v.name].dtype
            if have != np.dtype(et.storage):
                out.append(
                    f"input {v.name!r}: converted {have} from {config.inputs_file} to {et.name} (--cast)"
                )
    return out


def _read_file(inputs: Sequence[ValueInfo], config: Config) -> dict[str, np.ndarray]:
    if config.inputs_file is None:
        return {}
    from_file = read_npz(config.inputs_file)
    _check_known(f"inputs file {config.inputs_file}", list(from_file), inputs)
    for name in from_file:
        if name in config.values or name in config.ranges or name in config.shapes:
            raise InputError(f"input {name!r} is given both in {config.inputs_file} and by a flag")
    return from_file


def make_inputs(
    inputs: Sequence[ValueInfo],
    config: Config,
    model: onnxfile.ModelFile | None = None,
    attempt: int = 0,
    path: str | None = None,
) -> GeneratedInputs:
    """``config.input_sets`` sets of arrays for every model input, following ``config``
    (shapes, dims, batch, values, ranges, inputs_file, seed) and, for what it leaves open,
    the choices of :func:`~inferspeed.measure.plan.plan_inputs` (``model``: the file's
    graph and metadata it reads; ``attempt``: which candidate sizes; ``path``: the model
    file, for the shapes of intermediate tensors). Raises InputError for a spec that does not
    fit the model."""
    _check_known("shape", list(config.shapes), inputs)
    _check_known("value", list(config.values), inputs)
    _check_known("range", list(config.ranges), inputs)
    for name in config.values:
        if name in config.ranges:
            raise InputError(f"input {name!r} has both a constant value and a range: give one")
    from_file = _read_file(inputs, config)
    file_shapes = {name: tuple(int(d) for d in a.shape) for name, a in from_file.items()}
    plan = plan_inputs(inputs, config, model, attempt, file_shapes, path)
    plans: list[tuple[ValueInfo, ElementType, InputChoice]] = []
    total = 0
    for v in (as_tensor(v) for v in inputs):
        choice = plan.choices[v.name]
        leaf = v.leaf() if choice.holds else v
        et = ELEMENT_TYPES.get(leaf.element_code if leaf is not None else 0)
        if et is None:
            raise InputError(
                f"input {v.name!r} has element type {v.element_type}, which inferspeed cannot make"
            )
        plans.append((v, et, choice))
        total += _storage_bytes(et, choice.shape)
    _check_total(total * config.input_sets, config)

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
    shapes = {v.name: c.shape for v, _, c in plans}
    notices = (*plan.notices, *_cast_notices(inputs, from_file, config))
    return GeneratedInputs(tuple(sets), shapes, notices, sources, plan)


def _check_total(total: int, config: Config) -> None:
    if total > config.max_input_bytes:
        from ..units import format_bytes

        raise InputError(
            f"the inputs would need {format_bytes(total)}{f' ({total} bytes)' if total >= 1024 else ''}, "
            "more than max_input_bytes "
            f"({format_bytes(config.max_input_bytes)}); check the shapes or raise the limit "
            f"(--max-input-bytes)"
        )


def _filled(
    v: ValueInfo, et: ElementType, c: InputChoice, rng: np.random.Generator
) -> tuple[np.ndarray, str]:
    """The values a plan chose for an input no flag fills, and their source."""
    if c.fill == "ints" and et.kind in ("int", "uint"):
        return _uniform(v.name, et, c.shape, c.low, c.high, rng), "random"
    if (
        c.fill == "values"
        and et.kind in ("int", "uint", "float", "bool", "string")
        and len(c.values) == _count(c.shape)
    ):
        return _values(v.name, et, c.shape, c.values), "constant"
    if c.fill in ("zeros", "ones", "value") and et.kind not in ("string",):
        value = {"zeros": 0, "ones": 1}.get(c.fill, c.low)
        return _constant(v.name, et, c.shape, value if et.kind != "bool" else bool(value)), "constant"
    if c.fill == "arange" and et.kind in ("int", "uint", "float") and c.shape:
        ramp = np.arange(c.shape[-1]) % (np.iinfo(et.storage).max if et.kind != "float" else 2**24)
        return _contiguous(np.broadcast_to(ramp.astype(et.storage), c.shape)), "arange"
    return _random(v.name, et, c.shape, rng), "random"


def _values(name: str, et: ElementType, shape: tuple[int, ...], values: Sequence[float | str]) -> np.ndarray:
    """The plan's explicit values (an axis, a shape, a count, a category) as the input's type."""
    if et.kind == "string":
        return np.array([str(x) for x in values], dtype=object).reshape(shape)
    if any(isinstance(x, str) for x in values):
        raise InputError(f"input {name!r} is {et.name}: the plan's values {list(values)[:4]} are text")
    if et.kind in ("int", "uint"):
        info = np.iinfo(et.storage)
        # Past the type's range (a Slice's end in an int8): its largest value, as ONNX clamps.
        ints = [min(max(int(x), int(info.min)), int(info.max)) for x in values]
        return np.array(ints, dtype=et.storage).reshape(shape)
    if et.kind == "bool":
        return np.array([bool(x) for x in values], dtype=np.bool_).reshape(shape)
    return np.array(values, dtype=et.storage).reshape(shape)


def _generate(
    plans: Sequence[tuple[ValueInfo, ElementType, InputChoice]],
    config: Config,
    from_file: Mapping[str, np.ndarray],
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    arrays: dict[str, np.ndarray] = {}
    sources: dict[str, str] = {}
    for v, et, choice in plans:
        shape = choice.shape
        if v.name in from_file:
            # A copy: every input set gets buffers of its own.
            file = str(config.inputs_file)
            arrays[v.name] = _file_array(v, et, from_file[v.name], file, config.cast).copy()
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
            arrays[v.name], sources[v.name] = _filled(v, et, choice, rng)
        if et.kind != "string":
            arrays[v.name] = _contiguous(arrays[v.name])
    return arrays, sources
