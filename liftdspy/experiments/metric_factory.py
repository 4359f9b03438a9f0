"""The metric an experiment config asks for."""

from __future__ import annotations

from liftdspy.experiments.config import MetricConfig
from liftdspy.metrics import BreakdownMetric
from liftdspy.metrics.code_metric import CodeMetric
from liftdspy.metrics.end_to_end import EndToEndMetric
from liftdspy.metrics.ir_metric import IRMetric


def make_metric(config: MetricConfig) -> BreakdownMetric:
    threshold = config.bootstrap_threshold
    if config.name == "ir":
        return IRMetric(config.ir, bootstrap_threshold=threshold)
    if config.name == "code":
        return CodeMetric(config.code, bootstrap_threshold=threshold)
    if config.name == "end_to_end":
        return EndToEndMetric(
            IRMetric(config.ir),
            CodeMetric(config.code),
            config.end_to_end,
            bootstrap_threshold=threshold,
        )
    raise ValueError(f"unknown metric {config.name!r}")
