"""Turn a model's answer into a predictor's output fields, validated by type.

A JSON answer (the `compact`, `baml` and `json` adapters) is one object holding every output
field; a `chat` answer has one `[[ ## field ## ]]` section per field, as DSPy's ChatAdapter parses
it (a string field is the section's text, any other field its JSON). An IR content output
(`IRLean`, `IRContent`) is completed into the full IR (`liftdspy.ir.complete_ir`), as the DSPy
program does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from liftdspy.errors import LiftdspyError
from liftdspy.runtime.pack import FieldSpec

CHAT_HEADER = re.compile(r"\[\[ ## (\w+) ## \]\]")


class OutputError(LiftdspyError, ValueError):
    """An answer that is not the JSON object the predictor's outputs describe."""


def _validate_ir(value: Any) -> Any:
    from liftdspy.ir import IntermediateRepresentation

    return IntermediateRepresentation.model_validate(value).model_dump(mode="json")


def _complete_as(model_name: str) -> Callable[[Any], Any]:
    """A validator reading the answer as `liftdspy.ir.<model_name>` and completing the full IR."""

    def complete(value: Any) -> Any:
        from liftdspy import ir

        content = getattr(ir, model_name).model_validate(value)
        return ir.complete_ir(content).model_dump(mode="json")

    return complete


def _validate_str(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


# Output type name (as recorded in the pack) -> validator returning the JSON-ready value.
VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "str": _validate_str,
    "IntermediateRepresentation": _validate_ir,
    "IRContent": _complete_as("IRContent"),
    "IRLean": _complete_as("IRLean"),
}


def _json_object(predictor: str, text: str) -> dict[str, Any]:
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
    return data


def _chat_sections(predictor: str, outputs: list[FieldSpec], text: str) -> dict[str, Any]:
    """The fields of a ChatAdapter answer (the first section of each name, as DSPy reads it)."""
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in text.splitlines():
        match = CHAT_HEADER.match(line.strip())
        if match:
            rest = line.strip()[match.end() :].strip()
            sections.append((match.group(1), [rest] if rest else []))
        else:
            sections[-1][1].append(line)
    types = {field.name: field.type for field in outputs}
    data: dict[str, Any] = {}
    for name, lines in sections:
        if name not in types or name in data:
            continue
        value = "\n".join(lines).strip()
        if types[name] == "str":
            data[name] = value
            continue
        try:
            data[name] = json.loads(value)
        except json.JSONDecodeError:
            raise OutputError(
                f"predictor {predictor!r}: section {name!r} is not JSON: {value[:200]!r}"
            ) from None
    return data


def parse_outputs(
    predictor: str, outputs: list[FieldSpec], text: str, adapter: str = "json"
) -> dict[str, Any]:
    """The output fields of `text` (a JSON object, or ChatAdapter sections for `adapter="chat"`),
    each validated by its declared type. Types without a validator pass as decoded JSON."""
    data = (
        _chat_sections(predictor, outputs, text)
        if adapter == "chat"
        else _json_object(predictor, text)
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
