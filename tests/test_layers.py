"""The package's layers (docs/architecture.md) and the checks no tool makes for us.

import-linter enforces the layers with the contracts in pyproject.toml (``lint-imports``): imports
go down the layers, nothing in the package imports the package's own ``__init__``, and no import
cycle forms between the modules of any package. Every import counts, in a function or under
``if TYPE_CHECKING:`` too. ruff enforces the private-name rule (SLF001, PLC2701). This file runs
import-linter on the package, breaks a copy of the package to see the contracts fail, and checks
what neither tool does: every module of the package has a layer, the documentation's table is the
contract's, the imports import-linter is told to ignore are of the compiled core only, no module
imports a package it is in, no module imports another's private name, no function is over 80
lines, and ``import inferspeed`` stays light.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest

# import-linter (and its graph, grimp) and tomllib need Python 3.11: the layer checks run there
# (CI's Python); on 3.10 this file is skipped.
grimp = pytest.importorskip("grimp")
tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "python" / "inferspeed"
PYPROJECT = ROOT / "pyproject.toml"
ARCHITECTURE_DOC = ROOT / "docs" / "architecture.md"

#: Longest function allowed in the package, in lines from ``def`` to its last line.
MAX_FUNCTION_LINES = 80

#: Modules whose import ``import inferspeed`` must not pay for (start-up time of the CLI).
HEAVY_MODULES = ("numpy", "onnx", "scipy", "rich", "matplotlib")

#: Private modules of the package that its modules import by design: the compiled core (any
#: module) and the Ctrl-C guard (the package's ``__init__``).
OPEN_PRIVATE_MODULES = frozenset({"_core", "_cli_guard"})


def lint_imports(parent: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the project's contracts, on the ``inferspeed`` found in ``parent``."""
    run = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    env = {**os.environ, "PYTHONPATH": str(parent), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-c", run, "--no-cache", "--no-logo", str(PYPROJECT)],
        capture_output=True,
        text=True,
        cwd=parent,
        env=env,
        timeout=120,
    )


def layers_contract() -> list[str]:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["id"] == "layers")["layers"]


def layer_table() -> dict[int, set[str]]:
    """The layers contract as docs/architecture.md writes it: layer number (0 at the bottom) ->
    its entries, ``name/`` for a subpackage; the package's ``__init__`` is the top layer."""
    table = {}
    for number, layer in enumerate(reversed(layers_contract())):
        names = (name.strip().strip("()") for name in re.split(r"[:|]", layer))
        table[number] = {f"{name}/" if (PACKAGE_DIR / name).is_dir() else name for name in names}
    table[len(table)] = {"__init__"}
    return table


def package_children() -> set[str]:
    """The top-level modules (sources, stubs, compiled) and subpackages of the package."""
    out = set()
    for path in PACKAGE_DIR.iterdir():
        if path.is_dir() and (path / "__init__.py").exists():
            out.add(path.name)
        elif path.suffix in (".py", ".pyi", ".so") and path.name != "__init__.py":
            out.add(path.name.split(".")[0])
    return out


def copy_package(tmp_path: Path) -> Path:
    copy = tmp_path / "inferspeed"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so", "data"))
    return copy


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def python_sources() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


# ------------------------------------------------------------------ the contracts, and that they bite


def test_import_linter_contracts_are_kept() -> None:
    p = lint_imports(PACKAGE_DIR.parent)
    if p.returncode != 0:
        pytest.fail(
            f"lint-imports (contracts in pyproject.toml) failed:\n{p.stdout}{p.stderr}", pytrace=False
        )


def test_contracts_catch_upward_imports(tmp_path: Path) -> None:
    """An upward import in a function and one under ``if TYPE_CHECKING:`` break the layers."""
    copy = copy_package(tmp_path)
    append(copy / "stats" / "summary.py", "\n\ndef _peek():\n    from ..cli import main\n\n    return main\n")
    append(
        copy / "facts" / "memory.py",
        "\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from ..report import text\n",
    )
    out = lint_imports(tmp_path).stdout
    assert "Imports go down the layers (docs/architecture.md), never up BROKEN" in out, out
    assert "- inferspeed.stats.summary -> inferspeed.cli (l." in out, out
    assert "- inferspeed.facts.memory -> inferspeed.report.text (l." in out, out


