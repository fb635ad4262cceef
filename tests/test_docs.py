"""The docs stay true to the code: the CLI reference is current, every warning code is
explained, the examples run, the public API documents every parameter it takes, and no text
cites an issue by its number."""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from make_cli_reference import reference
    finally:
        sys.path.pop(0)
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == reference(), (
        "docs/cli.md is out of date: run python docs/make_cli_reference.py"
    )


def test_every_warning_code_is_explained() -> None:
    codes = set()
    for path in (ROOT / "python" / "inferspeed").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        codes |= set(re.findall(r'Diagnostic\(\s*"([a-z_]+)"', text))
    assert {"warmup", "drift", "overloaded", "process_spread"} <= codes
    page = (ROOT / "docs" / "warnings.md").read_text(encoding="utf-8")
    missing = sorted(c for c in codes if f"| `{c}` |" not in page)
    assert not missing, f"docs/warnings.md does not explain {missing}"


@pytest.mark.parametrize("script", ["benchmark_model.py", "compare_two.py", "time_function.py"])
def test_python_examples_run(script: str, tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    assert "median" in p.stdout or "ns per call" in p.stdout


def test_ci_gate_example(models: dict[str, str]) -> None:
    env = {
        **os.environ,
        "GATE_TIME": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    gate = [str(ROOT / "examples" / "ci_gate.sh")]
    slower = subprocess.run(
        [*gate, models["mlp3"], models["mlp6"]], capture_output=True, text=True, env=env, timeout=120
    )
    assert slower.returncode == 1, slower.stdout + slower.stderr
    faster = subprocess.run(
        [*gate, models["mlp6"], models["mlp3"]], capture_output=True, text=True, env=env, timeout=120
    )
    assert faster.returncode == 0, faster.stdout + faster.stderr


def test_bad_input_table_lists_every_case() -> None:
    from .test_cli import BAD_INPUTS

    page = (ROOT / "docs" / "bad-inputs.md").read_text(encoding="utf-8")
    missing = [message for _, message in BAD_INPUTS if f"`{message}`" not in page]
    assert not missing, f"docs/bad-inputs.md lacks {missing}"


# --- the public API documents itself ------------------------------------------------------------

#: An entry of a numpy-style section: ``name : type``, ``a, b : type``, ``*args``, ``**options``.
_ENTRY = re.compile(r"(\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)(?:\s+:.*)?")


def documented(doc: str | None, section: str | None = "Parameters") -> set[str]:
    """The names a numpy-style docstring documents: the entries of its ``section`` (a title
    underlined with dashes), or of every such section when ``section`` is None."""
    lines = inspect.cleandoc(doc or "").splitlines()
    titles = {
        i for i in range(len(lines) - 1) if lines[i].strip() and re.fullmatch(r"-{3,}", lines[i + 1].strip())
    }
    names: set[str] = set()
    inside = False
    for i, line in enumerate(lines):
        if i in titles:
            inside = section is None or line.strip() == section
            continue
        if i - 1 in titles or not inside or line[:1].isspace():
            continue
        entry = _ENTRY.fullmatch(line.rstrip())
        if entry:
            names |= {name.strip().lstrip("*") for name in entry.group(1).split(",")}
    return names


def parameters(fn: Callable[..., Any]) -> list[str]:
    """The parameters of ``fn`` by name (``*args`` and ``**options`` included), ``self`` left out."""
    return [name for name in inspect.signature(fn).parameters if name != "self"]


#: The public callables whose every parameter is documented.
DOCUMENTED_CALLABLES = ("Session", "Session.measure", "benchmark", "compare", "gate", "timeit", "sweep")


def public_callables() -> dict[str, tuple[Callable[..., Any], set[str]]]:
    """Each of DOCUMENTED_CALLABLES: what it takes, and the names its Parameters document."""
    import inferspeed

    session = inferspeed.Session
    return {
        "Session": (session.__init__, documented(session.__doc__) | documented(session.__init__.__doc__)),
        "Session.measure": (session.measure, documented(session.measure.__doc__)),
        "benchmark": (inferspeed.benchmark, documented(inferspeed.benchmark.__doc__)),
        "compare": (inferspeed.compare, documented(inferspeed.compare.__doc__)),
        "gate": (inferspeed.gate, documented(inferspeed.gate.__doc__)),
        "timeit": (inferspeed.timeit, documented(inferspeed.timeit.__doc__)),
        "sweep": (inferspeed.sweep, documented(inferspeed.sweep.__doc__)),
    }


def test_documented_reads_numpy_sections() -> None:
    doc = """Summary.

    Parameters
    ----------
    a, b : int
        Two.
    c
        Not ``d : int``.
    *args
    **options : Any
        Fields.

    Returns
    -------
    e : int
    """
    assert documented(doc) == {"a", "b", "c", "args", "options"}
    assert documented(doc, None) == {"a", "b", "c", "args", "options", "e"}
    assert documented("No sections.") == set()


def test_config_documents_every_field() -> None:
    from inferspeed.config import Config

    fields = [f.name for f in dataclasses.fields(Config)]
    entries = documented(Config.__doc__, None)
    missing = [name for name in fields if name not in entries]
    assert not missing, f"Config's docstring has no entry (name : type) for {missing}"
    stale = sorted(entries - set(fields))
    assert not stale, f"Config's docstring documents {stale}, which are not its fields"


def test_documented_callables_are_all_checked() -> None:
    assert tuple(public_callables()) == DOCUMENTED_CALLABLES


@pytest.mark.parametrize("name", DOCUMENTED_CALLABLES)
def test_public_callable_documents_every_parameter(name: str) -> None:
    fn, entries = public_callables()[name]
    missing = [p for p in parameters(fn) if p not in entries]
    assert not missing, f"{name}: its docstring's Parameters section does not document {missing}"
    stale = sorted(entries - set(parameters(fn)))
    assert not stale, f"{name}: its docstring's Parameters section documents {stale}, which it does not take"


def test_loop_options_are_named_where_they_are_taken() -> None:
    from inferspeed.measure.callables import TIMEIT_OPTIONS, timeit
    from inferspeed.measure.session import MEASURE_OPTIONS, Session

    for fn, options in ((Session.measure, MEASURE_OPTIONS), (timeit, TIMEIT_OPTIONS)):
        unnamed = sorted(o for o in options if f"``{o}``" not in (fn.__doc__ or ""))
        assert not unnamed, f"{fn.__qualname__}'s docstring does not name the options {unnamed}"


# --- no issue numbers ---------------------------------------------------------------------------

#: The word issue followed by a number, as a text that cites an issue by its number says it: a
#: reader of the repository cannot look that up. Say the claim or the change instead.
ISSUE_NUMBER = re.compile(r"\bissues?[\s#-]*\d+", re.IGNORECASE)
TEXT_SUFFIXES = (".py", ".pyi", ".md", ".sh", ".toml", ".c", ".cpp", ".hpp", ".txt", ".cmake")


def test_issue_number_pattern() -> None:
    word = "issue"  # the cited forms built here, so that this file cites no issue itself
    cited = [f"see {word} 7", f"{word.title()} 16's acceptance", f"{word}s #3 and #4", f"({word.upper()}-12)"]
    assert all(ISSUE_NUMBER.search(text) for text in cited)
    plain = ["an issue with 2 threads", "tissue 5", "the requests were issued 3 times", "#555555"]
    assert not any(ISSUE_NUMBER.search(text) for text in plain)


def test_no_issue_numbers_in_the_repository() -> None:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("git is not installed: the tracked files are unknown")
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the tracked files are unknown")
    found = []
    for name in sorted(listed.stdout.decode().split("\0")):
        path = ROOT / name
        if not name.endswith(TEXT_SUFFIXES) or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if ISSUE_NUMBER.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    assert not found, "text cites an issue by its number; say the claim instead:\n" + "\n".join(found)
