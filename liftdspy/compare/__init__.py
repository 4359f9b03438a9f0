"""Compare liftdspy experiment runs recorded in MLflow: scores with confidence intervals,
metric components, cost, and paired bootstrap tests on shared examples."""

from liftdspy.compare.compare import compare_runs
from liftdspy.compare.models import (
    Comparison,
    ExampleScores,
    PairwiseResult,
    ReportKind,
    RunSummary,
)
from liftdspy.tracking.runs import LATEST, RunLookupError, resolve_run

__all__ = [
    "LATEST",
    "Comparison",
    "ExampleScores",
    "PairwiseResult",
    "ReportKind",
    "RunLookupError",
    "RunSummary",
    "compare_runs",
    "resolve_run",
]
