"""A corpus of models nobody here wrote, each run with ``inferspeed run MODEL`` and no input flag.

The models come from the installed ``onnx`` package and are generated locally (nothing is
downloaded):

- ``node``: ONNX's backend node tests, regenerated from their test-case code
  (``onnx.backend.test.case.node.collect_testcases()``: each test's model and its real inputs);
- ``simple``: the model tests of ``onnx.backend.test.case.model`` (sequences, strings, ...);
- ``pytorch-converted``, ``pytorch-operator``, ``light``: the model sets the wheel ships
  under ``onnx/backend/test/data`` (the ``light`` models have no inputs saved);
- ``ml``: classic-ML conversions (ZipMap outputs, string inputs, a DictVectorizer's map input,
  LightGBM, XGBoost) made by ``bench/corpus_ml.py`` in a side venv that has skl2onnx and
  onnxmltools (``$INFERSPEED_CORPUS_VENV``, else ``/work/corpus-venv``); skipped with a line
  saying so when it is missing.

Models and inputs are written once into a cache folder (``--cache-dir``, default
``$INFERSPEED_CACHE_DIR/corpus``, else ``~/.cache/inferspeed/corpus``), in onnx's layout:
``onnx-VERSION/SET/NAME/model.onnx`` and ``.../test_data_set_0/input_J.pb`` (``ml/NAME/...``).

Each model runs as ``inferspeed run MODEL -t 0.05 --warmup 0 --threads 1 -q`` in a subprocess
with a timeout; the outcome is measured (exit 0), an error (exit 2, one stderr line), an error
of several lines, a traceback (exit 1), a crash (a signal) or a hang (the timeout). Each
failure is then checked against ONNX Runtime's CPU provider (the Python ``onnxruntime``) fed
the model's own test inputs: ORT cannot run it either, or ORT runs it and inferspeed fails,
and then of which kind (from the error line and the model's ops and input types).

    python bench/corpus.py --jobs 2                  # the whole corpus, 16-27 minutes here
    python bench/corpus.py --only 'test_top*' --jobs 2
    python bench/corpus.py --sample 40 --seed 1 --json rows.json
    python bench/corpus.py --table-from rows.json     # the table of a --json file again

The acceptance target: at least 95% of the models ORT can run measured with no flag, and no
traceback, crash or hang. ``tests/test_corpus.py`` runs a fixed sample of the corpus.
"""

from __future__ import annotations

import argparse
import collections
import fnmatch
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
#: Each run's flags: a short measurement (the time is needed, not its precision) on one thread.
RUN_FLAGS = ("-t", "0.05", "--warmup", "0", "--threads", "1", "--quiet")
RUN_TIMEOUT_S = 120.0
ORT_TIMEOUT_S = 120.0
FAILURES = ("error", "error, several lines", "traceback", "crash", "hang", "other exit")


@dataclass(frozen=True)
class Entry:
    """One model of the corpus: ``folder/model.onnx`` once ``make`` has run."""

    set: str
    name: str
    folder: Path
    make: Callable[[Path], None] | None = None  # writes the folder; None: it exists already

    @property
    def label(self) -> str:
        return f"{self.set}/{self.name}"

    def path(self) -> Path:
        model = self.folder / "model.onnx"
        if not model.exists() and self.make is not None:
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=self.folder.parent, prefix=".part-"))
            self.make(tmp)
            if self.folder.exists():  # another process wrote it meanwhile
                shutil.rmtree(tmp)
            else:
                os.replace(tmp, self.folder)
        return model


def default_cache_dir() -> Path:
    base = os.environ.get("INFERSPEED_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "inferspeed"
    )
    return Path(base) / "corpus"


# -- the corpus -----------------------------------------------------------------------------


