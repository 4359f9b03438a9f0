"""An IR from whatever a program, a dataset row or an LM answer holds (the one IR coercer)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from liftdspy.fences import strip_code_fence
from liftdspy.ir.models import IntermediateRepresentation


def coerce_ir(value: Any) -> IntermediateRepresentation:
    """An IR from an IR, another pydantic model, a dict, or a JSON string or bytes (optionally in
    a whole-answer code fence).

    Raises ValueError (a pydantic ValidationError or a JSON error) when it is none of these.
    """
    if isinstance(value, IntermediateRepresentation):
        return value
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, str | bytes):
        text = strip_code_fence(value.decode() if isinstance(value, bytes) else value)
        return IntermediateRepresentation.model_validate_json(text)
    if isinstance(value, dict):
        return IntermediateRepresentation.model_validate(value)
    raise ValueError(f"expected an IR, a dict or a JSON string, got {type(value).__name__}")
