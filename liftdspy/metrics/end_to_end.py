"""The end-to-end metric: a weighted mean of the IR metric and the code metric.

`components` are `ir` and `code` (each sub-metric's total); `parts` hold both full breakdowns.
For GEPA, `predictor_parts` can map a predictor's name to the part whose feedback it should see
(e.g. `{"nl_to_ir.predict": "ir", "ir_to_code.predict": "code"}`); other predictors see both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liftdspy.metrics.base import BreakdownMetric
from liftdspy.metrics.breakdown import MetricBreakdown, weighted_total
from liftdspy.metrics.code_metric import CodeMetric
from liftdspy.metrics.ir_metric import IRMetric

Part = Literal["ir", "code"]


class EndToEndWeights(BaseModel):
    """Weights of the IR and code parts of the end-to-end metric."""

    model_config = ConfigDict(extra="forbid")

    ir: float = Field(default=0.3, ge=0)
    code: float = Field(default=0.7, ge=0)

    @model_validator(mode="after")
    def _not_all_zero(self) -> EndToEndWeights:
        if self.ir + self.code <= 0:
            raise ValueError("end-to-end metric weights must not both be zero")
        return self


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


class EndToEndMetric(BreakdownMetric):
    """Scores a prediction carrying both an IR and code (e.g. the NL -> IR -> code program)."""

    def __init__(
        self,
        ir_metric: IRMetric | None = None,
        code_metric: CodeMetric | None = None,
        weights: EndToEndWeights | None = None,
        *,
        predictor_parts: Mapping[str, Part] | None = None,
        bootstrap_threshold: float | None = None,
    ):
        self.ir_metric = ir_metric or IRMetric()
        self.code_metric = code_metric or CodeMetric()
        self.weights = weights or EndToEndWeights()
        self.predictor_parts = dict(predictor_parts or {})
        self.bootstrap_threshold = bootstrap_threshold

    def breakdown(self, example: Any, prediction: Any) -> MetricBreakdown:
        parts = {
            "ir": self.ir_metric.breakdown(example, prediction),
            "code": self.code_metric.breakdown(example, prediction),
        }
        components = {name: part.total for name, part in parts.items()}
        total = weighted_total(components, self.weights.model_dump())
        feedback = "\n".join(
            [f"Score {total:.2f} (IR {components['ir']:.2f}, code {components['code']:.2f})."]
            + [f"{name.upper()}:\n{_indent(part.feedback)}" for name, part in parts.items()]
        )
        return MetricBreakdown(total=total, components=components, feedback=feedback, parts=parts)

    def feedback_text(self, breakdown: MetricBreakdown, pred_name: str | None) -> str:
        part = self.predictor_parts.get(pred_name or "")
        if part is None:
            return breakdown.feedback
        head = f"Overall score {breakdown.total:.2f}; this predictor's part ({part}):"
        return f"{head}\n{breakdown.parts[part].feedback}"
