#!/usr/bin/env python3
"""inferspeed's generation loop beside onnxruntime-genai's own, on the builder's model: the
README's figures.

What ``inferspeed genai`` does (:mod:`inferspeed.tools.genai`: one greedy generation of each
loop per round, in a random order; the ratio genai / inferspeed of the time per output token
and of TTFT, the median over rounds with a 95% interval; whether the tokens are equal), on the
onnxruntime-genai builder's Llama fixture (tests/data/decoders/genai_llama) with one intra-op
thread each, P = G = 128 by default. It exits 1 when the tokens differ.

Needs onnxruntime-genai beside inferspeed (the optional extra: ``pip install '.[genai]'``):

    python bench/genai_side_by_side.py [--rounds 100] [--prompt-tokens 128] [--gen-tokens 128]
                                       [--json PATH]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from inferspeed.config import Config
from inferspeed.report.genai import render_beside_genai
from inferspeed.tools.genai import beside_genai

FOLDER = Path(__file__).resolve().parent.parent / "tests" / "data" / "decoders" / "genai_llama"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the figures and every round's here")
    a = ap.parse_args(argv)
    config = Config(prompt_tokens=a.prompt_tokens, gen_tokens=a.gen_tokens, threads=1, seed=a.seed)
    found = beside_genai(str(FOLDER), config, rounds=a.rounds, seed=a.seed)
    print(render_beside_genai(found))
    if a.json:
        Path(a.json).write_text(json.dumps(found.to_dict(), indent=1))
    return 0 if found.tokens_equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
