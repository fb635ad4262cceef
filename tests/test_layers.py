"""The package's layers hold: imports only go down, nothing is circular, no module uses another's
private names, no function is over 80 lines, every module has a layer, and ``import inferspeed``
stays light.

The checker reads the sources with ``ast`` (it imports nothing of the package). Every import
counts: module level, inside functions, under ``if TYPE_CHECKING:`` or ``try:``; relative and
absolute; ``importlib.import_module`` (a name built at run time as every module it may name).
A module's layer comes from where it lives (its subpackage, or its name for the
top-level modules), so new modules are checked without editing this file, and a module in no
listed place fails. docs/architecture.md shows the same table; a test keeps the two equal.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "python" / "inferspeed"
ARCHITECTURE_DOC = ROOT / "docs" / "architecture.md"

#: The layer table, bottom to top. An entry ending in "/" is a subpackage (every module in it,
#: however deep, has its layer); one without is a top-level module of the package; ``__init__``
#: is the package's own ``__init__.py``. A module may import from its own layer (without
#: cycles) and from the layers below it, never from a layer above. docs/architecture.md
#: mirrors this table (``test_architecture_doc_mirrors_the_table``).
LAYERS: dict[int, tuple[str, tuple[str, ...]]] = {
    0: ("foundation", ("errors", "version", "units", "metrics", "config", "events", "_cli_guard", "_core")),
    1: ("facts", ("facts/",)),
    2: ("statistics", ("stats/",)),
    3: ("results", ("results/",)),
    4: ("measurement", ("measure/",)),
    5: ("analysis", ("analysis/",)),
    6: ("tools", ("tools/",)),
    7: ("report", ("report/",)),
    8: ("front ends", ("cli/", "pytest_plugin", "__main__")),
    9: ("public API", ("__init__",)),
}

#: Longest function allowed in the package, in lines from ``def`` to its last line.
MAX_FUNCTION_LINES = 80

#: Modules whose import ``import inferspeed`` must not pay for (start-up time of the CLI).
HEAVY_MODULES = ("numpy", "onnx", "scipy", "rich", "matplotlib")

#: A private module that any module may import by name: the compiled core.
PUBLIC_PRIVATE_MODULES = frozenset({"_core"})

STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


# ------------------------------------------------------------------------------ the checker


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "inferspeed.facts.ortlib"
    path: Path
    is_package: bool
    tree: ast.Module | None  # None for a compiled module without a stub
    rel: str  # the file, from the package's parent: "inferspeed/facts/ortlib.py"
    nodes: tuple[ast.AST, ...] = ()  # every node of the tree, walked once


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    where: str  # file:line of the import


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def scan_package(root: Path) -> dict[str, Module]:
    """Every module under ``root`` (a package directory): .py sources, .pyi stubs of modules
    without a source, and compiled extension modules (parsed through their stub if any)."""
    package = root.name
    found: dict[str, Module] = {}
    files = sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for kind in (".py", ".pyi", ".so"):
        for path in files:
            if kind == ".so":
                if not path.name.endswith(".so"):
                    continue
                stem = path.name.split(".")[0]
            elif path.suffix == kind:
                stem = path.stem
            else:
                continue
            parts = list(path.relative_to(root).parent.parts)
            is_package = stem == "__init__"
            if not is_package:
                parts.append(stem)
            name = ".".join([package, *parts])
            if name in found:
                continue
            tree = None if kind == ".so" else ast.parse(path.read_text(encoding="utf-8"), str(path))
            rel = path.relative_to(root.parent).as_posix()
            found[name] = Module(name, path, is_package, tree, rel, tuple(ast.walk(tree)) if tree else ())
    return found


def layer_of(module: Module, layers: Mapping[int, tuple[str, Sequence[str]]]) -> int | None:
    """The layer a module belongs to, from its place in the package; None when unlisted."""
    parts = module.name.split(".")[1:]
    if not parts:
        wanted = "__init__"
    elif len(parts) == 1 and not module.is_package:
        wanted = parts[0]
    else:
        wanted = parts[0] + "/"
    for layer, (_, entries) in layers.items():
        if wanted in entries:
            return layer
    return None


def _package_of(module: Module) -> str:
    return module.name if module.is_package else module.name.rpartition(".")[0]


def _resolve_from(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = _package_of(module).split(".")
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _longest_known(name: str, modules: Mapping[str, Module]) -> str | None:
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


@dataclass
class Findings:
    edges: list[Edge]
    unresolved: list[str]  # imports of a module of ours that does not exist
    private: list[str]  # uses of another module's private names


def _owned_private_names(nodes: Iterable[ast.AST]) -> set[str]:
    """Private names a module defines itself (functions, classes, variables, attributes it
    assigns), as opposed to names it reaches for."""
    owned: set[str] = set()
    for node in nodes:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            owned.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            owned.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            owned.add(node.attr)
        elif isinstance(node, ast.arg):
            owned.add(node.arg)
    return {n for n in owned if _is_private(n)}


class _Reader:
    """Reads the imports and attribute accesses of the modules of one package."""

    def __init__(self, modules: Mapping[str, Module]) -> None:
        self.modules = modules
        self.package = next(iter(modules)).split(".")[0] if modules else ""
        self.owned = {name: _owned_private_names(mod.nodes) for name, mod in modules.items()}
        self.owners: dict[str, set[str]] = defaultdict(set)
        for name, names in self.owned.items():
            for private in names:
                self.owners[private].add(name)
        self.found = Findings([], [], [])

    def ours(self, name: str) -> bool:
        return name == self.package or name.startswith(self.package + ".")

    def third_party(self, name: str) -> bool:
        return bool(name) and not self.ours(name) and name.split(".")[0] not in STDLIB

    @staticmethod
    def private_module_ok(importer: Module, target: str) -> bool:
        """A private module is its package's business: the package and its modules may import
        it; the compiled core is open to every module."""
        head, _, tail = target.rpartition(".")
        return tail in PUBLIC_PRIVATE_MODULES or _package_of(importer) == head

    def edge(self, mod: Module, target: str, line: int) -> None:
        if target != mod.name:
            self.found.edges.append(Edge(mod.name, target, f"{mod.rel}:{line}"))

    def read_imports(self, mod: Module) -> dict[str, str]:
        """Record the module's import edges and private imports; return the names its imports
        bind (local name -> dotted module path, ours or not)."""
        bound: dict[str, str] = {}
        private, unresolved = self.found.private, self.found.unresolved
        for node in mod.nodes:
            if isinstance(node, ast.Import):
                loc = f"{mod.rel}:{node.lineno}"
                for alias in node.names:
                    name = alias.name
                    if self.ours(name):
                        if name not in self.modules:
                            unresolved.append(f"{loc}: {name}")
                            continue
                        self.edge(mod, name, node.lineno)
                        if _is_private(name.rpartition(".")[2]) and not self.private_module_ok(mod, name):
                            private.append(f"{loc}: import {name}")
                    elif self.third_party(name) and any(_is_private(p) for p in name.split(".")):
                        private.append(f"{loc}: import {name} (private module of a library)")
                    head = name.split(".")[0]
                    bound[alias.asname or head] = name if alias.asname else head
            elif isinstance(node, ast.ImportFrom):
                self.read_import_from(mod, node, bound)
            elif isinstance(node, ast.Call):
                for target in self.dynamic_imports(mod, node, bound):
                    self.edge(mod, target, node.lineno)
        return bound

    def dynamic_imports(self, mod: Module, call: ast.Call, bound: Mapping[str, str]) -> list[str]:
        """Modules of ours that ``importlib.import_module(name, package)`` may import. A name
        built at run time (``f".{module}"``) may be any module whose name starts with its
        constant beginning (``.`` under ``__name__``: every module of that package)."""
        func = call.func
        is_import_module = (
            isinstance(func, ast.Attribute)
            and func.attr == "import_module"
            and isinstance(func.value, ast.Name)
            and bound.get(func.value.id) == "importlib"
        ) or (isinstance(func, ast.Name) and bound.get(func.id) == "importlib.import_module")
        if not is_import_module or not call.args:
            return []
        arg = call.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            text, exact = arg.value, True
        elif isinstance(arg, ast.JoinedStr):
            head = arg.values[0] if arg.values else None
            text = head.value if isinstance(head, ast.Constant) and isinstance(head.value, str) else ""
            exact = False
        else:
            return []
        level = len(text) - len(text.lstrip("."))
        if level:
            anchor = call.args[1] if len(call.args) > 1 else None
            if not isinstance(anchor, ast.Name) or anchor.id not in ("__name__", "__package__"):
                return []
            base = mod.name if anchor.id == "__name__" else _package_of(mod)
            base = ".".join(base.split(".")[: len(base.split(".")) - (level - 1)])
            text = f"{base}.{text[level:]}"
        if exact:
            return [text] if text in self.modules else []
        return sorted(
            name for name in self.modules if name.startswith(text) and name != mod.name and self.ours(name)
        )

    def read_import_from(self, mod: Module, node: ast.ImportFrom, bound: dict[str, str]) -> None:
        base = _resolve_from(mod, node)
        loc = f"{mod.rel}:{node.lineno}"
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            bound[alias.asname or alias.name] = candidate
            if not self.ours(base):
                if self.third_party(base) and (
                    _is_private(alias.name) or any(_is_private(p) for p in base.split("."))
                ):
                    self.found.private.append(
                        f"{loc}: from {base} import {alias.name} (private name of a library)"
                    )
            elif alias.name != "*" and candidate in self.modules:  # from . import module
                self.edge(mod, candidate, node.lineno)
                if _is_private(alias.name) and not self.private_module_ok(mod, candidate):
                    self.found.private.append(f"{loc}: from {base} import {alias.name}")
            elif base not in self.modules:
                self.found.unresolved.append(f"{loc}: {base}")
            else:  # from module import name
                self.edge(mod, base, node.lineno)
                if _is_private(alias.name) and base != mod.name:
                    self.found.private.append(f"{loc}: from {base} import {alias.name}")

    def dotted(self, expr: ast.expr, bound: Mapping[str, str]) -> str | None:
        """The module an expression names (``session``, ``inferspeed.facts.ortlib``,
        ``onnx.helper``), or None when it is not one we know to be a module."""
        if isinstance(expr, ast.Name):
            return bound.get(expr.id)
        if isinstance(expr, ast.Attribute):
            head = self.dotted(expr.value, bound)
            if head is None:
                return None
            full = f"{head}.{expr.attr}"
            return full if not self.ours(head) or full in self.modules else None
        return None

    def read_attributes(self, mod: Module, bound: Mapping[str, str]) -> None:
        """Private names read on another module (``ortlib._load``, ``onnx.x._y``) or on an
        object whose class another module of ours defines (``session._generated``);
        ``getattr(x, "_name")`` counts too. ``self._x``, ``cls._x``, ``super()._x`` are the
        class's own business."""
        for node in mod.nodes:
            if isinstance(node, ast.Attribute) and _is_private(node.attr):
                attr, value = node.attr, node.value
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str)
                and _is_private(node.args[1].value)
            ):
                attr, value = node.args[1].value, node.args[0]
            else:
                continue
            if (isinstance(value, ast.Name) and value.id in ("self", "cls")) or (
                isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super"
            ):
                continue
            where = f"{mod.rel}:{node.lineno}: {ast.unparse(value)}.{attr}"
            target = self.dotted(value, bound)
            if target is None:
                others = sorted(self.owners.get(attr, set()) - {mod.name})
                if others and attr not in self.owned[mod.name]:
                    self.found.private.append(f"{where} (private attribute of {', '.join(others)})")
            elif self.ours(target):
                full = f"{target}.{attr}"
                if target != mod.name and not (full in self.modules and self.private_module_ok(mod, full)):
                    self.found.private.append(f"{where} (private name of {target})")
            elif self.third_party(target):
                self.found.private.append(f"{where} (private name of a library)")


