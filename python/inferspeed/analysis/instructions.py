"""Comparison of instruction counts (``metric="instructions"``): a ratio of two deterministic
counts, no statistics of noise. The gate fails when the candidate needs more than
``fail_if_more`` more instructions per call than the baseline.

Each count is the median over its counted calls, which the odd call that does extra work does
not move; a difference within three times the larger median absolute deviation of the two
runs' calls, and below 0.1% in any case, is "no difference". The spread across calls (max -
min) is reported beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ConfigError
from ..results.result import Result

__all__ = [
    "InstructionComparison",
    "compare_instructions",
    "differences",
    "environment_differences",
]

#: A difference below this is "no difference" even when both runs' calls agree exactly.
MIN_DIFFERENCE = 0.001


@dataclass(frozen=True)
class InstructionComparison:
    """The candidate's instructions per call against the baseline's."""

    #: The metric of the results compared (a row of ``inferspeed.metrics.METRICS``).
    metric: ClassVar[str] = "instructions"

    baseline: str
    candidate: str
    baseline_instructions: float
    candidate_instructions: float
    ratio: float
    #: The larger of the two runs' spreads across calls ((max - min) / median).
    spread: float
    #: The larger of the two runs' median absolute deviations across calls, over the median.
    mad: float = 0.0
    fail_if_more: float | None = None
    #: What differs between the two runs besides the model (ORT version, CPU, settings).
    notes: tuple[str, ...] = ()
    baseline_cycles: float | None = None
    candidate_cycles: float | None = None

    @property
    def verdict(self) -> str:
        change = self.ratio - 1.0
        if abs(change) <= max(3.0 * self.mad, MIN_DIFFERENCE):
            return "no difference"
        return "more instructions" if change > 0 else "fewer instructions"

    @property
    def failed(self) -> bool:
        """More instructions than the baseline by more than ``fail_if_more``."""
        return self.fail_if_more is not None and self.worse_by_more_than(self.fail_if_more)

    def worse_by_more_than(self, fraction: float) -> bool:
        """What a gate fails on, whatever the metric: more instructions per call than the
        baseline by more than ``fraction`` (a count is deterministic: no test of noise)."""
        return self.ratio > 1.0 + fraction

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "baseline_instructions": self.baseline_instructions,
            "candidate_instructions": self.candidate_instructions,
            "ratio": self.ratio,
            "spread": self.spread,
            "mad": self.mad,
            "baseline_estimated_cycles": self.baseline_cycles,
            "candidate_estimated_cycles": self.candidate_cycles,
            "verdict": self.verdict,
            "fail_if_more": self.fail_if_more,
            "failed": self.failed,
            "notes": list(self.notes),
        }


def environment_differences(a: Result, b: Result) -> list[str]:
    """What differs between the two counts' runtimes, each a note: the ONNX Runtime version,
    the CPU extensions ONNX Runtime saw under Valgrind (its kernels)."""
    ia, ib = a.instructions or {}, b.instructions or {}
    notes = []
    va = a.environment.get("onnxruntime", {}).get("version")
    vb = b.environment.get("onnxruntime", {}).get("version")
    if va != vb:
        notes.append(f"ONNX Runtime {va} against {vb}: the count includes the runtime's own work")
    ga, gb = ia.get("cpu", {}).get("guest"), ib.get("cpu", {}).get("guest")
    if ga != gb:
        notes.append(f"ONNX Runtime saw other CPU extensions ({ga} against {gb}): other kernels ran")
    return notes


def differences(a: Result, b: Result) -> list[str]:
    """What differs between two counts besides the model, each a note: the runtime's
    (:func:`environment_differences`), the call mode, the bound input shapes."""
    notes = environment_differences(a, b)
    if a.loop.get("mode") != b.loop.get("mode"):
        notes.append(f"call mode {a.loop.get('mode')} against {b.loop.get('mode')}")
    if _shapes(a.model) != _shapes(b.model):
        notes.append(f"input shapes {_shapes(a.model)} against {_shapes(b.model)}")
    return notes


def _shapes(model: Mapping[str, Any]) -> dict[str, Any]:
    return {i.get("name"): i.get("bound_shape") for i in model.get("inputs", [])}


def compare_instructions(
    a: Result,
    b: Result,
    *,
    fail_if_more: float | None = None,
    baseline_label: str = "baseline",
    candidate_label: str = "candidate",
) -> InstructionComparison:
    """``b``'s instructions per call against ``a``'s; ConfigError unless both are counts."""
    if a.instructions is None or b.instructions is None:
        raise ConfigError(
            "an instruction count compares only with another instruction count (--metric instructions), "
            "not with a latency measurement"
        )
    ia, ib = a.instructions or {}, b.instructions or {}
    base, cand = float(ia["instructions"]), float(ib["instructions"])
    if base <= 0:
        raise ConfigError(f"{baseline_label}: no instructions counted")
    return InstructionComparison(
        baseline=baseline_label,
        candidate=candidate_label,
        baseline_instructions=base,
        candidate_instructions=cand,
        ratio=cand / base,
        spread=max(float(ia.get("spread", 0.0)), float(ib.get("spread", 0.0))),
        mad=max(float(ia.get("mad", 0.0)), float(ib.get("mad", 0.0))),
        fail_if_more=fail_if_more,
        notes=tuple(differences(a, b)),
        baseline_cycles=ia.get("estimated_cycles"),
        candidate_cycles=ib.get("estimated_cycles"),
    )
