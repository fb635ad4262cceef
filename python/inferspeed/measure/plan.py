"""The shape and the kind of values of every model input: the user's flags first, then what the
model says, then conventions by the input's role, each choice with its reason.

Sources, in order, for a dynamic dimension:

1. the user's flags: ``shapes`` (--shape), ``dims`` by symbol or ``"input:axis"`` (--dim),
   ``batch`` (--batch), the arrays of ``inputs_file`` (--inputs);
2. the model's metadata: the image size export tools record (``imgsz``, ``image_size``...),
   its sequence length or sample rate;
3. the input's role, read from its name, type and shape and from the graph: an image (NCHW or
   NHWC), audio samples, a token or frame sequence, a batch dim, recurrent state, lengths of
   another input, a sample rate, a mask, type ids;
4. when the first run fails at those sizes, :class:`~inferspeed.measure.session.Session` tries
   the next candidates of each guessed dim (``attempt``), a few times.

Integer inputs get the values the graph needs of them (:mod:`~inferspeed.facts.uses`): ids
inside the table they index, valid axes, counts and shapes, divisors that are not zero. Every
guess is said in the input's ``because`` (``inputs[].chosen_because`` of a result) and in a
notice printed before measuring.
"""

from __future__ import annotations

import dataclasses
import math
import re
import textwrap
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import InputError
from ..facts import onnxfile, uses
from ..facts.signature import ELEMENT_TYPES, ValueInfo

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "BOUND_LISTED", "MAX_ATTEMPTS", "InputChoice", "InputPlan", "as_tensor", "bound_text", "call_error",
    "first_run_error", "fits", "flag_for", "map_keys", "ort_reason", "plan_inputs", "read_npz",
    "shapes_for_file", "usable_symbol",
]  # fmt: skip

#: Sets of candidate sizes tried, at most, when the first run fails.
MAX_ATTEMPTS = 5
#: The most elements an input may get from guessed sizes (many open dims of 128 each would
#: otherwise make gigabytes).
MAX_GUESSED_ELEMENTS = 1 << 24

#: (height, width) candidates of an image with both sides open, by attempt: square sizes
#: first, then text lines (OCR recognizers need a small fixed height).
_IMAGE_CLASSIFIER = ((224, 224), (320, 320), (48, 192), (32, 320), (64, 64))
_IMAGE_DENSE = ((640, 640), (320, 320), (224, 224), (48, 320), (32, 320))
_SEQUENCE = (128, 64, 256, 32, 16)
_AUDIO_DEFAULT_RATE = 16000
_PASS_THROUGH = {
    "Cast", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Identity", "Expand", "Transpose",
    "Clip", "Slice", "Concat",
}  # fmt: skip
_SEQUENCE_WORDS = ("seq", "len", "time", "frame", "step", "token", "word", "char", "sent", "text", "chunk")
_AUDIO_WORDS = ("audio", "wave", "speech", "signal", "pcm", "sample", "sound")
_STATE = re.compile(
    r"^(h|c|h0|c0|hn|cn|state|states|hidden|cell|memory|mem)$|state|hidden|^past|cache|^prev", re.I
)
_RATE = re.compile(r"^(sr|fs|sample_?rate|sampling_?rate|rate)$", re.I)


@dataclass(frozen=True)
class InputChoice:
    """One input: its shape, how its values are made, and why.

    ``fill``: "random" (the default of its type), "ints" (uniform integers in ``[low, high)``),
    "zeros", "ones", "value" (every element ``low``), "arange" (0, 1, ... along the last
    axis), "values" (``values``, one per element in C order). ``guessed``: the axes whose size
    was chosen here (not given, not fixed), with the flag that would set each.
    """

    shape: tuple[int, ...]
    fill: str = "random"
    low: int = 0
    high: int = 0
    because: str = ""
    guessed: tuple[tuple[int, str], ...] = ()
    holds: str = ""
    values: tuple[float | str, ...] = ()

    @property
    def values_text(self) -> str:
        if self.fill == "values":
            shown = ", ".join(repr(x) if isinstance(x, str) else f"{x:g}" for x in self.values[:8])
            return f"= [{shown}{', ...' if len(self.values) > 8 else ''}]"
        if self.fill == "ints":
            return f"in [{self.low}, {self.high})"
        if self.fill == "value":
            return f"= {self.low}"
        if self.fill in ("zeros", "ones"):
            return f"all {self.fill[:-1]}s"
        return "0, 1, ..." if self.fill == "arange" else ""


@dataclass(frozen=True)
class InputPlan:
    choices: dict[str, InputChoice]
    attempt: int = 0
    notices: tuple[str, ...] = ()

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: c.shape for name, c in self.choices.items()}

    @property
    def guessed(self) -> bool:
        """Whether any size was guessed (so another attempt may choose differently)."""
        return any(c.guessed for c in self.choices.values())


