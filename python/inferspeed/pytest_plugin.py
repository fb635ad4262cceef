"""pytest plugin (entry point ``pytest11``): the ``inferspeed`` fixture benchmarks models and
callables inside tests; results are saved and compared between test runs.

    def test_model_speed(inferspeed):
        result = inferspeed.benchmark("model.onnx", threads=1, max_time=0.5)
        assert result.stats.median_ns < 5e6

    pytest --inferspeed-save main                  # .inferspeed/main.json
    pytest --inferspeed-compare main --inferspeed-fail-if-slower 5%

Each measurement is stored under its test's node id (with ``#k`` for a test's k-th
measurement after the first), and a model's file is stored beside it, content-addressed
(``.inferspeed/models/SHA256/NAME``, with its external-data files). With
``--inferspeed-compare NAME``, a model that has a counterpart in NAME is measured again
beside NAME's stored copy of its model, both in this session, interleaved in randomised
rounds (the same-session gate, :func:`inferspeed.tools.gate.gate`, with the options of the
test and the gate's own plan: GATE_TIME seconds each unless the test sets ``max_time``): the
comparison holds on a machine whose speed changes between sessions, where one against last
week's numbers cannot. With ``--inferspeed-fail-if-slower PCT`` a model significantly slower
than its baseline by more than PCT fails its test. A callable (``timeit``), which has no
artifact to re-measure, is compared with its saved result by the saved-result gate
(:func:`inferspeed.tools.gate.saved_result_gate`); a slowdown fails only after a confirming
re-measurement (``--inferspeed-confirm``, default 1) also found it slower. The end of the
session prints a table of every measurement and comparison.

As pytest-benchmark's ``--benchmark-skip`` and ``--benchmark-disable``: ``--inferspeed-skip``
skips every test that uses the fixture; ``--inferspeed-disable`` runs them with one untimed
warm-up-free call per measurement (a quick check that they work), saving and comparing
nothing. ``--inferspeed-fail-if-slower`` without ``--inferspeed-compare`` is a usage error:
there would be nothing to gate against.

A deterministic metric, e.g. ``inferspeed.benchmark(model, metric="instructions")`` (the
model's instructions counted under Valgrind, docs/instructions.md), is compared with the saved
result of the same test directly (the stored copy of its model is measured again when the
runtime differs in a way the metric is sensitive to: for counts, the ONNX Runtime version or
the CPU extensions), and that metric's threshold (``--inferspeed-fail-if-more PCT`` for
counts) fails a test whose value grew by more.

Renamed, the old spelling kept for one release with a deprecation warning:
``--inferspeed-fail-slower`` (now ``--inferspeed-fail-if-slower``), ``--inferspeed-fail-more``
(now ``--inferspeed-fail-if-more``), ``inferspeed.pytest_plugin.gate`` and ``GateVerdict``
(now ``inferspeed.tools.gate.saved_result_gate`` and ``SavedResultVerdict``, whose keyword is
``fail_if_slower``).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .config import Config
from .errors import InputError
from .metrics import metric_named
from .results.result import Result, results_from_document

__all__ = ["InferspeedFixture"]

#: Options renamed (old -> new, without the ``--inferspeed-`` prefix); the old spelling still
#: works for one release, with a deprecation warning.
_RENAMED_OPTIONS = {"fail-slower": "fail-if-slower", "fail-more": "fail-if-more"}

#: Format of a saved file: {"format": STORE_FORMAT, "benchmarks": {key: results document}}.
STORE_FORMAT = "inferspeed-pytest/1"
DEFAULT_DIR = ".inferspeed"


def pytest_addoption(parser: pytest.Parser) -> None:
    from .cli.values import parse_slowdown
    from .config import GENERATION_STATISTICS, STATISTICS

    group = parser.getgroup("inferspeed", "inferspeed benchmarks")
    group.addoption("--inferspeed-save", metavar="NAME", help="save this run's measurements as NAME")
    group.addoption("--inferspeed-compare", metavar="NAME", help="compare measurements with the saved NAME")
    group.addoption(
        "--inferspeed-fail-if-slower",
        metavar="PCT",
        type=parse_slowdown,
        help="fail a test whose paired ratio to NAME's has a 95%% interval that excludes 1 and exceeds "
        "1 + PCT (e.g. 5%%; the %% sign is required)",
    )
    group.addoption(
        "--inferspeed-fail-if-more",
        metavar="PCT",
        type=parse_slowdown,
        help="fail a test whose instruction count (metric='instructions') is more than PCT above NAME's "
        "(e.g. 1%%; the %% sign is required)",
    )
    for old, new in _RENAMED_OPTIONS.items():
        group.addoption(
            f"--inferspeed-{old}",
            metavar="PCT",
            type=parse_slowdown,
            help=f"deprecated spelling of --inferspeed-{new}",
        )
    group.addoption(
        "--inferspeed-statistic",
        choices=(*STATISTICS, *GENERATION_STATISTICS),
        default="median",
        help="what --inferspeed-fail-if-slower decides on for a model, per round (default median); "
        "a decoder's generations also tpot, ttft or output_tokens_per_s",
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
    #: The gate thresholds given, by option name (``fail_if_slower``, ``fail_if_more``).
    limits: dict[str, float | None] = field(default_factory=dict)

    def limit(self, metric: str) -> float | None:
        """The threshold given for ``metric``'s gate (each metric has its own option, so a
        session may gate latencies and instruction counts at once)."""
        return self.limits.get(metric_named(metric).threshold)


_STATE = pytest.StashKey[_Session]()


def _limits(config: pytest.Config) -> dict[str, float | None]:
    """The gate thresholds given, by option (``fail_if_slower``, ``fail_if_more``); a renamed
    option's old spelling counts, with a deprecation warning."""
    limits: dict[str, float | None] = {}
    for old, new in _RENAMED_OPTIONS.items():
        value = config.getoption(f"inferspeed_{new.replace('-', '_')}", None)
        legacy = config.getoption(f"inferspeed_{old.replace('-', '_')}", None)
        if legacy is not None:
            config.issue_config_time_warning(
                pytest.PytestDeprecationWarning(
                    f"--inferspeed-{old} is deprecated: use --inferspeed-{new} (same value)"
                ),
                stacklevel=2,
            )
            value = legacy if value is None else value
        limits[new.replace("-", "_")] = value
    return limits


