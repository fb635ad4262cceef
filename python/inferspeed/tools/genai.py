"""``inferspeed genai``: a builder-made model folder through onnxruntime-genai's own generation
loop and through inferspeed's, interleaved, to say what the serving loop costs on top of the
model's calls.

Each round makes one greedy generation of P prompt and G output tokens with each side, in a
random order (seeded):

- **onnxruntime-genai**: ``og.Generator``: ``append_tokens(prompt)`` (the prefill), then G calls
  of ``generate_next_token()``, each timed from Python: the first picks the token of the
  prefill's logits; each later one runs the model on the token before and picks the next (one
  decode step and its sampling, as an application's loop sees them);
- **inferspeed**: the core's Generation of the same model file (``Session.generation()``): each
  step's call and its sampling timed apart in C++.

Per round and side: the median time per output token (genai: a ``generate_next_token`` call
after the first; inferspeed: a decode step plus its sampling) and TTFT (genai: ``append_tokens``
and the first ``generate_next_token``; inferspeed: the prefill and its sampling); the ratio
genai / inferspeed per round, and the median ratio over the rounds with a distribution-free
95% interval. Whether both generated the same tokens is reported too.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from ..config import Config
from ..errors import ConfigError, ModelError
from ..measure.session import Session
from ..stats.summary import quantile_ci

__all__ = ["BesideGenai", "beside_genai", "load_genai"]

#: Rounds when not told.
DEFAULT_ROUNDS = 40


def load_genai() -> ModuleType:
    """The onnxruntime_genai module; ConfigError saying how to install it when it is missing."""
    try:
        return importlib.import_module("onnxruntime_genai")
    except ImportError:
        raise ConfigError(
            "inferspeed genai needs onnxruntime-genai: pip install 'inferspeed[genai]' "
            "(or pip install onnxruntime-genai)"
        ) from None


@dataclass(frozen=True)
class BesideGenai:
    """The two loops side by side: medians per side, ratios genai / inferspeed (median over
    rounds, 95% interval), and each round's figures."""

    folder: str
    prompt_tokens: int
    gen_tokens: int
    rounds: int
    seed: int
    genai_version: str
    tokens_equal: bool
    per_token_ns: dict[str, float]
    ttft_ns: dict[str, float]
    per_token_ratio: tuple[float, float | None, float | None]
    ttft_ratio: tuple[float, float | None, float | None]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "prompt_tokens": self.prompt_tokens,
            "gen_tokens": self.gen_tokens,
            "rounds": self.rounds,
            "seed": self.seed,
            "onnxruntime_genai": self.genai_version,
            "tokens_equal": self.tokens_equal,
            "per_token_ns": self.per_token_ns,
            "ttft_ns": self.ttft_ns,
            "per_token_ratio": list(self.per_token_ratio),
            "ttft_ratio": list(self.ttft_ratio),
            "rounds_detail": self.rows,
        }


def model_folder(path: str) -> str:
    """The folder of a builder-made model (``genai_config.json`` in it): ``path`` itself, or
    the folder of a model file; ModelError when it has no genai_config.json."""
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if not os.path.isfile(os.path.join(folder, "genai_config.json")):
        raise ModelError(
            f"{path}: no genai_config.json there: inferspeed genai takes a folder made by "
            "onnxruntime-genai's model builder"
        )
    return folder


def _threads_copy(folder: str, threads: int, into: str) -> str:
    """``folder`` copied into ``into`` with ``threads`` intra-op threads in its session options
    (the inferspeed side gets the same)."""
    copy = os.path.join(into, os.path.basename(os.path.normpath(folder)))
    shutil.copytree(folder, copy)
    path = os.path.join(copy, "genai_config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    config["model"]["decoder"].setdefault("session_options", {})["intra_op_num_threads"] = threads
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=1)
    return copy


def _genai_generation(
    og: ModuleType, model: Any, prompt: np.ndarray, gen_tokens: int
) -> tuple[np.ndarray, int, np.ndarray]:
    """(each generate_next_token call's ns, TTFT ns, the tokens) of one genai generation."""
    params = og.GeneratorParams(model)
    total = prompt.size + gen_tokens
    params.set_search_options(max_length=total, min_length=total, do_sample=False, batch_size=1)
    generator = og.Generator(model, params)
    calls = np.zeros(gen_tokens, np.int64)
    t0 = time.perf_counter_ns()
    generator.append_tokens(prompt.reshape(1, -1).astype(np.int32))
    t1 = time.perf_counter_ns()
    for i in range(gen_tokens):
        a = time.perf_counter_ns()
        generator.generate_next_token()
        calls[i] = time.perf_counter_ns() - a
    tokens = np.asarray(generator.get_sequence(0))[prompt.size :]
    return calls, int(t1 - t0 + calls[0]), tokens


