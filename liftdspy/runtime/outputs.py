"""Turn a model's JSON answer into a predictor's output fields, validated by type."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from liftdspy.errors import LiftdspyError
from liftdspy.runtime.pack import FieldSpec


class OutputError(LiftdspyError, ValueError):
    """An answer that is not the JSON object the predictor's outputs describe."""


def _validate_ir(value: Any) -> Any:
    from liftdspy.ir import IntermediateRepresentation

    return IntermediateRepresentation.model_validate(value).model_dump(mode="json")


def _validate_str(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


# Output type name (as recorded in the pack) -> validator returning the JSON-ready value.
VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "str": _validate_str,
    "IntermediateRepresentation": _validate_ir,
}


def parse_outputs(predictor: str, outputs: list[FieldSpec], text: str) -> dict[str, Any]:
    """The output fields of `text` (a JSON object), each validated by its declared type.
    Types without a validator are passed through as decoded JSON."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        try:
            data = json.loads(text[start : end + 1]) if 0 <= start < end else None
        except json.JSONDecodeError:
            data = None
    if not isinstance(data, dict):
        raise OutputError(
            f"predictor {predictor!r}: the answer is not a JSON object: {text[:200]!r}"
        )
    missing = [field.name for field in outputs if field.name not in data]
    if missing:
        raise OutputError(f"predictor {predictor!r}: the answer lacks fields {missing}")
    result: dict[str, Any] = {}
    for field in outputs:
        validate = VALIDATORS.get(field.type, lambda value: value)
        try:
            result[field.name] = validate(data[field.name])
        except (ValidationError, ValueError) as exc:
            raise OutputError(
                f"predictor {predictor!r}: field {field.name!r} is not a valid {field.type}: {exc}"
            ) from exc
    return result
