"""The instruction-count metric (``--metric instructions``) against its claims: separate runs
agree, the count follows the work, a run is short enough for CI, the gate catches a 5% larger
Gemm and passes two copies of one model. Every figure in docs/instructions.md comes from here.

    python bench/instructions.py [--runs 5] [--gates 10] [--lock /tmp/bench.lock] [--out DIR]

Each count is a separate ``inferspeed`` process (``run`` or ``gate``), as CI would run it.
``--lock PATH`` takes ``flock PATH`` around each process (a shared machine's benchmark lock).
The models: a 3-layer and a 6-layer 512-wide MLP (batch 8, Gemm+Relu), the same 3-layer MLP
525 wide (each Gemm 5.1% more MACs: 525² against 512²), a byte-for-byte copy of the 3-layer
MLP, and one Add on 16 floats. Writes ``instructions.json`` (every figure) to --out and prints
the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def build_models(folder: Path) -> dict[str, str]:
    import onnx

    from inferspeed.facts.models import add_model, mlp_model

    folder.mkdir(parents=True, exist_ok=True)
    built = {
        "mlp3": mlp_model(layers=3, width=512, batch=8),
        "mlp6": mlp_model(layers=6, width=512, batch=8),
        "mlp3_gemm5pct": mlp_model(layers=3, width=525, batch=8),
        "add": add_model(width=16),
    }
    paths = {}
    for name, model in built.items():
        paths[name] = str(folder / f"{name}.onnx")
        onnx.save(model, paths[name])
    paths["mlp3_copy"] = str(folder / "mlp3_copy.onnx")
    shutil.copyfile(paths["mlp3"], paths["mlp3_copy"])
    return paths


def inferspeed(args: list[str], lock: str | None) -> tuple[int, float, str]:
    """One inferspeed process: (exit status, wall seconds from its start inside the lock, stderr)."""
    command = [sys.executable, "-m", "inferspeed", *args]
    if lock:  # the start time is written inside the lock: the wait for it is not counted
        command = ["flock", lock, "sh", "-c", 'date +%s.%N >&2; exec "$@"', "sh", *command]
    env = {**os.environ, "INFERSPEED_HISTORY": "0", "INFERSPEED_PLAIN": "1"}
    started = time.time()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    ended = time.time()
    err = done.stderr
    if lock:
        first, _, err = err.partition("\n")
        started = float(first)
    return done.returncode, ended - started, err


def count(model: str, out: Path, lock: str | None) -> dict[str, Any]:
    """One ``inferspeed run MODEL --metric instructions`` process: its count and times."""
    path = out / "run.json"
    status, wall, err = inferspeed(
        ["run", model, "--metric", "instructions", "-q", "--json", str(path)], lock
    )
    if status != 0:
        raise SystemExit(f"inferspeed run failed ({status}): {err}")
    result = json.loads(path.read_text())["results"][0]
    ins = result["instructions"]
    return {
        "instructions": ins["instructions"],
        "spread_across_calls": ins["spread"],
        "estimated_cycles": ins["estimated_cycles"],
        "median": ins["median"],
        "time_s": ins["time_s"],
        "process_wall_s": round(wall, 2),
    }


def latency(model: str, out: Path, lock: str | None) -> float:
    """A native latency median (1 intra-op thread, no spinning) for comparison: ns."""
    path = out / "latency.json"
    args = ["run", model, "--threads", "1", "--no-spin", "-t", "2", "-q", "--json", str(path)]
    status, _, err = inferspeed(args, lock)
    if status != 0:
        raise SystemExit(f"inferspeed run failed ({status}): {err}")
    return float(json.loads(path.read_text())["results"][0]["stats"]["median_ns"])


def gates(base: str, candidate: str, times: int, lock: str | None) -> list[int]:
    """Exit statuses of ``times`` separate ``gate --metric instructions --fail-if-more 2%``."""
    args = ["gate", base, candidate, "--metric", "instructions", "--fail-if-more", "2%", "-q"]
    return [inferspeed(args, lock)[0] for _ in range(times)]


def fallback(model: str, lock: str | None) -> dict[str, Any]:
    """One count through --toggle-collect on the core's call function (no client requests)."""
    code = (
        "import json, sys; from inferspeed.measure.instructions import count_instructions; "
        "r = count_instructions(sys.argv[1], client_requests=False); "
        "i = r.instructions; "
        "print(json.dumps({'instructions': i['instructions'], 'time_s': i['time_s']}))"
    )
    command = [sys.executable, "-c", code, model]
    done = subprocess.run(["flock", lock, *command] if lock else command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"fallback count failed: {done.stderr}")
    return dict(json.loads(done.stdout))


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / min(values)