def usable_symbol(symbol: str | None) -> bool:
    """Whether a dim's name can be given to --dim as it is (not '?', 'unk__3', '-1',
    'p2o.DynamicDimension.0', ...)."""
    if not symbol or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", symbol):
        return False
    return not re.match(r"(unk__|DynamicDimension|dim_?\d|\d)", symbol)


def flag_for(v: ValueInfo, axis: int, size: int | str) -> str:
    """The --dim flag that sets this dim: by its name when it has a usable one."""
    sym = (v.symbols or ())[axis] if v.symbols and axis < len(v.symbols) else None
    return f"--dim {sym}={size}" if sym and usable_symbol(sym) else f"--dim {v.name}:{axis}={size}"


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


# --- what the graph says -------------------------------------------------------------------


@dataclass
class _Graph:
    metadata: dict[str, str] = field(default_factory=dict)
    table_rows: dict[str, int] = field(default_factory=dict)  # input -> rows of the table it indexes
    classifier: bool = False  # every output has rank <= 2
    uses: uses.GraphUses | None = None  # where the integer inputs go
    lengths: dict[str, tuple[int, str]] = field(default_factory=dict)  # 1-D input -> its length, why


def _constant_dims(graph: onnxfile.Graph) -> dict[str, list[int]]:
    dims = {t.name: list(t.dims) for t in graph.initializers}
    for node in graph.nodes:
        if node.op_type == "Constant" and node.outputs:
            for a in node.attributes:
                if a.name == "value" and a.t is not None:
                    dims[node.outputs[0]] = list(a.t.dims)
    return dims


def _table_rows(graph: onnxfile.Graph, name: str, consts: Mapping[str, list[int]]) -> int | None:
    """Rows of the smallest table that ``name`` indexes (through pass-through ops), or None."""
    consumers: dict[str, list[tuple[onnxfile.Node, int]]] = {}
    for node in graph.nodes:
        for k, x in enumerate(node.inputs):
            consumers.setdefault(x, []).append((node, k))
    found: list[int] = []
    seen, todo = {name}, [name]
    while todo:
        for node, k in consumers.get(todo.pop(), ()):
            if node.op_type == "Gather" and k == 1 and node.inputs[0] in consts:
                axis = next((a.i for a in node.attributes if a.name == "axis"), 0)
                table = consts[node.inputs[0]]
                if -len(table) <= axis < len(table) and table[axis] > 0:
                    found.append(table[axis])
            elif node.op_type == "EmbedLayerNormalization" and k in (0, 1):
                table = consts.get(node.inputs[2 if k == 0 else 4] if len(node.inputs) > 4 else "", [])
                if table:
                    found.append(table[0])
            elif node.op_type in _PASS_THROUGH and k == 0:
                for out in node.outputs:
                    if out not in seen:
                        seen.add(out)
                        todo.append(out)
    return min(found) if found else None


def _read_graph(
    model: onnxfile.ModelFile | None, inputs: Sequence[ValueInfo], path: str | None = None
) -> _Graph:
    g = _Graph()
    if model is None or model.graph is None:
        return g
    kinds = ("int", "uint", "bool", "float", "string")
    followed = [v.name for v in inputs if _kind(v) in kinds and v.shape is not None]
    g.uses = uses.find_uses(model, followed, path)
    if g.uses is not None:
        g.lengths = g.uses.lengths({v.name: v.shape for v in inputs if v.shape is not None})
    g.metadata = {k.lower(): v for k, v in model.metadata}
    consts = _constant_dims(model.graph)
    for v in inputs:
        et = ELEMENT_TYPES.get(v.element_code)
        if et is not None and et.kind in ("int", "uint"):
            rows = _table_rows(model.graph, v.name, consts)
            if rows is not None:
                g.table_rows[v.name] = rows
    ranks = [len(o.type.shape) for o in model.graph.outputs if o.type.shape is not None]
    g.classifier = bool(ranks) and max(ranks) <= 2
    return g


def _metadata_image_size(meta: Mapping[str, str]) -> tuple[int, int] | None:
    for key in ("imgsz", "image_size", "img_size", "input_size", "imagesize", "image_shape"):
        if key in meta:
            nums = [int(x) for x in re.findall(r"\d+", meta[key])]
            if len(nums) == 1:
                return nums[0], nums[0]
            if len(nums) >= 2:
                return nums[-2], nums[-1]
    return None


def _metadata_int(meta: Mapping[str, str], keys: Iterable[str]) -> tuple[str, int] | None:
    for key in keys:
        if key in meta and re.fullmatch(r"\s*\d+\s*", meta[key]):
            return key, int(meta[key])
    return None


# --- roles ---------------------------------------------------------------------------------


def _kind(v: ValueInfo) -> str:
    et = ELEMENT_TYPES.get(v.element_code)
    return et.kind if et is not None else "other"


def _has(name: str, words: Iterable[str]) -> bool:
    low = name.lower()
    return any(w in low for w in words)


