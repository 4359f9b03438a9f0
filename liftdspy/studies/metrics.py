"""A finished study's figures as MLflow metrics on its study run, so the MLflow UI can sort,
compare and chart studies: per arm its score and interval, its gain over the baseline with
interval, p-value (raw and Holm-adjusted) and MDE; for the study its MDE and design.

Names come from `liftdspy.tracking.layout` (`arm.<arm>.score`, `arm.<arm>.gain`, ...). The cell
runs carry `liftdspy.study.arm`, `liftdspy.study.seed` and `liftdspy.study.lm` tags (set when
they start, `cell_runner.cell_tags`), so the UI can group and chart cells by arm and seed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from liftdspy.tracking.layout import arm_metric

logger = logging.getLogger(__name__)


def study_metrics(report: Any) -> dict[str, float]:
    """Every metric of the study run of `report` (a `studies.report.StudyReport`, which imports
    this module), by name (absent figures, e.g. the baseline's gain, left
    out rather than logged as a made-up number)."""
    metrics: dict[str, float] = {}
    for row in report.rows:
        values = {
            "score": row.mean,
            "score_ci_low": row.low,
            "score_ci_high": row.high,
            "gain": row.gain,
            "ci_low": row.gain_low,
            "ci_high": row.gain_high,
            "p": row.p_value,
            "p_holm": row.p_holm,
            "mde": row.mde,
            "cells": row.cells,
        }
        for what, value in values.items():
            if value is not None:
                metrics[arm_metric(row.arm, what)] = float(value)
    mdes = [row.mde for row in report.rows if row.mde is not None]
    if mdes:
        metrics["study.mde"] = float(max(mdes))  # the honest one: the largest arm's
    metrics["study.n_examples"] = float(report.n_examples)
    metrics["study.n_seeds"] = float(len(report.seeds))
    metrics["study.n_arms"] = float(len(report.rows))
    return metrics


def log_study_metrics(client: MlflowClient, report: Any) -> dict[str, float]:
    """Log `study_metrics(report)` on the study run in one batch; returns what was logged."""
    metrics = study_metrics(report)
    now = int(time.time() * 1000)
    batch = [Metric(key, value, now, 0) for key, value in metrics.items()]
    for start in range(0, len(batch), 1000):  # MLflow's log_batch limit
        client.log_batch(report.run_id, metrics=batch[start : start + 1000])
    logger.info("study run %s: logged %d metrics", report.run_id, len(batch))
    return metrics