def analyse(modules: Mapping[str, Module]) -> Findings:
    """Import edges between the package's modules, imports of modules of ours that do not
    exist, and every use of a private name that belongs to another module (ours or a
    third-party library's)."""
    reader = _Reader(modules)
    for mod in modules.values():
        if mod.tree is not None:
            reader.read_attributes(mod, reader.read_imports(mod))
    return reader.found


def upward_imports(
    edges: Iterable[Edge], modules: Mapping[str, Module], layers: Mapping[int, tuple[str, Sequence[str]]]
) -> list[str]:
    out = []
    for e in edges:
        a = layer_of(modules[e.src], layers)
        b = layer_of(modules[e.dst], layers)
        if a is not None and b is not None and b > a:
            out.append(f"{e.src} -> {e.dst} (layer {a} -> layer {b}) at {e.where}")
    return sorted(set(out))


def import_cycles(edges: Iterable[Edge], modules: Mapping[str, Module]) -> list[str]:
    """One shortest cycle per strongly connected component of the import graph, printed as
    ``a -> b (file:line) -> ... -> a``."""
    graph: dict[str, dict[str, Edge]] = defaultdict(dict)
    for e in edges:
        graph[e.src].setdefault(e.dst, e)
    # Tarjan's strongly connected components, iteratively.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    out = []
    for component in sorted(components):
        members = set(component)
        first = component[0]
        # Shortest path from first back to first, inside the component.
        previous: dict[str, str] = {}
        queue = deque([first])
        seen = {first}
        end = None
        while queue and end is None:
            node = queue.popleft()
            for child in sorted(graph.get(node, {})):
                if child not in members:
                    continue
                if child == first:
                    end = node
                    break
                if child not in seen:
                    seen.add(child)
                    previous[child] = node
                    queue.append(child)
        assert end is not None
        path = [end]
        while path[-1] != first:
            path.append(previous[path[-1]])
        path.reverse()
        path.append(first)
        text = path[0]
        for a, b in itertools.pairwise(path):
            text += f" -> {b} ({graph[a][b].where})"
        if len(component) > len(path) - 1:
            text += f"  [{len(component)} modules in this cycle: {', '.join(component)}]"
        out.append(text)
    return out


