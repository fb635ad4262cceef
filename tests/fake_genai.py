"""A stand-in for onnxruntime-genai's Python API (``Model``, ``GeneratorParams``, ``Generator``:
what ``inferspeed genai`` calls) over a plain onnxruntime greedy loop, so the command's flow is
tested where genai is not installed (CI). It feeds a builder-made model as genai does with a
growing past: the prompt at ``append_tokens``, then one token a ``generate_next_token()``."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import onnxruntime as ort

__version__ = "fake"


class Model:
    def __init__(self, folder: str) -> None:
        with open(os.path.join(folder, "genai_config.json"), encoding="utf-8") as f:
            self.config = json.load(f)["model"]
        self.session = ort.InferenceSession(
            os.path.join(folder, "model.onnx"), providers=["CPUExecutionProvider"]
        )


class GeneratorParams:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.options: dict[str, Any] = {}

    def set_search_options(self, **options: Any) -> None:
        self.options.update(options)


class Generator:
    def __init__(self, model: Model, params: GeneratorParams) -> None:
        d = model.config["decoder"]
        self.session, self.heads, self.head = model.session, d["num_key_value_heads"], d["head_size"]
        self.layers = d["num_hidden_layers"]
        self.past = {
            f"past_key_values.{i}.{kind}": np.zeros((1, self.heads, 0, self.head), np.float32)
            for i in range(self.layers)
            for kind in ("key", "value")
        }
        self.sequence: list[int] = []
        self.fed = 0
        self.logits: np.ndarray | None = None

    def _run(self, ids: list[int]) -> None:
        feeds = {
            "input_ids": np.asarray([ids], np.int64),
            "attention_mask": np.ones((1, self.fed + len(ids)), np.int64),
            **self.past,
        }
        names = [o.name for o in self.session.get_outputs()]
        out = dict(zip(names, self.session.run(None, feeds), strict=True))
        self.past = {k: out[k.replace("past_key_values", "present")] for k in self.past}
        self.fed += len(ids)
        self.logits = out["logits"][0, -1]

    def append_tokens(self, ids: np.ndarray) -> None:
        self.sequence += [int(x) for x in np.asarray(ids).ravel()]
        self._run(self.sequence[self.fed :])

    def generate_next_token(self) -> None:
        if self.fed < len(self.sequence):
            self._run(self.sequence[self.fed :])
        assert self.logits is not None
        self.sequence.append(int(np.argmax(self.logits)))

    def get_sequence(self, index: int) -> np.ndarray:
        return np.asarray(self.sequence, np.int32)
