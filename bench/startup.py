"""Fixed start-up cost of inferspeed's commands, each in a fresh process, as a user runs them.

For ``inferspeed run MODEL -n 1 --warmup 0`` the fixed cost is the wall time of the process less
the warm-up and the timed loop as the run's JSON reports them (``--json``); for ``info``,
``--help`` and a flag error (``run --no-such-flag``) it is the whole wall time. Two models,
built with onnx.helper in a temporary folder: a tiny Add (the acceptance case: no operator
whose MACs need onnx) and a small MatMul MLP (its MAC count needs onnx's shape inference once,
then comes from the cache). "first" runs get a new, empty ``INFERSPEED_CACHE_DIR`` each;
"repeat" runs share one that an untimed run filled.

The cases run in rounds, each round every case once in a rotated order, so a machine that
changes speed for a while slows every case alike. Prints the median and min-max per case, and
the median CPU time of the process (user + system, less the loop: what the start costs when
the machine is not shared); ``--json PATH`` also writes every time.

    python bench/startup.py                  # 10 runs of each case
    python bench/startup.py --runs 20 --json startup.json
    python bench/startup.py --pycache        # with bytecode caching on (see below)
    python bench/startup.py --pythonpath /tmp/old/python   # another checkout's package (before/after)

Bytecode: where ``PYTHONDONTWRITEBYTECODE`` is set and the checkout has no ``__pycache__``
(as in some development containers), every start compiles inferspeed's own modules again.
``--pycache`` runs the processes with ``PYTHONPYCACHEPREFIX`` set to a temporary folder (warmed
by one untimed run), as an installed package would start.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Case:
    name: str
    args: tuple[str, ...]
    first: bool  # a new, empty cache folder for every run
    exit_code: int = 0
    json_loop: bool = False  # subtract warm-up and loop reported in the run's JSON


def build_models(folder: Path) -> dict[str, str]:
    """A tiny Add and a small MatMul MLP, written to ``folder``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def save(graph: Any, name: str) -> str:
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        path = folder / name
        onnx.save(model, path)
        return str(path)

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])
    tiny = save(
        helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "tiny", [x], [y]), "tiny.onnx"
    )
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.random((16, 16), dtype=np.float32), f"w{i}") for i in range(3)]
    nodes = [
        helper.make_node("MatMul", ["x" if i == 0 else f"h{i}", f"w{i}"], [f"h{i + 1}"]) for i in range(3)
    ]
    nodes.append(helper.make_node("Relu", ["h3"], ["y"]))
    mlp = save(helper.make_graph(nodes, "mlp", [x], [y], initializer=weights), "mlp.onnx")
    return {"tiny": tiny, "mlp": mlp}


def make_cases(models: dict[str, str]) -> list[Case]:
    loop = ("-n", "1", "--warmup", "0")
    return [
        Case("run tiny, first", ("run", models["tiny"], *loop), first=True, json_loop=True),
        Case("run tiny, repeat", ("run", models["tiny"], *loop), first=False, json_loop=True),
        Case("run mlp, first", ("run", models["mlp"], *loop), first=True, json_loop=True),
        Case("run mlp, repeat", ("run", models["mlp"], *loop), first=False, json_loop=True),
        Case("info tiny", ("info", models["tiny"]), first=False),
        Case("info mlp, first", ("info", models["mlp"]), first=True),
        Case("info mlp, repeat", ("info", models["mlp"]), first=False),
        Case("--help", ("--help",), first=False),
        Case("flag error", ("run", "--no-such-flag"), first=False, exit_code=2),
    ]


def command() -> list[str]:
    """The ``inferspeed`` console script next to this interpreter, else ``python -m inferspeed``."""
    script = Path(sys.executable).parent / "inferspeed"
    if script.exists():
        return [str(script)]
    found = shutil.which("inferspeed")
    return [found] if found else [sys.executable, "-m", "inferspeed"]