def long_functions(modules: Mapping[str, Module], limit: int = MAX_FUNCTION_LINES) -> list[str]:
    out = []

    def visit(node: ast.AST, prefix: str, mod: Module) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualname = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    length = (child.end_lineno or child.lineno) - child.lineno + 1
                    if length > limit:
                        out.append(f"{mod.rel}:{child.lineno} {qualname} ({length} lines)")
                visit(child, qualname + ".", mod)
            else:
                visit(child, prefix, mod)

    for mod in modules.values():
        if mod.tree is not None and mod.path.suffix == ".py":
            visit(mod.tree, "", mod)
    return sorted(out)


def unassigned_modules(
    modules: Mapping[str, Module], layers: Mapping[int, tuple[str, Sequence[str]]]
) -> list[str]:
    return sorted(name for name, mod in modules.items() if layer_of(mod, layers) is None)


@dataclass
class Report:
    cycles: list[str]
    upward: list[str]
    private: list[str]
    long: list[str]
    unassigned: list[str]
    unresolved: list[str]

    def problems(self) -> dict[str, list[str]]:
        return {k: v for k, v in vars(self).items() if v}


def check(
    root: Path,
    layers: Mapping[int, tuple[str, Sequence[str]]] = LAYERS,
    modules: Mapping[str, Module] | None = None,
) -> Report:
    modules = scan_package(root) if modules is None else modules
    findings = analyse(modules)
    return Report(
        cycles=import_cycles(findings.edges, modules),
        upward=upward_imports(findings.edges, modules, layers),
        private=sorted(set(findings.private)),
        long=long_functions(modules),
        unassigned=unassigned_modules(modules, layers),
        unresolved=sorted(set(findings.unresolved)),
    )


