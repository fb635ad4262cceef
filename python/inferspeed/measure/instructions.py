"""The instruction-count metric: a model's calls counted under Valgrind's Callgrind.

:func:`count_instructions` re-executes the measurement in a child process under ``valgrind
--tool=callgrind`` (:mod:`inferspeed.measure.instructions_child` is the child), with instrumentation off
until the counted calls begin and collection on only around each counted call: with the
client requests of ``valgrind/callgrind.h`` when the core was built with them
(``CALLGRIND_START_INSTRUMENTATION`` before the warm-up, ``CALLGRIND_TOGGLE_COLLECT`` around
each call, ``CALLGRIND_DUMP_STATS_AT`` after it), else with ``--toggle-collect`` and
``--dump-after`` on the core's exported ``inferspeed_counted_call`` (everything instrumented:
slower). Each counted call is one Callgrind dump; its ``summary:`` line holds the call's
instructions (Ir), data reads and writes, and the misses of a simulated cache hierarchy of
fixed sizes (:data:`CACHE`, the same on every machine). Collection is per thread, so only the
calling thread is counted: the session has one intra-op thread, sequential execution and no
spinning (the metric refuses other settings; with more threads, even Callgrind's totals over
every thread vary several-fold between calls). While the child runs, the parent follows it
(the ``counting``, ``counting_session`` and ``counted`` events): an estimate of the time from
the model's MACs, then from its first run's time, then from the counted calls' own. See
docs/instructions.md.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import _core
from .. import errors as _errors
from ..config import Config
from ..errors import ValgrindError
from ..events import emit
from ..results.result import Result

__all__ = [
    "CACHE",
    "CYCLE_FORMULA",
    "INSTALL_HINT",
    "count_instructions",
    "cycles_estimate",
    "estimate_seconds",
    "find_valgrind",
    "read_dump",
    "valgrind_command",
]

#: The simulated caches (size in bytes, associativity, line size), fixed rather than read from
#: the machine (Callgrind's default), so that the miss counts compare across machines.
CACHE = {"I1": (32768, 8, 64), "D1": (32768, 8, 64), "LL": (8 << 20, 16, 64)}
#: KCachegrind's cycle estimate without branch simulation: an L1 miss costs ~10 cycles, a
#: last-level miss ~100.
CYCLE_FORMULA = "Ir + 10 * (I1mr + D1mr + D1mw) + 100 * (ILmr + DLmr + DLmw)"
INSTALL_HINT = (
    "install it (Debian/Ubuntu: sudo apt-get install valgrind; Fedora: sudo dnf install valgrind; "
    "without root: conda install -c conda-forge valgrind), or point INFERSPEED_VALGRIND at it"
)
#: The desc line of a dump made by the client request after a counted call.
_REQUEST_TRIGGER = "Client Request: inferspeed counted call"
#: Seconds of a count whatever the model: Valgrind's and Python's start, the imports, the
#: session's creation, Valgrind's exit (3.8-4.6 s for the demo MLP on the 2-vCPU VM of
#: docs/instructions.md).
FIXED_SECONDS = 4.0
#: Seconds of one call under Valgrind: a part per call and one per multiply-accumulate. The
#: first run (uninstrumented) costs about as much as a counted one: Valgrind's translation of
#: the AVX2 kernels dominates. On that VM: 9.3 s a call of a 150 M-MAC conv net (6.2e-8 s per
#: MAC; ``inferspeed run --metric instructions`` of a 4-layer conv net at 224x224), 0.03 s a
#: call of the demo MLP.
CALL_SECONDS = 0.03
MAC_SECONDS = 6.2e-8
#: How often the parent looks for new dumps.
_POLL_SECONDS = 0.5
_FUNCTION = "inferspeed_counted_call"
_DUMP = re.compile(r"callgrind\.out\.(\d+)")


def find_valgrind() -> str:
    """The valgrind executable: $INFERSPEED_VALGRIND, else ``valgrind`` on PATH; ValgrindError
    (one line, how to install it) when there is none."""
    chosen = os.environ.get("INFERSPEED_VALGRIND")
    if chosen:
        if not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
            raise ValgrindError(f"INFERSPEED_VALGRIND={chosen}: not an executable file")
        return chosen
    found = shutil.which("valgrind")
    if found is None:
        raise ValgrindError(f"counting instructions needs Valgrind, which is not on PATH: {INSTALL_HINT}")
    return found


def valgrind_command(valgrind: str, folder: str, client_requests: bool) -> list[str]:
    """The valgrind arguments (without the program) writing its dumps and log to ``folder``."""
    cache = [f"--{name}={','.join(map(str, spec))}" for name, spec in CACHE.items()]
    command = [
        valgrind,
        "--tool=callgrind",
        f"--callgrind-out-file={os.path.join(folder, 'callgrind.out')}",
        f"--log-file={os.path.join(folder, 'valgrind.log')}",
        "--collect-atstart=no",
        "--cache-sim=yes",
        *cache,
        "--dump-line=no",
    ]
    if client_requests:
        command.append("--instr-atstart=no")
    else:
        command += [f"--toggle-collect={_FUNCTION}", f"--dump-after={_FUNCTION}"]
    return command


def read_dump(path: str) -> tuple[str, dict[str, int]]:
    """A Callgrind dump's trigger (its ``desc: Trigger:`` line) and its events' totals (the
    ``summary:`` line, by the names of the ``events:`` line)."""
    trigger, names, values = "", None, None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("desc: Trigger:"):
                trigger = line.split(":", 2)[2].strip()
            elif line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith("summary:") and values is None:
                values = [int(v) for v in line.split()[1:]]
            elif line.startswith("fn=") or (names is not None and values is not None):
                break
    if names is None or values is None:
        raise ValgrindError(f"{path}: not a Callgrind dump (no events or summary line)")
    values += [0] * (len(names) - len(values))  # trailing zeros may be left out
    return trigger, dict(zip(names, values, strict=True))


def _call_dumps(folder: str, client_requests: bool, warmup: int, calls: int) -> list[dict[str, int]]:
    """The counted calls' events, in order, from the dumps in ``folder``."""
    parts = []
    for name in os.listdir(folder):
        m = _DUMP.fullmatch(name)
        if m:
            parts.append((int(m.group(1)), os.path.join(folder, name)))
    dumps = [read_dump(path) for _, path in sorted(parts)]
    if client_requests:
        counted = [events for trigger, events in dumps if trigger == _REQUEST_TRIGGER]
    else:  # a dump after every call through the function, the warm-up's first
        counted = [events for trigger, events in dumps if _FUNCTION in trigger][warmup:]
    if len(counted) != calls:
        raise ValgrindError(f"Callgrind wrote {len(counted)} dumps of counted calls, not {calls}")
    return counted


