"""All statistics of one study in one JSON-serializable result (for `study report --json`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from liftdspy.stats.arms import ArmSummary, summarize_arm
from liftdspy.stats.comparison import DEFAULT_BASELINE, ArmComparison, compare_to_baseline
from liftdspy.stats.hierarchical import DEFAULT_LEVEL, DEFAULT_RESAMPLES
from liftdspy.stats.optimism import ArmOptimism, SelectionRecord, optimism_by_arm
from liftdspy.stats.power import DEFAULT_ALPHA, DEFAULT_POWER
from liftdspy.stats.scores import ScoreTable
from liftdspy.versioning import Version

METHOD = (
    "Means with intervals from a crossed two-level bootstrap (seeds and examples resampled "
    "independently; examples are shared by all seeds), rescaled to the moment standard error "
    "and read at the Satterthwaite t quantile. Variance components by the method of moments of "
    "the two-way random-effects model, clamped at 0. Each arm minus the baseline is paired on "
    "examples and seeds; its interval and two-sided p-value come from one bootstrap resample "
    "set; p-values are Holm-adjusted across arms. MDE = (t_{df,1-alpha/2} + t_{df,power}) * SE "
    "of the paired mean difference from its variance components."
)


class StudyStatistics(BaseModel):
    version: Version = "1"
    baseline: str
    level: float
    alpha: float
    power: float
    resamples: int
    seed: int
    method: str = METHOD
    arms: list[ArmSummary]
    comparisons: list[ArmComparison]
    optimism: list[ArmOptimism]


def analyze_study(
    table: ScoreTable,
    baseline: str = DEFAULT_BASELINE,
    selections: Iterable[SelectionRecord | Mapping[str, Any]] = (),
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    unit: str = "tasks",
) -> StudyStatistics:
    """Summaries of every arm, every arm against `baseline`, and the winner's-curse optimism."""
    comparisons = compare_to_baseline(
        table,
        baseline,
        level=level,
        resamples=resamples,
        seed=seed,
        alpha=alpha,
        power=power,
        unit=unit,
    )
    return StudyStatistics(
        baseline=baseline,
        level=level,
        alpha=alpha,
        power=power,
        resamples=resamples,
        seed=seed,
        arms=[
            summarize_arm(table, arm, level=level, resamples=resamples, seed=seed)
            for arm in table.arms
        ],
        comparisons=comparisons,
        optimism=optimism_by_arm(selections),
    )