# ------------------------------------------------------------------------- the real package


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return scan_package(PACKAGE_DIR)


@pytest.fixture(scope="module")
def report(modules: dict[str, Module]) -> Report:
    return check(PACKAGE_DIR, modules=modules)


def test_no_import_cycles(report: Report) -> None:
    if report.cycles:
        pytest.fail("import cycles (deferred imports count):\n" + "\n".join(report.cycles), pytrace=False)


def test_imports_only_go_down(report: Report) -> None:
    if report.upward:
        pytest.fail("imports that go up the layer order:\n" + "\n".join(report.upward), pytrace=False)


def test_no_private_name_of_another_module(report: Report) -> None:
    if report.private:
        pytest.fail("private names used outside their module:\n" + "\n".join(report.private), pytrace=False)


def test_no_function_over_80_lines(report: Report) -> None:
    if report.long:
        pytest.fail(f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(report.long), pytrace=False)


def test_every_module_has_a_layer(report: Report) -> None:
    if report.unassigned:
        pytest.fail(
            "modules in no layer (add their place to LAYERS in tests/test_layers.py and to "
            "docs/architecture.md):\n" + "\n".join(report.unassigned),
            pytrace=False,
        )
    if report.unresolved:
        pytest.fail("imports of modules that do not exist:\n" + "\n".join(report.unresolved), pytrace=False)


