"""Recognising a transformer decoder (a model with a KV cache) from its signature alone.

:func:`recognise` takes the inputs and outputs a session reports and the files beside the model
(``genai_config.json``), and says how to run the model as a generator: which input takes the
token ids, which inputs take the past keys and values and which outputs give them back one step
longer, how the attention mask, positions and other inputs are fed at each step, and which
output holds the logits. A model without a KV cache gives None (it stays a one-call benchmark).
A model with a cache of which something cannot be told gives a ModelError of one line that names
what is missing and the flag that supplies it.

The rules, in the order they are tried (docs/generation.md says them in plain words):

- **Cache pairs.** With a ``genai_config.json`` beside the model (for this file), its name
  templates (``past_key_values.%d.key`` -> ``present.%d.key``, ``past_%d`` -> ``present_%d``).
  Otherwise an input is a cache when it is a floating-point (or 8-bit) tensor of rank 3 or more
  whose name speaks of the past or a cache (``past``, ``cache``, ``kv``), and its output is, in
  order: optimum's ``past_key_values.N.X`` -> ``present.N.X``; the legacy ``past.N`` /
  ``past_N`` -> ``present.N`` / ``present_N``; else the one output whose name is the input's
  with its past words (past, in, prev...) swapped for present words (present, out, new...), or
  kept with a present word added (``past_key_0_in`` -> ``past_key_0_out``); else the one output
  the graph makes by appending to the past (its Concat, or the present of the attention operator
  that reads it: torch's dynamo export names them ``cat_7``). Pairing is one to one and
  complete: a cache input without its output, or a present output without its input, is an
  error naming it. The decoder of an encoder-decoder (an input named for the encoder, or
  cross-attention caches) is an error.
- **Layout.** The batch axis is the one whose dim name says ``batch``; the sequence axis the one
  whose name says sequence, length, past or total (else the axis where the past's and the
  present's names differ); else the usual layouts: ``[batch, heads, seq, head_size]`` (rank 4),
  ``[2, batch, heads, seq, head_size]`` (rank 5, key and value stacked: the legacy GPT-2 layout,
  kept as one tensor whose stacked axis is an ordinary fixed axis), ``[batch, seq, hidden]``
  (rank 3). Other open dims (heads, head size) come from ``--dim``, the present's fixed dims,
  ``genai_config.json`` (``num_key_value_heads``, ``head_size``), then the graph (the attention
  operator's head counts, the Reshape that makes the new keys); else the error names the
  ``--dim`` flag.
- **Other inputs.** ``attention_mask`` (ones over past + new tokens), ``position_ids`` (counting
  up from the past length), ``cache_position``, ``use_cache_branch`` (a merged decoder: false at
  prefill, whose branch reads no past, true after), GroupQueryAttention's ``seqlens_k`` and
  ``total_sequence_length`` when they are graph inputs (:class:`LengthInput`), ``logits_to_keep``
  (1), any other input a constant from ``--input`` when its shape holds no batch or sequence dim,
  else an error.
- **Logits.** The output named ``logits`` (or genai's name), else the one floating-point output
  of rank 3 that is not a cache nor hidden states (named so, or not genai's vocabulary wide: a
  model exported without its LM head is an error); the vocabulary is its last dim, else genai's
  ``vocab_size``, else the width of the projection that makes it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NoReturn

import numpy as np

from ..errors import ModelError
from .signature import ELEMENT_TYPES, ValueInfo

__all__ = ["CacheTensor", "DecoderSpec", "LengthInput", "NotGenerative", "recognise"]


class NotGenerative(ModelError):
    """The model has inputs and outputs that pair like a KV cache, but it is not a decoder that
    grows its cache from token ids: a static cache (or a state that keeps its size), or no token
    ids input. With no metric asked for, such a model is timed one call at a time."""


@dataclass(frozen=True)
class CacheTensor:
    """One KV-cache tensor: the input that takes the past, the output that gives the present.

    ``shape`` is the cache's shape at batch 1 and sequence length 1: the caller scales the
    ``batch_axis`` by the batch and sets the ``seq_axis`` to the past length (the present is
    longer by the step's tokens). Every other axis is fixed. A legacy stacked cache
    (``[2, batch, heads, seq, head_size]``) is one CacheTensor whose axis 0 is 2.
    """

    past: str
    present: str
    element_code: int
    shape: tuple[int, ...]
    batch_axis: int
    seq_axis: int


@dataclass(frozen=True)
class LengthInput:
    """An input holding a length that changes with every step: its value is
    ``past + n + offset``, ``past`` the tokens already in the cache (not a shared buffer's size)
    and ``n`` the step's tokens. GroupQueryAttention's ``seqlens_k`` is each row's last
    position (offset -1, one value per row along ``batch_axis``); ``total_sequence_length`` the
    total length (offset 0, a scalar or ``[1]``, ``batch_axis`` None). ``shape`` is at batch 1.
    """

    name: str
    element_code: int
    shape: tuple[int, ...]
    batch_axis: int | None
    offset: int


@dataclass(frozen=True)
class DecoderSpec:
    """How to run a decoder step by step (see the module's doc for the rules).

    Step 0 (prefill) feeds the prompt ``[B, P]`` with a past of ``prefill_past`` positions
    (0: every exporter's decoder here takes an empty past, merged ones included, whose branch
    without a cache reads none); each later step one token with the past one longer. The
    attention mask is ``[B, past + n]`` of ones, positions and ``cache_position`` count
    ``past .. past + n - 1``, ``past`` the tokens already in the cache (with ``share_buffer``
    the buffer is longer: past and present are one buffer of the generation's whole length,
    at most ``max_length``). ``*_code`` are ONNX element types (0 when the input is absent).
    ``fixed_batch``: the batch the model fixes (None: any); ``step_tokens``: the tokens per call
    ``input_ids`` fixes (None: any). ``extra_inputs`` are bound as they are at every step.
    """

    input_ids: str
    ids_code: int
    attention_mask: str | None
    mask_code: int
    position_ids: str | None
    position_code: int
    cache_position: str | None
    use_cache_branch: str | None
    caches: tuple[CacheTensor, ...]
    logits: str
    vocab: int | None
    share_buffer: bool
    max_length: int | None
    prefill_past: int
    source: str
    notes: tuple[str, ...]
    extra_inputs: Mapping[str, np.ndarray] = field(
        default_factory=lambda: MappingProxyType({}), compare=False
    )
    lengths: tuple[LengthInput, ...] = ()
    cache_position_code: int = 0
    fixed_batch: int | None = None
    step_tokens: int | None = None
    #: The fewest positions a shared past/present buffer may hold (genai's sliding window:
    #: GroupQueryAttention refuses a buffer shorter than its window); None: no such bound.
    min_buffer: int | None = None


def recognise(
    inputs: Sequence[ValueInfo],
    outputs: Sequence[ValueInfo],
    model_path: str | os.PathLike[str] | None,
    *,
    dims: Mapping[str, int] | None = None,
    values: Mapping[str, Any] | None = None,
) -> DecoderSpec | None:
    """The decoder in a model's signature, or None when it has no KV cache.

    Parameters
    ----------
    inputs, outputs : sequence of ValueInfo
        The signature as the session reports it.
    model_path : path, optional
        The model file: ``genai_config.json`` is read beside it, and its graph when a size
        is not in the signature. None: the signature alone.
    dims : mapping of str to int, optional
        ``--dim`` sizes: ``{symbol: size}`` or ``{"input:axis": size}``.
    values : mapping of str to value, optional
        ``--input`` constants for inputs that are neither cache nor known role.

    Raises
    ------
    ModelError
        The model has a KV cache but something needed to run it step by step cannot be told:
        one line naming it and the flag that supplies it.
    """
    r = _Recogniser(inputs, outputs, model_path, dims or {}, values or {})
    pairs = r.pair_caches()
    if not pairs:
        return None
    caches = tuple(r.cache(past, present) for past, present, _ in pairs)
    r.note_caches(caches, pairs)
    return r.spec(caches, _source(pairs))


# --- genai_config.json ---------------------------------------------------------------------

#: onnxruntime-genai's default names (its Config::Defaults), used for keys a config leaves out.
_GENAI_INPUTS = {
    "input_ids": "input_ids",
    "attention_mask": "attention_mask",
    "position_ids": "position_ids",
    "past_key_names": "past_key_values.%d.key",
    "past_value_names": "past_key_values.%d.value",
    "total_sequence_length": "total_sequence_length",
}
_GENAI_OUTPUTS = {
    "logits": "logits",
    "present_key_names": "present.%d.key",
    "present_value_names": "present.%d.value",
}
#: (past template key, present template key) of genai's cache names.
_GENAI_PAIRS = (
    ("past_key_names", "present_key_names"),
    ("past_value_names", "present_value_names"),
    ("past_names", "present_names"),
)


@dataclass(frozen=True)
class _Genai:
    """What inferspeed reads of a genai_config.json."""

    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    head_size: int | None
    kv_heads: int | None
    layers: int | None
    vocab: int | None
    max_length: int | None
    share_buffer: bool
    window: int | None = None


def _positive(d: Mapping[str, Any], key: str) -> int | None:
    v = d.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None


def _section(d: Any, key: str) -> dict[str, Any]:
    v = d.get(key) if isinstance(d, dict) else None
    return v if isinstance(v, dict) else {}


def _names(defaults: Mapping[str, str], given: Mapping[str, Any]) -> dict[str, str]:
    return {**defaults, **{k: v for k, v in given.items() if isinstance(v, str) and v}}


def _hf_context(path: str | None) -> int | None:
    """The positions a model takes by the Hugging Face ``config.json`` beside it (exporters
    such as optimum write it there): ``max_position_embeddings`` or GPT-2's ``n_positions``;
    None when there is none or it says neither."""
    if path is None:
        return None
    config_path = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    for key in ("max_position_embeddings", "n_positions"):
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _read_genai(path: str | None, notes: list[str]) -> _Genai | None:
    """The genai_config.json beside the model, when there is one for this file."""
    if path is None:
        return None
    config_path = os.path.join(os.path.dirname(os.path.abspath(path)), "genai_config.json")
    if not os.path.isfile(config_path):
        return None
    try:
        with open(config_path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        notes.append(f"genai_config.json beside the model is not used: it cannot be read ({exc})")
        return None
    model = _section(data, "model")
    decoder = _section(model, "decoder")
    search = _section(data, "search")
    filename = decoder.get("filename")
    if isinstance(filename, str) and filename and os.path.basename(filename) != os.path.basename(path):
        notes.append(f"genai_config.json beside the model is not used: it describes {filename!r}")
        return None
    context = _positive(model, "context_length")
    return _Genai(
        inputs=_names(_GENAI_INPUTS, _section(decoder, "inputs")),
        outputs=_names(_GENAI_OUTPUTS, _section(decoder, "outputs")),
        head_size=_positive(decoder, "head_size"),
        kv_heads=_positive(decoder, "num_key_value_heads") or _positive(decoder, "num_attention_heads"),
        layers=_positive(decoder, "num_hidden_layers"),
        vocab=_positive(model, "vocab_size"),
        max_length=_positive(search, "max_length") or context,
        share_buffer=search.get("past_present_share_buffer") is True,
        window=_positive(_section(decoder, "sliding_window"), "window_size"),
    )


def _template(template: str) -> re.Pattern[str]:
    """A genai name template (``past_key_values.%d.key``) as a pattern capturing the layer."""
    return re.compile(re.escape(template).replace("%d", r"(\d+)"))


# --- names ---------------------------------------------------------------------------------

_OPTIMUM = re.compile(r"past_key_values\.(\d+)\.(\w+)")
_LEGACY = re.compile(r"past([._])(\d+)")
_PAST_WORDS = frozenset(("past", "in", "input", "prev", "previous", "old"))
_PRESENT_WORDS = frozenset(("present", "out", "output", "new", "next", "updated"))
_CACHE_WORDS = frozenset(("past", "cache", "kv", "pkv"))
#: The source of caches paired by the graph: the node that appends the new entries to the past.
_GRAPH_SOURCE = "the graph"
#: Words of an output that holds hidden states, not logits (a model exported without its LM head).
_HIDDEN_WORDS = frozenset(("hidden", "hiddens", "embed", "embeds", "embedding", "embeddings"))
#: Words of a sequence dim's name ("cache" is not one: genai names the head size kv_cache_dim).
_SEQ_WORDS = ("seq", "len", "past", "total", "context", "time", "step", "position")


def _tokens(name: str) -> list[str]:
    return re.findall(r"[a-z]+|\d+", name.lower())


def _bare(name: str, drop: frozenset[str]) -> list[str]:
    """The words of a name without those that say past or present."""
    return [t for t in _tokens(name) if t not in drop]


def _kind(v: ValueInfo) -> str:
    et = ELEMENT_TYPES.get(v.element_code)
    return et.kind if et is not None else "other"


def _rank(v: ValueInfo) -> int:
    return len(v.shape) if v.shape is not None and v.rank_known else -1


def _cache_typed(v: ValueInfo) -> bool:
    """A tensor that can hold keys or values: floating point (or raw 16/8-bit floats, or 8-bit
    integers of a quantized cache), rank 3 or more."""
    if v.kind != "tensor" or _rank(v) < 3:
        return False
    et = ELEMENT_TYPES.get(v.element_code)
    return et is not None and (et.kind in ("float", "raw") or (et.kind in ("int", "uint") and et.bits == 8))


def _cache_like(v: ValueInfo) -> bool:
    words = _tokens(v.name)
    return _cache_typed(v) and any(w in _CACHE_WORDS or "cache" in w for w in words)


def _sym(v: ValueInfo, axis: int) -> str:
    return ((v.symbols or ())[axis] or "") if v.symbols and axis < len(v.symbols) else ""


def _is_batch(symbol: str) -> bool:
    return "batch" in symbol.lower()


def _is_seq(symbol: str) -> bool:
    s = symbol.lower()
    return bool(s) and not _is_batch(s) and any(w in s for w in _SEQ_WORDS)


def _source(pairs: Sequence[tuple[ValueInfo, ValueInfo, str]]) -> str:
    return ", ".join(dict.fromkeys(source for _, _, source in pairs))


def _dims_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


class _Recogniser:
    """The state of one recognition: the signature, the files read so far and the notes."""

    def __init__(
        self,
        inputs: Sequence[ValueInfo],
        outputs: Sequence[ValueInfo],
        model_path: str | os.PathLike[str] | None,
        dims: Mapping[str, int],
        values: Mapping[str, Any],
    ) -> None:
        self.inputs = {v.name: v for v in inputs}
        self.outputs = {v.name: v for v in outputs}
        self.path = os.fspath(model_path) if model_path is not None else None
        self.label = os.path.basename(self.path) if self.path else "the model"
        self.dims = dims
        self.values = values
        self.notes: list[str] = []
        self.dim_notes: list[str] = []  # sizes of open cache dims, said after the layout
        self.genai = _read_genai(self.path, self.notes)
        self.graph: _Graph | None = None
        self.graph_read = False
        self.fixed_batch: int | None = None

    def fail(self, text: str) -> NoReturn:
        raise ModelError(f"{self.label}: {text}")

    def not_generative(self, text: str) -> NoReturn:
        raise NotGenerative(f"{self.label}: {text}")

    # --- the cache pairs ---------------------------------------------------------------

    def pair_caches(self) -> list[tuple[ValueInfo, ValueInfo, str]]:
        """(past input, present output, naming convention) of every cache, in input order."""
        pairs: list[tuple[ValueInfo, ValueInfo, str]] = []
        taken: dict[str, str] = {}
        self.encoder_decoder()
        for v in self.inputs.values():
            found = self.genai_present(v.name)
            if found is None and not _cache_like(v):
                continue
            present, source = found or self.present_for(v)
            if present in taken:
                self.fail(
                    f"KV-cache inputs {taken[present]!r} and {v.name!r} both pair with output {present!r}"
                )
            taken[present] = v.name
            pairs.append((v, self.outputs[present], source))
        if pairs:
            for o in self.outputs.values():
                if o.name not in taken and _cache_typed(o) and "present" in _tokens(o.name):
                    self.fail(
                        f"output {o.name!r} {o.shape_text} looks like a KV cache but no input takes "
                        "its past: the cache cannot be fed back step by step"
                    )
        return pairs

    def encoder_decoder(self) -> None:
        """The decoder of an encoder-decoder model (Whisper, T5, BART) is an error: it reads the
        encoder's output (an input of that name, or cross-attention caches that never grow)."""
        if not any(_cache_like(v) for v in self.inputs.values()):
            return
        cross = [
            v
            for v in self.inputs.values()
            if _cache_like(v) and {"encoder", "cross"}.intersection(_tokens(v.name))
        ]
        encoder = [v for v in self.inputs.values() if "encoder" in _tokens(v.name) and v not in cross]
        if cross or encoder:
            which = (
                f"cross-attention cache {cross[0].name!r}"
                if cross
                else f"input {encoder[0].name!r} {encoder[0].shape_text}"
            )
            self.fail(
                f"the decoder of an encoder-decoder model (its {which} holds the encoder's output): "
                "inferspeed generates with decoder-only models; --single-call times one call"
            )

    def genai_present(self, name: str) -> tuple[str, str] | None:
        """The present output genai_config.json names for a past input, or None."""
        if self.genai is None:
            return None
        for past_key, present_key in _GENAI_PAIRS:
            past_t, present_t = self.genai.inputs.get(past_key), self.genai.outputs.get(present_key)
            if not past_t or not present_t:
                continue
            m = _template(past_t).fullmatch(name)
            if m is None:
                continue
            present = present_t.replace("%d", m.group(1)) if m.groups() else present_t
            if present not in self.outputs:
                self.fail(
                    f"KV-cache input {name!r} has no output {present!r}, the name genai_config.json "
                    f"gives ({present_key} {present_t!r})"
                )
            return present, "onnxruntime-genai"
        return None

    def present_for(self, v: ValueInfo) -> tuple[str, str]:
        """The present output of a past input by the exporters' naming conventions."""
        tried: list[str] = []
        optimum, legacy = _OPTIMUM.fullmatch(v.name), _LEGACY.fullmatch(v.name)
        if optimum is not None:
            tried.append(f"present.{optimum[1]}.{optimum[2]}")
        if legacy is not None:
            tried.append(f"present{legacy[1]}{legacy[2]}")
        for name in tried:
            if name in self.outputs:
                return name, "optimum" if optimum is not None else "legacy past.N"
        bare = _bare(v.name, _PAST_WORDS)
        others = [o for o in self.outputs.values() if o.name != v.name and _cache_typed(o)]
        found = [o.name for o in others if _bare(o.name, _PRESENT_WORDS) == bare]
        if not found:  # the past word kept and a present word added: past_key_0_in -> past_key_0_out
            found = [
                o.name
                for o in others
                if _bare(o.name, _PRESENT_WORDS | _PAST_WORDS) == bare
                and _PRESENT_WORDS.intersection(_tokens(o.name))
            ]
        if len(found) == 1:
            return found[0], "past -> present names"
        if not found:
            graph = self.read_graph()
            made = graph.extended(v.name) if graph is not None else []
            found = [name for name in made if name in {o.name for o in others}]
            if len(found) == 1:
                return found[0], _GRAPH_SOURCE
        if found:
            self.fail(f"KV-cache input {v.name!r} could pair with any of the outputs {found}")
        looked = f"{' or '.join(repr(t) for t in tried)}, " if tried else ""
        ids = self.genai.inputs.get("input_ids", "input_ids") if self.genai else "input_ids"
        # No token ids either (RotaryEmbedding's cos_cache): no decoder at all, any model.
        say = self.fail if ids in self.inputs else self.not_generative
        say(
            f"KV-cache input {v.name!r} {v.shape_text} has no matching output (looked for "
            f"{looked}an output named like it with 'present' for 'past', and one the graph makes by "
            "appending to it); name each present output after its past input when exporting"
        )

    # --- one cache -----------------------------------------------------------------------

    def cache(self, past: ValueInfo, present: ValueInfo) -> CacheTensor:
        """The CacheTensor of one pair, every open dim but batch and sequence resolved."""
        if past.element_code != present.element_code:
            self.fail(
                f"KV-cache input {past.name!r} is {past.element_type} but its output "
                f"{present.name!r} is {present.element_type}"
            )
        if _rank(present) != _rank(past):
            self.fail(
                f"KV-cache input {past.name!r} {past.shape_text} and its output "
                f"{present.name!r} {present.shape_text} differ in rank"
            )
        batch, seq, _ = self.axes(past, present)
        assert past.shape is not None and present.shape is not None
        batch_symbol = _sym(past, batch)
        if _is_batch(batch_symbol) and set(_tokens(batch_symbol)) - {"batch", "size", "dim"}:
            self.fail(
                f"axis {batch} of KV-cache input {past.name!r} {past.shape_text} is the batch times "
                "something else: inferspeed scales a cache's batch axis by the batch alone"
            )
        if past.shape[seq] is not None and not (self.genai and self.genai.share_buffer):
            fixed = all(
                past.shape[a] is not None and present.shape[a] == past.shape[a]
                for a in range(len(past.shape))
                if a != batch
            )
            what = (
                "a static cache, or a state that does not grow, such as a hybrid model's "
                "convolution or SSM state"
                if fixed
                else "a static cache"
            )
            self.not_generative(
                f"KV-cache input {past.name!r} {past.shape_text} fixes its sequence length at "
                f"{past.shape[seq]} ({what}): inferspeed grows the cache step by step; "
                "--single-call times one call"
            )
        fixed_batch = past.shape[batch]
        if fixed_batch is not None:
            self.batch_fixed(fixed_batch, past.name)
        shape = [1] * len(past.shape)
        for axis, size in enumerate(past.shape):
            if axis in (batch, seq):
                continue
            shape[axis] = size if size is not None else self.cache_dim(past, present, axis, batch, seq)
        return CacheTensor(past.name, present.name, past.element_code, tuple(shape), batch, seq)

    def axes(self, past: ValueInfo, present: ValueInfo) -> tuple[int, int, str]:
        """(batch axis, sequence axis, why) of a cache."""
        assert past.shape is not None
        rank = len(past.shape)
        batch = [a for a in range(rank) if _is_batch(_sym(past, a))]
        seq = [a for a in range(rank) if _is_seq(_sym(past, a)) or _is_seq(_sym(present, a))]
        if len(seq) != 1:
            seq = [
                a
                for a in range(rank)
                if a not in batch and past.shape[a] is None and _sym(past, a) != _sym(present, a)
            ]
        if len(batch) == 1 and len(seq) == 1 and batch != seq:
            return batch[0], seq[0], "from the dim names"
        usual = self.usual_axes(past)
        if usual is None:
            self.fail(
                f"cannot tell the batch and sequence axes of KV-cache input {past.name!r} "
                f"{past.shape_text}: its dims are not named batch and sequence, and rank {rank} "
                "has no usual layout"
            )
        b = batch[0] if len(batch) == 1 else usual[0]
        s = seq[0] if len(seq) == 1 and seq[0] != b else usual[1]
        return b, s, usual[2]

    @staticmethod
    def usual_axes(past: ValueInfo) -> tuple[int, int, str] | None:
        shape = past.shape or ()
        if len(shape) == 4:
            return 0, 2, "the usual [batch, heads, seq, head_size]"
        if len(shape) == 5 and shape[0] == 2:
            return 1, 3, "the legacy [2, batch, heads, seq, head_size], key and value stacked"
        if len(shape) == 5 and shape[1] == 2:
            return 0, 3, "the usual [batch, 2, heads, seq, head_size], key and value stacked"
        if len(shape) == 3:
            return 0, 1, "the usual [batch, seq, hidden] of a fused cache"
        return None

    def batch_fixed(self, size: int, name: str) -> None:
        if self.fixed_batch is not None and self.fixed_batch != size:
            self.fail(f"{name!r} fixes the batch at {size}, another input at {self.fixed_batch}")
        self.fixed_batch = size

    def cache_dim(self, past: ValueInfo, present: ValueInfo, axis: int, batch: int, seq: int) -> int:
        """An open cache dim that is neither batch nor sequence: --dim, the present's fixed
        dim, genai_config.json, the graph; else the error naming --dim."""
        symbol = _sym(past, axis)
        for key in (f"{past.name}:{axis}", symbol):
            if key and key in self.dims:
                return int(self.dims[key])
        assert present.shape is not None and past.shape is not None
        fixed = present.shape[axis]
        if fixed is not None:
            return fixed
        role = _axis_role(symbol, axis, len(past.shape))
        if self.genai is not None:
            size = self.genai.head_size if role == "head_size" else self.genai.kv_heads
            if size is not None:
                self.dim_notes.append(
                    f"KV cache dim {symbol or f'axis {axis}'} = {size}: "
                    f"{'head_size' if role == 'head_size' else 'num_key_value_heads'} in genai_config.json"
                )
                return size
        graph = self.read_graph()
        found = graph.cache_sizes(past.name, len(past.shape)).get(axis) if graph else None
        if found is not None:
            label = symbol or f"axis {axis}"
            self.dim_notes.append(f"KV cache dim {label} = {found[0]}: {found[1]} in the graph")
            return found[0]
        flag = f"--dim {symbol}=N" if _usable(symbol) else f"--dim {past.name}:{axis}=N"
        self.fail(
            f"the {'head size' if role == 'head_size' else 'head count'} of the KV cache is open "
            f"(axis {axis} of {past.name!r} "
            f"{past.shape_text}) and neither genai_config.json nor the graph gives it; set it with {flag}"
        )

    def read_graph(self) -> _Graph | None:
        if not self.graph_read:
            self.graph_read = True
            self.graph = _Graph.load(self.path)
        return self.graph

    def note_caches(
        self, caches: Sequence[CacheTensor], pairs: Sequence[tuple[ValueInfo, ValueInfo, str]]
    ) -> None:
        """The notes that say what was paired and how the caches are laid out."""
        first = caches[0]
        layers = {_layer(c.past) for c in caches} - {None}
        per = f" in {len(layers)} layers" if layers else ""
        how = ", ".join(
            dict.fromkeys(
                "the node in the graph that appends to each past"
                if source == _GRAPH_SOURCE
                else f"{source} names"
                for _, _, source in pairs
            )
        )
        self.notes.append(
            f"KV cache: {len(caches)} tensors{per}, paired by {how} ({first.past} -> {first.present})"
        )
        layouts: dict[str, list[str]] = {}
        for (past, present, _), c in zip(pairs, caches, strict=True):
            why = self.axes(past, present)[2]
            stacked = next((a for a in (0, 1) if len(c.shape) == 5 and c.shape[a] == 2), None)
            text = (
                f"batch axis {c.batch_axis}, sequence axis {c.seq_axis} ({why}), "
                f"shape {_dims_text(c.shape)} at batch 1 and 1 position"
                + (
                    f"; key and value stacked on axis {stacked}, one tensor a layer"
                    if stacked is not None
                    else ""
                )
            )
            layouts.setdefault(text, []).append(c.past)
        for text, names in layouts.items():
            which = "every cache" if len(layouts) == 1 else ", ".join(names)
            self.notes.append(f"KV-cache layout of {which}: {text}")
        self.notes.extend(dict.fromkeys(self.dim_notes))
        if (
            self.genai is not None
            and self.genai.layers is not None
            and layers
            and len(layers) != self.genai.layers
        ):
            self.notes.append(
                f"genai_config.json says {self.genai.layers} layers, the model's caches have {len(layers)}"
            )

    # --- the whole spec ------------------------------------------------------------------

    def spec(self, caches: tuple[CacheTensor, ...], source: str) -> DecoderSpec:
        cache_names = {c.past for c in caches}
        roles = _Roles(self, cache_names)
        ids = roles.input_ids()
        mask = roles.attention_mask()
        positions = roles.position_ids()
        cache_position = roles.named("cache_position", rank=1, kinds=("int",))
        branch = roles.use_cache_branch()
        lengths = roles.lengths()
        extras = roles.extras()
        logits, vocab = _Logits(self, {c.present for c in caches}).find()
        share = bool(self.genai and self.genai.share_buffer)
        max_length = self.genai.max_length if self.genai else _hf_context(self.path)
        if share:
            self.notes.append(
                "past and present share one buffer per cache, written in place "
                "(past_present_share_buffer in genai_config.json), as onnxruntime-genai runs it"
            )
        if max_length is not None:
            where = "genai_config.json's max length" if self.genai else "config.json beside the model"
            self.notes.append(f"at most {max_length} positions in all ({where})")
        return DecoderSpec(
            input_ids=ids.name,
            ids_code=ids.element_code,
            attention_mask=mask.name if mask else None,
            mask_code=mask.element_code if mask else 0,
            position_ids=positions.name if positions else None,
            position_code=positions.element_code if positions else 0,
            cache_position=cache_position.name if cache_position else None,
            use_cache_branch=branch.name if branch else None,
            caches=caches,
            logits=logits,
            vocab=vocab,
            share_buffer=share,
            max_length=max_length,
            prefill_past=0,
            source=source,
            notes=tuple(self.notes),
            extra_inputs=MappingProxyType(extras),
            lengths=lengths,
            cache_position_code=cache_position.element_code if cache_position else 0,
            fixed_batch=self.fixed_batch,
            step_tokens=roles.step_tokens,
            min_buffer=self.genai.window if self.genai and share else None,
        )


def _usable(symbol: str) -> bool:
    """Whether --dim can name this dim by its symbol (as measure.plan.usable_symbol decides)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", symbol):
        return False
    return not re.match(r"(unk__|DynamicDimension|dim_?\d|\d)", symbol)


def _layer(name: str) -> int | None:
    numbers = re.findall(r"\d+", name)
    return int(numbers[0]) if numbers else None


def _axis_role(symbol: str, axis: int, rank: int) -> str:
    """Whether an open cache dim counts heads or is the head size: by its name, else by its
    place (the last axis is the head size)."""
    s = symbol.lower()
    if any(w in s for w in ("head_size", "head_dim", "headdim", "size_per_head", "hidden", "embed")):
        return "head_size"
    if "head" in s:
        return "heads"
    return "head_size" if axis == rank - 1 else "heads"


# --- the other inputs ----------------------------------------------------------------------


class _Roles:
    """The inputs that are not caches, each given its role or a value."""

    def __init__(self, r: _Recogniser, caches: set[str]) -> None:
        self.r = r
        self.free = {name: v for name, v in r.inputs.items() if name not in caches}
        self.step_tokens: int | None = None

    def take(self, name: str) -> ValueInfo:
        return self.free.pop(name)

    def genai_name(self, key: str, default: str) -> str:
        return self.r.genai.inputs.get(key, default) if self.r.genai else default

    def named(self, name: str, rank: int | None = None, kinds: tuple[str, ...] = ()) -> ValueInfo | None:
        """The free input of that name, checked to have the rank and element kind its role
        needs; None when there is none."""
        v = self.free.get(name)
        if v is None:
            return None
        if (rank is not None and _rank(v) != rank) or (kinds and _kind(v) not in kinds):
            want = f"{'/'.join(kinds)} of rank {rank}" if rank is not None else "/".join(kinds)
            self.r.fail(f"input {name!r} is {v.element_type} {v.shape_text}; a decoder's {name} is {want}")
        return self.take(name)

    def input_ids(self) -> ValueInfo:
        name = self.genai_name("input_ids", "input_ids")
        if name not in self.free:
            embeds = [n for n in self.free if "embed" in n.lower()]
            what = f" (it takes {embeds[0]!r}: embeddings, not token ids)" if embeds else ""
            self.r.not_generative(
                f"the model has a KV cache but no input {name!r}{what}: inferspeed generates from token ids"
            )
        v = self.named(name, rank=2, kinds=("int",))
        assert v is not None and v.shape is not None
        if v.element_code not in (6, 7):
            self.r.fail(f"input {name!r} is {v.element_type}: token ids are int64 or int32")
        if v.shape[0] is not None:
            self.r.batch_fixed(v.shape[0], name)
        if v.shape[1] is not None:
            self.step_tokens = v.shape[1]
            self.r.notes.append(
                f"input {name!r} {v.shape_text} fixes the tokens of each call at {v.shape[1]}: "
                "the prompt must be fed that many tokens at a time"
            )
        return v

    def attention_mask(self) -> ValueInfo | None:
        name = self.genai_name("attention_mask", "attention_mask")
        v = self.named(name, rank=2, kinds=("int", "float", "bool"))
        if v is None:
            self.r.notes.append("no attention_mask input: the model sees every past position")
            return None
        assert v.shape is not None
        if v.shape[1] is not None:
            self.r.fail(
                f"input {name!r} {v.shape_text} fixes the attended length at {v.shape[1]}: "
                "inferspeed grows it by one position per step"
            )
        self.r.notes.append(
            f"{name}: ones over the past and the new tokens (nothing masked), one longer each step"
        )
        return v

    def position_ids(self) -> ValueInfo | None:
        name = self.genai_name("position_ids", "position_ids")
        v = self.named(name, rank=2, kinds=("int",))
        if v is not None:
            self.r.notes.append(f"{name}: each row counts up from the past length (0 at prefill)")
        else:
            self.r.notes.append(
                "no position_ids input: the model takes the positions from the attention mask"
            )
        return v

    def use_cache_branch(self) -> ValueInfo | None:
        v = self.named("use_cache_branch", kinds=("bool",))
        if v is not None:
            if _rank(v) > 1 or any(d not in (None, 1) for d in v.shape or ()):
                self.r.fail(f"input 'use_cache_branch' is {v.shape_text}; a merged decoder's is bool [1]")
            self.r.notes.append(
                "use_cache_branch (a merged decoder): false at prefill, whose branch without a cache "
                "reads no past (an empty one is bound); true from the first new token on"
            )
        return v

    def lengths(self) -> tuple[LengthInput, ...]:
        """GroupQueryAttention's lengths, when they are graph inputs (genai's builder computes
        them inside the graph from the attention mask)."""
        out = []
        total = self.genai_name("total_sequence_length", "total_sequence_length")
        for name, offset in (("seqlens_k", -1), (total, 0)):
            v = self.free.get(name)
            if v is None:
                continue
            if _kind(v) != "int" or _rank(v) > 1:
                self.r.fail(
                    f"input {name!r} is {v.element_type} {v.shape_text}; GroupQueryAttention's is int32"
                )
            self.take(name)
            per_row = offset == -1 and _rank(v) == 1 and v.shape is not None and v.shape[0] is None
            shape = tuple(1 for _ in v.shape or ())
            out.append(LengthInput(name, v.element_code, shape, 0 if per_row else None, offset))
            what = "each row's total length - 1" if offset == -1 else "the total length (past + new tokens)"
            self.r.notes.append(f"{name}: {what}, set before each step as GroupQueryAttention reads it")
        return tuple(out)

    def extras(self) -> dict[str, np.ndarray]:
        """A value for every input left: --input, else its known role, else the error."""
        out: dict[str, np.ndarray] = {}
        for name in list(self.free):
            v = self.take(name)
            out[name] = self.extra(v)
        return out

    def extra(self, v: ValueInfo) -> np.ndarray:
        et = ELEMENT_TYPES.get(v.element_code)
        if v.kind != "tensor" or v.shape is None or et is None or et.storage is None or et.kind == "raw":
            self.r.fail(
                f"input {v.name!r} is {v.element_type or v.kind}: inferspeed cannot feed it to a decoder"
            )
        shape: list[int] = []
        for axis, size in enumerate(v.shape if v.rank_known else ()):
            symbol = _sym(v, axis)
            given = next(
                (self.r.dims[k] for k in (f"{v.name}:{axis}", symbol) if k and k in self.r.dims), None
            )
            if size is not None or given is not None:
                shape.append(int(size if size is not None else given or 0))
                continue
            what = "the batch or the sequence" if _is_batch(symbol) or _is_seq(symbol) else "an open dim"
            self.r.fail(
                f"input {v.name!r} {v.shape_text} depends on {what} ({symbol or f'axis {axis}'}) and has no "
                "known role: inferspeed cannot feed it step by step"
            )
        if v.name in self.r.values:
            value, why = self.r.values[v.name], "--input"
        elif "logits_to_keep" in v.name.lower() and et.kind == "int" and len(shape) <= 1:
            value, why = (
                1,
                "only the last position's logits pick the next token, as transformers' generate keeps",
            )
        else:
            self.r.fail(
                f"input {v.name!r} {v.element_type} {v.shape_text} has no known role in a decoder; "
                f"give its value with --input {v.name}=VALUE"
            )
        array = _constant(v, et.storage, tuple(shape), value, self.r)
        self.r.notes.append(f"input {v.name!r} = {value} ({why})")
        return array


def _constant(v: ValueInfo, dtype: Any, shape: tuple[int, ...], value: Any, r: _Recogniser) -> np.ndarray:
    """``value`` (a number, or the text of one from --input) as a constant array of the input's type."""
    text = str(value).strip().lower() if isinstance(value, str) else None
    try:
        if text is not None and np.dtype(dtype).kind == "b":
            if text not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            value = text in ("true", "1", "yes")
        elif text is not None:
            value = float(text) if np.dtype(dtype).kind in "fc" else int(text, 0)
        return np.full(shape, value, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        r.fail(f"input {v.name!r} is {v.element_type}: cannot use {value!r} as its value")


# --- logits --------------------------------------------------------------------------------


class _Logits:
    """The output that holds the logits, and the vocabulary size."""

    def __init__(self, r: _Recogniser, presents: set[str]) -> None:
        self.r = r
        self.presents = presents

    def find(self) -> tuple[str, int | None]:
        name = self.r.genai.outputs.get("logits", "logits") if self.r.genai else "logits"
        v = self.r.outputs.get(name)
        why = "by its name"
        if v is None:
            v = self.by_shape()
            why = "the one floating-point output of rank 3 that is not a cache"
        if _kind(v) not in ("float", "raw") or _rank(v) not in (2, 3):
            self.r.fail(
                f"output {v.name!r} is {v.element_type} {v.shape_text}; "
                "logits are floating point [batch, (sequence,) vocab]"
            )
        vocab, vocab_why = self.vocab(v)
        self.r.notes.append(
            f"logits: output {v.name!r} ({why}), vocabulary {vocab if vocab else 'unknown'} ({vocab_why})"
        )
        return v.name, vocab

    def by_shape(self) -> ValueInfo:
        shaped = [
            o
            for o in self.r.outputs.values()
            if o.name not in self.presents and _kind(o) in ("float", "raw") and _rank(o) == 3
        ]
        found = [o for o in shaped if not self.hidden(o)]
        if shaped and not found:
            self.r.fail(
                f"no output holds the logits: {', '.join(f'{o.name!r} {o.shape_text}' for o in shaped)} "
                f"{'holds' if len(shaped) == 1 else 'hold'} hidden states (a model exported without its "
                "LM head), and inferspeed picks the next token from the logits; --single-call times one call"
            )
        if len(found) > 1:
            named = [o for o in found if "logit" in o.name.lower()]
            fixed = [o for o in found if o.shape and o.shape[-1] is not None]
            found = named if len(named) == 1 else fixed if len(fixed) == 1 else found
        if len(found) != 1:
            which = f": {', '.join(repr(o.name) for o in found)} could each be" if found else ""
            self.r.fail(
                f"cannot tell which output holds the logits (none is named 'logits'{which}); "
                "inferspeed picks the next token from them"
            )
        return found[0]

    def hidden(self, v: ValueInfo) -> bool:
        """Whether an output holds hidden states: named so, or of a fixed width other than
        genai_config.json's vocabulary."""
        if _HIDDEN_WORDS.intersection(_tokens(v.name)):
            return True
        vocab = self.r.genai.vocab if self.r.genai is not None else None
        return vocab is not None and v.shape is not None and v.shape[-1] not in (None, vocab)

    def vocab(self, v: ValueInfo) -> tuple[int | None, str]:
        assert v.shape is not None
        if v.shape[-1] is not None:
            return v.shape[-1], "its last dim"
        if self.r.genai is not None and self.r.genai.vocab is not None:
            return self.r.genai.vocab, "vocab_size in genai_config.json"
        graph = self.r.read_graph()
        found = graph.vocab(v.name) if graph else None
        if found is not None:
            return found, "the weight that makes the logits"
        return None, "open in the model: the logits are allocated by ONNX Runtime"


# --- the graph -----------------------------------------------------------------------------

#: The attention operators that append to a past themselves: past input index -> present output index.
_PRESENT_OF: dict[str, dict[int, int]] = {
    "GroupQueryAttention": {3: 1, 4: 2},
    "MultiHeadAttention": {6: 1, 7: 2},
    "Attention": {4: 1},
}
#: Operators a new key or value passes through unchanged in shape on its way to the cache.
_SAME_SHAPE = frozenset(("Cast", "Identity", "Add", "Mul", "Sub", "Div", "Neg", "Transpose"))
#: Operators between a projection and its output that keep its width (a bias, a scale, a cast).
_KEEP_WIDTH = frozenset(("Add", "Mul", "Cast", "Identity"))


def _graphs(graph: Any) -> Iterator[Any]:
    """A graph and every subgraph of its nodes (a merged decoder's branches), depth first."""
    yield graph
    for node in graph.node:
        for a in node.attribute:
            if a.HasField("g"):
                yield from _graphs(a.g)
            for sub in a.graphs:
                yield from _graphs(sub)


def _int_values(t: Any) -> list[int] | None:
    """The values of a small integer tensor stored in the file (not external data)."""
    from onnx import numpy_helper

    if t.data_type not in (6, 7) or len(t.dims) > 1 or t.data_location == 1:
        return None
    return [int(x) for x in numpy_helper.to_array(t).reshape(-1)]


class _Graph:
    """What the graph says of sizes the signature leaves open; read with the onnx package
    (constant values are needed) only when the signature and genai_config.json fall short.
    Subgraphs are read with the main graph: a merged decoder's caches are used in its branches."""

    def __init__(self, graph: Any) -> None:
        self.outputs = [o.name for o in graph.output]
        self.producers: dict[str, Any] = {}
        self.consumers: dict[str, list[Any]] = {}
        self.consts: dict[str, list[int]] = {}
        self.dims: dict[str, list[int]] = {}
        for g in _graphs(graph):
            for t in g.initializer:
                self.dims[t.name] = list(t.dims)
                values = _int_values(t)
                if values is not None:
                    self.consts[t.name] = values
            for node in g.node:
                for out in node.output:
                    self.producers[out] = node
                for x in node.input:
                    self.consumers.setdefault(x, []).append(node)
                if node.op_type == "Constant" and node.output:
                    for a in node.attribute:
                        values = (
                            _int_values(a.t)
                            if a.name == "value"
                            else list(a.ints)
                            if a.name == "value_ints"
                            else None
                        )
                        if values is not None:
                            self.consts[node.output[0]] = values

    @classmethod
    def load(cls, path: str | None) -> _Graph | None:
        if path is None:
            return None
        try:
            import onnx

            return cls(onnx.load(path, load_external_data=False).graph)
        except Exception:  # unreadable here: the caller says what is missing instead
            return None

    def extended(self, past: str) -> list[str]:
        """The graph outputs that hold a past input one step longer: made (through Cast and
        Identity) by the Concat that appends the new entries to it, or the present output of
        the attention operator that reads it (GroupQueryAttention's past 3, 4 -> present 1, 2;
        MultiHeadAttention's 6, 7 -> 1, 2; Attention's 4 -> 1)."""
        outputs = set(self.outputs)
        found: list[str] = []
        for node, k in self.users(past):
            index = 0 if node.op_type == "Concat" else _PRESENT_OF.get(node.op_type, {}).get(k)
            if index is None or index >= len(node.output):
                continue
            for name in self.aliases(node.output[index]):
                if name in outputs and name not in found:
                    found.append(name)
        return found

    def aliases(self, name: str) -> list[str]:
        """``name`` and every value made from it by Cast and Identity alone."""
        out, todo = [name], [name]
        while todo:
            for node in self.consumers.get(todo.pop(), ()):
                if node.op_type in ("Cast", "Identity") and node.output[0] not in out:
                    out.append(node.output[0])
                    todo.append(node.output[0])
        return out

    def users(self, name: str) -> Iterator[tuple[Any, int]]:
        """(node, input index) of each node that reads ``name``, through Cast and Identity."""
        todo, seen = [name], {name}
        while todo:
            x = todo.pop()
            for node in self.consumers.get(x, ()):
                if node.op_type in ("Cast", "Identity"):
                    if node.output[0] not in seen:
                        seen.add(node.output[0])
                        todo.append(node.output[0])
                    continue
                for k, y in enumerate(node.input):
                    if y == x:
                        yield node, k

    def cache_sizes(self, past: str, rank: int, shift: int = 0) -> dict[int, tuple[int, str]]:
        """Axis -> (size, how) of the past input's dims the graph fixes: from the Concat that
        appends the new entries, or the attention operator that reads it. A stacked cache read
        through a Gather on axis 0 (the legacy past.N) is followed, its axes shifted by one."""
        out: dict[int, tuple[int, str]] = {}
        for node, k in self.users(past):
            if node.op_type == "Concat":
                how = "the Reshape that makes the new keys and values"
                for other in node.input:
                    if other != past:
                        for axis, size in self.reshaped(other, rank).items():
                            out.setdefault(axis + shift, (size, how))
            elif node.op_type == "Gather" and k == 0 and rank > 1 and shift == 0:
                axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                if axis == 0 and len(self.consts.get(node.input[1], [0, 0])) == 1:
                    for a, found in self.cache_sizes(node.output[0], rank - 1, 1).items():
                        out.setdefault(a, found)
            else:
                for axis, size in self.attention_sizes(node, k).items():
                    out.setdefault(axis + shift, (size, f"the attributes of {node.op_type}"))
        return out

    def reshaped(self, name: str, rank: int) -> dict[int, int]:
        """The fixed sizes of ``name`` read from the Reshape that makes it (through ops that
        keep the shape and Transposes, applied in order), by axis."""
        todo: list[tuple[str, list[list[int]]]] = [(name, [])]
        seen = {name}
        while todo:
            x, perms = todo.pop(0)
            node = self.producers.get(x)
            if node is None or len(seen) > 64:
                continue
            if node.op_type == "Reshape" and len(node.input) > 1:
                shape = self.reshape_to(node)
                if shape is not None and len(shape) == rank:
                    dims = shape
                    for perm in reversed(perms):
                        dims = [dims[p] for p in perm]
                    return {a: d for a, d in enumerate(dims) if d is not None and d > 0}
                continue
            if node.op_type not in _SAME_SHAPE:
                continue
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), list(range(rank))[::-1])
            step = [*perms, perm] if node.op_type == "Transpose" else perms
            for y in node.input[:1] if node.op_type == "Transpose" else node.input:
                if y and y not in seen:
                    seen.add(y)
                    todo.append((y, step))
        return {}

    def reshape_to(self, node: Any) -> list[int | None] | None:
        """A Reshape's target shape, None where unknown. The one -1 of ``[batch, seq, -1,
        head_size]`` (how transformers splits the heads) is the width of the reshaped
        projection divided by the known sizes after it."""
        shape = self.const_shape(node.input[1])
        if shape is None or shape.count(-1) != 1:
            return shape
        k = shape.index(-1)
        after = shape[k + 1 :]
        if all(d in (None, 0) for d in shape[:k]) and all(d is not None and d > 0 for d in after):
            width, known = self.width(node.input[0]), int(np.prod([d or 1 for d in after]))
            if width is not None and width % known == 0:
                shape[k] = width // known
        return shape

    def const_shape(self, name: str) -> list[int | None] | None:
        """The values of a shape tensor: a constant, or a Concat of constants and one-element
        unknowns (a dim read from another tensor's shape)."""
        if name in self.consts:
            return list(self.consts[name])
        node = self.producers.get(name)
        if node is None:
            return None
        if node.op_type in ("Cast", "Identity"):
            return self.const_shape(node.input[0])
        if node.op_type != "Concat":
            return None
        out: list[int | None] = []
        for x in node.input:
            out.extend(self.consts.get(x, [None]))
        return out

    def attention_sizes(self, node: Any, k: int) -> dict[int, int]:
        """The head count (and head size) an attention operator's attributes give its past
        input at index ``k``: GroupQueryAttention's past [batch, kv_heads, seq, head_size]
        (inputs 3, 4), MultiHeadAttention's [batch, heads, seq, head_size] (6, 7), Attention's
        [2, batch, heads, seq, head_size] (4)."""
        attrs = {a.name: a.i for a in node.attribute}
        if node.op_type == "GroupQueryAttention" and k in (3, 4) and attrs.get("kv_num_heads"):
            kv = attrs["kv_num_heads"]
            out = {1: kv}
            width = self.width(node.input[1]) if len(node.input) > 1 and node.input[1] else None
            heads = attrs.get("num_heads", 0)
            if width is None and heads:
                packed = self.width(node.input[0])
                width = packed * kv // (heads + 2 * kv) if packed else None
            if width and width % kv == 0:
                out[3] = width // kv
            return out
        if node.op_type == "MultiHeadAttention" and k in (6, 7) and attrs.get("num_heads"):
            return {1: attrs["num_heads"]}
        if node.op_type == "Attention" and k == 4 and attrs.get("num_heads"):
            return {2: attrs["num_heads"]}
        return {}

    def width(self, name: str, depth: int = 0) -> int | None:
        """The features of a projection's output: the last dim of a MatMul's (or
        MatMulInteger's) weight, a Gemm's, MatMulNBits' N, a Reshape's last fixed size, a
        Split's part; through a bias, a scale or a cast."""
        node = self.producers.get(name)
        if node is None or depth > 16:
            return None
        op, inputs = node.op_type, list(node.input)
        if op in _KEEP_WIDTH:
            return next((w for x in inputs if x and (w := self.width(x, depth + 1))), None)
        attrs = {a.name: a for a in node.attribute}
        if op == "MatMulNBits":
            return attrs["N"].i if "N" in attrs else None
        if op in ("MatMul", "MatMulInteger", "Gemm") and len(inputs) > 1 and self.dims.get(inputs[1]):
            dims = self.dims[inputs[1]]
            return dims[0] if op == "Gemm" and "transB" in attrs and attrs["transB"].i else dims[-1]
        if op == "Reshape" and len(inputs) > 1:
            shape = self.const_shape(inputs[1])
            return shape[-1] if shape and shape[-1] and shape[-1] > 0 else None
        if op == "Split":
            sizes = (
                self.consts.get(inputs[1])
                if len(inputs) > 1
                else list(attrs["split"].ints)
                if "split" in attrs
                else None
            )
            part = list(node.output).index(name)
            if sizes and part < len(sizes):
                return sizes[part]
            whole = self.width(inputs[0], depth + 1)
            return (
                whole // len(node.output) if whole and not sizes and whole % len(node.output) == 0 else None
            )
        return None

    def vocab(self, logits: str) -> int | None:
        """The vocabulary: the width of the projection that makes the logits."""
        return self.width(logits)
