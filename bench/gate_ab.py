"""Does the same-session gate pass A/A and fail A/B, invocation after invocation?

Makes three models: a base (an MLP of 20 layers of 256, batch 1), a byte-different copy of
it (other doc strings: the same graph and weights) and a variant with one more layer (~5% more
multiply-adds: more compute, not a sleep). Then runs the gate N times on base vs copy (A/A)
and N times on base vs variant (A/B), each a fresh process as a user's CI job would, through:

- ``cli``: ``inferspeed gate BASE CAND --fail-if-slower 3% --threads 1``;
- ``script``: ``examples/ci_gate.sh BASE CAND`` (GATE_SLOWER=3%);
- ``pytest``: a test that benchmarks the model given in $GATE_MODEL: saved once with the base
  (``--inferspeed-save``), then ``--inferspeed-compare base --inferspeed-fail-if-slower 3%`` with
  the copy or the variant: the plugin re-measures its stored copy of the base beside it;
- ``separate``: what the gate replaces: ``inferspeed run BASE --json a.json``, then
  ``inferspeed run CAND --json b.json`` (separate sessions, as against a saved baseline), then
  ``inferspeed compare a.json b.json --fail-if-slower 3% --force``.

Prints, per kind, how many invocations passed / failed, the gated ratio's median and range,
and the longest invocation. Each invocation holds /tmp/bench.lock (other timing work on the
machine waits for it).

    python bench/gate_ab.py                      # 20 + 20 through the CLI
    python bench/gate_ab.py --via pytest --runs 10
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx

from inferspeed.facts.models import mlp_model

ROOT = Path(__file__).resolve().parent.parent
LOCK = "/tmp/bench.lock"
TEST_FILE = textwrap.dedent(
    """
    import os

    def test_model(inferspeed):
        inferspeed.benchmark(os.environ["GATE_MODEL"], threads=1, max_time=float(os.environ["GATE_TIME"]))
    """
)


@contextmanager
def machine_lock() -> Iterator[None]:
    """Hold LOCK: no other timing work (that takes it too) runs meanwhile."""
    with open(LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def make_models(folder: Path) -> dict[str, str]:
    base = mlp_model(layers=20, width=256, batch=1)
    copy = mlp_model(layers=20, width=256, batch=1)
    copy.doc_string = "the same model, documented differently"
    copy.graph.doc_string = "another doc string"
    more = mlp_model(layers=21, width=256, batch=1)
    paths = {}
    for name, model in (("base", base), ("copy", copy), ("more", more)):
        paths[name] = str(folder / f"{name}.onnx")
        onnx.save(model, paths[name])
    assert Path(paths["base"]).read_bytes() != Path(paths["copy"]).read_bytes()
    return paths


def run_cli(base: str, cand: str, slower: str, seconds: float, out: Path) -> tuple[int, float | None]:
    cmd = [sys.executable, "-m", "inferspeed", "gate", base, cand, "--threads", "1", "--quiet"]
    cmd += ["--fail-if-slower", slower, "--max-time", str(seconds), "--json", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode not in (0, 1):
        raise SystemExit(f"gate failed: {p.stderr}")
    return p.returncode, json.loads(out.read_text())["gate"]["comparison"]["ratio_median"]


def run_script(base: str, cand: str, slower: str, seconds: float, out: Path) -> tuple[int, float | None]:
    env = {
        **os.environ,
        "GATE_SLOWER": slower,
        "GATE_TIME": str(seconds),
        "GATE_JSON": str(out),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    p = subprocess.run(
        [str(ROOT / "examples" / "ci_gate.sh"), base, cand], capture_output=True, text=True, env=env
    )
    if p.returncode not in (0, 1):
        raise SystemExit(f"ci_gate.sh failed: {p.stderr}")
    return p.returncode, json.loads(out.read_text())["gate"]["comparison"]["ratio_median"]


def run_separate(base: str, cand: str, slower: str, seconds: float, out: Path) -> tuple[int, float | None]:
    paths = [out.with_suffix(".a.json"), out.with_suffix(".b.json")]
    for model, path in zip((base, cand), paths, strict=True):
        cmd = [sys.executable, "-m", "inferspeed", "run", model, "--threads", "1", "--quiet"]
        subprocess.run([*cmd, "--max-time", str(seconds), "--json", str(path)], check=True)
    cmd = [sys.executable, "-m", "inferspeed", "compare", *map(str, paths), "--force", "--json"]
    p = subprocess.run([*cmd, "--fail-if-slower", slower], capture_output=True, text=True)
    if p.returncode not in (0, 1):
        raise SystemExit(f"compare failed: {p.stderr}")
    return p.returncode, json.loads(p.stdout)[0]["ratio_median"]


def pytest_env(model: str, seconds: float) -> dict[str, str]:
    return {**os.environ, "GATE_MODEL": model, "GATE_TIME": str(seconds)}


def run_pytest(project: Path, cand: str, slower: str, seconds: float) -> tuple[int, float | None]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--inferspeed-compare", "base"]
    cmd += ["--inferspeed-fail-if-slower", slower, "test_gate.py"]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=project, env=pytest_env(cand, seconds))
    if p.returncode not in (0, 1):
        raise SystemExit(f"pytest failed: {p.stdout}{p.stderr}")
    ratio = None
    for line in p.stdout.splitlines():
        if "vs base: x" in line:
            ratio = float(line.split("vs base: x", 1)[1].split()[0])
    return p.returncode, ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--via", choices=("cli", "script", "pytest", "separate"), default="cli")
    ap.add_argument("--runs", type=int, default=20, help="invocations per kind (default 20)")
    ap.add_argument("--slower", default="3%", help="--fail-if-slower (default 3%%)")
    ap.add_argument("--seconds", type=float, default=8.0, help="timed seconds per model (default 8)")
    ap.add_argument("--kinds", default="aa,ab", help="aa, ab or both (default aa,ab)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gate-ab-") as tmp:
        folder = Path(tmp)
        models = make_models(folder)
        if args.via == "pytest":
            (folder / "test_gate.py").write_text(TEST_FILE)
            with machine_lock():
                save = [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--inferspeed-save",
                    "base",
                ]
                subprocess.run(
                    save, cwd=folder, env=pytest_env(models["base"], 1.0), check=True, capture_output=True
                )
        print(
            f"gate via {args.via}, --fail-if-slower {args.slower}, {args.seconds:g} s per model, "
            f"{args.runs} runs each"
        )
        for kind in args.kinds.split(","):
            cand = models["copy" if kind == "aa" else "more"]
            codes, ratios, walls = [], [], []
            for i in range(args.runs):
                out = folder / f"{kind}{i}.json"
                with machine_lock():
                    t0 = time.monotonic()
                    if args.via == "cli":
                        rc, ratio = run_cli(models["base"], cand, args.slower, args.seconds, out)
                    elif args.via == "script":
                        rc, ratio = run_script(models["base"], cand, args.slower, args.seconds, out)
                    elif args.via == "separate":
                        rc, ratio = run_separate(models["base"], cand, args.slower, args.seconds, out)
                    else:
                        rc, ratio = run_pytest(folder, cand, args.slower, args.seconds)
                    walls.append(time.monotonic() - t0)
                codes.append(rc)
                if ratio is not None:
                    ratios.append(ratio)
                print(f"  {kind} {i + 1:>2}: exit {rc}, ratio {ratio}, {walls[-1]:.1f} s", flush=True)
            r = np.array(ratios)
            passed, failed = codes.count(0), codes.count(1)
            want = "pass" if kind == "aa" else "fail"
            sd = float(np.std(np.log(r), ddof=1)) if r.size > 1 else float("nan")
            print(
                f"{kind.upper()}: {passed} passed, {failed} failed of {len(codes)} (want {want}); "
                f"median ratio {np.median(r):.3f} (range {r.min():.3f}-{r.max():.3f}, log-SD {sd:.3f}); "
                f"longest invocation {max(walls):.1f} s",
                flush=True,
            )
            if args.via == "separate":
                # One session per side: the ratio's log-SD is sqrt(2) x the between-session
                # log-SD of one side; sessions per side to detect 5% (alpha 0.05, power 0.9),
                # Kalibera and Jones: 2 (1.96 + 1.28)^2 (CV / effect)^2 ~ 21 (CV / effect)^2.
                cv = sd / np.sqrt(2.0)
                print(
                    f"  between sessions: log-SD {cv:.3f} per side; "
                    f"sessions per side for 5%: {21 * (cv / 0.05) ** 2:.0f}"
                )


if __name__ == "__main__":
    main()
