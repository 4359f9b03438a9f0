"""Parsing from threads: `liftdspy.pyast.parse` holds up where CPython 3.11's `ast.parse` fails.

CPython 3.11 shares the AST constructor's recursion counter between threads (gh-106905); a CI run
failed in `datasets import mbpp` with `SystemError: AST constructor recursion depth mismatch`.
The stress below (garbage collections with finalizers during the construction, a tiny switch
interval, eight threads) reproduces it with plain `ast.parse` on the interpreter CI uses.
"""

from __future__ import annotations

import ast
import gc
import inspect
import re
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from liftdspy import pyast

PACKAGE = Path(__file__).resolve().parents[1] / "liftdspy"
SOURCE = "\n".join(
    f"def f{i}(x):\n    return [[(x, {i})] for _ in range(3)] if x else {{'a': (1, 2)}}"
    for i in range(200)
)


class _Finalised:
    """A cyclic object whose finalizer runs Python code when the collector frees it."""

    def __init__(self) -> None:
        self.me = self

    def __del__(self) -> None:
        sum(range(50))


@pytest.fixture
def hostile_scheduling() -> Iterator[None]:
    thresholds, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(1, 1_000_000, 1_000_000)  # a young collection per allocation
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)


def _parse_from_threads(parse: Callable[[str], object], rounds: int) -> list[str]:
    """Parse SOURCE from eight threads at once; the SystemErrors raised, as text (the threads
    stop at the first one)."""
    failed = threading.Event()

    def work(_: int) -> str | None:
        try:
            for _ in range(20):
                if failed.is_set():
                    return None
                _Finalised()
                parse(SOURCE)
        except SystemError as error:
            failed.set()
            return str(error)
        return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        return [e for e in pool.map(work, range(rounds)) if e]


def test_parsing_from_threads_through_pyast_never_corrupts_the_ast_constructor(
    hostile_scheduling: None,
) -> None:
    assert _parse_from_threads(pyast.parse, rounds=16) == []
    assert isinstance(pyast.parse("x = 1"), ast.Module)
    assert isinstance(pyast.parse("1 + 2", mode="eval"), ast.Expression)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the race is CPython 3.11's")
def test_the_stress_reproduces_the_race_with_plain_ast_parse(hostile_scheduling: None) -> None:
    """The control: without the lock the same stress fails, so the test above can fail."""
    errors = _parse_from_threads(ast.parse, rounds=64)
    assert errors and "recursion depth mismatch" in errors[0]


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the race is CPython 3.11's")
def test_every_parse_locked_protects_code_that_calls_ast_parse_itself(
    hostile_scheduling: None,
) -> None:
    # inspect.getsource (DSPy's MIPROv2 proposer) calls `ast.parse` by name, as this does.
    with pyast.every_parse_locked():
        assert ast.parse is pyast.parse
        with pyast.every_parse_locked():  # nested: still installed when the inner one ends
            pass
        assert _parse_from_threads(lambda source: ast.parse(source), rounds=64) == []
        assert "def parse" in inspect.getsource(pyast)
    assert ast.parse is pyast._ast_parse


def test_no_module_of_the_package_calls_ast_parse_directly() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "pyast.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\bast\.parse\(", line) and not line.lstrip().startswith(("#", "|"))
    ]
    assert offenders == []
