"""`ast.parse` behind one process-wide lock: the only way liftdspy parses Python source.

CPython 3.11 keeps the AST constructor's recursion counter in interpreter-wide state, so two
threads that parse at once can corrupt it (a garbage collection during the construction runs Python
code and lets the other thread in), and one of them fails with `SystemError: AST constructor
recursion depth mismatch` (python/cpython gh-106905). liftdspy parses from threads — the sandbox's
`run_many` splits tests in a pool, DSPy's threaded evaluation calls the metrics, `datasets import`
checks references in parallel — so every parse in the package goes through `parse` here
(`tests/test_pyast.py` checks that none calls `ast.parse` directly). `ast.unparse` and
`ast.literal_eval` on a node build no AST from source and need no lock.

Code liftdspy does not own parses too: `inspect.getsource` of a class (DSPy's MIPROv2 proposer
describing the program) calls `ast.parse`. Where such code runs in several threads at once
(study cells in threads), `every_parse_locked()` makes `ast.parse` itself this module's `parse`
while it is active.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
_ast_parse = ast.parse  # CPython's own, whatever `ast.parse` is made to be
_installed = 0
_install_lock = threading.Lock()


def parse(source: str, filename: str = "<unknown>", mode: str = "exec", **kwargs: Any) -> Any:
    """`ast.parse(source, filename, mode, **kwargs)`, one thread at a time."""
    with _lock:
        return _ast_parse(source, filename=filename, mode=mode, **kwargs)


@contextmanager
def every_parse_locked() -> Iterator[None]:
    """While active (in any thread; nestable), `ast.parse` is `parse`: every parse in the
    process, liftdspy's or a library's, takes the one lock."""
    global _installed
    with _install_lock:
        if _installed == 0:
            ast.parse = parse
        _installed += 1
    try:
        yield
    finally:
        with _install_lock:
            _installed -= 1
            if _installed == 0:
                ast.parse = _ast_parse
