"""``inferspeed tradeoff``: speed against output fidelity for variants of a model.

Each variant (given, or made here: int8 with onnxruntime.quantization, float16 with
onnxruntime.transformers.float16) is measured interleaved with the base in one process, and its
outputs are compared with the base's on the same input sets:

- max and mean absolute error, relative L2 error (||variant - base|| / ||base||) and cosine
  similarity, per output, then the worst over the outputs;
- top-1 agreement for classifier-shaped outputs (2-D [batch, classes >= 2]).

The outputs are compared on FIDELITY_SETS generated input sets, or, with an inputs file
(``Config.inputs_file``, ``--inputs FILE.npz``), on the file's arrays: one input set, the one
measured. ``fidelity_inputs`` says which.

Speedup = base median / variant median, with the interval of the ratio and the verdict from
:func:`inferspeed.analysis.compare.compare`. The Pareto front is drawn among the base and the
variants whose speed differs significantly from the base's (verdict "faster" or "slower"): an
entry is Pareto-optimal when no other of them is both faster and more faithful (lower relative
L2 error). A variant not significantly faster is never marked.

``save``: the variants made here (int8, float16) are written to that folder as
``<stem>.int8-dynamic.onnx``, ``<stem>.int8-static.onnx``, ``<stem>.fp16.onnx``, and each row's
``path`` says where; otherwise they live in a temporary folder and ``path`` is null.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analysis.compare import compare
from ..config import DEFAULT_ROUNDS, Config
from ..errors import ConfigError, InferspeedError, InputError
from ..measure.interleave import measure_interleaved
from ..measure.plan import read_npz
from ..measure.session import Session

__all__ = ["TradeoffResult", "fidelity", "make_variants", "speedup_notes", "tradeoff"]

#: Input sets the outputs are compared on (and the static quantiser calibrates on, unless a
#: calibration file is given).
FIDELITY_SETS = 8


def _quiet_quantizer() -> None:
    # onnxruntime.quantization logs advice on the root logger; the user asked for a variant.
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))


def make_variants(
    base: str,
    workdir: str,
    *,
    quantize: str | None = None,
    fp16: bool = False,
    calibration: Sequence[dict[str, np.ndarray]] | None = None,
) -> list[tuple[str, str, str]]:
    """Variants of ``base`` written to ``workdir``: (label, path, how it was made)."""
    made: list[tuple[str, str, str]] = []
    if quantize is not None:
        from onnxruntime import quantization as q

        _quiet_quantizer()
        out = os.path.join(workdir, _variant_file(base, f"int8-{quantize}"))
        if quantize == "dynamic":
            q.quantize_dynamic(base, out, weight_type=q.QuantType.QInt8)
            made.append(("int8 dynamic", out, "onnxruntime.quantization.quantize_dynamic, QInt8 weights"))
        elif quantize == "static":
            if not calibration:
                raise ConfigError("static quantisation needs calibration inputs")
            batches = list(calibration)

            class Reader(q.CalibrationDataReader):  # type: ignore[misc]
                def __init__(self) -> None:
                    self._it = iter(batches)

                def get_next(self) -> dict[str, np.ndarray] | None:
                    return next(self._it, None)

            q.quantize_static(base, out, Reader(), quant_format=q.QuantFormat.QDQ)
            made.append(
                (
                    "int8 static",
                    out,
                    f"onnxruntime.quantization.quantize_static, {len(batches)} calibration sets",
                )
            )
        else:
            raise ConfigError(f"quantize must be dynamic or static, got {quantize!r}")
    if fp16:
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        out = os.path.join(workdir, _variant_file(base, "fp16"))
        model = convert_float_to_float16(onnx.load(base), keep_io_types=True)
        _sort_nodes(model.graph)
        onnx.save(model, out)
        made.append(("float16", out, "onnxruntime.transformers.float16, float32 inputs and outputs kept"))
    return made


def _subgraph_inputs(node: Any) -> set[str]:
    """The names the nodes of ``node``'s subgraphs (all levels) read."""
    names: set[str] = set()
    for attr in node.attribute:
        for graph in [attr.g] * attr.HasField("g") + list(attr.graphs):
            for inner in graph.node:
                names |= set(inner.input) | _subgraph_inputs(inner)
    return names


