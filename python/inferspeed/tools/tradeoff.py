"""``inferspeed tradeoff``: speed against output fidelity for variants of a model.

Each variant (given, or made here: int8 with onnxruntime.quantization, float16 with
onnxruntime.transformers.float16) is measured interleaved with the base in one process, and its
outputs are compared with the base's on the same input sets:

- max and mean absolute error, relative L2 error (||variant - base|| / ||base||) and cosine
  similarity, per output, then the worst over the outputs;
- top-1 agreement for classifier-shaped outputs (2-D [batch, classes >= 2]).

Speedup = base median / variant median, with the interval of the ratio from
:func:`inferspeed.analysis.compare.compare`. A variant is Pareto-optimal when no other entry (base
included) is both faster and more faithful (lower relative L2 error).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..analysis.compare import compare
from ..config import DEFAULT_ROUNDS, Config
from ..errors import ConfigError, InferspeedError, InputError
from ..measure.inputs import read_npz
from ..measure.interleave import measure_interleaved
from ..measure.session import Session

__all__ = ["TradeoffResult", "fidelity", "make_variants", "tradeoff"]

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
    stem = os.path.splitext(os.path.basename(base))[0]
    if quantize is not None:
        from onnxruntime import quantization as q

        _quiet_quantizer()
        out = os.path.join(workdir, f"{stem}.int8-{quantize}.onnx")
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

        out = os.path.join(workdir, f"{stem}.fp16.onnx")
        model = convert_float_to_float16(onnx.load(base), keep_io_types=True)
        onnx.save(model, out)
        made.append(("float16", out, "onnxruntime.transformers.float16, float32 inputs and outputs kept"))
    return made


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
    """The base and each variant: latency, speedup with its interval, fidelity, Pareto flag."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": "tradeoff", "variants": self.rows}


def _pareto(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        r["pareto"] = not any(
            o is not r
            and o["median_ns"] <= r["median_ns"]
            and o["fidelity"]["relative_l2_error"] <= r["fidelity"]["relative_l2_error"]
            and (
                o["median_ns"] < r["median_ns"]
                or o["fidelity"]["relative_l2_error"] < r["fidelity"]["relative_l2_error"]
            )
            for o in rows
        )


def tradeoff(
    base: str | os.PathLike[str],
    variants: Sequence[str | os.PathLike[str]] = (),
    *,
    config: Config | None = None,
    quantize: str | None = None,
    fp16: bool = False,
    calibration_file: str | None = None,
    rounds: int = DEFAULT_ROUNDS,
) -> TradeoffResult:
    """Measure ``base`` and its variants interleaved and compare their outputs."""
    base_path = os.fspath(base)
    cfg = (config or Config()).replace(input_sets=FIDELITY_SETS)
    with tempfile.TemporaryDirectory(prefix="inferspeed-tradeoff-") as workdir:
        base_session = Session(base_path, cfg)
        sessions = [("base", base_path, "reference", base_session)]
        try:
            sets = [dict(arrays) for arrays in base_session.input_sets]
            calibration = [read_npz(calibration_file)] if calibration_file is not None else sets
            made = make_variants(base_path, workdir, quantize=quantize, fp16=fp16, calibration=calibration)
            given = [(os.path.basename(os.fspath(v)), os.fspath(v), "given") for v in variants]
            for label, path, how in [*given, *made]:
                sessions.append((label, path, how, Session(path, cfg)))
            if len(sessions) < 2:
                raise ConfigError("tradeoff needs a variant: give one, or --quantize / --fp16")
            results, per_round = measure_interleaved([entry[3] for entry in sessions], rounds, cfg)
            base_outputs = _outputs(base_path, sets)
            rows = []
            for i, ((label, path, how, _), result) in enumerate(zip(sessions, results, strict=True)):
                try:
                    fid = fidelity(base_outputs, _outputs(path, sets))
                except Exception as exc:  # ORT may reject a variant's inputs: say so, keep going
                    raise InferspeedError(f"cannot compare the outputs of {label}: {exc}") from None
                row: dict[str, Any] = {
                    "label": label,
                    "how": how,
                    "median_ns": result.stats.median_ns,
                    "p99_ns": result.stats.p99_ns,
                    "fidelity": fid,
                    "reference": label == "base",
                }
                if label != "base":
                    c = compare(
                        results[0],
                        result,
                        baseline_label="base",
                        candidate_label=label,
                        rounds=(per_round[0], per_round[i]),
                    )
                    row["speedup"] = 1.0 / c.ratio_median
                    row["speedup_ci"] = [1.0 / c.ratio_median_ci[1], 1.0 / c.ratio_median_ci[0]]
                    row["verdict"] = c.verdict
                else:
                    row["speedup"], row["speedup_ci"], row["verdict"] = 1.0, [1.0, 1.0], "reference"
                rows.append(row)
        finally:
            for *_, s in sessions:
                s.close()
    _pareto(rows)
    return TradeoffResult(rows)