def _sequence_named(symbol: str | None) -> bool:
    return bool(symbol) and _has(str(symbol), _SEQUENCE_WORDS) and not _has(str(symbol), ("batch",))


def _role(v: ValueInfo, rate_input: bool) -> str:
    """What an input is, as far as its name, type and shape tell."""
    kind, rank, name = _kind(v), len(v.shape or ()), v.name.lower()
    if kind in ("int", "uint", "bool"):
        if "mask" in name:
            return "mask"
        if kind == "bool":
            return "other"
        if rank <= 1 and _RATE.match(v.name):
            return "rate"
        if rank <= 1 and "len" in name:
            return "lengths"
        if "token_type" in name or "segment" in name or "type_id" in name:
            return "type_ids"
        if "position" in name:
            return "positions"
        return "tokens"
    if kind != "float":
        return "other"
    if "mask" in name:
        return "mask"
    if rank >= 2 and _STATE.search(name) and not _has(name, _AUDIO_WORDS):
        return "state"
    if rank == 4 and _image_layout(v) is not None:
        return "image"
    if rank in (1, 2, 3) and (_has(name, _AUDIO_WORDS) or rate_input) and v.shape and v.shape[-1] is None:
        return "audio"
    return "features"


def _image_layout(v: ValueInfo) -> tuple[int, tuple[int, int]] | None:
    """(channel axis, spatial axes) of a rank-4 image input, or None."""
    shape = v.shape or ()
    if shape[1] in (1, 3, 4):
        return 1, (2, 3)
    if shape[3] in (1, 3, 4) and shape[1] is None:
        return 3, (1, 2)
    if shape[1] is None and (shape[2] is None or shape[3] is None):
        return 1, (2, 3)  # all open: NCHW, the exporters' default
    return None


# --- sizes ---------------------------------------------------------------------------------

#: (candidate sizes, reason) of one open dim; the reason has {n} for the size chosen.
_Guess = tuple[tuple[int, ...], str]