def _value_proto(value: Any, value_info: Any) -> Any:
    """``value`` as the proto onnx's test data uses for a graph input of ``value_info``'s type
    (as ``onnx.backend.test.cmd_tools`` writes them)."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    kind = value_info.type.WhichOneof("value")
    name = value_info.name
    if kind == "map_type":
        return numpy_helper.from_dict(value, name)
    if kind == "sequence_type":
        return numpy_helper.from_list(value, name)
    if kind == "optional_type":
        return numpy_helper.from_optional(value, name)
    if isinstance(value, TensorProto):
        return value
    return numpy_helper.from_array(np.asarray(value), name)


def _writer(model: Any, inputs: list[Any]) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        (folder / "model.onnx").write_bytes(model.SerializeToString())
        data = folder / "test_data_set_0"
        data.mkdir()
        for j, (value, info) in enumerate(zip(inputs, model.graph.input, strict=False)):
            (data / f"input_{j}.pb").write_bytes(_value_proto(value, info).SerializeToString())

    return write


def _from_test_cases(root: Path, set_name: str, cases: Iterable[Any]) -> list[Entry]:
    entries = []
    for case in cases:
        if case.model is None or not case.data_sets:
            continue  # a "real" case: a URL to download
        inputs = list(case.data_sets[0][0])
        entries.append(Entry(set_name, case.name, root / set_name / case.name, _writer(case.model, inputs)))
    return entries


def _generated(root: Path) -> list[Entry]:
    """The node and simple-model tests, from onnx's test-case code (the models are built in
    memory here and written to the cache only when used)."""
    import numpy as np
    from onnx.backend.test.case import model as model_cases
    from onnx.backend.test.case import node as node_cases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # the test-case code divides by zero on purpose
        nodes = node_cases.collect_testcases()
        simple = model_cases.collect_testcases()
    return _from_test_cases(root, "node", nodes) + _from_test_cases(root, "simple", simple)


def _bundled(root: Path, taken: set[str]) -> list[Entry]:
    """The model sets the onnx wheel ships, used where they lie (``real`` is URLs only)."""
    import onnx

    data = Path(onnx.__file__).parent / "backend" / "test" / "data"
    entries = []
    for set_name in ("simple", "pytorch-converted", "pytorch-operator"):
        for folder in sorted((data / set_name).glob("*/model.onnx")):
            entry = Entry(set_name, folder.parent.name, folder.parent)
            if entry.label not in taken:
                entries.append(entry)
    for model in sorted((data / "light").glob("light_*.onnx")):

        def write(folder: Path, source: Path = model) -> None:
            shutil.copyfile(source, folder / "model.onnx")

        entries.append(Entry("light", model.stem, root / "light" / model.stem, write))
    return entries


def ml_venv_python() -> Path | None:
    venv = Path(os.environ.get("INFERSPEED_CORPUS_VENV", "/work/corpus-venv"))
    python = venv / "bin" / "python"
    return python if python.exists() else None


def _ml(root: Path, log: Callable[[str], None]) -> list[Entry]:
    """The classic-ML conversions, made once by ``bench/corpus_ml.py`` in the side venv."""
    folder = root / "ml"
    if not (folder / "done").exists():
        python = ml_venv_python()
        if python is None:
            log("ml: skipped (no side venv with skl2onnx/onnxmltools: set $INFERSPEED_CORPUS_VENV)")
            return []
        cmd = [str(python), str(REPO / "bench" / "corpus_ml.py"), str(folder)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            log(f"ml: skipped ({python} could not make the models: {last})")
            return []
    return [Entry("ml", m.parent.name, m.parent) for m in sorted(folder.glob("*/model.onnx"))]


def corpus(root: Path, log: Callable[[str], None] = print, ml: bool = True) -> list[Entry]:
    """Every model of the corpus, sorted by label (nothing written yet for generated ones);
    ``ml=False`` leaves out the classic-ML set (it needs the side venv)."""
    import onnx

    made = root / f"onnx-{onnx.__version__}"  # what the installed onnx generates
    entries = _generated(made)
    entries += _bundled(made, {e.label for e in entries})
    if ml:
        entries += _ml(root, log)
    return sorted(entries, key=lambda e: e.label)


def choose(
    entries: list[Entry], only: list[str], limit: int | None, sample: int | None, seed: int
) -> list[Entry]:
    chosen = [e for e in entries if not only or any(fnmatch.fnmatch(e.name, p) or p in e.label for p in only)]
    if sample is not None and sample < len(chosen):
        chosen = sorted(random.Random(seed).sample(chosen, sample), key=lambda e: e.label)
    return chosen[:limit] if limit is not None else chosen


# -- running --------------------------------------------------------------------------------


def _env(cache: Path) -> dict[str, str]:
    """The runs' environment: this one's (so its PYTHONPATH picks the inferspeed they run, as
    for this process), no history, plain output, a cache folder of their own."""
    return {**os.environ, "INFERSPEED_PLAIN": "1", "INFERSPEED_HISTORY": "0",
            "INFERSPEED_CACHE_DIR": str(cache / "inferspeed-cache")}  # fmt: skip


def _outcome(returncode: int, stderr: str) -> str:
    lines = stderr.strip().splitlines()
    if returncode == 0:
        return "measured"
    if returncode < 0:
        return "crash"
    if returncode == 1 or "Traceback (most recent call last)" in stderr:
        return "traceback"
    if returncode == 2:
        return "error" if len(lines) == 1 else "error, several lines"
    return "other exit"


def run_inferspeed(entry: Entry, cache: Path, timeout: float = RUN_TIMEOUT_S) -> dict[str, Any]:
    """``inferspeed run MODEL`` with no input flag, as a row."""
    model = entry.path()
    cmd = [sys.executable, "-m", "inferspeed", "run", str(model), *RUN_FLAGS]
    row: dict[str, Any] = {"model": entry.label, "set": entry.set}
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(cache), start_new_session=True)  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        row.update(outcome="hang", exit=None, error=f"no exit within {timeout:.0f} s")
        return row
    row["seconds"] = round(time.monotonic() - start, 2)
    row["exit"] = proc.returncode
    row["outcome"] = _outcome(proc.returncode, stderr)
    if row["outcome"] == "crash":
        row["error"] = f"killed by {signal.Signals(-proc.returncode).name}"
    elif row["outcome"] != "measured":
        lines = stderr.strip().splitlines()
        row["error"] = lines[-1] if lines else "(no message)"
        row["stderr"] = stderr[-4000:]
    return row


# -- the check against ONNX Runtime ---------------------------------------------------------

#: Input slots whose values are sizes, axes or counts rather than data.
SHAPE_SLOTS = frozenset(
    ("shape", "axes", "k", "repeats", "pads", "starts", "ends", "steps", "split", "sizes", "scales",
     "output_shape", "depth", "axis", "kernel_shape", "block_shape", "input_shape", "num_outputs",
     "reduction_axes", "target_shape")
)  # fmt: skip
#: Input slots whose values index into another input.
INDEX_SLOTS = frozenset(
    ("indices", "index", "position", "positions", "ids", "sequence_lens", "lengths", "target", "labels")
)  # fmt: skip
_ML_DTYPES = {"bfloat16", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
              "float8_e8m0fnu", "int4", "uint4", "int2", "uint2", "float4_e2m1fn"}  # fmt: skip


def _slot(node: Any, index: int, opsets: dict[str, int]) -> str:
    import onnx

    try:
        schema = onnx.defs.get_schema(node.op_type, opsets.get(node.domain, 1), node.domain)
    except Exception:  # an op of a domain onnx does not know (e.g. com.microsoft)
        return "?"
    formal = schema.inputs
    return formal[min(index, len(formal) - 1)].name if formal else "?"


def model_facts(model: Any) -> dict[str, Any]:
    """The graph inputs' kinds and element types, and which op slots they feed (``slots``: every
    input's, ``int_slots``: the integer inputs')."""
    from onnx import helper

    opsets = {o.domain if o.domain != "ai.onnx" else "": o.version for o in model.opset_import}
    init = {i.name for i in model.graph.initializer}
    kinds = {}
    for info in model.graph.input:
        if info.name in init:
            continue
        kind = info.type.WhichOneof("value") or "?"
        if kind == "tensor_type":
            dtype = helper.tensor_dtype_to_string(info.type.tensor_type.elem_type)
            kinds[info.name] = dtype.removeprefix("TensorProto.").lower()
        else:
            kinds[info.name] = kind.removesuffix("_type")
    fed = [(name, f"{node.op_type}.{_slot(node, i, opsets)}") for node in model.graph.node
           for i, name in enumerate(node.input) if name in kinds]  # fmt: skip
    ints = {n for n, k in kinds.items() if re.fullmatch(r"u?int(8|16|32|64)", k)}
    return {
        "inputs": kinds,
        "slots": sorted({slot for _, slot in fed}),
        "int_slots": sorted({slot for name, slot in fed if name in ints}),
        "ops": sorted({n.op_type for n in model.graph.node}),
    }


def _feed_value(proto_bytes: bytes, info: Any) -> tuple[str, Any]:
    import numpy as np
    import onnxruntime as ort
    from onnx import MapProto, OptionalProto, SequenceProto, TensorProto, numpy_helper

    kind = info.type.WhichOneof("value")
    parsers = {"sequence_type": (SequenceProto, numpy_helper.to_list),
               "map_type": (MapProto, numpy_helper.to_dict),
               "optional_type": (OptionalProto, numpy_helper.to_optional)}  # fmt: skip
    if kind in parsers:
        cls, convert = parsers[kind]
        proto = cls()
        proto.ParseFromString(proto_bytes)
        value: Any = convert(proto)
        if kind == "map_type":  # ORT takes plain keys and numbers
            value = {k.decode() if isinstance(k, bytes) else k: v.item() for k, v in value.items()}
        return proto.name, value
    tensor = TensorProto()
    tensor.ParseFromString(proto_bytes)
    array = numpy_helper.to_array(tensor)
    if array.dtype.name in _ML_DTYPES:  # numpy cannot hand these over: ORT takes the bits
        bits = array.view(np.uint16 if array.dtype.itemsize == 2 else np.uint8)
        return tensor.name, ort.OrtValue.ortvalue_from_numpy_with_onnx_type(bits, tensor.data_type)
    return tensor.name, array


def _synthesized(inputs: list[Any]) -> dict[str, Any]:
    """Inputs of the declared static shapes (for models without saved inputs)."""
    import numpy as np
    from onnx import helper

    feeds = {}
    for info in inputs:
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in info.type.tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type)
        feeds[info.name] = np.random.default_rng(0).random(dims).astype(dtype)
    return feeds


def ort_check(folder: Path) -> dict[str, Any]:
    """Whether ONNX Runtime's CPU provider runs the model on its own test inputs."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(folder / "model.onnx"))
    result: dict[str, Any] = {"facts": model_facts(model)}
    init = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    by_name = {i.name: i for i in model.graph.input}
    saved = sorted((folder / "test_data_set_0").glob("input_*.pb"), key=lambda p: int(p.stem[6:]))
    try:
        if saved:
            feeds = {}
            for j, path in enumerate(saved):
                info = inputs[min(j, len(inputs) - 1)]
                name, value = _feed_value(path.read_bytes(), info)
                if name in by_name and by_name[name] is not info:  # saved by name, not position
                    info = by_name[name]
                    name, value = _feed_value(path.read_bytes(), info)
                feeds[name if name in by_name else info.name] = value
        else:
            feeds = _synthesized(inputs)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        session.run(None, feeds)
    except Exception as exc:
        result.update(ort="fails", error=(str(exc).strip().splitlines() or [type(exc).__name__])[0][:500])
    else:
        result["ort"] = "runs"
    return result


