"""A plain ONNX Runtime greedy generation loop: the reference that inferspeed's tokens are checked against.

It uses nothing of inferspeed, only onnxruntime's Python ``InferenceSession`` and numpy, and it is
written the way a user would write the loop by hand:

- step 0 (prefill) feeds the whole prompt with an empty past (length 0), an attention mask of
  ones and position ids 0 .. P-1;
- every later step feeds the previous step's token, the previous step's ``present`` outputs as
  its past, a mask of ones one longer and the next position;
- each step's token is the argmax of the last position's logits, row by row.

What a fixture needs beyond that:

- a merged decoder (a ``use_cache_branch`` input) gets ``False`` at prefill and ``True`` after;
  its past at prefill is not read, so the same empty past serves;
- a model built by onnxruntime-genai's builder has no position ids (GroupQueryAttention takes
  the positions from the mask) and an open head size (``kv_cache_dim``), read here from the
  ``genai_config.json`` beside the model. It accepts a past that grows as above. With
  ``shared_buffer_length`` the loop feeds it as onnxruntime-genai does with
  ``past_present_share_buffer``: a past of that fixed length whose first ``past_len`` positions
  are valid, the mask still ``past_len + n`` long, and the present (of the same fixed length)
  fed back as the next past.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

_NUMPY_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


@dataclass(frozen=True)
class _Cache:
    """One past input, the present output that feeds it next step, and how to size it."""

    past: str
    present: str
    dtype: type
    dims: tuple[int | str | None, ...]
    batch_axis: int
    seq_axis: int


def model_file(model_path: str | Path) -> Path:
    """The .onnx file of a fixture: the path itself, or ``model.onnx`` in a folder."""
    path = Path(model_path)
    return path / "model.onnx" if path.is_dir() else path


def _present_name(past: str, outputs: list[str]) -> str:
    """The output that feeds a past input: ``present`` in place of ``past_key_values`` or of ``past``."""
    for candidate in (past.replace("past_key_values", "present", 1), past.replace("past", "present", 1)):
        if candidate in outputs:
            return candidate
    raise ValueError(f"no present output for the past input {past!r} among {outputs}")


def _caches(session: ort.InferenceSession) -> list[_Cache]:
    """The cache pairs, with the batch axis (dim named batch...) and sequence axis (named ...sequence...)."""
    outputs = [o.name for o in session.get_outputs()]
    caches = []
    for node in session.get_inputs():
        if "past" not in node.name:
            continue
        dims = tuple(node.shape)
        batch = next(i for i, d in enumerate(dims) if isinstance(d, str) and "batch" in d)
        seq = next(i for i, d in enumerate(dims) if isinstance(d, str) and "sequence" in d)
        present = _present_name(node.name, outputs)
        caches.append(_Cache(node.name, present, _NUMPY_TYPES[node.type], dims, batch, seq))
    return caches


def _head_size(model: Path) -> int | None:
    """The head size from a ``genai_config.json`` beside the model, if there is one."""
    config = model.parent / "genai_config.json"
    if not config.exists():
        return None
    return int(json.loads(config.read_text())["model"]["decoder"]["head_size"])


def _empty_past(cache: _Cache, batch: int, length: int, head_size: int | None) -> np.ndarray:
    """Zeros of the cache's shape with this batch and past length; another open dim is the head size."""
    shape = []
    for axis, dim in enumerate(cache.dims):
        if axis == cache.batch_axis:
            shape.append(batch)
        elif axis == cache.seq_axis:
            shape.append(length)
        elif isinstance(dim, int):
            shape.append(dim)
        elif head_size is not None:
            shape.append(head_size)
        else:
            raise ValueError(f"{cache.past}: open dim {dim!r} and no genai_config.json to size it")
    return np.zeros(shape, dtype=cache.dtype)


def _step_feeds(
    session: ort.InferenceSession, ids: np.ndarray, past_len: int, step: int
) -> dict[str, np.ndarray]:
    """The non-cache inputs of one step: ids, a mask of ones, positions counting up, the merged flag."""
    batch, n = ids.shape
    feeds: dict[str, np.ndarray] = {}
    for node in session.get_inputs():
        dtype = _NUMPY_TYPES[node.type]
        if node.name == "input_ids":
            feeds[node.name] = ids.astype(dtype)
        elif node.name == "attention_mask":
            feeds[node.name] = np.ones((batch, past_len + n), dtype=dtype)
        elif node.name == "position_ids":
            row = np.arange(past_len, past_len + n, dtype=dtype)
            feeds[node.name] = np.broadcast_to(row, (batch, n)).copy()
        elif node.name == "use_cache_branch":
            feeds[node.name] = np.array([step > 0], dtype=np.bool_)
        elif "past" not in node.name:
            raise ValueError(f"the reference loop does not know how to feed the input {node.name!r}")
    return feeds


def greedy_tokens(
    model_path: str | Path,
    prompt_ids: np.ndarray,
    gen_tokens: int,
    *,
    shared_buffer_length: int | None = None,
) -> np.ndarray:
    """Generate ``gen_tokens`` tokens greedily after ``prompt_ids`` ([B, P] int64); returns [B, G] int64.

    ``shared_buffer_length``: feed the past as one buffer of that many positions (onnxruntime-genai's
    ``past_present_share_buffer``), for models whose attention op accepts it (GroupQueryAttention).
    """
    path = model_file(model_path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    caches = _caches(session)
    head_size = _head_size(path)
    prompt = np.asarray(prompt_ids, dtype=np.int64)
    batch = prompt.shape[0]
    past = {c.past: _empty_past(c, batch, shared_buffer_length or 0, head_size) for c in caches}
    output_names = [o.name for o in session.get_outputs()]
    ids, past_len = prompt, 0
    tokens = np.zeros((batch, gen_tokens), dtype=np.int64)
    for step in range(gen_tokens):
        feeds = _step_feeds(session, ids, past_len, step) | past
        results = dict(zip(output_names, session.run(None, feeds), strict=True))
        tokens[:, step] = np.argmax(results["logits"][:, -1, :], axis=-1)
        past = {c.past: results[c.present] for c in caches}
        past_len += ids.shape[1]
        ids = tokens[:, step : step + 1]
    return tokens
