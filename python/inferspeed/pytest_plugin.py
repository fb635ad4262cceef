"""pytest plugin (entry point ``pytest11``): the ``inferspeed`` fixture benchmarks models and
callables inside tests; results are saved and compared between test runs.

    def test_model_speed(inferspeed):
        result = inferspeed.benchmark("model.onnx", threads=1, max_time=0.5)
        assert result.stats.median_ns < 5e6

    pytest --inferspeed-save main                  # .inferspeed/main.json
    pytest --inferspeed-compare main --inferspeed-fail-slower 5%

Each measurement is stored under its test's node id (with ``#k`` for a test's k-th
measurement after the first), and a model's file is stored beside it, content-addressed
(``.inferspeed/models/SHA256/NAME``, with its external-data files). With
``--inferspeed-compare NAME``, a model that has a counterpart in NAME is measured again
beside NAME's stored copy of its model, both in this session, interleaved in randomised
rounds (:func:`inferspeed.tools.gate.gate`, the options of the test, GATE_TIME seconds each
unless the test sets ``max_time``): the comparison holds on a machine whose speed changes
between sessions, where one against last week's numbers cannot. With
``--inferspeed-fail-slower PCT`` a model significantly slower than its baseline by more than
PCT fails its test. A callable (``timeit``), which has no artifact to re-measure, is compared
with its saved result; a slowdown fails only after a confirming re-measurement
(``--inferspeed-confirm``, default 1) also found it slower. The end of the session prints a
table of every measurement and comparison.

As pytest-benchmark's ``--benchmark-skip`` and ``--benchmark-disable``: ``--inferspeed-skip``
skips every test that uses the fixture; ``--inferspeed-disable`` runs them with one untimed
warm-up-free call per measurement (a quick check that they work), saving and comparing
nothing. ``--inferspeed-fail-slower`` without ``--inferspeed-compare`` is a usage error: there
would be nothing to gate against.

``inferspeed.benchmark(model, metric="instructions")`` counts the model's instructions under
Valgrind instead (docs/instructions.md): the count is compared with the saved one of the same
test (the stored copy of its model is counted again when the ONNX Runtime version or the CPU
extensions differ), and ``--inferspeed-fail-more PCT`` fails a test whose count grew by more.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .config import Config
from .errors import InputError
from .results.result import Result, results_from_document

if TYPE_CHECKING:
    from .analysis.compare import Comparison

__all__ = ["GateVerdict", "InferspeedFixture", "gate"]

#: Format of a saved file: {"format": STORE_FORMAT, "benchmarks": {key: results document}}.
STORE_FORMAT = "inferspeed-pytest/1"
DEFAULT_DIR = ".inferspeed"


def pytest_addoption(parser: pytest.Parser) -> None:
    from .cli.values import parse_slowdown
    from .config import STATISTICS

    group = parser.getgroup("inferspeed", "inferspeed benchmarks")
    group.addoption("--inferspeed-save", metavar="NAME", help="save this run's measurements as NAME")
    group.addoption("--inferspeed-compare", metavar="NAME", help="compare measurements with the saved NAME")
    group.addoption(
        "--inferspeed-fail-slower",
        metavar="PCT",
        type=parse_slowdown,
        help="fail a test whose measurement is significantly slower than NAME's by more than PCT",
    )
    group.addoption(
        "--inferspeed-fail-more",
        metavar="PCT",
        type=parse_slowdown,
        help="fail a test whose instruction count (metric='instructions') is more than PCT above NAME's",
    )
    group.addoption(
        "--inferspeed-statistic",
        choices=STATISTICS,
        default="median",
        help="what --inferspeed-fail-slower decides on for a model, per round (default median)",
    )
    group.addoption(
        "--inferspeed-confirm",
        metavar="N",
        type=int,
        default=1,
        help="re-measurements that must agree before a slowdown fails a test (default 1)",
    )
    group.addoption(
        "--inferspeed-skip",
        action="store_true",
        help="skip the tests that use the inferspeed fixture",
    )
    group.addoption(
        "--inferspeed-disable",
        action="store_true",
        help="measure each once (one call, no warm-up) to check the tests work; save and compare nothing",
    )
    group.addoption(
        "--inferspeed-dir",
        metavar="DIR",
        default=None,
        help=f"where saved runs live (default {DEFAULT_DIR}/)",
    )


def _store_dir(config: pytest.Config) -> Path:
    chosen = config.getoption("inferspeed_dir")
    return Path(chosen) if chosen else Path(config.rootpath) / DEFAULT_DIR


def _load_store(path: Path) -> tuple[dict[str, Result], dict[str, str]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no saved inferspeed run {path} (save one with --inferspeed-save)") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read saved inferspeed run {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != STORE_FORMAT:
        raise InputError(f"{path} is not a saved inferspeed pytest run ({STORE_FORMAT})")
    out = {}
    for key, d in doc.get("benchmarks", {}).items():
        results = results_from_document(d, f"{path}: {key}")
        if len(results) != 1:
            raise InputError(f"{path}: {key} holds {len(results)} results, not one")
        out[key] = results[0]
    artifacts = doc.get("artifacts", {})
    if not isinstance(artifacts, dict):
        raise InputError(f"{path}: 'artifacts' is not a mapping")
    return out, {str(k): str(v) for k, v in artifacts.items()}


@dataclass
class _Session:
    """What the plugin keeps for one pytest session."""

    baseline: dict[str, Result] | None = None
    baseline_name: str | None = None
    #: The baseline's stored model copies (key -> path under baseline_dir) and that folder.
    artifacts: dict[str, str] | None = None
    baseline_dir: Path | None = None
    measured: dict[str, Result] = field(default_factory=dict)
    #: The model each measurement measured (a path or an in-memory model), to store on save.
    models: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


_STATE = pytest.StashKey[_Session]()


def pytest_configure(config: pytest.Config) -> None:
    state = _Session()
    name = config.getoption("inferspeed_compare", None)
    for flag in ("fail_slower", "fail_more"):
        if config.getoption(f"inferspeed_{flag}", None) is not None and not name:
            raise pytest.UsageError(
                f"--inferspeed-{flag.replace('_', '-')} needs --inferspeed-compare NAME: "
                "there is no baseline to gate against"
            )
    if name and config.getoption("inferspeed_disable", False):
        raise pytest.UsageError("--inferspeed-disable measures nothing to compare: drop --inferspeed-compare")
    if name:
        state.baseline_name = name
        try:
            state.baseline, state.artifacts = _load_store(_store_dir(config) / f"{name}.json")
            state.baseline_dir = _store_dir(config)
        except InputError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[_STATE] = state


class InferspeedFixture:
    """The ``inferspeed`` fixture: ``benchmark(model, **options)`` and ``timeit(fn, *args,
    **options)`` measure as :func:`inferspeed.benchmark` / :func:`inferspeed.timeit` do, record
    the result for saving and compare it with the saved baseline."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._config = request.config
        self._state = request.config.stash[_STATE]
        self._nodeid = request.node.nodeid
        self._count = 0
        self._disabled = bool(request.config.getoption("inferspeed_disable", False))
        self.results: list[Result] = []

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options``; with --inferspeed-disable, one call and no warm-up instead of the limits."""
        if not self._disabled:
            return options
        once = {"iterations": 1, "max_time": None, "warmup_iterations": 0, "warmup_time": None}
        return {**options, **once, "target_ci": None}

    def benchmark(self, model: Any, config: Any = None, **options: Any) -> Result:
        from .measure.benchmark import benchmark

        key = self._next_key()
        if Config.from_options(config, **options).metric == "instructions":
            return self._counted(key, model, Config.from_options(config, **self._options(options)))
        artifact = (self._state.artifacts or {}).get(key) if key is not None else None
        if key is not None and artifact is not None and self._state.baseline_dir is not None:
            return self._gated(key, model, config, options, self._state.baseline_dir / artifact)
        result = self._record(lambda: benchmark(model, config, **self._options(options)), key)
        if key is not None:
            self._state.models[key] = model
        return result

    def _gated(self, key: str, model: Any, config: Any, options: dict[str, Any], stored: Path) -> Result:
        """The model measured beside the baseline's stored copy, interleaved, and gated."""
        from .config import Config
        from .tools.gate import GATE_TIME, GateSide
        from .tools.gate import gate as same_session_gate

        cfg = Config.from_options(config, **options)
        if cfg.max_time is None and cfg.iterations is None:
            cfg = cfg.replace(max_time=GATE_TIME)
        cfg = cfg.replace(target_ci=None, processes=1)
        name = self._state.baseline_name or "baseline"
        verdict = same_session_gate(
            GateSide(str(stored), cfg, name),
            GateSide(model, cfg, key),
            fail_if_slower=self._config.getoption("inferspeed_fail_slower"),
            statistic=self._config.getoption("inferspeed_statistic"),
        )
        result = verdict.candidate
        row: dict[str, Any] = {"key": key, "comparison": verdict.comparison, "rounds": verdict.rounds}
        row["median_ns"], row["p99_ns"] = result.stats.median_ns, result.stats.p99_ns
        self._state.measured[key] = result
        self._state.models[key] = model
        self._state.rows.append(row)
        self.results.append(result)
        if verdict.failed:
            row["failed"] = True
            c = verdict.comparison
            ratio, (lo, hi), _ = c.decided_ratio
            pytest.fail(
                f"inferspeed: {key} is slower than {name} (re-measured in this session, "
                f"{verdict.rounds} interleaved rounds): {c.statistic} ratio {ratio:.3f} "
                f"({lo:.3f}-{hi:.3f}), "
                f"more than the {verdict.fail_if_slower:.0%} allowed",
                pytrace=False,
            )
        return result

    def _counted(self, key: str | None, model: Any, cfg: Any) -> Result:
        """An instruction count, compared with the baseline's count of the same key (the stored
        copy of its model counted again when the two runs' runtimes or CPUs differ) and gated
        on --inferspeed-fail-more."""
        from .analysis.instructions import compare_instructions, environment_differences
        from .measure.instructions import count_instructions

        result = count_instructions(model, cfg)
        self.results.append(result)
        if key is None:
            return result
        self._state.measured[key] = result
        self._state.models[key] = model
        row: dict[str, Any] = {"key": key, "instructions": result.instructions}
        self._state.rows.append(row)
        base = (self._state.baseline or {}).get(key)
        if base is None or base.instructions is None:
            return result
        stored = (self._state.artifacts or {}).get(key)
        if environment_differences(base, result) and stored and self._state.baseline_dir is not None:
            base = count_instructions(str(self._state.baseline_dir / stored), cfg)
            row["recounted"] = True
        name = self._state.baseline_name or "baseline"
        c = compare_instructions(
            base,
            result,
            fail_if_more=self._config.getoption("inferspeed_fail_more"),
            baseline_label=name,
            candidate_label=key,
        )
        row["counted_comparison"] = c
        if c.failed:
            row["failed"] = True
            pytest.fail(
                f"inferspeed: {key} needs more instructions than {name}: {c.candidate_instructions:,.0f} "
                f"against {c.baseline_instructions:,.0f} per call (ratio {c.ratio:.4f}), more than the "
                f"{c.fail_if_more:.1%} allowed",
                pytrace=False,
            )
        return result

    def timeit(self, fn: Callable[..., Any], *args: Any, **options: Any) -> Result:
        from .measure.callables import timeit

        return self._record(lambda: timeit(fn, *args, **self._options(options)), self._next_key())

    def _next_key(self) -> str | None:
        """This measurement's key in the store (None with --inferspeed-disable)."""
        if self._disabled:
            return None
        key = self._nodeid if self._count == 0 else f"{self._nodeid}#{self._count}"
        self._count += 1
        return key

    def _record(self, measure: Callable[[], Result], key: str | None) -> Result:
        if key is None:
            result = measure()
            self.results.append(result)
            return result
        result = measure()
        row: dict[str, Any] = {"key": key}
        base = (self._state.baseline or {}).get(key)
        failure = None
        if base is not None:
            verdict = gate(
                base,
                result,
                measure,
                fail_slower=self._config.getoption("inferspeed_fail_slower"),
                confirmations=int(self._config.getoption("inferspeed_confirm")),
                baseline_label=self._state.baseline_name or "baseline",
                candidate_label=key,
            )
            result, row["comparison"], failure = verdict.result, verdict.comparison, verdict.failure
        row["median_ns"], row["p99_ns"] = result.stats.median_ns, result.stats.p99_ns
        self._state.measured[key] = result
        self._state.rows.append(row)
        self.results.append(result)
        if failure is not None:
            row["failed"] = True
            pytest.fail(failure, pytrace=False)
        return result


