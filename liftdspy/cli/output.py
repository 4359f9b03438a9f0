"""Where and how commands print: the one place that decides.

- On a terminal: rich (colour, markup, tables fitted to the window).
- Not a terminal (a pipe, a file, a test runner): the same text without colour or escape codes,
  lines never wrapped by rich (`soft_wrap`), tables at most `PLAIN_WIDTH` columns.
- `--json`: `print_json` writes one JSON document to stdout with plain `sys.stdout.write`.
- Errors and diagnostics go to stderr (`err()`), results to stdout (`out()`).

Consoles are made per call, on the current `sys.stdout`/`sys.stderr` (a test runner swaps them).
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape

PLAIN_WIDTH = 100


def _console(stream: IO[str], *, stderr: bool) -> Console:
    if stream.isatty() if hasattr(stream, "isatty") else False:
        return Console(stderr=stderr)
    columns = os.environ.get("COLUMNS", "")
    width = int(columns) if columns.isdigit() and int(columns) > 0 else PLAIN_WIDTH
    return Console(
        stderr=stderr,
        width=width,
        soft_wrap=True,
        color_system=None,
        highlight=False,
        emoji=False,
        force_terminal=False,
    )


def out() -> Console:
    """The console for results (stdout)."""
    return _console(sys.stdout, stderr=False)


def err() -> Console:
    """The console for errors, warnings and progress (stderr)."""
    return _console(sys.stderr, stderr=True)


def is_terminal() -> bool:
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def error(message: str, *, label: str = "error") -> None:
    """`error: MESSAGE` on stderr (the message printed as is, never read as markup)."""
    err().print(f"[red]{label}:[/red] {escape(message)}")


def warning(message: str) -> None:
    err().print(f"[yellow]warning:[/yellow] {escape(message)}")


def jsonable(value: BaseModel | Any) -> Any:
    """A pydantic model (or plain data holding models) as JSON-ready data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def print_json(value: BaseModel | Any) -> None:
    """One JSON document on stdout: every field the model holds, nothing else."""
    sys.stdout.write(json.dumps(jsonable(value), indent=2) + "\n")
    sys.stdout.flush()


def print_text(text: str) -> None:
    """Text exactly as given (a model's answer, a URL): no markup, no wrapping."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