def cycles_estimate(events: Mapping[str, float]) -> float | None:
    """:data:`CYCLE_FORMULA` of one call's events; None without the cache simulation's."""
    needed = ("Ir", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw")
    if not all(k in events for k in needed):
        return None
    l1 = events["I1mr"] + events["D1mr"] + events["D1mw"]
    ll = events["ILmr"] + events["DLmr"] + events["DLmw"]
    return float(events["Ir"] + 10 * l1 + 100 * ll)


def _summary(counted: Sequence[Mapping[str, int]]) -> dict[str, Any]:
    """Per-call events, their medians, the spread of the instructions across calls."""
    names = list(counted[0])
    per_call = {name: [int(c.get(name, 0)) for c in counted] for name in names}
    median = {name: float(np.median(values)) for name, values in per_call.items()}
    ir = per_call["Ir"]
    cycles = [cycles_estimate(c) for c in counted]
    return {
        "instructions": median["Ir"],
        "min": min(ir),
        "max": max(ir),
        "spread": (max(ir) - min(ir)) / median["Ir"] if median["Ir"] else 0.0,
        # Robust to the odd call that does extra work (one call in 50 here, +11%).
        "mad": float(np.median(np.abs(np.asarray(ir) - median["Ir"]))) / median["Ir"]
        if median["Ir"]
        else 0.0,
        "events": names,
        "median": median,
        "per_call": per_call,
        "estimated_cycles": None if None in cycles else float(np.median([c or 0.0 for c in cycles])),
        "cycle_formula": CYCLE_FORMULA,
    }


def _isa(guest: Sequence[str]) -> dict[str, Any]:
    """What ONNX Runtime saw of the CPU under Valgrind against this machine, and what that means."""
    host = list(_core.cpu_extensions())
    best = next((x for x in ("avx2", "avx", "sse4.2") if x in guest), "SSE2")
    note = (
        f"Valgrind does not emulate AVX-512: ONNX Runtime ran its {best.upper()} (or lower) kernels. "
        "The count is a stable signal that the work changed, not the production latency"
    )
    if "avx512f" in host:
        note += "; this machine has AVX-512, so its native runs use other kernels than the counted ones"
    return {"guest": list(guest), "host": host, "note": note}


def _launch(command: list[str], folder: str, follow: Callable[[], None]) -> tuple[int, float]:
    """Run the child under Valgrind, calling ``follow`` every half second while it runs; (its
    exit status, the monotonic time it was started)."""
    env = dict(os.environ)
    # The folder that holds the inferspeed package (measure/ -> inferspeed/ -> it).
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    launched = time.monotonic()
    with open(os.path.join(folder, "stderr"), "wb") as err:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=env)
        try:
            while True:
                try:
                    status = proc.wait(timeout=_POLL_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    follow()
        except BaseException:  # Ctrl-C, SIGTERM: no orphan left under Valgrind
            proc.kill()
            proc.wait()
            raise
    return status, launched


def estimate_seconds(macs: int | None, calls: int, warmup: int, first_runs: int = 2) -> float | None:
    """About how long a count takes on a machine like the one of docs/instructions.md:
    ``calls`` counted calls after ``warmup`` uncounted ones and the session's ``first_runs``
    (its Run and one bound call per input set), for a model of ``macs`` multiply-accumulates
    per call; None when they are unknown."""
    if not macs:
        return None
    return FIXED_SECONDS + (first_runs + warmup + calls) * (CALL_SECONDS + MAC_SECONDS * macs)


def _macs_before(path: str, cfg: Config) -> int | None:
    """The model's MACs at the sizes a run binds first (for the estimate only); None when
    unknown, or when the sizes cannot be planned (the child then says why)."""
    from ..errors import InferspeedError
    from ..facts.modelfile import count_macs
    from .plan import shapes_for_file

    try:
        shapes, _, _ = shapes_for_file(path, cfg)
        total = count_macs(path, shapes).get("total")
    except (InferspeedError, OSError, ValueError):
        return None
    return int(total) if total else None


class _Follower:
    """A count in progress seen from the parent: the child's ``ready`` file (the session is
    made: its first run's time estimates a call's) and the dumps of counted calls, told as the
    ``counting_session`` and ``counted`` events."""

    def __init__(self, folder: str, calls: int, warmup: int, client_requests: bool) -> None:
        self.folder, self.calls, self.warmup = folder, calls, warmup
        self.uncounted_dumps = 0 if client_requests else warmup  # the fallback dumps those too
        self.created: float | None = None
        self.done = 0

    def __call__(self) -> None:
        if self.created is None:
            self._ready()
        dumps = sum(1 for name in os.listdir(self.folder) if _DUMP.fullmatch(name))
        done = max(0, min(self.calls, dumps - self.uncounted_dumps))
        if done <= self.done:
            return
        self.done = done
        per_call = (time.monotonic() - self.created) / (self.warmup + done) if self.created else None
        left = per_call * (self.calls - done) if per_call is not None else None
        emit("counted", done=done, calls=self.calls, call_s=per_call, left_s=left)

    def _ready(self) -> None:
        import json

        try:
            with open(os.path.join(self.folder, "ready"), encoding="utf-8") as f:
                ready = json.load(f)
        except (OSError, ValueError):
            return
        self.created = float(ready["created"])
        first = ready["first_run_ns"] / 1e9
        emit("counting_session", first_run_s=first, left_s=(self.warmup + self.calls) * first)


def _tail(path: str, lines: int = 6) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return " | ".join(line.strip() for line in f.read().splitlines()[-lines:] if line.strip())
    except OSError:
        return ""


def _child_output(folder: str, status: int) -> dict[str, Any]:
    """The child's JSON, or the error it reported (raised as its own class), or ValgrindError."""
    import json

    try:
        with open(os.path.join(folder, "out.json"), encoding="utf-8") as f:
            out: dict[str, Any] = json.load(f)
    except (OSError, ValueError):
        said = _tail(os.path.join(folder, "stderr")) or _tail(os.path.join(folder, "valgrind.log"))
        raise ValgrindError(f"the counting process under Valgrind failed (exit {status}): {said}") from None
    error = out.get("error")
    if error:
        cls = getattr(_errors, str(error.get("type")), None)
        if not (isinstance(cls, type) and issubclass(cls, _errors.InferspeedError)):
            cls = _errors.InferspeedError
        raise cls(error.get("message", "the counting process failed"))
    return out


def _instructions_config(config: Config | None, options: Mapping[str, Any]) -> Config:
    """The Config of a count: metric "instructions", one intra-op thread, no spinning."""
    merged = Config.from_options(config, **options)
    changes: dict[str, Any] = {"metric": "instructions"}
    if merged.threads is None:
        changes["threads"] = 1
    if merged.spin is None and not any(k.endswith(".allow_spinning") for k in merged.session_config):
        changes["spin"] = False
    return merged.replace(**changes)


def _model_file(model: Any, folder: str) -> str:
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        from ..facts.modelfile import check_model_path

        check_model_path(path)
        return os.path.abspath(path)
    from ..facts.modelfile import serialized_model

    data = serialized_model(model)
    path = os.path.join(folder, "model.onnx")
    with open(path, "wb") as f:
        f.write(data)
    return path


def count_instructions(
    model: Any, config: Config | None = None, *, client_requests: bool | None = None, **options: Any
) -> Result:
    """Count the instructions of ``model``'s calls under Valgrind's Callgrind and return the
    :class:`Result` (its ``instructions``). ``config`` / ``options`` as for
    :func:`inferspeed.benchmark`; ``iterations`` counted calls (default 10) after
    ``warmup_iterations`` uncounted ones (default 2). ``client_requests``: bracket the calls
    with Callgrind's client requests (default: when the core was built with them) rather than
    ``--toggle-collect`` on the core's call function. Raises ValgrindError without Valgrind."""
    cfg = _instructions_config(config, options)
    valgrind = find_valgrind()
    requests = _core.callgrind_client_requests() if client_requests is None else client_requests
    if requests and not _core.callgrind_client_requests():
        raise ValgrindError("this build of inferspeed's core has no Callgrind client requests")
    folder = tempfile.mkdtemp(prefix="inferspeed-callgrind-")
    try:
        path = _model_file(model, folder)
        spec = {
            "model": path,
            "config": cfg,
            "client_requests": requests,
            "ready": os.path.join(folder, "ready"),
        }
        with open(os.path.join(folder, "spec"), "wb") as f:
            pickle.dump(spec, f)
        command = valgrind_command(valgrind, folder, requests)
        program = [sys.executable, "-m", "inferspeed.measure.instructions_child"]
        out_file = os.path.join(folder, "out.json")
        warmup, calls = int(cfg.warmup_limits[0] or 0), int(cfg.loop_limits[0] or 0)
        macs = _macs_before(path, cfg)
        name = "<in-memory>" if path.startswith(folder) else os.path.basename(path)
        estimate = estimate_seconds(macs, calls, warmup, 1 + cfg.input_sets)
        emit("counting", model=name, calls=calls, warmup=warmup, macs=macs, estimate_s=estimate)
        follow = _Follower(folder, calls, warmup, requests)
        status, launched = _launch(
            [*command, *program, os.path.join(folder, "spec"), out_file], folder, follow
        )
        ended = time.monotonic()
        follow()  # the calls counted since the last look
        out = _child_output(folder, status)
        counted = _call_dumps(folder, requests, warmup, calls)
        version = _valgrind_version(_tail(os.path.join(folder, "valgrind.log"), 200))
        shown = [os.path.basename(valgrind), *(a.replace(folder, "DIR") for a in command[1:])]
        run = {"command": shown, "launched": launched, "ended": ended, "estimate": estimate}
        if path.startswith(folder):  # an in-memory model: named so, its file about to go
            out = {**out, "model": {**out["model"], "path": None, "name": "<in-memory>"}}
        return _result(cfg, out, counted, run, version, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _threads(cfg: Config) -> dict[str, Any]:
    """The threads of the counted session, as it was made: intra-op and inter-op threads (None:
    ONNX Runtime's default), the execution mode, whether the pools spin."""
    allow = cfg.ort_session_config.get("session.intra_op.allow_spinning", "1")  # ORT spins by default
    return {
        "intra_op": cfg.threads,
        "inter_op": cfg.inter_op_threads,
        "execution_mode": cfg.execution_mode,
        "spinning": allow != "0",
    }


def _valgrind_version(log: str) -> str | None:
    m = re.search(r"Using Valgrind-([\w.]+)", log)
    return m.group(1) if m else None


def _times(out: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, float]:
    """Where the run's time went, in seconds: Valgrind's and Python's start up to our module,
    the imports, the session (creation, inputs, first run), the counted calls (with their
    warm-up and the start of instrumentation), the rest (Valgrind's exit, reading the dumps);
    and the total estimated before the start (from the model's MACs; None when unknown)."""
    t = out["times"]
    return {
        "valgrind_start": round(t["started"] - run["launched"], 3),
        "imports": round(t["imported"] - t["started"], 3),
        "session": round(t["created"] - t["imported"], 3),
        "counted_calls": round(t["counted"] - t["created"], 3),
        "after": round(run["ended"] - t["counted"], 3),
        "total": round(run["ended"] - run["launched"], 3),
        "estimated": None if run.get("estimate") is None else round(run["estimate"], 1),
    }


def _result(
    cfg: Config,
    out: Mapping[str, Any],
    counted: Sequence[Mapping[str, int]],
    run: Mapping[str, Any],
    version: str | None,
    path: str,
) -> Result:
    from ..facts.environment import capture_environment
    from ..facts.modelfile import count_macs
    from ..facts.ortlib import load_runtime
    from ..stats.summary import summarize

    warmup, _ = cfg.warmup_limits
    calls = len(counted)
    block = _summary(counted)
    block.update(
        calls=calls,
        warmup_calls=warmup,
        threads=_threads(cfg),
        cpu=_isa(out.get("guest_cpu", [])),
        valgrind={
            "version": version,
            "tool": "callgrind",
            "client_requests": out["client_requests"],
            "cache": {
                name: {"bytes": s, "ways": w, "line_bytes": line} for name, (s, w, line) in CACHE.items()
            },
            "command": run["command"],
        },
        time_s=_times(out, run),
    )
    model = out["model"]
    shapes = {i["name"]: i["bound_shape"] for i in model.get("inputs", [])}
    macs = count_macs(path, shapes)
    compute = (
        {"macs": int(macs["total"]), "macs_by_op_type": macs["by_op_type"]} if macs.get("total") else None
    )
    samples = np.asarray(out["ns"], dtype=np.int64)
    t = block["threads"]
    notice = (
        f"instructions counted under Valgrind's Callgrind: {calls} calls after {warmup} uncounted, "
        f"{t['intra_op']} intra-op thread, {t['execution_mode']} execution, "
        f"{'spinning' if t['spinning'] else 'no spinning'}; the times are Valgrind's, not latencies"
    )
    return Result(
        samples_ns=samples,
        stats=summarize(samples),
        model=model,
        config=cfg.to_dict(),
        environment=capture_environment(load_runtime(cfg.ort_lib)),
        session={**out["session"], "under_valgrind": True},
        warmup={"iterations": warmup, "counted": False},
        loop={"metric": "instructions", "mode": out["mode"], "calls": calls, "input_sets": cfg.input_sets},
        notices=(*out.get("notices", ()), notice),
        compute=compute,
        instructions=block,
    )