@dataclass(frozen=True)
class GateVerdict:
    """What :func:`gate` decided: the measurement kept (the last one taken), its comparison
    with the baseline, how many measurements were taken, and why the test fails (None: it
    passes)."""

    result: Result
    comparison: Comparison
    measurements: int
    failure: str | None


def gate(
    base: Result,
    first: Result,
    remeasure: Callable[[], Result],
    *,
    fail_slower: float | None,
    confirmations: int = 1,
    baseline_label: str = "baseline",
    candidate_label: str = "candidate",
) -> GateVerdict:
    """The slowdown gate: ``first`` compared with ``base``; when it is significantly slower by
    more than ``fail_slower`` (a fraction; None: report only), ``remeasure()`` is called up to
    ``confirmations`` times, and the first re-measurement that is not slower by that much passes.
    The failure message says by how much the last measurement was slower."""
    from .analysis.compare import compare

    result, taken = first, 1
    c = compare(base, result, baseline_label=baseline_label, candidate_label=candidate_label)
    if fail_slower is None or not c.slower_by_more_than(fail_slower):
        return GateVerdict(result, c, taken, None)
    confirmations = max(0, confirmations)
    for _ in range(confirmations):
        result, taken = remeasure(), taken + 1
        c = compare(base, result, baseline_label=baseline_label, candidate_label=candidate_label)
        if not c.slower_by_more_than(fail_slower):
            return GateVerdict(result, c, taken, None)
    failure = (
        f"inferspeed: {candidate_label} is slower than {c.baseline}: median ratio {c.ratio_median:.3f} "
        f"({c.ratio_median_ci[0]:.3f}-{c.ratio_median_ci[1]:.3f}), more than the {fail_slower:.0%} allowed"
    )
    if confirmations:
        failure += f" (confirmed by {confirmations} re-measurement{'s' if confirmations > 1 else ''})"
    return GateVerdict(result, c, taken, failure)


