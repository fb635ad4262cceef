"""Do the machine-speed monitor's states match a model's latency states on this machine?

For each model (the demo MLP, a 3x512 MLP at batch 8 on one thread, a one-Add model), one
session runs a closed loop for --seconds in slices of --slice seconds, with a monitor reading
(the core's fixed probe, median of 5 runs) between slices: the same readings a run takes, only
closer together. Per slice it keeps the model's median and the probe reading beside it (the
mean of the readings before and after the slice), then prints:

- the correlation of log(probe) with log(model median) over the slices (Pearson and Spearman);
- R²: the share of the variance of log(model median) that the probe's states explain (the
  slices grouped by the probe's state, each group's mean as the prediction);
- the states each series falls into (inferspeed.stats.states.speed_states) and how many slices
  each holds;
- how often a change of the probe's state comes with a change of the model's state at the same
  slice boundary (within one slice), and the other way round;
- the two-way table of "fast" slices: the probe within 10% of its 2nd percentile, the model
  within 15% of its own: how often the model is fast when the probe is, and when it is not.

    python bench/monitor_states.py                  # 60 s per model
    python bench/monitor_states.py --seconds 20 --json out.json

Wrap it in `flock /tmp/bench.lock` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any

import numpy as np

from inferspeed import Session, _core
from inferspeed.facts import models
from inferspeed.measure.loop import sliced_loop
from inferspeed.measure.monitor import Monitor
from inferspeed.stats.states import speed_states, state_changes

#: Model states: slice medians this far apart (relative, sorted) are two states. Slices of a
#: few ms hold hundreds to thousands of calls, so a slice median scatters by 1-2% within a state.
MODEL_GAP = 0.06


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra = np.argsort(np.argsort(a)).astype(np.float64)
    rb = np.argsort(np.argsort(b)).astype(np.float64)
    return float(np.corrcoef(ra, rb)[0, 1])


def _r2_by_state(y: np.ndarray, labels: list[int]) -> float:
    """Share of var(y) that the group means of ``labels`` explain."""
    lab = np.asarray(labels)
    pred = np.empty_like(y)
    for k in set(labels):
        pred[lab == k] = y[lab == k].mean()
    total = float(((y - y.mean()) ** 2).sum())
    return 1.0 - float(((y - pred) ** 2).sum()) / total if total > 0 else float("nan")


def _coincide(changes: list[int], other: list[int]) -> tuple[int, int]:
    """(how many of ``changes`` have a change of ``other`` within one slice, how many in all)."""
    near = set(other) | {i + 1 for i in other} | {i - 1 for i in other}
    return sum(1 for i in changes if i in near), len(changes)


def measure(path: str, threads: int | None, seconds: float, slice_s: float) -> dict[str, Any]:
    options: dict[str, Any] = {} if threads is None else {"threads": threads}
    with Session(path, **options) as session:
        core = session._core  # the prepared core session, timed directly: slices of any length
        mode = _core.CallMode.binding
        core.closed_loop(mode, max_ns=int(0.5e9))  # warm-up

        def loop(n: int | None, s: float | None) -> dict[str, Any]:
            return core.closed_loop(mode, max_iterations=n or 0, max_ns=int((s or 0) * 1e9))

        monitor = Monitor()
        samples, _, _ = sliced_loop(loop, None, seconds, monitor, slice_time=slice_s)
    rec = monitor.record(samples)
    med = np.asarray(rec["slices"]["median_ns"], dtype=np.float64)
    readings = np.asarray(rec["readings_ns"], dtype=np.float64)
    probe = (readings[:-1] + readings[1:]) / 2.0  # the readings either side of each slice
    lm, lp = np.log(med), np.log(probe)
    p_labels, p_levels = speed_states(probe)
    m_labels, m_levels = speed_states(med, MODEL_GAP)
    p_changes, m_changes = state_changes(p_labels), state_changes(m_labels)
    p_fast = probe <= np.percentile(probe, 2) * 1.10
    m_fast = med <= np.percentile(med, 2) * 1.15
    return {
        "slices": int(med.size),
        "slice_s": slice_s,
        "model_median_ns": float(np.median(samples)),
        "pearson": float(np.corrcoef(lp, lm)[0, 1]),
        "spearman": _spearman(lp, lm),
        "r2_probe_states": _r2_by_state(lm, p_labels),
        "probe_levels_ns": [round(v) for v in p_levels],
        "probe_state_slices": [p_labels.count(k) for k in range(len(p_levels))],
        "model_levels_ns": [round(v) for v in m_levels],
        "model_state_slices": [m_labels.count(k) for k in range(len(m_levels))],
        "probe_changes_with_model_change": _coincide(p_changes, m_changes),
        "model_changes_with_probe_change": _coincide(m_changes, p_changes),
        "probe_fast_slices": int(p_fast.sum()),
        "model_fast_when_probe_fast": float(m_fast[p_fast].mean()) if p_fast.any() else None,
        "model_fast_when_probe_slow": float(m_fast[~p_fast].mean()) if (~p_fast).any() else None,
        "per_slice": {"probe_ns": probe.round(1).tolist(), "model_median_ns": med.tolist()},
    }


def _models(folder: str) -> list[tuple[str, str, int | None]]:
    import onnx

    mlp = os.path.join(folder, "mlp512.onnx")
    onnx.save(models.mlp_model(layers=3, width=512, batch=8), mlp)
    add = os.path.join(folder, "add16.onnx")
    onnx.save(models.add_model(width=16), add)
    return [
        ("demo MLP 64 (threads: ORT default)", models.demo_model_path(), None),
        ("MLP 3x512 batch 8, 1 thread", mlp, 1),
        ("one Add [1,16], 1 thread", add, 1),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="per model (default 60)")
    ap.add_argument("--slice", type=float, default=0.05, help="slice length in seconds (default 0.05)")
    ap.add_argument("--json", help="write every figure here")
    args = ap.parse_args(argv)
    out: dict[str, Any] = {"cpu": _cpu(), "results": {}}
    with tempfile.TemporaryDirectory() as folder:
        for name, path, threads in _models(folder):
            r = measure(path, threads, args.seconds, args.slice)
            out["results"][name] = r
            _print(name, r)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)
    return 0


def _print(name: str, r: dict[str, Any]) -> None:
    pc, pn = r["probe_changes_with_model_change"]
    mc, mn = r["model_changes_with_probe_change"]
    median = r["model_median_ns"] / 1e3
    print(f"{name}: {r['slices']} slices of {r['slice_s'] * 1e3:.0f} ms, median {median:.2f} µs")
    print(
        f"  correlation log(probe)~log(model): Pearson {r['pearson']:+.2f}, Spearman {r['spearman']:+.2f}; "
        f"probe states explain R² = {r['r2_probe_states']:.2f} of the model's variance"
    )
    levels = ", ".join(
        f"{v / 1e3:.1f} µs ({n})" for v, n in zip(r["probe_levels_ns"], r["probe_state_slices"], strict=True)
    )
    print(f"  probe states (slices): {levels}")
    levels = ", ".join(
        f"{v / 1e3:.2f} µs ({n})" for v, n in zip(r["model_levels_ns"], r["model_state_slices"], strict=True)
    )
    print(f"  model states (slices): {levels}")
    print(
        f"  probe state changes with a model state change (±1 slice): {pc} of {pn}"
        f"{f' ({pc / pn:.0%})' if pn else ''}; model changes with a probe change: {mc} of {mn}"
        f"{f' ({mc / mn:.0%})' if mn else ''}"
    )
    fast, slow = (_pct(r[k]) for k in ("model_fast_when_probe_fast", "model_fast_when_probe_slow"))
    print(
        f"  probe fast in {r['probe_fast_slices']} of {r['slices']} slices; model fast then: {fast}, "
        f"when the probe is slow: {slow}"
    )
    sys.stdout.flush()


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
