"""The result channel: records the harness writes, validated in the parent.

Every line must be one of these models; the parent also checks their order (`loaded`, then
per test `start` and one `checks` record naming only that test's judgements, then `done`). The
first line that fails is where the channel stops being believed: the tests from there on get a
crash result. Sizes are bounded by the runner (`MAX_RESULT_BYTES`, `MAX_LINE_BYTES`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

MAX_RESULT_BYTES = 16 * 1024 * 1024  # the whole channel; the rest is ignored (crash result)
MAX_LINE_BYTES = 4 * 1024 * 1024
_TEXT = 4000


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Loaded(_Record):
    event: Literal["loaded"]
    ok: bool
    error: Annotated[str, Field(max_length=_TEXT)] | None = None


class Start(_Record):
    event: Literal["start"]
    index: int = Field(ge=0)


class ValueItem(_Record):
    """One expression's value (plain-data JSON, decoded later) or why it has none."""

    value: Any = None
    error_type: Annotated[str, Field(max_length=200)] | None = None
    message: Annotated[str, Field(max_length=_TEXT)] | None = None


class Check(_Record):
    """The values of one judgement's expressions, each time the test reached that judgement."""

    id: int = Field(ge=0)
    items: list[ValueItem]


class Ended(_Record):
    """How the test's program ended: ran through, raised, or ran out of time."""

    kind: Literal["ok", "raised", "timeout"]
    error_type: Annotated[str, Field(max_length=200)] | None = None
    message: Annotated[str, Field(max_length=_TEXT)] | None = None


class Checks(_Record):
    event: Literal["checks"]
    index: int = Field(ge=0)
    checks: list[Check]
    ended: Ended
    duration_s: float = Field(ge=0)


class Done(_Record):
    event: Literal["done"]


Record = Annotated[Loaded | Start | Checks | Done, Field(discriminator="event")]
RECORD = TypeAdapter(Record)


def parse_record(line: bytes) -> Loaded | Start | Checks | Done:
    """One validated record; raises ValueError (pydantic's ValidationError) if malformed."""
    return RECORD.validate_json(line)
