"""python/inferspeed/_core.pyi against the built module: every bound name is declared, and
nothing is declared that the module lacks (mypy checks callers against the stub)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import inferspeed
from inferspeed import _core

STUB = Path(inferspeed.__file__).with_name("_core.pyi")
#: Members every Python class or exception has: not part of the binding.
INHERITED = {"add_note", "args", "with_traceback", "name", "value"}


def _stub_names() -> tuple[set[str], dict[str, set[str]]]:
    tree = ast.parse(STUB.read_text())
    top: set[str] = set()
    members: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            top.add(node.name)
            members[node.name] = {
                n.name if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) else n.target.id  # type: ignore[union-attr]
                for n in node.body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                or (isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name))
            }
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            top.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            top.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            top.update(alias.asname or alias.name for alias in node.names)
    return top, members


def test_every_bound_name_is_in_the_stub() -> None:
    top, members = _stub_names()
    bound = {n for n in dir(_core) if not n.startswith("_")}
    assert bound - top == set(), f"bound but missing from _core.pyi: {sorted(bound - top)}"
    assert {n for n in top if not n.startswith("_")} - bound - {
        "Callable",
        "Sequence",
        "Any",
        "ClassVar",
        "npt",
    } == set()
    for name, declared in members.items():
        cls = getattr(_core, name)
        if not inspect.isclass(cls) or issubclass(cls, BaseException):
            continue
        public = {m for m in dir(cls) if not m.startswith("_")} - INHERITED
        assert public - declared == set(), (
            f"{name}: bound but missing from the stub: {sorted(public - declared)}"
        )
        extra = {m for m in declared if not m.startswith("_")} - public - INHERITED
        assert extra == set(), f"{name}: in the stub but not bound: {sorted(extra)}"