def test_contracts_catch_a_cycle_inside_a_subpackage(tmp_path: Path) -> None:
    copy = copy_package(tmp_path)  # measure/session.py imports measure/model.py
    append(
        copy / "measure" / "model.py",
        "\n\ndef _session():\n    from .session import Session\n\n    return Session\n",
    )
    out = lint_imports(tmp_path).stdout
    assert "No import cycle between the modules of any package of inferspeed BROKEN" in out, out
    assert "No cycles are allowed in inferspeed.measure." in out, out


# ------------------------------------------------------------------------ what no tool checks


def test_every_module_has_a_layer() -> None:
    """The layers contract names every top-level module and subpackage, the compiled core
    (which import-linter does not see) included, and nothing the package does not have."""
    named = set().union(*layer_table().values()) - {"__init__"}
    named = {name.rstrip("/") for name in named}
    children = package_children()
    assert not children - named, f"not in the layers contract in pyproject.toml: {children - named}"
    assert not named - children, f"in the layers contract but not in the package: {named - children}"


def test_architecture_doc_mirrors_the_contract() -> None:
    rows = {}
    for line in ARCHITECTURE_DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*(\d+)\s*\|[^|]*\|([^|]*)\|", line)
        if m:
            rows[int(m.group(1))] = set(re.findall(r"`([^`]+)`", m.group(2)))
    expected = layer_table()
    assert rows == expected, (
        "docs/architecture.md's layer table differs from the layers contract in pyproject.toml:\n"
        f"doc:      {rows}\ncontract: {expected}"
    )


def test_no_module_imports_a_package_it_is_in() -> None:
    """grimp sees ``from .. import _core`` (a compiled module) as an import of the package: those
    are the imports the contracts ignore, and they must be nothing else. A module importing a
    package it is in is also the one cycle acyclic_siblings misses (through that __init__)."""
    graph = grimp.build_graph("inferspeed", cache_dir=None)
    found = []
    for package in sorted(graph.modules):
        for module in sorted(graph.find_modules_that_directly_import(package)):
            if not module.startswith(package + "."):
                continue
            for detail in graph.get_import_details(importer=module, imported=package):
                if not re.fullmatch(r"from \.+ import _core", detail["line_contents"]):
                    found.append(
                        f"{module} -> {package} (l.{detail['line_number']}: {detail['line_contents']})"
                    )
    assert not found, "modules that import a package they are in:\n" + "\n".join(found)


def test_no_module_imports_another_modules_private_name() -> None:
    """ruff's PLC2701 leaves out imports from the same package: ``from .x import _name``."""
    found = []
    for path in python_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [*(node.module or "").split("."), *(a.name for a in node.names)]
                private = [n for n in names if re.match(r"_(?!_)", n) and n not in OPEN_PRIVATE_MODULES]
                if private:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {', '.join(private)}")
    assert not found, "private names imported from another module:\n" + "\n".join(found)


#: Stems that several modules (or a module and a subpackage) of the package share, each for ONE
#: concept seen from several layers: a command's module beside what it runs, a metric's modules
#: in each layer. A stem shared for two different concepts is a second name to find; any other
#: shared stem fails the test below, which asks to rename the module or to add the concept here.
SHARED_STEMS = {
    "capacity": "the capacity search: its decisions (analysis), the search (tools), the command (cli)",
    "cluster": "sweeps on a Ray cluster: the driver (tools), the table by host (report), the flags (cli)",
    "compare": "comparison of latency results with significance (analysis) and its command (cli)",
    "gate": "the gates (tools) and the command (cli)",
    "generation": "a decoder's generations: their statistics (stats) and their measurement (measure)",
    "generation_requests": "a decoder's generation requests under load: each request's figures read back "
    "from a result (stats) and their terminal report (report)",
    "genai": "onnxruntime-genai's loop beside inferspeed's: the tool, its text (report), its command (cli)",
    "history": "the machine's history: its file (facts) and its use in a measurement (measure)",
    "info": "what a model file holds (facts) and the command that prints it (cli)",
    "instructions": "the instructions metric: counting (measure), comparing (analysis), text (report)",
    "profile": "per-operator profiles: the tool and its command",
    "report": "the reports (the report/ layer) and the command that writes them (cli)",
    "sweep": "grid sweeps: the tool and its command",
    "tradeoff": "speed against fidelity of variants: the tool and its command",
}

#: Public names that several modules define, each for one role: the CLI's per-command protocol.
SHARED_NAMES = {"add_parser", "check"}


