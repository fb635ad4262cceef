"""What a measurement measures, as data: one :class:`Metric` per kind of value a Result holds.

A Result says what it holds by its metric (``Result.metric``, the ``metric`` of its
configuration): wall-clock latency samples, or instruction counts under Valgrind; the
generation of a decoder (time to first token, time per output token) is the third row: its
samples are the decode steps' latencies, so what compares and gates latencies applies to them.
Everything a command needs to know about a metric is read from its row here: the unit and
how a value reads, whether it is deterministic (measured once per side and compared without
interleaved rounds), which threshold a gate takes, what a sweep may rank cells by, which
configuration it cannot combine with, and its default number of calls. The functions that
measure, compare and render a metric are found by its name in one table per layer
(``measure.benchmark``, ``analysis.verdicts``, ``report.text``); no command branches on the
metric's name.

Like pyperf's table of units and formatters, this keeps ``run``, ``gate``, ``compare``,
``sweep`` and the reports free of "if the metric is X" branches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .errors import ConfigError
from .units import format_duration

__all__ = ["DEFAULT_METRIC", "METRICS", "Metric", "Ranking", "metric_named", "rankings", "threshold_mismatch"]


@dataclass(frozen=True)
class Ranking:
    """What a sweep may rank its cells by: a value of a cell's result (its JSON form, keys
    ``path``), per item of the cell's batch (times and counts divided by the batch, rates
    multiplied by it), lower or higher being better."""

    name: str
    path: tuple[str, ...]
    higher_is_better: bool = False

    def per_item(self, value: float, batch: int) -> float:
        """``value`` of a whole call of ``batch`` items, per item."""
        return value * batch if self.higher_is_better else value / batch

    def sort_key(self, value: float | None, batch: int) -> float:
        """A key that sorts the best cell first (a cell without the value last)."""
        if value is None:
            return float("inf")
        item = self.per_item(float(value), batch)
        return -item if self.higher_is_better else item


@dataclass(frozen=True)
class Metric:
    """One metric: what its values are and what the commands do with them.

    Attributes
    ----------
    name : str
        The ``metric`` of a Config and of the flag ``--metric``.
    unit : str
        The unit of its headline value: "ns" or "instructions".
    noun : str
        The headline value in words ("latency", "instructions per call").
    headline : tuple of str
        Keys of the headline value in a result's JSON form.
    format : callable
        A value of the unit as people read it.
    deterministic : bool
        The same measurement gives the same value whatever the machine does (instruction
        counts): each side is measured once and compared without interleaved rounds, the
        sides may be measured one after the other, and a saved result compares directly.
    threshold : str
        The gate option (keyword argument; flag with dashes) that fails a candidate that is
        worse by more than a fraction: ``fail_if_slower`` or ``fail_if_more``.
    rankings : tuple of Ranking
        What a sweep may rank cells by; the first is the default.
    in_session : bool
        ``Session.measure()`` measures it in this process; otherwise only
        ``inferspeed.benchmark()`` does (it needs a process of its own).
    default_calls : tuple of (int, int) or None
        (warm-up calls, measured calls) when the config sets no iterations; None: the loop
        runs by time.
    only : mapping
        Config fields this metric constrains, each with the values it accepts.
    only_because : str
        Why, said when a Config breaks ``only``.
    headline_text : str
        The headline value in words, ``{value}`` the value as :attr:`format` writes it
        ("median {value}", "{value} instructions per call"): :meth:`describe`.
    announce : str
        What a command prints before it measures one model (``{label}``: the model's label)
        when no progress bar shows the time left; empty: nothing.
    """

    name: str
    unit: str
    noun: str
    headline: tuple[str, ...]
    format: Callable[[float], str]
    deterministic: bool
    threshold: str
    rankings: tuple[Ranking, ...]
    in_session: bool = True
    default_calls: tuple[int, int] | None = None
    only: Mapping[str, tuple[object, ...]] = field(default_factory=dict)
    only_because: str = ""
    headline_text: str = "{value}"
    announce: str = ""

    def describe(self, value: float | None) -> str:
        """The headline ``value`` in words (``"median 12.34 µs"``); says so when there is none."""
        if value is None:
            return f"no {self.noun} recorded"
        return self.headline_text.format(value=self.format(value))

    @property
    def threshold_flag(self) -> str:
        """The command-line flag of :attr:`threshold` (``--fail-if-slower``)."""
        return "--" + self.threshold.replace("_", "-")

    def refused(self, config: object) -> list[str]:
        """The fields of ``config`` (a Config) whose values this metric does not accept."""
        return [name for name, allowed in self.only.items() if not _among(getattr(config, name), allowed)]


def _among(value: object, allowed: tuple[object, ...]) -> bool:
    # By identity for None and booleans, so that True is not taken for 1 nor 0 for False.
    return any(value is a if a is None or isinstance(a, bool) else value == a for a in allowed)


def _count(value: float) -> str:
    return f"{value:,.0f}"


#: The metric of a Config that names none.
DEFAULT_METRIC = "latency"

#: The metrics, by name, in the order ``--metric`` lists them.
METRICS: Mapping[str, Metric] = MappingProxyType(
    {
        "latency": Metric(
            name="latency",
            unit="ns",
            noun="latency",
            headline=("stats", "median_ns"),
            format=format_duration,
            deterministic=False,
            threshold="fail_if_slower",
            headline_text="median {value}",
            rankings=(
                Ranking("median", ("stats", "median_ns")),
                Ranking("p99", ("stats", "p99_ns")),
                Ranking("throughput", ("stats", "throughput_per_s"), higher_is_better=True),
            ),
        ),
        "generation": Metric(
            name="generation",
            unit="ns",
            noun="time per output token",
            headline=("stats", "median_ns"),
            format=format_duration,
            deterministic=False,
            threshold="fail_if_slower",
            headline_text="time per output token: median {value}",
            rankings=(
                Ranking("tpot", ("stats", "median_ns")),
                Ranking("ttft", ("generation", "ttft", "median_ns")),
                Ranking("output_tokens_per_s", ("generation", "output_tokens_per_s"), higher_is_better=True),
            ),
            only=MappingProxyType(
                {
                    "processes": (1,),
                    "cache": ("warm",),
                    "mode": ("binding",),
                    "input_sets": (1,),
                }
            ),
            only_because="times whole generations (a prompt's call, then one call per output token) "
            "in this process, each stream's bound through IoBinding",
        ),
        "instructions": Metric(
            name="instructions",
            unit="instructions",
            noun="instructions per call",
            headline=("instructions", "instructions"),
            format=_count,
            deterministic=True,
            threshold="fail_if_more",
            headline_text="{value} instructions per call",
            rankings=(Ranking("instructions", ("instructions", "instructions")),),
            in_session=False,
            default_calls=(2, 10),
            only=MappingProxyType(
                {
                    "scenario": ("single-stream",),
                    "processes": (1,),
                    "cache": ("warm",),
                    "target_ci": (None,),
                    "max_time": (None,),
                    "warmup_time": (None,),
                    "threads": (None, 1),
                    "inter_op_threads": (None, 1),
                    "execution_mode": ("sequential",),
                    "spin": (None, False),
                    "pin": (None,),
                }
            ),
            announce="counting the instructions of {label} under Valgrind",
            only_because="counts a fixed number of calls (iterations, warmup_iterations) in one "
            "single-stream loop on the calling thread alone (one intra-op thread, sequential "
            "execution, no spinning: other threads' instructions vary from call to call)",
        ),
    }
)


def metric_named(name: str) -> Metric:
    """The metric called ``name``; ConfigError naming the known ones otherwise."""
    found = METRICS.get(name)
    if found is None:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {name!r}")
    return found


def rankings() -> dict[str, tuple[Metric, Ranking]]:
    """Every ranking a sweep knows, by name, with the metric it belongs to."""
    return {r.name: (m, r) for m in METRICS.values() for r in m.rankings}


def threshold_mismatch(metric: str, given: Mapping[str, object]) -> str | None:
    """A gate threshold given (``given``: option name -> value, None when not given) that is
    not the threshold of ``metric``, said as a usage error; None when every given one fits."""
    current = metric_named(metric)
    for option, value in given.items():
        if value is None or option == current.threshold:
            continue
        owner = next((m for m in METRICS.values() if m.threshold == option), None)
        flag = "--" + option.replace("_", "-")
        if owner is None:
            return f"{flag} is no metric's threshold"
        return (
            f"{flag} gates on {owner.noun}: give --metric {owner.name}, or use "
            f"{current.threshold_flag} with --metric {current.name}"
        )
    return None