@pytest.fixture
def inferspeed(request: pytest.FixtureRequest) -> InferspeedFixture:
    """Benchmark models (``inferspeed.benchmark(model, ...)``) and callables
    (``inferspeed.timeit(fn, ...)``) inside a test; see :mod:`inferspeed.pytest_plugin`."""
    if request.config.getoption("inferspeed_skip", False):
        pytest.skip("--inferspeed-skip")
    return InferspeedFixture(request)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    name = config.getoption("inferspeed_save", None)
    state = config.stash.get(_STATE, None)
    if not name or state is None or not state.measured:
        return
    from .results.result import results_document

    folder = _store_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": STORE_FORMAT,
        "benchmarks": {key: results_document([r]) for key, r in state.measured.items()},
        "artifacts": {key: _store_model(folder, model) for key, model in state.models.items()},
    }
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)
    state.rows.append({"saved": str(path)})


def _store_model(folder: Path, model: Any) -> str:
    """A copy of ``model`` (a path, a ModelProto or its bytes) in ``folder/models/SHA256/``,
    with the external-data files a model file names; its path relative to ``folder``."""
    import hashlib
    import shutil

    if isinstance(model, (str, os.PathLike)):
        from .facts.modelfile import sha256_file
        from .facts.onnxfile import read

        source = Path(model)
        digest, name = sha256_file(str(source)), source.name
        tensors = read(source).external_data_tensors()
        extra = sorted(
            {t.external_info()["location"] for t in tensors if t.external and "location" in t.external_info()}
        )
    else:
        from .facts.modelfile import serialized_model

        data = serialized_model(model)
        digest, name, extra, source = hashlib.sha256(data).hexdigest(), "model.onnx", [], None
    target = folder / "models" / digest
    if not (target / name).exists():
        target.mkdir(parents=True, exist_ok=True)
        if source is None:
            (target / name).write_bytes(data)
        else:
            shutil.copyfile(source, target / name)
            for location in extra:
                (target / location).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source.parent / location, target / location)
    return str((target / name).relative_to(folder))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    from .units import format_duration

    state = config.stash.get(_STATE, None)
    if state is None or not state.rows:
        return
    tr = terminalreporter
    tr.write_sep("-", "inferspeed")
    for row in state.rows:
        if "saved" in row:
            tr.write_line(f"saved to {row['saved']}")
            continue
        if "instructions" in row:
            tr.write_line(_counted_line(row))
            continue
        line = (
            f"{row['key']}: median {format_duration(row['median_ns'])}, p99 {format_duration(row['p99_ns'])}"
        )
        c = row.get("comparison")
        if c is not None:
            lo, hi = c.ratio_median_ci
            line += f"; vs {c.baseline}: x{c.ratio_median:.3f} ({lo:.3f}-{hi:.3f}) {c.verdict}"
            if row.get("rounds"):
                line += f" (re-measured beside it, {row['rounds']} rounds)"
        tr.write_line(line + ("  FAILED" if row.get("failed") else ""))


def _counted_line(row: dict[str, Any]) -> str:
    """The summary line of an instruction count, with its comparison."""
    line = f"{row['key']}: {row['instructions']['instructions']:,.0f} instructions per call"
    c = row.get("counted_comparison")
    if c is not None:
        line += f"; vs {c.baseline}: x{c.ratio:.4f} {c.verdict}"
        line += " (its stored model counted again)" if row.get("recounted") else ""
    return line + ("  FAILED" if row.get("failed") else "")