def _sort_nodes(graph: Any) -> None:
    """Order ``graph``'s nodes so that each comes after the nodes whose outputs it reads, its
    subgraphs' reads included (the float16 converter appends the Casts of the float32 inputs it
    keeps at the end: ONNX Runtime runs that, onnx's checker refuses it); left as it is when no
    such order exists."""
    import copy
    import heapq

    nodes = list(graph.node)
    made = {name: i for i, n in enumerate(nodes) for name in n.output}
    needs = [{made[x] for x in set(n.input) | _subgraph_inputs(n) if x in made} for n in nodes]
    readers: list[list[int]] = [[] for _ in nodes]
    for i, needed in enumerate(needs):
        for j in needed:
            readers[j].append(i)
    waiting = [len(needed) for needed in needs]
    ready = [i for i, w in enumerate(waiting) if w == 0]  # a heap: the file's order where free
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for r in readers[i]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, r)
    if len(order) == len(nodes) and order != list(range(len(nodes))):  # else a cycle: left alone
        kept = [copy.deepcopy(nodes[i]) for i in order]
        del graph.node[:]
        graph.node.extend(kept)


def fidelity(
    base_outputs: Sequence[Sequence[np.ndarray]], outputs: Sequence[Sequence[np.ndarray]]
) -> dict[str, Any]:
    """Error of ``outputs`` against ``base_outputs`` (per input set, per output), worst over
    the outputs: max/mean absolute error, relative L2, cosine similarity, top-1 agreement."""
    max_abs = mean_abs = rel_l2 = 0.0
    cosine = 1.0
    top1: list[float] = []
    for ref_set, out_set in zip(base_outputs, outputs, strict=True):
        for ref, out in zip(ref_set, out_set, strict=True):
            a = np.asarray(ref, dtype=np.float64).ravel()
            b = np.asarray(out, dtype=np.float64).ravel()
            if a.shape != b.shape:
                raise InputError(f"an output's shape differs from the base's: {b.shape} vs {a.shape}")
            diff = np.abs(a - b)
            max_abs = max(max_abs, float(diff.max(initial=0.0)))
            mean_abs = max(mean_abs, float(diff.mean()) if diff.size else 0.0)
            norm = float(np.linalg.norm(a))
            rel_l2 = max(
                rel_l2, float(np.linalg.norm(a - b)) / norm if norm > 0 else float(np.linalg.norm(b))
            )
            nb = float(np.linalg.norm(b))
            if norm > 0 and nb > 0:
                cosine = min(cosine, float(a @ b) / (norm * nb))
            ref_arr = np.asarray(ref)
            if ref_arr.ndim == 2 and ref_arr.shape[1] >= 2:
                top1.append(float((ref_arr.argmax(axis=1) == np.asarray(out).argmax(axis=1)).mean()))
    return {
        "max_abs_error": max_abs,
        "mean_abs_error": mean_abs,
        "relative_l2_error": rel_l2,
        "cosine_similarity": cosine,
        "top1_agreement": float(np.mean(top1)) if top1 else None,
    }