def test_every_table_entry_exists(modules: dict[str, Module]) -> None:
    tops = {name.split(".")[1] for name in modules if name.count(".") >= 1}
    packages = {
        name.split(".")[1] for name, mod in modules.items() if mod.is_package and name.count(".") == 1
    }
    stale = []
    for _, (_, entries) in LAYERS.items():
        for entry in entries:
            if entry == "__init__":
                continue
            exists = entry[:-1] in packages if entry.endswith("/") else entry in tops
            if not exists:
                stale.append(entry)
    assert not stale, f"LAYERS lists what the package does not have: {stale}"


def test_architecture_doc_mirrors_the_table() -> None:
    rows = {}
    for line in ARCHITECTURE_DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*(\d+)\s*\|([^|]*)\|([^|]*)\|", line)
        if m:
            rows[int(m.group(1))] = (m.group(2).strip(), set(re.findall(r"`([^`]+)`", m.group(3))))
    expected = {layer: (name, set(entries)) for layer, (name, entries) in LAYERS.items()}
    assert rows == expected, (
        "docs/architecture.md's layer table differs from LAYERS in tests/test_layers.py:\n"
        f"doc:   {rows}\ntable: {expected}"
    )


def test_import_inferspeed_is_light_and_exports_resolve(tmp_path: Path) -> None:
    spec = importlib.util.find_spec("inferspeed")
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
        print(json.dumps({{"heavy": heavy, "missing": missing, "file": inferspeed.__file__}}))
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


# ---------------------------------------------------------------------- the checker itself


SYNTHETIC_LAYERS = {
    0: ("base", ("base", "_private_mod")),
    1: ("middle", ("mid/",)),
    2: ("top", ("top/",)),
    3: ("package", ("__init__",)),
}