def measure(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    models = build_models(out / "models")
    report: dict[str, Any] = {"models": {k: os.path.basename(v) for k, v in models.items()}}
    mlp = [count(models["mlp3"], out, args.lock) for _ in range(args.runs)]
    report["mlp3_runs"] = mlp
    report["mlp3_spread_across_runs"] = spread([r["instructions"] for r in mlp])
    report["mlp6"] = count(models["mlp6"], out, args.lock)
    report["mlp6_over_mlp3"] = report["mlp6"]["instructions"] / statistics.median(
        r["instructions"] for r in mlp
    )
    add = [count(models["add"], out, args.lock) for _ in range(args.runs)]
    report["add_runs"] = add
    report["add_spread_across_runs"] = spread([r["instructions"] for r in add])
    report["gemm5pct"] = count(models["mlp3_gemm5pct"], out, args.lock)
    report["gemm5pct_ratio"] = report["gemm5pct"]["instructions"] / mlp[0]["instructions"]
    report["latency_ns"] = {k: latency(models[k], out, args.lock) for k in ("mlp3", "mlp6", "add")}
    if args.gates:
        report["gate_larger_gemm_exit"] = gates(
            models["mlp3"], models["mlp3_gemm5pct"], args.gates, args.lock
        )
        report["gate_same_model_exit"] = gates(models["mlp3"], models["mlp3_copy"], args.gates, args.lock)
    if args.fallback:
        report["fallback_mlp3"] = fallback(models["mlp3"], args.lock)
    return report


def print_tables(r: dict[str, Any]) -> None:
    print("| run | MLP 3x512 instructions/call | spread across calls | process wall s |")
    print("|---|---|---|---|")
    for i, run in enumerate(r["mlp3_runs"], 1):
        print(
            f"| {i} | {run['instructions']:,.0f} | {run['spread_across_calls']:.2%} "
            f"| {run['process_wall_s']:.1f} |"
        )
    print(f"\nMLP: spread across {len(r['mlp3_runs'])} runs {r['mlp3_spread_across_runs']:.3%}")
    adds = ", ".join(f"{a['instructions']:,.0f}" for a in r["add_runs"])
    print(f"Add: {adds}: spread across runs {r['add_spread_across_runs']:.3%}")
    print(
        f"6-layer / 3-layer: {r['mlp6_over_mlp3']:.4f} "
        f"(native latency ratio {r['latency_ns']['mlp6'] / r['latency_ns']['mlp3']:.3f})"
    )
    print(f"5% larger Gemm / MLP: {r['gemm5pct_ratio']:.4f}")
    t = r["mlp3_runs"][0]["time_s"]
    print("time split of MLP run 1 (s): " + ", ".join(f"{k} {v}" for k, v in t.items()))
    if "gate_larger_gemm_exit" in r:
        caught = sum(1 for s in r["gate_larger_gemm_exit"] if s == 1)
        passed = sum(1 for s in r["gate_same_model_exit"] if s == 0)
        n = len(r["gate_same_model_exit"])
        print(f"gate --fail-if-more 2%: larger Gemm caught {caught}/{n}; two copies passed {passed}/{n}")
    if "fallback_mlp3" in r:
        fb = r["fallback_mlp3"]
        print(f"--toggle-collect fallback: {fb['instructions']:,.0f} per call, {fb['time_s']['total']:.1f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--gates", type=int, default=10)
    p.add_argument("--fallback", action="store_true", help="also count once without client requests")
    p.add_argument("--lock", help="flock this file around each inferspeed process")
    p.add_argument("--out", default=str(HERE / "out" / "instructions"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = measure(args, out)
    (out / "instructions.json").write_text(json.dumps(report, indent=2))
    print_tables(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