def pytest_configure(config: pytest.Config) -> None:
    state = _Session()
    name = config.getoption("inferspeed_compare", None)
    state.limits = _limits(config)
    for option, value in state.limits.items():
        if value is not None and not name:
            raise pytest.UsageError(
                f"--inferspeed-{option.replace('_', '-')} needs --inferspeed-compare NAME: "
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
        cfg = Config.from_options(config, **options)
        if metric_named(cfg.metric).deterministic:
            return self._deterministic(key, model, Config.from_options(config, **self._options(options)))
        artifact = (self._state.artifacts or {}).get(key) if key is not None else None
        if key is not None and artifact is not None and self._state.baseline_dir is not None:
            return self._gated(key, model, cfg, self._state.baseline_dir / artifact)
        result = self._record(lambda: benchmark(model, config, **self._options(options)), key)
        if key is not None:
            self._state.models[key] = model
        return result

    def _gated(self, key: str, model: Any, cfg: Config, stored: Path) -> Result:
        """The model measured beside the baseline's stored copy, interleaved, and gated (the
        same-session gate, with its own plan: GATE_TIME seconds each unless the test sets
        ``max_time``)."""
        from .analysis.compare import Comparison
        from .errors import ConfigError
        from .tools.gate import GateSide, gate

        cfg = cfg.replace(target_ci=None, processes=1)
        name = self._state.baseline_name or "baseline"
        try:
            verdict = gate(
                GateSide(str(stored), cfg, name),
                GateSide(model, cfg, key),
                fail_if_slower=self._state.limit(cfg.metric),
                statistic=self._config.getoption("inferspeed_statistic"),
            )
        except ConfigError as exc:  # e.g. --inferspeed-statistic ttft for a model that does not generate
            pytest.fail(f"inferspeed: {key}: {exc}", pytrace=False)
        result = verdict.candidate
        row: dict[str, Any] = {"key": key, "comparison": verdict.comparison, "rounds": verdict.rounds}
        row["seed"] = verdict.seed
        row["median_ns"], row["p99_ns"] = result.stats.median_ns, result.stats.p99_ns
        self._state.measured[key] = result
        self._state.models[key] = model
        self._state.rows.append(row)
        self.results.append(result)
        c = verdict.comparison
        if verdict.failed and isinstance(c, Comparison):
            row["failed"] = True
            ratio, (lo, hi), _ = c.decided_ratio
            pytest.fail(
                f"inferspeed: {key} is slower than {name} (re-measured in this session, "
                f"{verdict.rounds} interleaved rounds, seed {verdict.seed}): {_decided_on(c)} ratio "
                f"{ratio:.3f} ({lo:.3f}-{hi:.3f}), more than the {verdict.limit or 0.0:.0%} allowed",
                pytrace=False,
            )
        return result

    def _deterministic(self, key: str | None, model: Any, cfg: Config) -> Result:
        """A deterministic metric (instruction counts): compared with the baseline's result of
        the same key directly (the stored copy of its model measured again when the runtimes
        differ in what the metric is sensitive to), and gated on the metric's threshold."""
        from .analysis.verdicts import compare_results, runtime_differences
        from .measure.benchmark import benchmark
        from .report.text import gate_decision

        result = benchmark(model, cfg)
        self.results.append(result)
        if key is None:
            return result
        self._state.measured[key] = result
        self._state.models[key] = model
        row: dict[str, Any] = {"key": key, "result": result}
        self._state.rows.append(row)
        base = (self._state.baseline or {}).get(key)
        if base is None or base.metric != result.metric:
            return result
        stored = (self._state.artifacts or {}).get(key)
        if runtime_differences(base, result) and stored and self._state.baseline_dir is not None:
            base = benchmark(str(self._state.baseline_dir / stored), cfg)
            row["remeasured"] = True
        name = self._state.baseline_name or "baseline"
        limit = self._state.limit(cfg.metric)
        c = compare_results(base, result, baseline_label=name, candidate_label=key, limit=limit)
        row["deterministic_comparison"] = c
        if limit is not None and gate_decision(c, limit)[0]:
            row["failed"] = True
            metric = metric_named(result.metric)
            pytest.fail(
                f"inferspeed: {key} needs more {metric.unit} than {name}: "
                f"{metric.format(result.headline() or 0.0)} against {metric.format(base.headline() or 0.0)} "
                f"{metric.noun} (ratio {c.ratio:.4f}), more than the {limit:.1%} allowed",
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
            from .tools.gate import saved_result_gate

            verdict = saved_result_gate(
                base,
                result,
                measure,
                fail_if_slower=self._state.limit(result.metric),
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


#: Public names renamed (old -> new in ``inferspeed.tools.gate``), kept for one release.
_RENAMED_NAMES = {"gate": "saved_result_gate", "GateVerdict": "SavedResultVerdict"}


def _deprecated_gate(
    base: Result,
    first: Result,
    remeasure: Callable[[], Result],
    *,
    fail_slower: float | None = None,
    **options: Any,
) -> Any:
    """The saved-result gate under its old name and keyword (``fail_slower``)."""
    from .tools.gate import saved_result_gate

    options.setdefault("fail_if_slower", fail_slower)
    return saved_result_gate(base, first, remeasure, **options)


def __getattr__(name: str) -> Any:
    new = _RENAMED_NAMES.get(name)
    if new is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"inferspeed.pytest_plugin.{name} is deprecated: use inferspeed.tools.gate.{new}"
        + (" (keyword fail_if_slower)" if name == "gate" else ""),
        DeprecationWarning,
        stacklevel=2,
    )
    if name == "gate":
        return _deprecated_gate
    from .tools import gate as gates

    return getattr(gates, new)


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
        if "result" in row:
            tr.write_line(_deterministic_line(row))
            continue
        line = (
            f"{row['key']}: median {format_duration(row['median_ns'])}, p99 {format_duration(row['p99_ns'])}"
        )
        c = row.get("comparison")
        if c is not None:
            ratio, (lo, hi), _ = c.decided_ratio
            on = _decided_on(c)
            on = "" if on == "median" else f"{on} "
            line += f"; vs {c.baseline}: {on}x{ratio:.3f} ({lo:.3f}-{hi:.3f}) {c.verdict}"
            if row.get("rounds"):
                line += f" (re-measured beside it, {row['rounds']} rounds, seed {row.get('seed')})"
        tr.write_line(line + ("  FAILED" if row.get("failed") else ""))


def _decided_on(c: Any) -> str:
    """What a latency or generation comparison's verdict is on, as ``--inferspeed-statistic``
    names it (a generation's decode-step median: tpot)."""
    from .analysis.compare import GenerationComparison

    if isinstance(c, GenerationComparison) and (c.on != "tpot" or c.statistic == "median"):
        return c.on
    return str(c.statistic)


def _deterministic_line(row: dict[str, Any]) -> str:
    """The summary line of a deterministic metric's measurement, with its comparison."""
    result = row["result"]
    metric = metric_named(result.metric)
    line = f"{row['key']}: {metric.format(result.headline() or 0.0)} {metric.noun}"
    c = row.get("deterministic_comparison")
    if c is not None:
        line += f"; vs {c.baseline}: x{c.ratio:.4f} {c.verdict}"
        line += " (its stored model measured again)" if row.get("remeasured") else ""
    return line + ("  FAILED" if row.get("failed") else "")
