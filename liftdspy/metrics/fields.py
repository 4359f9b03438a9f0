"""Read the gold and predicted values a metric compares off DSPy examples and predictions."""

from __future__ import annotations

from typing import Any

from liftdspy.errors import LiftdspyError
from liftdspy.ir import IntermediateRepresentation, coerce_ir
from liftdspy.validation_errors import describe_error

_MISSING = object()


class GoldDataError(LiftdspyError, ValueError):
    """The gold side of an example is missing or invalid (a dataset bug, not a model error)."""


def get_field(obj: Any, name: str) -> Any:
    """`obj.name` or `obj[name]`; a private sentinel when absent (see `has_value`)."""
    try:
        return getattr(obj, name)
    except AttributeError:
        pass
    try:
        return obj[name]
    except (KeyError, TypeError, IndexError):
        return _MISSING


def has_value(value: Any) -> bool:
    return value is not _MISSING


def example_label(example: Any) -> str:
    """A short name for an example in error messages: its `id` when it has one."""
    task_id = get_field(example, "id")
    return f"example {task_id!r}" if has_value(task_id) else "example"


def read_gold_ir(example: Any, field: str) -> IntermediateRepresentation:
    """The gold IR of `example`; raises GoldDataError naming the example when it is unusable."""
    value = get_field(example, field)
    if not has_value(value):
        raise GoldDataError(f"{example_label(example)} has no gold IR field {field!r}")
    try:
        return coerce_ir(value)
    except ValueError as exc:
        raise GoldDataError(
            f"{example_label(example)}: gold IR field {field!r} is invalid: {describe_error(exc)}"
        ) from exc
