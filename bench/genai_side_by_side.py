#!/usr/bin/env python3
"""inferspeed's generation loop beside onnxruntime-genai's own, on the builder's model.

On the onnxruntime-genai builder's Llama fixture (tests/data/decoders/genai_llama: its
model.onnx with GroupQueryAttention and genai_config.json, past and present sharing one buffer),
copied to a temporary folder with one intra-op thread in its session options, each round makes
one greedy generation of P prompt tokens and G output tokens with each of

  onnxruntime-genai  og.Generator: append_tokens(prompt) (the prefill), then G calls of
                     generate_next_token(), each timed by perf_counter_ns from Python (the
                     first picks the token of the prefill's logits; each later one runs the
                     model on the token before and picks the next: one decode step and its
                     sampling, as an application's loop sees them)
  inferspeed         the core's Generation (what ``inferspeed run`` times): each step's call
                     and its sampling timed apart in C++

in a random order per round. Per round and side: the median time per output token (genai: a
generate_next_token call after the first; inferspeed: a decode step plus its sampling), and
TTFT (genai: append_tokens and the first generate_next_token; inferspeed: the prefill and its
sampling). The ratio genai / inferspeed per round, then the median ratio over the rounds with a
distribution-free 95% interval: what genai's loop adds to the model's calls. The tokens of both
must be equal (the script stops otherwise).

Needs onnxruntime-genai beside inferspeed (the optional extra: ``pip install '.[genai]'``):

    python bench/genai_side_by_side.py [--rounds 40] [--prompt-tokens 128] [--gen-tokens 128]
                                       [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import inferspeed
from inferspeed.measure.generation import core_spec
from inferspeed.stats.summary import quantile_ci

try:
    import onnxruntime_genai as og
except ImportError:
    sys.exit("this benchmark needs onnxruntime-genai: pip install onnxruntime-genai")

FOLDER = Path(__file__).resolve().parent.parent / "tests" / "data" / "decoders" / "genai_llama"
THREADS = 1


def one_thread_copy(into: Path) -> Path:
    """The fixture's folder copied to ``into``, its genai_config.json asking for one intra-op
    thread (as the inferspeed side gets)."""
    folder = into / "genai_llama"
    shutil.copytree(FOLDER, folder)
    config_path = folder / "genai_config.json"
    config = json.loads(config_path.read_text())
    options = config["model"]["decoder"].setdefault("session_options", {})
    options["intra_op_num_threads"] = THREADS
    config_path.write_text(json.dumps(config, indent=1))
    return folder


def genai_generation(model: Any, prompt: np.ndarray, gen_tokens: int) -> tuple[np.ndarray, int, np.ndarray]:
    """(each generate_next_token call's ns, TTFT ns, the generated tokens) of one generation."""
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


def ratio_interval(ratios: np.ndarray) -> tuple[float, float, float]:
    """The median of the rounds' ratios and its distribution-free 95% interval."""
    lo, hi = quantile_ci(np.sort(ratios), 0.5, 0.95, presorted=True)
    return (
        float(np.median(ratios)),
        float(lo if lo is not None else np.nan),
        float(hi if hi is not None else np.nan),
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the per-round figures here")
    a = ap.parse_args(argv)
    p, g = a.prompt_tokens, a.gen_tokens
    with tempfile.TemporaryDirectory() as tmp:
        folder = one_thread_copy(Path(tmp))
        session = inferspeed.Session(
            str(folder / "model.onnx"), threads=THREADS, prompt_tokens=p, gen_tokens=g
        )
        assert session.decoder is not None
        prompt = np.asarray(session.input_arrays["input_ids"])
        generation = session._core.generation(
            **core_spec(session.decoder, p, g), prompt_ids=prompt, gen_tokens=g
        )
        model = og.Model(str(folder))
        generation.run(warmup=2, max_repetitions=1)
        for _ in range(2):
            genai_generation(model, prompt[0], g)
        rng = random.Random(a.seed)
        rows: list[dict[str, Any]] = []
        for _ in range(a.rounds):
            got: dict[str, tuple[np.ndarray, int, np.ndarray]] = {}
            for side in rng.sample(["genai", "inferspeed"], 2):
                if side == "genai":
                    got[side] = genai_generation(model, prompt[0], g)
                else:
                    r = generation.run(max_repetitions=1)
                    step, pick = np.asarray(r["step_ns"])[0], np.asarray(r["sample_ns"])[0]
                    got[side] = (step + pick, int(step[0] + pick[0]), np.asarray(r["tokens"])[0, 0])
            if not np.array_equal(got["genai"][2], got["inferspeed"][2]):
                sys.exit(f"the loops generated different tokens:\n{got['genai'][2]}\n{got['inferspeed'][2]}")
            rows.append(
                {
                    side: {"per_token_ns": float(np.median(c[1:])), "ttft_ns": t}
                    for side, (c, t, _) in got.items()
                }
            )
    per_token = np.array([r["genai"]["per_token_ns"] / r["inferspeed"]["per_token_ns"] for r in rows])
    ttft = np.array([r["genai"]["ttft_ns"] / r["inferspeed"]["ttft_ns"] for r in rows])
    out = {
        "model": "tests/data/decoders/genai_llama",
        "prompt_tokens": p,
        "gen_tokens": g,
        "rounds": a.rounds,
        "onnxruntime_genai": og.__version__,
        "onnxruntime": session.runtime.version,
        "tokens_equal": True,
        "per_token_ratio": ratio_interval(per_token),
        "ttft_ratio": ratio_interval(ttft),
        "per_token_ns": {
            s: float(np.median([r[s]["per_token_ns"] for r in rows])) for s in ("genai", "inferspeed")
        },
        "ttft_ns": {s: float(np.median([r[s]["ttft_ns"] for r in rows])) for s in ("genai", "inferspeed")},
        "rounds_detail": rows,
    }
    m, lo, hi = out["per_token_ratio"]
    tm, tlo, thi = out["ttft_ratio"]
    print(
        f"genai builder Llama fixture, P={p}, G={g}, {a.rounds} paired rounds, onnxruntime-genai "
        f"{og.__version__}, onnxruntime {out['onnxruntime']}, 1 thread"
    )
    print(f"  tokens: equal in every round ({g} per generation)")
    print(
        f"  per output token, median: genai {out['per_token_ns']['genai'] / 1e3:.1f} µs, inferspeed "
        f"{out['per_token_ns']['inferspeed'] / 1e3:.1f} µs (step + sampling); genai / inferspeed {m:.3f} "
        f"(95% CI {lo:.3f}-{hi:.3f})"
    )
    print(
        f"  TTFT, median: genai {out['ttft_ns']['genai'] / 1e3:.1f} µs, inferspeed "
        f"{out['ttft_ns']['inferspeed'] / 1e3:.1f} µs; genai / inferspeed {tm:.3f} "
        f"(95% CI {tlo:.3f}-{thi:.3f})"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
