"""Rules of the test suite itself: case IDs, unit tests fast and build-free.

Case IDs live in the first column of the case tables in docs/ (``| M03 | ...``); a case test's docstring starts with
its ID. Other helpers add tests all the time, so the checks read the tree as it is and name each offender.
"""

from __future__ import annotations

import ast
import asyncio
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
_DOCS = _ROOT / "docs"
_ID = r"[A-Z]{1,3}\d{2,3}"
_ROW = re.compile(rf"^\|\s*({_ID})\s*\|")
_DOCSTRING_ID = re.compile(rf"^({_ID})\b")
CASE_SUITES = ("unit", "integration", "e2e", "cluster")


def documented_ids() -> dict[str, set[str]]:
    """Every case ID of the docs' tables, with the docs that define it."""
    where: dict[str, set[str]] = defaultdict(set)
    for doc in sorted(_DOCS.glob("*.md")):
        for line in doc.read_text().splitlines():
            if found := _ROW.match(line):
                where[found.group(1)].add(doc.name)
    return where


def functions_of_tests(directory: Path) -> Iterator[tuple[str, str | None]]:
    """``(path::name, docstring)`` of every test function under ``directory``."""
    for path in sorted(directory.rglob("test_*.py")):
        shown = path.relative_to(_ROOT) if path.is_relative_to(_ROOT) else path
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                yield f"{shown}::{node.name}", ast.get_docstring(node)


def lacking_ids(directory: Path, known: set[str]) -> list[str]:
    """The tests under ``directory`` whose docstring does not start with a documented case ID, and why."""
    problems = []
    for test, docstring in functions_of_tests(directory):
        found = _DOCSTRING_ID.match(docstring or "")
        if found is None:
            problems.append(f"{test}: docstring does not start with a case ID")
        elif found.group(1) not in known:
            problems.append(f"{test}: {found.group(1)} is not in any case table of docs/")
    return problems


@pytest.mark.parametrize("suite", CASE_SUITES)
def test_r01_every_case_test_starts_with_a_documented_id(suite: str) -> None:
    """R01: every test function of every suite has a docstring that starts with a case ID listed in a case table
    of docs/; the failure names each test that lacks one."""
    problems = lacking_ids(_ROOT / "tests" / suite, set(documented_ids()))
    assert not problems, "tests without a documented case ID:\n" + "\n".join(problems)


def test_r02_a_case_id_means_one_case() -> None:
    """R02: no case ID is defined in the tables of two docs (W01-W08 of docs/gc.md once meant other cases than
    docs/controller.md's)."""
    shared = {case: sorted(docs) for case, docs in documented_ids().items() if len(docs) > 1}
    assert not shared, f"case IDs defined in more than one doc: {shared}"


def test_r03_the_checker_names_what_it_rejects(tmp_path: Path) -> None:
    """R03: the ID checker reports a missing docstring, a docstring without an ID and an undocumented ID, each
    with the test's name, and accepts a documented one."""
    (tmp_path / "test_sample.py").write_text(
        "def test_bare():\n    pass\n\n\n"
        'def test_plain():\n    """Does a thing."""\n\n\n'
        'async def test_unknown():\n    """Q77: not in the docs."""\n\n\n'
        'def test_known():\n    """M01: documented."""\n'
    )

    problems = lacking_ids(tmp_path, {"M01"})

    assert [problem.split("::")[1] for problem in problems] == [
        "test_bare: docstring does not start with a case ID",
        "test_plain: docstring does not start with a case ID",
        "test_unknown: Q77 is not in any case table of docs/",
    ]


def test_r04_unit_tests_get_a_short_timeout(request: pytest.FixtureRequest) -> None:
    """R04: a unit test runs under a 30 s timeout, not the 300 s the process-starting suites get."""
    marker = request.node.get_closest_marker("timeout")
    assert marker is not None
    assert marker.args[0] <= 30


def test_r05_no_unit_test_builds_anything() -> None:
    """R05: no unit test module runs a build tool (cmake, make, pip, go); the CNI executable is compiled once per
    session before the tests run (tests/cni_build.py, called from tests/conftest.py)."""
    build = re.compile(r"""["'](cmake|make|ninja|pip|go)["']\s*,""")
    offenders = [
        str(path.relative_to(_ROOT))
        for path in sorted((_ROOT / "tests" / "unit").glob("*.py"))
        if path.name != Path(__file__).name and build.search(path.read_text())
    ]
    assert not offenders, f"unit test modules that run a build: {offenders}"


def test_r07_a_sync_test_never_gets_an_implicit_event_loop() -> None:
    """R07: in a sync test the event loop policy cannot create a loop implicitly: looptime's plugin asks the policy
    for the current loop around every test, and on Python 3.11 that call made an unclosed loop, which the next
    ``asyncio.run`` (the control plane's fixture) dropped: its ResourceWarning then failed a later async test with
    "unclosed event loop". tests/conftest.py marks the main thread's loop as explicitly unset for the session."""
    policy = asyncio.get_event_loop_policy()
    try:
        created = policy.get_event_loop()
    except RuntimeError:
        return  # what the session guarantees: no loop, and none made
    created.close()  # the failure below must not leak one more loop
    pytest.fail("the event loop policy created a loop implicitly in a sync test")
