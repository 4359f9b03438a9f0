"""`ast.parse` behind one process-wide lock: the only way liftdspy parses Python source.

CPython 3.11 keeps the AST constructor's recursion counter in interpreter-wide state, so two
threads that parse at once can corrupt it (a garbage collection during the construction runs Python
code and lets the other thread in), and one of them fails with `SystemError: AST constructor
recursion depth mismatch` (python/cpython gh-106905). liftdspy parses from threads — the sandbox's
`run_many` splits tests in a pool, DSPy's threaded evaluation calls the metrics, `datasets import`
checks references in parallel — so every parse in the package goes through `parse` here
(`tests/test_pyast.py` checks that none calls `ast.parse` directly). `ast.unparse` and
`ast.literal_eval` on a node build no AST from source and need no lock.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

_lock = threading.Lock()


def parse(source: str, filename: str = "<unknown>", mode: str = "exec", **kwargs: Any) -> Any:
    """`ast.parse(source, filename, mode, **kwargs)`, one thread at a time."""
    with _lock:
        return ast.parse(source, filename=filename, mode=mode, **kwargs)
