"""The one version-field convention of every model that crosses a boundary (files, MLflow, exports).

A model's `version` is the string of its format version, `"1"` today, typed `Version`:

    version: Version = "1"

Files written before the convention say `version: 1` (YAML configs, studies, recorded LM calls):
`Version` takes that int form too and always writes the string. A later format writes
`Annotated[Literal["2"], FROM_INT]`, so the int form keeps loading there as well. The JSON schema of
`Version` is exactly that of `Literal["1"]` (the IR's schema is part of the prompts, so of every
recording key). DSPy-free: `liftdspy.runtime` uses it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

__all__ = ["CURRENT", "FROM_INT", "Version", "hashed_form"]

CURRENT = "1"


def _from_int(value: Any) -> Any:
    """`1` -> `"1"` (the form older files carry); anything else goes on to the Literal check."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


FROM_INT = BeforeValidator(_from_int)

Version = Annotated[Literal["1"], FROM_INT]


def hashed_form(version: str) -> int:
    """A format version as the content hashes taken before this convention saw it (the int), so
    a hash over a model's dump (a study's identity, a cell's config) stays what it was."""
    return int(version)