def check_with_ort(entry: Entry, timeout: float = ORT_TIMEOUT_S) -> dict[str, Any]:
    """``ort_check`` in a subprocess (ORT may crash or hang on what it cannot run)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--ort-check", str(entry.folder)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ort": "fails", "error": f"ORT: no answer within {timeout:.0f} s"}
    if done.returncode != 0 or not done.stdout.strip():
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return {"ort": "fails", "error": f"ORT check exited {done.returncode}: {last}"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# -- classifying the failures ---------------------------------------------------------------

#: (kind, pattern over inferspeed's error line), tried in order after the model's input kinds.
_KIND_PATTERNS = (
    ("sequence/map/optional input", r"is an? (sequence|map|optional)|only tensor inputs"),
    ("decoder / KV cache", r"KV-cache|decoder|--single-call"),
    ("type refused", r"(unsupported|not supported|cannot (make|fill)|refuse).*\btype\b|element type"),
    ("integer divisor zero", r"(division|modulo) by zero"),
    ("input values out of range", r"out of (data )?bounds|out of range|must be within|invalid ind|"
                                  r"Gather|Scatter|OneHot|Unknown Category"),
)  # fmt: skip
_OUTPUT_SHAPE = r"\boutput\b.*\b(cannot|could not|unknown|bind)\b|preallocat"
_SHAPE = r"shape|axis|axes|dimension|dims|broadcast|size|negative|pads|repeats|split"


def classify(error: str, facts: dict[str, Any]) -> str:
    """The kind of a failure that ORT does not share, from the error line and the model: the
    error's own words first, then the op slots the model's inputs feed (an integer input
    feeding ``axes``, ``k``, ``shape``, ... or any input feeding ``scales``: shape-like)."""
    if any(k in ("sequence", "map", "optional") for k in facts.get("inputs", {}).values()):
        return "sequence/map/optional input"
    for kind, pattern in _KIND_PATTERNS:
        if re.search(pattern, error, re.IGNORECASE):
            return kind
    fed = {s.split(".", 1)[1] for s in facts.get("slots", [])}
    ints = {s.split(".", 1)[1] for s in facts.get("int_slots", [])}
    if fed & SHAPE_SLOTS:
        return "shape-like input"
    if ints & INDEX_SLOTS:
        return "input values out of range"
    if re.search(_OUTPUT_SHAPE, error, re.IGNORECASE):
        return "output shape"
    if ints and re.search(_SHAPE, error, re.IGNORECASE):
        return "shape-like input"
    return "other"


def reclassified(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of a --json file with the kinds of today's ``classify``."""
    return [{**r, "kind": classify(str(r.get("error", "")), r.get("facts", {}))} if r.get("ort") == "runs"
            else r for r in rows]  # fmt: skip


