#!/usr/bin/env python3
"""inferspeed's decode step against a bare C generation loop, paired in one process.

On the optimum GPT-2 fixture (tests/data/decoders/gpt2: 2 layers, 4 heads, head size 16, vocab
512), each round makes one greedy generation of P prompt tokens and G output tokens with each of

  bare C      bench/bare_decode.c: one IoBinding, OrtValues over two cache buffers swapped step
              by step, clock_gettime pairs around each RunWithBinding, argmax after the clock
  inferspeed  the core's Generation (what ``inferspeed run`` times: ``_core.Session.generation``
              set up once, then ``run`` one generation per round)

in a random order per round, both sessions with the same options (1 intra-op thread, sequential
execution, graph optimization level ALL). Per round and side: the median decode step (TPOT)
and the prefill (TTFT's call); the ratio inferspeed / bare per round, then the median ratio over
the rounds with a distribution-free 95% interval (order statistics of the rounds' ratios). The
tokens of both loops must be equal (the script stops otherwise). bare_decode.c is compiled with
``cc`` into bench/out/ on first use, with the C API headers bench/overhead.py finds.

    python bench/generation_overhead.py [--rounds 60] [--processes 5] [--prompt-tokens 128]
                                        [--gen-tokens 128] [--json PATH]

With ``--processes N`` (default 5) the whole measurement runs in N fresh processes one after
another, and the median of their ratios is printed with each one's: within one process the
interval is tight, but where each process's buffers land in memory moves both loops' step by
a percent or two, one way or the other (the two loops make the same calls).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import inferspeed
from inferspeed.facts import ortlib
from inferspeed.measure.generation import core_spec
from inferspeed.stats.summary import quantile_ci

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import build_c_library

BENCH_DIR = Path(__file__).resolve().parent
MODEL = BENCH_DIR.parent / "tests" / "data" / "decoders" / "gpt2" / "model.onnx"
LAYERS, HEADS, HEAD_SIZE, VOCAB = 2, 4, 16, 512
THREADS = 1
ERRLEN = 4096


class BareDecode:
    """One bare_decode.c context: its own session and cache buffers."""

    def __init__(self, ort_lib: str, positions: int) -> None:
        self.lib = ctypes.CDLL(str(build_c_library("bare_decode")))
        i64p, buf, size, i = ctypes.POINTER(ctypes.c_int64), ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int
        self.lib.bare_gen_open.restype = ctypes.c_void_p
        self.lib.bare_gen_open.argtypes = [buf, buf, i, i, i, i, i, i, buf, size]
        self.lib.bare_gen_run.restype = ctypes.c_int
        self.lib.bare_gen_run.argtypes = [ctypes.c_void_p, i64p, i, i, i64p, i64p, buf, size]
        self.lib.bare_gen_close.argtypes = [ctypes.c_void_p]
        err = ctypes.create_string_buffer(ERRLEN)
        args = (THREADS, LAYERS, HEADS, HEAD_SIZE, VOCAB, positions)
        self.ctx = self.lib.bare_gen_open(ort_lib.encode(), str(MODEL).encode(), *args, err, ERRLEN)
        if not self.ctx:
            sys.exit(f"bare_gen_open: {err.value.decode()}")

    def run(self, prompt: np.ndarray, gen_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        """(each step's call in ns, the tokens) of one generation."""
        steps = np.zeros(gen_tokens, np.int64)
        tokens = np.zeros(gen_tokens, np.int64)
        ids = np.ascontiguousarray(prompt, np.int64)
        err = ctypes.create_string_buffer(ERRLEN)
        i64p = ctypes.POINTER(ctypes.c_int64)
        rc = self.lib.bare_gen_run(
            self.ctx, ids.ctypes.data_as(i64p), ids.size, gen_tokens, steps.ctypes.data_as(i64p),
            tokens.ctypes.data_as(i64p), err, ERRLEN,
        )  # fmt: skip
        if rc != 0:
            sys.exit(f"bare_gen_run: {err.value.decode()}")
        return steps, tokens


def ratio_interval(ratios: np.ndarray) -> tuple[float, float, float]:
    """The median of the rounds' ratios and its distribution-free 95% interval."""
    lo, hi = quantile_ci(np.sort(ratios), 0.5, 0.95, presorted=True)
    return (
        float(np.median(ratios)),
        float(lo if lo is not None else np.nan),
        float(hi if hi is not None else np.nan),
    )


def _in_processes(a: argparse.Namespace) -> int:
    """The measurement in ``a.processes`` fresh processes: each one's ratio and the median."""
    import tempfile

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(a.processes):
            out = Path(tmp) / f"{k}.json"
            args = [
                sys.executable, __file__, "--processes", "1", "--rounds", str(a.rounds),
                "--seed", str(a.seed + k), "--prompt-tokens", str(a.prompt_tokens),
                "--gen-tokens", str(a.gen_tokens), "--json", str(out),
            ]  # fmt: skip
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
            runs.append(json.loads(out.read_text()))
    ratios = [r["tpot_ratio"][0] for r in runs]
    print(
        f"GPT-2 fixture, P={a.prompt_tokens}, G={a.gen_tokens}, {a.processes} processes of {a.rounds} "
        "paired rounds"
    )
    for k, r in enumerate(runs):
        m, lo, hi = r["tpot_ratio"]
        pm, plo, phi = r["prefill_ratio"]
        print(
            f"  process {k + 1}: decode step ratio {m:.3f} ({lo:.3f}-{hi:.3f}), "
            f"prefill {pm:.3f} ({plo:.3f}-{phi:.3f})"
        )
    print(
        f"  decode step inferspeed / bare C: median over processes {float(np.median(ratios)):.3f}, "
        f"range {min(ratios):.3f}-{max(ratios):.3f}; tokens equal in every round of every process"
    )
    if a.json:
        Path(a.json).write_text(
            json.dumps({"processes": runs, "median_tpot_ratio": float(np.median(ratios))})
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--processes", type=int, default=5, help="fresh processes, each a whole measurement")
    ap.add_argument("--json", help="write the per-round figures here")
    a = ap.parse_args(argv)
    if a.processes > 1:
        return _in_processes(a)
    p, g = a.prompt_tokens, a.gen_tokens
    session = inferspeed.Session(str(MODEL), threads=THREADS, prompt_tokens=p, gen_tokens=g, seed=a.seed)
    assert session.decoder is not None
    prompt = np.asarray(session.input_arrays["input_ids"])
    generation = session._core.generation(**core_spec(session.decoder, p, g), prompt_ids=prompt, gen_tokens=g)
    bare = BareDecode(ortlib.load_runtime(None).path, p + g)
    generation.run(warmup=2, max_repetitions=1)  # both warmed before the first round
    for _ in range(2):
        bare.run(prompt[0], g)
    rng = random.Random(a.seed)
    rows: list[dict[str, Any]] = []
    for _ in range(a.rounds):
        sides: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for side in rng.sample(["inferspeed", "bare"], 2):
            if side == "bare":
                sides[side] = bare.run(prompt[0], g)
            else:
                r = generation.run(max_repetitions=1)
                sides[side] = (np.asarray(r["step_ns"])[0], np.asarray(r["tokens"])[0, 0])
        if not np.array_equal(sides["inferspeed"][1], sides["bare"][1]):
            sys.exit(f"the loops generated different tokens:\n{sides['inferspeed'][1]}\n{sides['bare'][1]}")
        rows.append(
            {
                side: {"tpot_ns": float(np.median(s[1:])), "prefill_ns": int(s[0])}
                for side, (s, _) in sides.items()
            }
        )
    tpot = np.array([r["inferspeed"]["tpot_ns"] / r["bare"]["tpot_ns"] for r in rows])
    prefill = np.array([r["inferspeed"]["prefill_ns"] / r["bare"]["prefill_ns"] for r in rows])
    out = {
        "model": str(MODEL.relative_to(BENCH_DIR.parent)),
        "prompt_tokens": p,
        "gen_tokens": g,
        "rounds": a.rounds,
        "onnxruntime": session.runtime.version,
        "tokens_equal": True,
        "tpot_ratio": ratio_interval(tpot),
        "prefill_ratio": ratio_interval(prefill),
        "tpot_ns": {
            side: float(np.median([r[side]["tpot_ns"] for r in rows])) for side in ("inferspeed", "bare")
        },
        "prefill_ns": {
            side: float(np.median([r[side]["prefill_ns"] for r in rows])) for side in ("inferspeed", "bare")
        },
        "rounds_detail": rows,
    }
    m, lo, hi = out["tpot_ratio"]
    pm, plo, phi = out["prefill_ratio"]
    print(
        f"GPT-2 fixture, P={p}, G={g}, {a.rounds} paired rounds, onnxruntime {out['onnxruntime']}, 1 thread"
    )
    print(f"  tokens: equal in every round ({g} per generation)")
    print(
        f"  decode step (TPOT) median: inferspeed {out['tpot_ns']['inferspeed'] / 1e3:.1f} µs, bare C "
        f"{out['tpot_ns']['bare'] / 1e3:.1f} µs; ratio {m:.3f} (95% CI {lo:.3f}-{hi:.3f})"
    )
    print(
        f"  prefill median: inferspeed {out['prefill_ns']['inferspeed'] / 1e3:.1f} µs, bare C "
        f"{out['prefill_ns']['bare'] / 1e3:.1f} µs; ratio {pm:.3f} (95% CI {plo:.3f}-{phi:.3f})"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
