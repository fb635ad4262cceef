"""Ctrl-C (or SIGTERM) at a random point of N runs: does every run exit fast, with a partial
result saved?

Starts ``inferspeed run MODEL -t SECONDS --json FILE`` N times (in its own process group, as a
terminal runs it), waits until the run reports that its warm-up began (``INFERSPEED_EVENTS``:
start-up takes seconds, more on a busy machine, and a signal then stops nothing worth timing),
sends SIGINT to the group at a random moment from there to near the end of the timed loop, and
reports for each run the phase it stopped, the exit status, the time from SIGINT to exit and
whether the JSON file says "interrupted".

    python bench/sigint_exit.py                 # 20 runs of an MLP 3x512, batch 8
    python bench/sigint_exit.py --runs 5 --model m.onnx --seconds 5
    python bench/sigint_exit.py --runs 10 --signal TERM   # as a CI runner or container stop:
                                                          # to the process alone, exit 143
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _wait_for(events: Path, name: str, p: subprocess.Popen[str], timeout: float = 120.0) -> bool:
    """Poll the events file until the run reports ``name`` (True), or ends first (False).
    ``timeout`` only guards against a hang."""
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if events.exists():
            for line in events.read_text(encoding="utf-8").splitlines(keepends=True):
                if line.endswith("\n") and json.loads(line)["event"] == name:
                    return True
        if p.poll() is not None:
            return False
        time.sleep(0.01)
    os.killpg(p.pid, signal.SIGKILL)
    raise SystemExit(f"no {name!r} event within {timeout:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--model", help="ONNX model (default: MLP 3x512, batch 8)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed loop of each run")
    parser.add_argument("--warmup", type=float, default=0.2, help="warm-up of each run (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--signal", choices=["INT", "TERM"], default="INT")
    args = parser.parse_args()
    sig = signal.Signals[f"SIG{args.signal}"]
    expected = 130 if sig == signal.SIGINT else 143
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            import onnx

            from inferspeed.facts.models import mlp_model

            model = str(Path(tmp) / "mlp3.onnx")
            onnx.save(mlp_model(layers=3, width=512, batch=8), model)
        worst, bad = 0.0, 0
        for k in range(args.runs):
            out = Path(tmp) / f"run{k}.json"
            events = Path(tmp) / f"run{k}.events"
            cmd = [
                sys.executable,
                "-m",
                "inferspeed",
                "run",
                model,
                "--warmup",
                str(args.warmup),
                "-t",
                str(args.seconds),
                "--json",
                str(out),
            ]
            p = subprocess.Popen(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
                env={**os.environ, "INFERSPEED_EVENTS": str(events)},
            )
            if not _wait_for(events, "warmup", p):  # it ended (an error) before warming up
                _, err = p.communicate()
                print(f"{k + 1:2d}: exit {p.returncode} before the warm-up: {err.strip()[-200:]}")
                bad += 1
                continue
            # Wall-clock phases: the same share of the run lands in each, however busy the machine.
            delay = rng.uniform(0.0, args.warmup + 0.9 * args.seconds)
            time.sleep(delay)
            sent = time.monotonic()
            if sig == signal.SIGINT:
                os.killpg(p.pid, sig)  # a terminal's Ctrl-C: the whole group
            else:
                p.send_signal(sig)  # a CI runner's or container's stop: the process
            try:
                _, err = p.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                _, err = p.communicate()
            took = time.monotonic() - sent
            doc = json.loads(out.read_text()) if out.exists() else {}
            saved = doc.get("interrupted") is True
            results = doc.get("results") or [{}]
            phase = results[0].get("loop", {}).get("interrupted_in") or "before the first call"
            ok = p.returncode == expected and saved and took < 1.0
            worst, bad = max(worst, took), bad + (not ok)
            last = err.strip().splitlines()[-1] if err.strip() else ""
            timing = f"exit {p.returncode} after {took * 1e3:4.0f} ms"
            where = f"{sig.name} {delay:4.2f}s after the warm-up began (stopped: {phase})"
            print(f"{k + 1:2d}: {where}, {timing}, saved={saved}  {last}")
    summary = f"{args.runs - bad} of {args.runs} runs exited within 1 s with a partial result"
    print(f"{summary}; slowest exit {worst * 1e3:.0f} ms")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