def _ort_status(error: str) -> str:
    found = re.search(r"\[ONNXRuntimeError\] : \d+ : (\w+)", error)
    return found.group(1) if found else (error.split(":")[0][:40] or "?")


def run_one(entry: Entry, cache: Path) -> dict[str, Any]:
    """A model's row: inferspeed's outcome, and for a failure ORT's answer and the kind."""
    try:
        row = run_inferspeed(entry, cache)
    except Exception as exc:  # the model could not even be written: the corpus's fault
        return {"model": entry.label, "set": entry.set, "outcome": "not generated", "error": repr(exc)}
    if row["outcome"] == "measured":
        return row
    checked = check_with_ort(entry)
    row["ort"] = checked["ort"]
    row["facts"] = checked.get("facts", {})
    if checked["ort"] == "runs":
        row["kind"] = classify(str(row.get("error", "")), row["facts"])
    else:
        row["ort_error"] = checked.get("error", "")
        row["kind"] = "ORT: " + _ort_status(row["ort_error"])
    return row


def run_all(entries: list[Entry], cache: Path, jobs: int, progress: bool = False) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for row in pool.map(lambda e: run_one(e, cache), entries):
            rows.append(row)
            if progress and (len(rows) % 50 == 0 or len(rows) == len(entries)):
                took = time.monotonic() - start
                print(f"{len(rows)}/{len(entries)} done, {took:.0f} s", file=sys.stderr, flush=True)
    return rows


