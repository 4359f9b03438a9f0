"""Pydantic validation errors as `dotted.key: message` lines, for messages that name the place."""

from __future__ import annotations

from pydantic import ValidationError


def validation_problems(exc: ValidationError, *, root: str = "(top level)") -> list[str]:
    """One `key.path: message` per error; `root` names an error on the object itself."""
    return [
        f"{'.'.join(str(part) for part in err['loc']) or root}: {err['msg']}"
        for err in exc.errors()
    ]