class _Planner:
    def __init__(self, inputs: Sequence[ValueInfo], config: Config, graph: _Graph, attempt: int) -> None:
        self.inputs, self.config, self.graph, self.attempt = inputs, config, graph, attempt
        self.rate_input = any(_role(v, False) == "rate" for v in inputs if v.shape is not None)
        meta_rate = _metadata_int(graph.metadata, ("sample_rate", "sampling_rate", "sr"))
        self.rate = meta_rate[1] if meta_rate else _AUDIO_DEFAULT_RATE
        self.symbols: dict[str, tuple[int, str]] = {}  # symbol -> (size, reason)
        self.batch_axes: list[tuple[str, int]] = []

    def pick(self, guess: _Guess) -> tuple[int, str]:
        sizes, reason = guess
        k = min(self.attempt, len(sizes) - 1)
        return sizes[k], reason.format(n=sizes[k], k=k)

    def batch(self) -> tuple[int, str]:
        if self.config.batch is not None:
            return self.config.batch, f"batch {self.config.batch} (--batch)"
        return 1, "batch 1 (single stream)"

    def image_guess(self, v: ValueInfo, axis: int, spatial: tuple[int, int]) -> _Guess:
        shape = v.shape or ()
        other = shape[spatial[1] if axis == spatial[0] else spatial[0]]
        meta = _metadata_image_size(self.graph.metadata)
        if meta is not None:
            n = meta[0] if axis == spatial[0] else meta[1]
            return (n,), "{n}: the image size in the model's metadata"
        if other is not None:  # one side fixed
            if axis == spatial[1]:  # width open, height fixed: a text line
                return (4 * other, 8 * other, other, 2 * other), (
                    f"width {{n}} for the fixed height {other} (a text line)"
                )
            return (other, 2 * other, other // 2 or 1), f"height {{n}}: the fixed width {other} (square)"
        pairs = _IMAGE_CLASSIFIER if self.graph.classifier else _IMAGE_DENSE
        side = 0 if axis == spatial[0] else 1
        sizes = tuple(p[side] for p in pairs)
        k = min(self.attempt, len(pairs) - 1)
        h, w = pairs[k]
        if h != w:
            return sizes, f"{h}x{w}: a text-line image (squares failed)"
        what = "image classifiers" if self.graph.classifier else "detection and segmentation models"
        return sizes, f"{h}x{w}: the usual input of {what}"

    def guess(self, v: ValueInfo, role: str, axis: int) -> _Guess | None:
        """How to choose an open dim; None: it is a batch dim."""
        sym = (v.symbols or ())[axis]
        rank = len(v.shape or ())
        if _sequence_named(sym) and role != "audio":
            return _SEQUENCE, f"{{n}} steps along {sym!r}"
        if role == "state":
            return None
        if axis == 0 and (rank >= 2 or role in ("lengths", "rate")):
            return None
        if role == "image":
            layout = _image_layout(v)
            assert layout is not None
            if axis == layout[0]:
                return (3,), "3 channels"
            return self.image_guess(v, axis, layout[1])
        if role == "audio" and axis == rank - 1:
            return (self.rate, 512, 8000, 1024, 4000), (
                f"{{n}} samples (1 s at {self.rate} Hz)" if self.attempt == 0 else "{n} samples"
            )
        if role in ("tokens", "type_ids", "positions", "mask"):
            return _SEQUENCE, "a sequence of {n} tokens"
        return _SEQUENCE, "{n} steps"

    def axis(self, v: ValueInfo, role: str, axis: int) -> tuple[int, str, bool]:
        """(size, reason, guessed) of one open dim."""
        sym = (v.symbols or ())[axis]
        key = f"{v.name}:{axis}"
        if key in self.config.dims:
            return int(self.config.dims[key]), "", False
        if sym and sym in self.config.dims:
            return int(self.config.dims[sym]), "", False
        if axis == 0 and len(v.shape or ()) == 1 and v.name in self.graph.lengths:
            size, reason = self.graph.lengths[v.name]  # before a shared name: the graph needs it
            return size, reason, True
        if sym and sym in self.symbols:
            size, reason = self.symbols[sym]
            return size, reason, False
        guess = self.guess(v, role, axis)
        if guess is None:
            self.batch_axes.append((v.name, axis))
            size, reason = self.batch()
            guessed = self.config.batch is None
        else:
            size, reason = self.pick(guess)
            guessed = True
        if sym and sym not in ("?", "-1"):
            self.symbols[sym] = (size, reason)
        return size, reason, guessed

    def shape(self, v: ValueInfo, role: str) -> tuple[tuple[int, ...], list[str], list[tuple[int, str]]]:
        """The shape of an input no flag shapes: (shape, reasons, guessed axes with their flags)."""
        assert v.shape is not None
        out: list[int] = []
        reasons: list[str] = []
        guessed: list[tuple[int, str]] = []
        for i, size in enumerate(v.shape):
            if size is not None:
                out.append(size)
                continue
            n, reason, was_guessed = self.axis(v, role, i)
            out.append(n)
            if reason and reason not in reasons:
                reasons.append(reason)
            if was_guessed:
                batch = (v.name, i) in self.batch_axes
                guessed.append((i, "--batch N" if batch else flag_for(v, i, "N")))
        shrunk = False
        # Only unnamed dims: a named one must keep the size every input shares.
        free = [a for a, _ in guessed if not (v.symbols or ())[a]]
        while math.prod(out) > MAX_GUESSED_ELEMENTS and any(out[a] > 1 for a in free):
            a = max(free, key=lambda k: out[k])
            out[a] = max(1, out[a] // 2)
            shrunk = True
        if shrunk:
            reasons.append(f"guessed sizes halved to keep it under {MAX_GUESSED_ELEMENTS:,} elements")
        return tuple(out), reasons, guessed


def fits(model_shape: tuple[int | None, ...], shape: tuple[int, ...]) -> str | None:
    if len(model_shape) != len(shape):
        return f"rank {len(shape)} differs from the model's rank {len(model_shape)}"
    for i, (want, got) in enumerate(zip(model_shape, shape, strict=True)):
        if want is not None and want != got:
            return f"dimension {i} is {got} but the model fixes it at {want}"
    return None


def _given_shape(v: ValueInfo, config: Config) -> tuple[int, ...]:
    """The shape --shape gives ``v``, checked against the model and --dim."""
    assert v.shape is not None and v.symbols is not None
    shape = tuple(config.shapes[v.name])
    if not v.rank_known:
        return shape
    problem = fits(v.shape, shape)
    if problem:
        raise InputError(
            f"shape {_fmt(shape)} given for input {v.name!r} does not fit the model's "
            f"{v.shape_text}: {problem}"
        )
    for k, (sym, given) in enumerate(zip(v.symbols, shape, strict=True)):
        for key in (sym, f"{v.name}:{k}"):
            if key is not None and key in config.dims and int(config.dims[key]) != given:
                raise InputError(
                    f"--shape {v.name}={_fmt(shape)} contradicts --dim {key}={config.dims[key]} "
                    f"(dimension {k} of {v.name!r})"
                )
    return shape


def _check_dims(inputs: Sequence[ValueInfo], config: Config) -> None:
    """Every --dim names a dim of the model: a symbol, or INPUT:AXIS of an open dim."""
    symbols = {s for v in inputs for s in (v.symbols or ()) if s}
    by_name = {v.name: v for v in inputs}
    for key in config.dims:
        name, colon, axis_text = key.rpartition(":")
        if colon and axis_text.isdigit() and name in by_name:
            v, axis = by_name[name], int(axis_text)
            rank = len(v.shape or ())
            if axis >= rank:
                raise InputError(f"--dim {key}: input {name!r} has {rank} dimensions (axes 0 to {rank - 1})")
            fixed = (v.shape or ())[axis]
            if fixed is not None and fixed != config.dims[key]:
                raise InputError(f"--dim {key}={config.dims[key]}: the model fixes that dimension at {fixed}")
        elif key not in symbols:
            known = ", ".join(sorted(symbols)) or "none"
            raise InputError(
                f"--dim {key}: no input has a dimension named {key!r} (named dims: {known}; "
                "address any dim as INPUT:AXIS, e.g. --dim x:2=224)"
            )


# --- values --------------------------------------------------------------------------------


def _fill(v: ValueInfo, role: str, graph: _Graph, rate: int) -> tuple[str, int, int, str]:
    """(fill, low, high, reason) of an input's values by its role."""
    rows = graph.table_rows.get(v.name)
    if role == "rate":
        return "value", rate, rate, f"a sample rate of {rate} Hz"
    if role == "mask":
        return "ones", 1, 1, "all ones (nothing masked)"
    if role == "type_ids":
        return "zeros", 0, 0, "zeros (one segment)"
    if role == "positions":
        return "arange", 0, 0, "positions 0, 1, ..."
    if role == "state":
        return "zeros", 0, 0, "zeros (the state of a new stream)"
    if role in ("tokens", "lengths") and rows is not None:
        return "ints", 0, rows, f"ids in [0, {rows}) (the rows of the table they index)"
    return "random", 0, 0, ""


def _sequence_length(v: ValueInfo, shapes: Mapping[str, tuple[int, ...]], inputs: Sequence[ValueInfo]) -> int:
    """The value of a lengths input: the longest open non-batch dim of the other inputs."""
    best = 1
    for other in inputs:
        if other.name == v.name or other.shape is None or other.name not in shapes:
            continue
        for axis, size in enumerate(other.shape):
            if size is None and axis > 0 and axis < len(shapes[other.name]):
                best = max(best, shapes[other.name][axis])
    return best


def plan_inputs(
    inputs: Sequence[ValueInfo],
    config: Config,
    model: onnxfile.ModelFile | None = None,
    attempt: int = 0,
    file_shapes: Mapping[str, tuple[int, ...]] | None = None,
    path: str | None = None,
) -> InputPlan:
    """The shape and values of every input (see the module's doc); ``path``: the model file,
    for the shapes of intermediate tensors the values depend on. Raises InputError for a flag
    that does not fit the model."""
    optional = [v for v in inputs if as_tensor(v) is not v]
    everything = [as_tensor(v) for v in inputs]
    inputs = [v for v in everything if v.kind == "tensor" and v.shape is not None]
    containers = [v for v in everything if not (v.kind == "tensor" and v.shape is not None)]
    leaves = [leaf for v in containers if (leaf := v.leaf()) is not None and leaf.shape is not None]
    _check_dims([*inputs, *leaves], config)
    file_shapes = file_shapes or {}
    graph = _read_graph(model, inputs, path)
    planner = _Planner(inputs, config, graph, attempt)
    notices: list[str] = []
    sized: dict[str, tuple[tuple[int, ...], list[str], list[tuple[int, str]], str]] = {}
    for v in inputs:
        role = _role(v, planner.rate_input)
        if v.name in file_shapes:
            sized[v.name] = (file_shapes[v.name], [], [], role)
        elif v.name in config.shapes:
            sized[v.name] = (_given_shape(v, config), [], [], role)
        elif not v.rank_known:
            notices.append(
                f"input {v.name!r} has no shape in the model; using a scalar "
                f"(set one with --shape {v.name}=...)"
            )
            sized[v.name] = ((), [], [], role)
        else:
            sized[v.name] = (*planner.shape(v, role), role)
    if (
        config.batch is not None
        and not planner.batch_axes
        and not any(v.name in config.shapes for v in inputs)
    ):
        firsts = ", ".join(f"{v.name} {v.shape_text}" for v in inputs)
        raise InputError(f"--batch: no input has an open batch dimension ({firsts}); use --shape")
    shapes = {name: s[0] for name, s in sized.items()}
    free = [v.name for v in inputs if not _given_values(v, config)]
    rules = graph.uses.rules(shapes, free) if graph.uses is not None else {}
    choices = {
        v.name: _choice(v, sized[v.name], shapes, inputs, config, graph, planner.rate, rules.get(v.name))
        for v in inputs
    }
    for v in inputs:
        c = choices[v.name]
        if c.because and (c.guessed or c.fill != "random"):
            flags = [flag for _, flag in c.guessed]
            hint = f"; set with {', '.join(dict.fromkeys(flags))}" if flags else ""
            notices.append(f"input {v.name!r} {_fmt(c.shape)}: {c.because}{hint}")
    for v in optional:
        present = f"bound present (ONNX Runtime cannot be given an absent {v.type_text})"
        c = choices[v.name]
        choices[v.name] = dataclasses.replace(c, because="; ".join(x for x in (c.because, present) if x))
        notices.append(f"input {v.name!r} is {v.type_text}: {present}")
    for v in containers:
        choices[v.name] = _container_choice(v, config, file_shapes, planner.symbols)
        notices.append(f"input {v.name!r} ({v.type_text}): {choices[v.name].because}")
    return InputPlan({v.name: choices[v.name] for v in everything}, attempt, tuple(notices))


def as_tensor(v: ValueInfo) -> ValueInfo:
    """An ``optional<tensor>`` input as the tensor it holds (bound present, planned as any
    tensor); any other input as it is."""
    inner = v.inner if v.kind == "optional" else None
    return inner if inner is not None and inner.kind == "tensor" and inner.shape is not None else v


#: Elements of a sequence input, and entries of a map input, that inferspeed builds.
SEQUENCE_ELEMENTS = 2
MAP_ENTRIES = 3
#: Each element's shape when the model does not give its rank.
_ELEMENT_SHAPE = (2, 3)
#: Open dims of a sequence's elements (when no flag or other input sizes their symbol).
_ELEMENT_DIM = 3
#: Key and value types ONNX Runtime makes maps of (CreateValue): int64 or string keys.
_MAP_KEYS = {7: "int64", 8: "string"}


def map_keys(key_code: int, count: int) -> list[int] | list[str]:
    """The keys of a map input inferspeed builds: 0, 1, ... or "a", "b", ..."""
    if key_code == 8:
        return [chr(ord("a") + k) if k < 26 else f"k{k}" for k in range(count)]
    return list(range(count))


def _container_choice(
    v: ValueInfo,
    config: Config,
    file_shapes: Mapping[str, tuple[int, ...]],
    symbols: Mapping[str, tuple[int, str]],
) -> InputChoice:
    """What is built for a sequence or map input (an optional sequence bound present): small
    contents of its element type, said in ``because``."""
    held = v.inner if v.kind == "optional" else v
    leaf = v.leaf()
    if (
        held is None
        or held.kind not in ("sequence", "map")
        or leaf is None
        or leaf is not held.inner
        or leaf.element_code not in ELEMENT_TYPES
        or (held.kind == "map" and held.key_code not in _MAP_KEYS)
    ):
        raise InputError(f"input {v.name!r} is {v.type_text}: inferspeed cannot build such a value")
    for what, names in (("--shape", config.shapes), ("--inputs", file_shapes)):
        if v.name in names:
            raise InputError(f"input {v.name!r} is {v.type_text}: {what} cannot give it (it is built)")
    present = " (bound present: ONNX Runtime cannot be given an absent optional)" if held is not v else ""
    if held.kind == "map":
        keys = map_keys(held.key_code, MAP_ENTRIES)
        return InputChoice(
            (MAP_ENTRIES,),
            because=f"a map of {MAP_ENTRIES} keys {', '.join(map(str, keys))} to random values{present}",
            holds="map",
        )
    shape = _element_shape(leaf, config, symbols)
    because = (
        f"a sequence of {SEQUENCE_ELEMENTS} {leaf.element_type} "
        + (f"tensors {_fmt(shape)}" if shape else "scalars")
        + " of random values"
        f"{'' if leaf.rank_known else ' (the model gives no element shape)'}{present}"
    )
    return InputChoice((SEQUENCE_ELEMENTS, *shape), because=because, holds="sequence")


def _element_shape(
    leaf: ValueInfo, config: Config, symbols: Mapping[str, tuple[int, str]]
) -> tuple[int, ...]:
    """A sequence element's shape: the model's dims, an open one sized by --dim or by the
    tensor inputs that share its name, else small."""
    if not leaf.rank_known or leaf.shape is None:
        return _ELEMENT_SHAPE
    out = []
    names = leaf.symbols or (None,) * len(leaf.shape)
    for axis, (size, sym) in enumerate(zip(leaf.shape, names, strict=False)):
        if size is not None:
            out.append(size)
        elif f"{leaf.name}:{axis}" in config.dims:
            out.append(int(config.dims[f"{leaf.name}:{axis}"]))
        elif sym and sym in config.dims:
            out.append(int(config.dims[sym]))
        elif sym and sym in symbols:
            out.append(symbols[sym][0])
        else:
            out.append(_ELEMENT_DIM)
    return tuple(out)


def _choice(
    v: ValueInfo,
    sized: tuple[tuple[int, ...], list[str], list[tuple[int, str]], str],
    shapes: Mapping[str, tuple[int, ...]],
    inputs: Sequence[ValueInfo],
    config: Config,
    graph: _Graph,
    rate: int,
    rule: uses.ValueRule | None = None,
) -> InputChoice:
    shape, reasons, guessed, role = sized
    given = _given_values(v, config)
    fill, low, high, why = ("random", 0, 0, "") if given else _fill(v, role, graph, rate)
    if role == "lengths" and not given:
        n = _sequence_length(v, shapes, inputs)
        fill, low, high, why = "value", n, n, f"{n}: the length of the other inputs' sequences"
    values: tuple[float | str, ...] = ()
    if rule is not None and not given and _rule_applies(v, rule, shape, fill, low, high):
        fill, low, high, why, values = rule.fill, rule.low, rule.high, rule.because, rule.values
    if fill == "ints" and high <= low:
        fill = "random"
    because = "; ".join([*reasons, *([f"values {why}"] if why else [])])
    return InputChoice(shape, fill, low, high, because, tuple(guessed), values=values)


def _given_values(v: ValueInfo, config: Config) -> bool:
    """Whether the user's flags set the values of ``v`` (--input, --range, --inputs)."""
    return bool(v.name in config.values or v.name in config.ranges or (config.inputs_file and not v.shape))


def _rule_applies(
    v: ValueInfo, rule: uses.ValueRule, shape: tuple[int, ...], fill: str, low: int, high: int
) -> bool:
    """Whether the graph's rule replaces the role's values: explicit values of the input's
    size (a float input takes only those), or a range the role's values do not keep to."""
    if rule.fill == "values":
        return len(rule.values) == math.prod(shape)
    if _kind(v) not in ("int", "uint"):
        return False
    role_values = {
        "zeros": (0, 0),
        "ones": (1, 1),
        "value": (low, low),
        "arange": (0, (shape or (1,))[-1] - 1),
        "ints": (low, high - 1),
    }
    if fill in role_values:
        first, last = role_values[fill]
        return not (rule.low <= first and last < rule.high)
    return True


def read_npz(path: str) -> dict[str, np.ndarray]:
    """Arrays by name from an .npz file; InputError when it cannot be read."""
    import numpy as np  # here: info and the planner need numpy only for an .npz

    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise InputError(f"inputs file {path}: expected an .npz archive of named arrays")
            return {name: np.asarray(data[name]) for name in data.files}
    except InputError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        if isinstance(exc, ValueError) and "pickle" in str(exc):  # numpy's words for "not an .npz"
            raise InputError(
                f"inputs file {path} is not an .npz archive: give arrays by input name, saved with "
                "numpy.savez(path, name=array, ...)"
            ) from None
        raise InputError(f"cannot read inputs file {path}: {exc}") from None


def shapes_for_file(
    path: str, config: Config, attempt: int = 0, model: onnxfile.ModelFile | None = None
) -> tuple[dict[str, tuple[int, ...]], list[str], bool]:
    """The tensor input shapes a run of the model file at ``path`` would bind at ``attempt``
    (0: first; no session: the signature as the file declares it), the notices that say why,
    and whether a first run that fails at guessed sizes would go on to other ones (known only
    by running it). ``model``: the file's structure when the caller read it already."""
    from ..facts.modelfile import load_proto
    from ..facts.signature import file_inputs

    model = load_proto(path) if model is None else model
    inputs = file_inputs(model)
    file_shapes: dict[str, tuple[int, ...]] = {}
    if config.inputs_file is not None:
        file_shapes = {k: tuple(a.shape) for k, a in read_npz(config.inputs_file).items()}
    plan = plan_inputs(inputs, config, model, attempt, file_shapes, path)
    tensors = {name: shape for name, shape in plan.shapes.items() if not plan.choices[name].holds}
    first = plan if attempt == 0 else plan_inputs(inputs, config, model, 0, file_shapes, path)
    retried = (plan_inputs(inputs, config, model, k, file_shapes, path) for k in range(1, MAX_ATTEMPTS))
    may_retry = first.guessed and any(p.shapes != first.shapes for p in retried)
    return tensors, list(plan.notices), may_retry


#: Inputs an error line names before "and N more".
BOUND_LISTED = 6
#: Where in ONNX Runtime's sources a message was raised ("/onnxruntime_src/.../reshape_helper.h:91
#: onnxruntime::ReshapeHelper::ReshapeHelper(const ...&, bool) "): no help to a user, and it
#: would push the reason itself past the line's cap.
_SOURCE_LOCATION = re.compile(r"(?:/|\b)[\w./-]+\.(?:h|hpp|cc|cpp|cu):\d+\s+(?:[\w:~<>]+\([^()]*\)\s*)?")


def ort_reason(error: str, limit: int = 240) -> str:
    """ONNX Runtime's message on one line, without source locations, at most ``limit``
    characters, cut between words."""
    return textwrap.shorten(_SOURCE_LOCATION.sub("", error), limit, placeholder=" ...")


def _bound_text(v: ValueInfo, c: InputChoice) -> str:
    if c.holds == "sequence":
        return f"{v.name} {v.type_text} {c.shape[0]} x {_fmt(c.shape[1:])} random"
    if c.holds == "map":
        return f"{v.name} {v.type_text} {c.shape[0]} entries random"
    t = as_tensor(v)
    values = c.values_text or ("random" if _kind(t) != "int" else "ids in [0, 10)")
    return f"{v.name} {t.element_type or v.type_text} {_fmt(c.shape)} {values}"


#: The flag behind each source of values a user gave.
_GIVEN_BY = {"file": "--inputs", "constant": "--input", "range": "--range"}


def _given_by(name: str, c: InputChoice, sources: Mapping[str, str]) -> str | None:
    """The flag that gave an input's values, or None when they were made up here: a plan's own
    constants ("values", "zeros", ...) are "constant" too, but only a given input's choice
    stays "random"."""
    flag = _GIVEN_BY.get(sources.get(name, ""))
    return flag if c.fill == "random" else None


def bound_text(inputs: Sequence[ValueInfo], plan: InputPlan, sources: Mapping[str, str] | None = None) -> str:
    """What was bound, for an error line: each input's name, type, shape and values (those
    given by a flag or file named so), the first BOUND_LISTED of them."""
    sources = sources or {}
    parts = []
    for v in inputs:
        c = plan.choices.get(v.name)
        if c is None:
            continue
        text = _bound_text(v, c)
        flag = _given_by(v.name, c, sources)
        if flag is not None:
            text = text.rsplit(" ", 1)[0] + f" (values from {flag})"
        parts.append(text)
    more = len(parts) - BOUND_LISTED
    return ", ".join(parts[:BOUND_LISTED]) + (f", and {more} more" if more > 0 else "")


def call_error(
    model_name: str, what: str, error: str, inputs: Sequence[ValueInfo], plan: InputPlan,
    sources: Mapping[str, str] | None = None,
) -> str:  # fmt: skip
    """The one line that says a call failed after the first run succeeded (``what``: "a
    measured call", ...): the model, ONNX Runtime's error on one line, what was bound."""
    reason = ort_reason(error)
    return f"{what} of {model_name} failed: {reason} | bound: {bound_text(inputs, plan, sources)}"


def first_run_error(
    model_name: str,
    inputs: Sequence[ValueInfo],
    tried: Sequence[tuple[InputPlan, str]],
    sources: Mapping[str, str] | None = None,
    model: onnxfile.ModelFile | None = None,
) -> str:
    """The one line that says the first run failed: the ORT error, every input as bound (the
    first BOUND_LISTED; ``sources`` as GeneratedInputs has them), what was guessed (and what
    else was tried) and the flags that set each guessed choice; with nothing guessed, the
    inputs made up here that reach the failing op in ``model`` (:func:`_suspects`)."""
    plan, error = tried[0]
    reason = ort_reason(error)
    bound = bound_text(inputs, plan, sources)
    flags: list[str] = []
    for v in inputs:
        c = plan.choices.get(v.name)
        if c is None:
            continue
        flags.extend(flag for _, flag in c.guessed if flag != "--batch N")
        if c.fill in ("value", "zeros", "ones"):
            flags.append(f"--input {v.name}={ {'zeros': 0, 'ones': 1}.get(c.fill, c.low) }")
    also = sorted({str(p.shapes) for p, _ in tried[1:]} - {str(plan.shapes)})
    tried_text = f" ({len(tried)} sets of sizes tried, all failed)" if also else ""
    if flags:
        advice = "set the sizes the model needs: " + " ".join(dict.fromkeys(flags))
    else:
        advice = _suspects(error, inputs, plan, sources or {}, model) or (
            "nothing was guessed: check the values (--input, --range) and the model"
        )
    return f"the first run of {model_name} failed{tried_text}: {reason} | bound: {bound} | {advice}"


#: ONNX Runtime's words for the node a call failed in (the last is the innermost, in a subgraph).
_FAILED_OP = re.compile(r"while running (\w+) node")


def _suspects(
    error: str,
    inputs: Sequence[ValueInfo],
    plan: InputPlan,
    sources: Mapping[str, str],
    model: onnxfile.ModelFile | None,
) -> str:
    """The inputs whose values were made up here (no flag or file gave them) and reach the
    op that failed, non-float ones first (an id, a size, a category breaks an op; random
    floats rarely do), with the flag that sets each; "" when none is known."""
    ops = _FAILED_OP.findall(error)
    if not ops:
        return ""
    reached = uses.upstream_inputs(model, ops[-1], [v.name for v in inputs])
    made = [
        v
        for v in inputs
        if v.name in reached
        and v.name in plan.choices
        and _given_by(v.name, plan.choices[v.name], sources) is None
    ]
    picked = [v for v in made if _kind(as_tensor(v)) != "float"] or made
    if not picked:
        return ""
    names = [v.name for v in picked[:3]]
    one = [n for n in names if math.prod(plan.choices[n].shape) == 1]
    setters = [f"--input {n}=V" for n in one] + (
        [f"--inputs FILE.npz (arrays named {', '.join(n for n in names if n not in one)})"]
        if len(one) < len(names)
        else []
    )
    whose = "whose values were" if len(names) == 1 else "whose values were all"
    return (
        f"the failing {ops[-1]} reads {', '.join(names)}, {whose} made up here: give the model's with "
        + " or ".join(setters)
    )
