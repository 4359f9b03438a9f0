"""DSPy metrics for liftdspy: the IR metric, the code metric (sandboxed tests) and both combined.

Every metric returns a `MetricBreakdown` from `metric.breakdown(example, prediction)`, a float
from `metric(example, prediction, trace=None)` (for `dspy.Evaluate`, MIPROv2, BootstrapFewShot),
and `dspy.Prediction(score=..., feedback=...)` from `metric.feedback(gold, pred, trace,
pred_name, pred_trace)` (pass `metric.feedback` as `dspy.GEPA(metric=...)`). `metric_floor` gives
a metric's floor: the best constant answer's score on the same examples (`floor`).
"""

from liftdspy.metrics.base import BreakdownMetric
from liftdspy.metrics.breakdown import MetricBreakdown, weighted_total
from liftdspy.metrics.code_metric import CodeMetric, CodeMetricWeights, score_code
from liftdspy.metrics.end_to_end import EndToEndMetric, EndToEndWeights
from liftdspy.metrics.fields import GoldDataError
from liftdspy.metrics.floor import FloorCandidate, MetricFloor, metric_floor, normalised
from liftdspy.metrics.ir_metric import IRMetric, IRMetricWeights, score_ir
from liftdspy.metrics.text_similarity import text_similarity
from liftdspy.metrics.type_hints import normalise_type_hint, type_hint_similarity

__all__ = [
    "BreakdownMetric",
    "CodeMetric",
    "CodeMetricWeights",
    "EndToEndMetric",
    "EndToEndWeights",
    "FloorCandidate",
    "GoldDataError",
    "IRMetric",
    "IRMetricWeights",
    "MetricBreakdown",
    "MetricFloor",
    "metric_floor",
    "normalise_type_hint",
    "normalised",
    "score_code",
    "score_ir",
    "text_similarity",
    "type_hint_similarity",
    "weighted_total",
]
