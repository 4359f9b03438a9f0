"""The IR's JSON schema, as used for grammar-constrained decoding and validation."""

from __future__ import annotations

import copy
import re
from functools import cache
from typing import Any

from liftdspy.errors import LiftdspyError
from liftdspy.ir.models import IntermediateRepresentation


class UnboundedSchemaError(LiftdspyError, ValueError):
    """A schema node would let a grammar engine generate without limit."""


@cache
def _schema() -> dict[str, Any]:
    schema = IntermediateRepresentation.model_json_schema()
    check_bounded(schema)
    return schema


def ir_json_schema() -> dict[str, Any]:
    """The JSON schema of `IntermediateRepresentation` (a fresh copy).

    Every array has `maxItems`, every free string `maxLength` (or an anchored pattern with bounded
    quantifiers) and every object
    `additionalProperties: false`; `check_bounded` enforces this.
    """
    return copy.deepcopy(_schema())


def check_bounded(schema: dict[str, Any]) -> None:
    """Raise `UnboundedSchemaError` naming the JSON pointer of the first unbounded node."""
    problems = list(_unbounded_nodes(schema, "#"))
    if problems:
        raise UnboundedSchemaError("; ".join(problems))


_UNBOUNDED_QUANTIFIER = re.compile(r"(?<!\\)[*+]|\{\d*,\}")


def _bounded_pattern(pattern: Any) -> bool:
    """An anchored pattern without `*`, `+` or `{n,}` bounds the length by itself (vLLM refuses a
    pattern next to maxLength, and XGrammar ignores the maxLength anyway)."""
    return (
        isinstance(pattern, str)
        and pattern.startswith("^")
        and pattern.endswith("$")
        and not _UNBOUNDED_QUANTIFIER.search(pattern)
    )


def _unbounded_nodes(node: Any, pointer: str):
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _unbounded_nodes(item, f"{pointer}/{i}")
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "array" and "maxItems" not in node:
        yield f"{pointer}: array without maxItems"
    if (
        kind == "string"
        and not ({"maxLength", "enum", "const"} & node.keys())
        and not _bounded_pattern(node.get("pattern"))
    ):
        yield f"{pointer}: string without maxLength"
    if kind == "object" and node.get("additionalProperties") is not False:
        yield f"{pointer}: object without additionalProperties: false"
    for key, value in node.items():
        yield from _unbounded_nodes(value, f"{pointer}/{key}")
