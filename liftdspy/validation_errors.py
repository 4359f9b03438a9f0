"""Pydantic validation errors as `dotted.key: message` lines, for messages that name the place.

The one formatter of a `ValidationError`: config and dataset loaders list every problem
(`validation_problems`); metric feedback gets a bounded one-paragraph summary (`describe_error`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from pydantic import ValidationError

MAX_DESCRIBED_PROBLEMS = 6


def validation_problems(
    exc: ValidationError,
    *,
    root: str = "(top level)",
    place: Callable[[tuple[int | str, ...]], str] | None = None,
) -> list[str]:
    """One `key.path: message` per error; `root` names an error on the object itself, `place`
    (given an error's `loc`) names the place differently, e.g. as the variable that set it."""
    return [
        f"{place(err['loc']) if place else '.'.join(str(p) for p in err['loc']) or root}: "
        f"{err['msg']}"
        for err in exc.errors()
    ]


def describe_error(exc: Exception, limit: int = 600) -> str:
    """A compact one-paragraph description of a parse or validation error: the first
    `MAX_DESCRIBED_PROBLEMS` problems, how many more there are, at most `limit` characters."""
    if isinstance(exc, ValidationError):
        problems = validation_problems(exc)
        shown = problems[:MAX_DESCRIBED_PROBLEMS]
        more = len(problems) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
    elif isinstance(exc, json.JSONDecodeError):
        text = f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
    else:
        text = str(exc)
    return text if len(text) <= limit else text[: limit - 3] + "..."
