"""One `ValidationError` formatter (liftdspy.validation_errors): config loaders, the IR metric's
feedback, the score table and the Modal settings name a problem's place the same way."""

from __future__ import annotations

import pytest
from fixtures_ir import ADD_IR
from pydantic import BaseModel, ValidationError

from liftdspy.ir import coerce_ir
from liftdspy.metrics.ir_metric import IRMetric
from liftdspy.validation_errors import describe_error, validation_problems


class Pair(BaseModel):
    a: int
    b: int


def _error(value) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Pair.model_validate(value)
    return caught.value


def test_problems_name_the_place_or_the_root():
    assert validation_problems(_error({"a": "x", "b": 1})) == [
        "a: Input should be a valid integer, unable to parse string as an integer"
    ]
    assert validation_problems(_error([1])) == [
        "(top level): Input should be a valid dictionary or instance of Pair"
    ]
    assert validation_problems(_error({}), place=lambda loc: f"${loc[0].upper()}") == [
        "$A: Field required",
        "$B: Field required",
    ]


def test_the_summary_is_the_same_lines_bounded():
    lines = validation_problems(_error({}))
    assert describe_error(_error({})) == "; ".join(lines)
    many = ValidationError.from_exception_data(
        "Pair", [{"type": "missing", "loc": (f"f{i}",), "input": {}} for i in range(9)]
    )
    assert describe_error(many).endswith("; and 3 more")
    assert len(describe_error(many, limit=40)) == 40


def test_the_ir_metric_feedback_uses_the_shared_lines():
    bad = {"signature": {"name": "add"}}
    with pytest.raises(ValidationError) as caught:
        coerce_ir(bad)
    breakdown = IRMetric().breakdown({"ir": ADD_IR}, {"ir": bad})
    assert breakdown.components["schema_valid"] == 0.0
    assert validation_problems(caught.value)[0] in breakdown.feedback
