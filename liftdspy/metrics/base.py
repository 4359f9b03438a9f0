"""The two calling conventions DSPy expects of a metric, on top of one `breakdown` method.

* `metric(example, prediction, trace=None) -> float` for `dspy.Evaluate`, MIPROv2 and
  BootstrapFewShot. When DSPy bootstraps demos it passes a `trace` and keeps a demo if the
  result is truthy; set `bootstrap_threshold` to return 1.0/0.0 (total >= threshold) then.
* `metric.feedback(gold, pred, trace, pred_name, pred_trace) -> dspy.Prediction(score, feedback)`
  for `dspy.GEPA` (see `dspy.teleprompt.gepa.gepa.GEPAFeedbackMetric`). `score` is always the
  total so GEPA's score-mismatch check holds; subclasses may focus the feedback on `pred_name`.
"""

from __future__ import annotations

import abc
import logging
from typing import Any, Literal

import dspy

from liftdspy.metrics.breakdown import MetricBreakdown

logger = logging.getLogger(__name__)

# The metrics a config can name (`metric.name`); experiments.metric_factory builds them.
MetricName = Literal["ir", "code", "end_to_end"]


class BreakdownMetric(abc.ABC):
    """A metric computed as a `MetricBreakdown`, callable the ways DSPy optimizers call one."""

    bootstrap_threshold: float | None = None

    @abc.abstractmethod
    def breakdown(self, example: Any, prediction: Any) -> MetricBreakdown:
        """Score `prediction` against the gold fields of `example`."""

    def feedback_text(self, breakdown: MetricBreakdown, pred_name: str | None) -> str:
        """The feedback GEPA shows its reflection LM; by default the whole breakdown's."""
        return breakdown.feedback

    def __call__(self, example: Any, prediction: Any, trace: Any = None) -> float:
        total = self.breakdown(example, prediction).total
        if trace is not None and self.bootstrap_threshold is not None:
            return 1.0 if total >= self.bootstrap_threshold else 0.0
        return total

    def feedback(
        self,
        gold: Any,
        pred: Any,
        trace: Any = None,
        pred_name: str | None = None,
        pred_trace: Any = None,
    ) -> dspy.Prediction:
        """GEPA's feedback metric: `dspy.Prediction(score=total, feedback=text)`."""
        result = self.breakdown(gold, pred)
        return dspy.Prediction(score=result.total, feedback=self.feedback_text(result, pred_name))