def test_a_shared_module_stem_names_one_concept() -> None:
    stems: dict[str, list[str]] = {}
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if "__pycache__" in path.parts or path.name.startswith("__init__"):
            continue
        if path.is_dir() or path.suffix == ".py":
            rel = path.relative_to(PACKAGE_DIR).as_posix()
            stems.setdefault(path.stem if path.is_file() else path.name, []).append(rel)
    shared = {stem: places for stem, places in stems.items() if len(places) > 1}
    unexplained = {stem: places for stem, places in shared.items() if stem not in SHARED_STEMS}
    assert not unexplained, (
        f"modules that share a stem: {unexplained}; rename one, or say in SHARED_STEMS which one "
        "concept they are"
    )
    stale = sorted(set(SHARED_STEMS) - set(shared))
    assert not stale, f"SHARED_STEMS lists stems no two modules share any more: {stale}"


def test_a_public_name_is_defined_once() -> None:
    """No two modules define a public function or class of the same name (two ``gate`` and two
    ``GateVerdict`` once meant two different things)."""
    where: dict[str, list[str]] = {}
    for path in python_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                where.setdefault(node.name, []).append(path.relative_to(PACKAGE_DIR).as_posix())
    twice = {name: files for name, files in where.items() if len(files) > 1 and name not in SHARED_NAMES}
    assert not twice, f"public names defined in several modules: {twice}"


#: The document readers and writers, beside every public name of the report layer: each takes
#: and gives the types it reads, writes or renders, not ``Any``.
DOCUMENT_SEAMS = {
    "inferspeed.results.result": ("read_json_file", "results_from_document", "load_json", "results_document",
                                  "write_json", "Result"),
    "inferspeed.results.sweepfile": None,  # every public name
    "inferspeed.analysis.capacity": ("CapacityResult",),
    "inferspeed.tools.tradeoff": ("TradeoffResult",),
    "inferspeed.cli.common": ("write_document",),
}  # fmt: skip


def _signatures(module: object, names: Sequence[str]) -> dict[str, inspect.Signature]:
    """The signatures of ``names`` of ``module``: functions, and the public methods of classes."""
    found = {}
    for name in names:
        obj = getattr(module, name)
        members = vars(obj).items() if inspect.isclass(obj) else [("", obj)]
        for attr, member in members:
            if attr.startswith("_") or isinstance(member, property):
                continue
            func = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
            if inspect.isfunction(func):
                found[f"{module.__name__}.{name}" + (f".{attr}" if attr else "")] = inspect.signature(func)
    return found


def test_renderers_and_document_readers_take_typed_values() -> None:
    """The report layer's public functions and the document readers and writers name the types
    they take and give (a Result, a SweepLine, a CapacityResult, ...) rather than ``Any`` that
    they would walk as dicts; mypy then checks every use."""
    import inferspeed.report

    seams: dict[str, inspect.Signature] = {}
    for info in pkgutil.iter_modules(inferspeed.report.__path__):
        module = importlib.import_module(f"inferspeed.report.{info.name}")
        seams |= _signatures(module, module.__all__)
    for name, names in DOCUMENT_SEAMS.items():
        module = importlib.import_module(name)
        seams |= _signatures(module, names if names is not None else module.__all__)
    assert len(seams) > 40  # the walk found the report layer
    untyped = {}
    for name, sig in seams.items():
        annotations = [str(p.annotation) for p in sig.parameters.values()] + [str(sig.return_annotation)]
        found = [a for a in annotations if re.search(r"\bAny\b", a)]
        if found:
            untyped[name] = found
    assert not untyped, f"Any in the signatures of renderers or document readers: {untyped}"


def test_no_function_over_80_lines() -> None:
    found = []
    for path in python_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert not found, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(found)


def test_import_inferspeed_is_light_and_exports_resolve(tmp_path: Path) -> None:
    spec = importlib.util.find_spec("inferspeed")  # the package the tests run (installed in CI)
    assert spec is not None and spec.submodule_search_locations
    location = str(Path(next(iter(spec.submodule_search_locations))).parent)
    script = textwrap.dedent(
        f"""
        import json, sys
        import inferspeed
        heavy = sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)
        missing = []
        for name in inferspeed.__all__:
            try:
                getattr(inferspeed, name)
            except Exception as exc:
                missing.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
        print(json.dumps({{"heavy": heavy, "missing": missing}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([location, os.environ.get("PYTHONPATH", "")])}
    env.pop("INFERSPEED_EVENTS", None)
    p = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [], f"'import inferspeed' imported {out['heavy']}"
    assert out["missing"] == [], f"names in inferspeed.__all__ that do not resolve: {out['missing']}"