def run_once(cli: list[str], case: Case, env: dict[str, str], work: Path) -> tuple[float, float]:
    """The fixed cost of one run of ``case`` and the CPU time (user + system) its process used,
    in seconds. On a busy machine the wall time grows with the load; the CPU time much less."""
    args = list(case.args)
    out = work / "result.json"
    if case.json_loop:
        args += ["--json", str(out)]
    env = dict(env)
    if case.first:
        env["INFERSPEED_CACHE_DIR"] = tempfile.mkdtemp(prefix="cache-", dir=work)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    p = subprocess.run([*cli, *args], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != case.exit_code:
        raise SystemExit(f"{case.name}: exit status {p.returncode}, expected {case.exit_code}\n{p.stderr}")
    if not case.json_loop:
        return wall, cpu
    result = json.loads(out.read_text())["results"][0]
    loop_ns = int(result["warmup"]["time_ns"] or 0) + sum(int(s) for s in result["samples_ns"])
    return wall - loop_ns / 1e9, cpu - loop_ns / 1e9


def environment(pycache: str | None, pythonpath: str | None) -> dict[str, str]:
    env = {**os.environ, "INFERSPEED_PLAIN": "1"}
    if pythonpath:  # ahead of the checkout the virtual environment points to
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pythonpath, env.get("PYTHONPATH")) if p)
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def measure(runs: int, pycache: bool, pythonpath: str | None = None) -> dict[str, Any]:
    cli = command()
    load_before = list(os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="inferspeed-startup-") as tmp:
        work = Path(tmp)
        models = build_models(work)
        cases = make_cases(models)
        env = environment(str(work / "pycache") if pycache else None, pythonpath)
        env["INFERSPEED_CACHE_DIR"] = str(work / "shared-cache")
        for case in cases:  # untimed: fills the shared cache (and the bytecode cache)
            run_once(cli, case, env, work)
        times: dict[str, list[float]] = {case.name: [] for case in cases}
        cpu: dict[str, list[float]] = {case.name: [] for case in cases}
        for r in range(runs):
            for case in cases[r % len(cases) :] + cases[: r % len(cases)]:
                wall, used = run_once(cli, case, env, work)
                times[case.name].append(wall)
                cpu[case.name].append(used)
        return {
            "command": cli,
            "pythonpath": pythonpath,
            "python": sys.version.split()[0],
            "bytecode": bytecode_note(env),
            "load_average": load_before,
            "runs": runs,
            "cases": {
                c.name: {
                    "args": ["inferspeed", *c.args],
                    "seconds": times[c.name],
                    "cpu_seconds": cpu[c.name],
                }
                for c in cases
            },
        }


def bytecode_note(env: dict[str, str]) -> str:
    if env.get("PYTHONPYCACHEPREFIX"):
        return "cached (PYTHONPYCACHEPREFIX, warmed)"
    import inferspeed

    cached = (Path(inferspeed.__file__).parent / "__pycache__").is_dir()
    if env.get("PYTHONDONTWRITEBYTECODE") and not cached:
        return "inferspeed's modules compiled at every start (PYTHONDONTWRITEBYTECODE, no __pycache__)"
    return "as this environment caches it"


def report(found: dict[str, Any]) -> str:
    lines = [
        f"command    {' '.join(found['command'])}"
        + (f" (PYTHONPATH={found['pythonpath']})" if found["pythonpath"] else ""),
        f"python     {found['python']}; bytecode: {found['bytecode']}",
        f"load avg   {', '.join(f'{x:.2f}' for x in found['load_average'])} (before)",
        f"runs       {found['runs']} of each case, fixed cost in seconds (run: wall less warm-up and loop)",
        "",
        f"{'case':<20} {'median':>8} {'min':>8} {'max':>8}   {'cpu median':>10}",
    ]
    for name, case in found["cases"].items():
        s = case["seconds"]
        cpu = statistics.median(case["cpu_seconds"])
        lines.append(f"{name:<20} {statistics.median(s):8.3f} {min(s):8.3f} {max(s):8.3f}   {cpu:10.3f}")
    lines.append(f"load avg   {', '.join(f'{x:.2f}' for x in os.getloadavg())} (after)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each case (default 10)")
    parser.add_argument("--json", metavar="PATH", help="also write every time as JSON")
    parser.add_argument(
        "--pycache", action="store_true", help="run with bytecode caching on (a temporary prefix)"
    )
    parser.add_argument(
        "--pythonpath", metavar="DIR", help="import inferspeed from DIR (e.g. an older checkout)"
    )
    args = parser.parse_args()
    found = measure(args.runs, args.pycache, args.pythonpath)
    print(report(found))
    if args.json:
        Path(args.json).write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