def _write(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


CLEAN = {
    "fake/__init__.py": "from .top.app import run\nfrom . import _private_mod\n",
    "fake/_private_mod.py": "X = 1\n",
    "fake/base.py": "import os\n\ndef helper():\n    return os.sep\n",
    "fake/mid/__init__.py": "",
    "fake/mid/a.py": "from ..base import helper\nfrom . import b\n",
    "fake/mid/b.py": "from .. import base\n\ndef f():\n    return base.helper()\n",
    "fake/top/__init__.py": "",
    "fake/top/app.py": """
        from typing import TYPE_CHECKING

        import fake.mid.a

        if TYPE_CHECKING:
            from ..mid.b import f

        class Thing:
            def __init__(self):
                self._state = 1

            def go(self):
                return self._state

        def run():
            from ..mid import a
            return a, fake.mid.a
        """,
}


def test_checker_passes_a_clean_package(tmp_path: Path) -> None:
    report = check(_write(tmp_path, CLEAN) / "fake", SYNTHETIC_LAYERS)
    assert report.problems() == {}


def test_checker_reports_every_kind_of_violation(tmp_path: Path) -> None:
    long_body = "".join(f"    x{i} = {i}\n" for i in range(85))
    files = {
        **CLEAN,
        # (b) an upward import, hidden in a function
        "fake/base.py": "def helper():\n    from .top.other import Thing\n    return Thing\n",
        # (a) a cycle through a TYPE_CHECKING import and a function-local one
        "fake/mid/a.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from .b import f
            """,
        "fake/mid/b.py": """
            def f():
                from fake.mid import a
                return a
            """,
        # (c) private names: imported from a module of ours, read on one, read on an object,
        # and a library's
        "fake/top/app.py": """
            from ..mid.b import _hidden
            from .. import base
            from onnx.external_data_helper import _get_all_tensors
            from .other import Thing

            def run(t: Thing):
                return base._secret, t._state, _hidden, _get_all_tensors
            """,
        "fake/top/other.py": """
            class Thing:
                def __init__(self):
                    self._state = 1
            """,
        "fake/mid/c.py": """
            import importlib

            from .. import _private_mod

            def load(name):  # (b) a dynamic import, up
                return importlib.import_module(f"..top.{name}", __package__)
            """,
        # (d) a long function
        "fake/top/long.py": "def long():\n" + long_body,
        # (e) a module in no layer, and an import of one that does not exist
        "fake/stray.py": "from .gone import x\n",
    }
    report = check(_write(tmp_path, files) / "fake", SYNTHETIC_LAYERS)
    assert report.upward == [
        "fake.base -> fake.top.other (layer 0 -> layer 2) at fake/base.py:2",
        *(
            f"fake.mid.c -> fake.top.{m} (layer 1 -> layer 2) at fake/mid/c.py:7"
            for m in ("app", "long", "other")
        ),
    ]
    assert len(report.cycles) == 1
    assert report.cycles[0].startswith("fake.mid.a -> fake.mid.b (fake/mid/a.py:4) -> fake.mid.a")
    private = "\n".join(report.private)
    assert "fake/top/app.py:2: from fake.mid.b import _hidden" in private
    assert "fake/top/app.py:4: from onnx.external_data_helper import _get_all_tensors" in private
    assert "fake/top/app.py:8: base._secret (private name of fake.base)" in private
    assert "fake/top/app.py:8: t._state (private attribute of fake.top.other)" in private
    assert "fake/mid/c.py:4: from fake import _private_mod" in private
    assert len(report.private) == 5, private
    assert report.long == ["fake/top/long.py:1 long (86 lines)"]
    assert report.unassigned == ["fake.stray"]
    assert report.unresolved == ["fake/stray.py:1: fake.gone"]


def test_checker_catches_an_upward_import_added_to_the_real_package(tmp_path: Path, report: Report) -> None:
    """The acceptance check of issue 13: an upward import added to a copy of the package (a
    function-local import of the CLI in the statistics layer) fails the test, with its edge."""
    copy = tmp_path / "inferspeed"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so", "data"))
    summary = copy / "stats" / "summary.py"
    lines = summary.read_text(encoding="utf-8").splitlines()
    added = len(lines) + 4
    lines += ["", "", "def _peek():", "    from ..cli import main", "", "    return main"]
    summary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = report
    after = check(copy)
    new = sorted(set(after.upward) - set(before.upward))
    edge = "inferspeed.stats.summary -> inferspeed.cli (layer 2 -> layer 8)"
    assert new == [f"{edge} at inferspeed/stats/summary.py:{added}"]
    assert len(after.cycles) >= len(before.cycles)