# -- the table ------------------------------------------------------------------------------


def _top(counts: collections.Counter[str], n: int = 8) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.most_common(n))


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    measured = sum(r["outcome"] == "measured" for r in rows)
    runnable = measured + sum(r["outcome"] != "measured" and r.get("ort") == "runs" for r in rows)
    counts = collections.Counter(r["outcome"] for r in rows)
    return {"models": len(rows), "measured": measured, "ort_runnable": runnable,
            "share": measured / runnable if runnable else 1.0, "tracebacks": counts["traceback"],
            "crashes": counts["crash"], "hangs": counts["hang"]}  # fmt: skip


def _groups(rows: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {"measured": []}
    for r in rows:
        key = r["outcome"]
        if key == "error":
            key = "error, ORT runs it" if r.get("ort") == "runs" else "error, ORT cannot run it either"
        groups.setdefault(key, []).append(r)
    order = ["measured", "error, ORT runs it", "error, ORT cannot run it either", *FAILURES[1:]]
    return [(k, groups.get(k, [])) for k in order] + [(k, v) for k, v in groups.items() if k not in order]


def _what(outcome: str, rows: list[dict[str, Any]]) -> str:
    if outcome == "measured" or not rows:
        return ""
    if outcome.startswith("error,"):
        return _top(collections.Counter(str(r.get("kind")) for r in rows))
    shown = [f"{r['model']}: {str(r.get('error', ''))[:120]}" for r in rows[:3]]
    return "; ".join(shown) + (f"; and {len(rows) - 3} more" if len(rows) > 3 else "")


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| outcome | models | what |", "|---|---|---|"]
    for outcome, group in _groups(rows):
        what = _what(outcome, group).replace("|", "\\|")
        lines.append(f"| {outcome} | {len(group)} | {what} |")
    lines += ["", "| set | models | measured | ORT-runnable |", "|---|---|---|---|"]
    for name in sorted({r["set"] for r in rows}):
        t = totals([r for r in rows if r["set"] == name])
        lines.append(f"| {name} | {t['models']} | {t['measured']} | {t['ort_runnable']} |")
    t = totals(rows)
    lines += ["", f"{t['models']} models: {t['measured']} of {t['ort_runnable']} ORT-runnable models "
              f"measured with no flag ({100 * t['share']:.1f}%; target 95%); {t['tracebacks']} tracebacks, "
              f"{t['crashes']} crashes, {t['hangs']} hangs."]  # fmt: skip
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=default_cache_dir(), help="where models are written"
    )
    parser.add_argument("--jobs", type=int, default=2, help="models run at once (default 2)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="models whose name matches this glob or whose SET/NAME contains it (repeatable)",
    )
    parser.add_argument("--limit", type=int, help="at most N models (after --only and --sample)")
    parser.add_argument(
        "--sample", type=int, metavar="N", help="a random sample of N models (fixed by --seed)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    parser.add_argument("--json", metavar="OUT", help="also write every model's row as JSON")
    parser.add_argument("--list", action="store_true", help="list the models chosen, run nothing")
    parser.add_argument("--table-from", metavar="JSON", help="print the table of a --json file, run nothing")
    parser.add_argument("--ort-check", metavar="FOLDER", help=argparse.SUPPRESS)
    args = parser.parse_args()  # fmt: skip
    if args.ort_check:
        print(json.dumps(ort_check(Path(args.ort_check))))
        return 0
    if args.table_from:
        print(table(reclassified(json.loads(Path(args.table_from).read_text())["rows"])))
        return 0
    entries = choose(corpus(args.cache_dir, log=lambda s: print(s, file=sys.stderr)),
                     args.only, args.limit, args.sample, args.seed)  # fmt: skip
    if args.list:
        print("\n".join(e.label for e in entries))
        return 0
    print(f"{len(entries)} models; cache {args.cache_dir}", file=sys.stderr)
    rows = run_all(entries, args.cache_dir, args.jobs, progress=True)
    print(f"command: python bench/corpus.py {' '.join(sys.argv[1:])}\n")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"totals": totals(rows), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
