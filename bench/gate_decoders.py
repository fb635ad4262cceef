"""Does `inferspeed gate --statistic tpot` fail a decoder with ~10% more work per token, and pass
two copies of one, invocation after invocation?

Makes three decoders with the exporters of ``bench/make_decoders.py`` (seeded random weights,
optimum-onnx's ``text-generation-with-past`` export): a tiny GPT-2 of ``--layers`` layers (64
wide, vocabulary 512), the same with one more layer (about 1 / layers more work per token:
the LM head and the loop's fixed costs take the rest), and a byte-identical copy of the first.
Then runs ``inferspeed gate BASE CAND --statistic tpot --fail-if-slower 5%`` ``--runs`` times on
each pair, alternating, each a fresh process as a CI job would, and prints per pair the exits,
the gated TPOT ratio and its 95% interval (ranges over the invocations) and the wall times.

The exporters need their own virtual environment (see ``bench/make_decoders.py``)::

    python bench/gate_decoders.py --exporter-python /work/gen-venv/bin/python --runs 10

The decoders are written under ``--work`` (default: a folder under the system's temp folder)
and reused when already there.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RATIO = re.compile(r"^\S+\s+(\d+\.\d+) \((\d+\.\d+)-(\d+\.\d+)\)")

MAKE = """
import sys, torch
from pathlib import Path
sys.path.insert(0, {bench!r})
from transformers import AutoModelForCausalLM, GPT2Config
from make_decoders import VOCAB, export_optimum, make_tokenizer
work = Path({work!r})
for layers in ({layers}, {layers} + 1):
    out = work / f"gpt2_{{layers}}"
    if (out / "model.onnx").exists():
        continue
    torch.manual_seed(0)
    config = GPT2Config(n_positions=1024, n_embd=64, n_layer=layers, n_head=4, initializer_range=0.2,
                        vocab_size=VOCAB, bos_token_id=0, eos_token_id=0)
    hf = work / f"hf_{{layers}}"
    AutoModelForCausalLM.from_config(config).eval().save_pretrained(hf)
    make_tokenizer(hf)
    export_optimum(hf, out, work)
"""


def make(exporter: str, work: Path, layers: int) -> dict[str, Path]:
    """The base, the deeper decoder and the copy of the base (made once)."""
    work.mkdir(parents=True, exist_ok=True)
    script = MAKE.format(bench=str(ROOT / "bench"), work=str(work), layers=layers)
    subprocess.run([exporter, "-c", script], check=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    base, deeper, copy = work / f"gpt2_{layers}", work / f"gpt2_{layers + 1}", work / f"gpt2_{layers}_copy"
    if not (copy / "model.onnx").exists():
        shutil.copytree(base, copy, dirs_exist_ok=True)
    return {"base": base / "model.onnx", "deeper": deeper / "model.onnx", "copy": copy / "model.onnx"}


def gate(base: Path, candidate: Path) -> tuple[int, tuple[float, float, float] | None, float]:
    """One invocation: its exit, the TPOT ratio with its interval, its wall time."""
    cmd = [sys.executable, "-m", "inferspeed", "gate", str(base), str(candidate), "--statistic", "tpot",
           "--fail-if-slower", "5%"]  # fmt: skip
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    lines = p.stdout.splitlines()
    ratio = None
    for i, line in enumerate(lines):
        if line.startswith("candidate") and "median ratio" in line and i + 1 < len(lines):
            m = RATIO.match(lines[i + 1])
            ratio = (float(m[1]), float(m[2]), float(m[3])) if m else None
            break
    if p.returncode not in (0, 1):
        print(p.stderr.strip(), file=sys.stderr)
    return p.returncode, ratio, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exporter-python", required=True, help="python with torch, transformers, optimum-onnx")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "inferspeed-gate-decoders")
    ap.add_argument("--layers", type=int, default=10)
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    models = make(args.exporter_python, args.work, args.layers)
    runs: dict[str, list[tuple[int, tuple[float, float, float] | None, float]]] = {"deeper": [], "copy": []}
    for i in range(args.runs):
        for pair in runs:
            runs[pair].append(gate(models["base"], models[pair]))
            rc, ratio, wall = runs[pair][-1]
            print(f"{i + 1:>3} {pair:<7} exit {rc}  TPOT ratio {ratio}  {wall:.1f} s", flush=True)
    print(f"\n{'pair':<28} {'exit 1':>8} {'TPOT ratio':>13} {'intervals within':>18} {'wall time':>16}")
    for pair, got in runs.items():
        if not got:
            continue
        ratios = [r for _, r, _ in got if r is not None]
        walls = [w for _, _, w in got]
        name = f"{args.layers} vs {args.layers + 1} layers" if pair == "deeper" else "copies"
        failed = sum(rc == 1 for rc, _, _ in got)
        point = f"{min(r[0] for r in ratios):.3f}-{max(r[0] for r in ratios):.3f}" if ratios else "-"
        within = f"{min(r[1] for r in ratios):.3f}-{max(r[2] for r in ratios):.3f}" if ratios else "-"
        print(f"{name:<28} {failed:>4} of {len(got):<2} {point:>13} {within:>18} "
              f"{min(walls):>6.1f}-{max(walls):.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