def _ratio(values: np.ndarray) -> tuple[float, float | None, float | None]:
    lo, hi = quantile_ci(np.sort(values), 0.5, 0.95, presorted=True)
    return float(np.median(values)), lo, hi


def beside_genai(
    path: str, config: Config | None = None, *, rounds: int = DEFAULT_ROUNDS, seed: int = 0
) -> BesideGenai:
    """Measure the builder-made model at ``path`` (its folder or its model file) through
    onnxruntime-genai's loop and inferspeed's, interleaved in ``rounds`` rounds (the module's
    docstring). ``config``: the prompt and output lengths, the batch (1 only: genai's greedy
    search here), threads (given to both) and seed of the prompt.

    Raises
    ------
    ConfigError
        onnxruntime-genai is not installed, or a batch other than 1.
    ModelError
        No genai_config.json beside the model, or a model that is no decoder.
    """
    og = load_genai()
    config = config or Config()
    if (config.batch or 1) != 1:
        raise ConfigError("inferspeed genai compares generations of batch 1")
    folder = model_folder(path)
    with tempfile.TemporaryDirectory(prefix="inferspeed-genai-") as tmp:
        if config.threads is not None:
            folder = _threads_copy(folder, config.threads, tmp)
        with Session(os.path.join(folder, "model.onnx"), config.replace(metric="generation")) as session:
            plan = session.generation_plan
            if plan is None:  # metric="generation" finds a decoder or raises
                raise ModelError(f"{path}: not a decoder")
            prompt, g = plan.prompt_ids, plan.gen_tokens
            ours = session.generation()
            model = og.Model(folder)
            ours.run(warmup=2, max_repetitions=1)
            for _ in range(2):
                _genai_generation(og, model, prompt[0], g)
            rows, equal = _rounds(og, model, ours, prompt[0], g, rounds, seed)
    per_token = np.array([r["genai"]["per_token_ns"] / r["inferspeed"]["per_token_ns"] for r in rows])
    ttft = np.array([r["genai"]["ttft_ns"] / r["inferspeed"]["ttft_ns"] for r in rows])
    sides = ("genai", "inferspeed")
    return BesideGenai(
        folder=model_folder(path),
        prompt_tokens=int(prompt.shape[1]),
        gen_tokens=g,
        rounds=rounds,
        seed=seed,
        genai_version=str(getattr(og, "__version__", "?")),
        tokens_equal=equal,
        per_token_ns={s: float(np.median([r[s]["per_token_ns"] for r in rows])) for s in sides},
        ttft_ns={s: float(np.median([r[s]["ttft_ns"] for r in rows])) for s in sides},
        per_token_ratio=_ratio(per_token),
        ttft_ratio=_ratio(ttft),
        rows=rows,
    )


def _rounds(
    og: ModuleType, model: Any, ours: Any, prompt: np.ndarray, gen_tokens: int, rounds: int, seed: int
) -> tuple[list[dict[str, Any]], bool]:
    """Each round's per-token and TTFT medians of both sides (in a random order per round), and
    whether every round's tokens were equal."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    equal = True
    for _ in range(rounds):
        got: dict[str, tuple[np.ndarray, int, np.ndarray]] = {}
        for side in rng.sample(["genai", "inferspeed"], 2):
            if side == "genai":
                got[side] = _genai_generation(og, model, prompt, gen_tokens)
            else:
                r = ours.run(max_repetitions=1)
                step, pick = np.asarray(r["step_ns"])[0], np.asarray(r["sample_ns"])[0]
                got[side] = (step + pick, int(step[0] + pick[0]), np.asarray(r["tokens"])[0, 0])
        equal = equal and np.array_equal(got["genai"][2], got["inferspeed"][2])
        rows.append(
            {side: {"per_token_ns": float(np.median(c[1:])), "ttft_ns": t} for side, (c, t, _) in got.items()}
        )
    return rows, equal