def _outputs(path: str, sets: Sequence[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return [list(sess.run(None, dict(s))) for s in sets]


@dataclass(frozen=True)
class TradeoffResult:
    """The base and each variant (``rows``: latency, speedup with its interval and verdict,
    fidelity, Pareto flag, file), the inputs fidelity was measured on, the --save folder."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    fidelity_inputs: dict[str, Any] = field(default_factory=dict)
    saved_to: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "scenario": "tradeoff",
            "fidelity_inputs": self.fidelity_inputs,
            "saved_to": self.saved_to,
            "variants": self.rows,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, object]) -> TradeoffResult:
        """A trade-off document (``to_dict``'s form, as ``inferspeed tradeoff --json`` writes
        it); KeyError, TypeError or ValueError when it is malformed."""
        data: Any = doc  # JSON: checked by the conversions below
        return cls(
            rows=[dict(row) for row in data.get("variants", [])],
            fidelity_inputs=dict(data.get("fidelity_inputs") or {}),
            saved_to=None if data.get("saved_to") is None else str(data["saved_to"]),
        )


def speedup_notes(found: TradeoffResult) -> list[str]:
    """A line for each variant whose medians (the table's median column) give a speedup
    outside its paired interval: the speedup is the median of the per-round ratios, which a
    machine whose speed moved between rounds does not move, and the medians are pooled over
    every round; the line shows both, so the column and the speedup do not contradict."""
    from ..units import format_duration

    base = next((r for r in found.rows if r.get("reference")), None)
    notes = []
    for r in found.rows:
        pooled, (lo, hi) = r.get("pooled_speedup"), r.get("speedup_ci") or (0.0, 0.0)
        if base is None or r.get("reference") or pooled is None or lo <= pooled <= hi:
            continue
        notes.append(
            f"note: {r['label']}: the medians give {pooled:.2f}x ({format_duration(base['median_ns'])} / "
            f"{format_duration(r['median_ns'])}); its speedup {r['speedup']:.2f}x is the median of the "
            f"per-round ratios over {r.get('rounds')} interleaved rounds: the machine's speed moved "
            "between rounds, which moves the pooled medians and not the paired speedup"
        )
    return notes


#: Verdicts of :func:`inferspeed.analysis.compare.compare` that say the speed differs.
SIGNIFICANT_VERDICTS = ("faster", "slower")


def _pareto(rows: list[dict[str, Any]]) -> None:
    """Mark the Pareto front (``pareto``) among the base and the variants whose speed differs
    significantly from the base's (verdict faster or slower): a variant not significantly
    different is never marked, and cannot push another entry off the front."""
    eligible = [r for r in rows if r["reference"] or r["verdict"] in SIGNIFICANT_VERDICTS]
    for r in rows:
        r["pareto"] = any(r is e for e in eligible) and not any(
            o is not r
            and o["median_ns"] <= r["median_ns"]
            and o["fidelity"]["relative_l2_error"] <= r["fidelity"]["relative_l2_error"]
            and (
                o["median_ns"] < r["median_ns"]
                or o["fidelity"]["relative_l2_error"] < r["fidelity"]["relative_l2_error"]
            )
            for o in eligible
        )


def _save_folder(folder: str, models: Sequence[str], planned: Sequence[str]) -> str:
    """The folder the made variants are saved in (created if missing), absolute; ConfigError when
    it cannot be written or a variant's file would overwrite one of the ``models`` measured."""
    folder = os.path.abspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ConfigError(f"save folder {folder}: is not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".inferspeed-check-"):
            pass
    except OSError as exc:
        raise ConfigError(f"save folder {folder}: cannot write there ({exc.strerror or exc})") from None
    kept = {os.path.realpath(m) for m in models}
    for name in planned:
        if os.path.realpath(os.path.join(folder, name)) in kept:
            raise ConfigError(
                f"saving a variant as {os.path.join(folder, name)} would overwrite a model measured: "
                "save to another folder"
            )
    return folder


def _variant_file(base: str, kind: str) -> str:
    """The file name of a variant of ``base`` made here: ``<stem>.<kind>.onnx``."""
    return f"{os.path.splitext(os.path.basename(base))[0]}.{kind}.onnx"


def _variant_files(base: str, quantize: str | None, fp16: bool) -> list[str]:
    """The names make_variants gives the files of the variants it makes."""
    kinds = ([f"int8-{quantize}"] if quantize is not None else []) + (["fp16"] if fp16 else [])
    return [_variant_file(base, kind) for kind in kinds]


def _fidelity_inputs(cfg: Config, base: Any, sets: int) -> dict[str, Any]:
    """What the outputs were compared on: the user's arrays (``inputs_file``: one input set) or
    generated sets, and where each input's values came from (file, random, constant, range)."""
    sources = {i["name"]: i.get("source") for i in base.model.get("inputs", [])}
    from_file = cfg.inputs_file is not None
    return {
        "source": "file" if from_file else "generated",
        "file": os.path.abspath(cfg.inputs_file) if cfg.inputs_file is not None else None,
        "sets": sets,
        "seed": cfg.seed,
        "inputs": sources,
    }


def _rows(
    entries: Sequence[tuple[str, str, str, str | None]],
    results: Sequence[Any],
    per_round: Sequence[Any],
    sets: Sequence[dict[str, np.ndarray]],
) -> list[dict[str, Any]]:
    """A row per entry (label, path, how, file kept or None): latency, fidelity against the
    base's outputs on ``sets``, and the comparison with the base."""
    base_outputs = _outputs(entries[0][1], sets)
    rows = []
    for i, ((label, path, how, kept), result) in enumerate(zip(entries, results, strict=True)):
        try:
            fid = fidelity(base_outputs, _outputs(path, sets))
        except Exception as exc:  # ORT may reject a variant's inputs: say so
            raise InferspeedError(f"cannot compare the outputs of {label}: {exc}") from None
        row: dict[str, Any] = {
            "label": label,
            "how": how,
            "path": kept,
            "median_ns": result.stats.median_ns,
            "p99_ns": result.stats.p99_ns,
            "fidelity": fid,
            "reference": i == 0,
        }
        if i:
            c = compare(
                results[0], result, baseline_label="base", candidate_label=label,
                rounds=(per_round[0], per_round[i]),
            )  # fmt: skip
            row["speedup"] = 1.0 / c.ratio_median
            row["speedup_ci"] = [1.0 / c.ratio_median_ci[1], 1.0 / c.ratio_median_ci[0]]
            row["verdict"] = c.verdict
            # What the median column gives, beside the paired speedup it may differ from.
            row["pooled_speedup"] = results[0].stats.median_ns / result.stats.median_ns
            row["rounds"] = c.rounds
        else:
            row["speedup"], row["speedup_ci"], row["verdict"] = 1.0, [1.0, 1.0], "reference"
        rows.append(row)
    return rows


def tradeoff(
    base: str | os.PathLike[str],
    variants: Sequence[str | os.PathLike[str]] = (),
    *,
    config: Config | None = None,
    quantize: str | None = None,
    fp16: bool = False,
    calibration_file: str | None = None,
    rounds: int = DEFAULT_ROUNDS,
    save: str | os.PathLike[str] | None = None,
) -> TradeoffResult:
    """Measure ``base`` and its variants interleaved and compare their outputs: on FIDELITY_SETS
    generated input sets, or, when ``config.inputs_file`` is given, on its arrays (one input
    set, the one measured). ``save``: a folder to keep the variants made here in."""
    base_path = os.fspath(base)
    given = [os.fspath(v) for v in variants]
    cfg = config or Config()
    cfg = cfg.replace(input_sets=1 if cfg.inputs_file is not None else FIDELITY_SETS)
    folder = None
    if save is not None:
        folder = _save_folder(os.fspath(save), [base_path, *given], _variant_files(base_path, quantize, fp16))
    with tempfile.TemporaryDirectory(prefix="inferspeed-tradeoff-") as workdir:
        base_session = Session(base_path, cfg)
        sessions = [base_session]
        try:
            sets = [dict(arrays) for arrays in base_session.input_sets]
            calibration = [read_npz(calibration_file)] if calibration_file is not None else sets
            made = make_variants(
                base_path, folder or workdir, quantize=quantize, fp16=fp16, calibration=calibration
            )
            entries = [
                ("base", base_path, "reference", os.path.abspath(base_path)),
                *((os.path.basename(v), v, "given", os.path.abspath(v)) for v in given),
                *((label, path, how, path if folder else None) for label, path, how in made),
            ]
            if len(entries) < 2:
                raise ConfigError("tradeoff needs a variant: give one, or --quantize / --fp16")
            for _, path, _, _ in entries[1:]:
                sessions.append(Session(path, cfg))
            done = measure_interleaved(sessions, rounds, cfg, order="random", seed=cfg.seed)
            results, per_round = done.results, done.per_round
            rows = _rows(entries, results, per_round, sets)
        finally:
            for s in sessions:
                s.close()
    _pareto(rows)
    return TradeoffResult(rows, _fidelity_inputs(cfg, results[0], len(sets)), folder)
