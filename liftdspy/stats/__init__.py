"""Statistics for comparing programs and study arms.

Single runs (`bootstrap`): `bootstrap_ci`, `paired_bootstrap` over one run's per-example scores,
the one-seed case of the studies' crossed inference below (t with E - 1 df, moment SE).

Studies (arms × seeds × examples), all deterministic given `seed`, results pydantic models with a
`version` field ("1", `liftdspy.versioning.Version`; ``model_dump(mode="json")`` for
``study report --json``):

- Input: ``ScoreTable.from_records([{"arm", "seed", "example", "score"}, ...])`` — validated:
  duplicate/missing cells, arms on different example sets and non-finite scores raise
  `ScoreTableError` (a `StatsInputError`: `LiftdspyError` and `ValueError`) naming arm, seed
  and example. A seed-independent arm has one seed (e.g. None).
  ``table.matrix(arm)`` is its (seeds × examples) array.
- ``analyze_study(table, baseline="random-demos", selections=[...], level=0.95, resamples=2000,
  seed=0, alpha=0.05, power=0.8, unit="tasks") -> StudyStatistics`` with ``arms``
  (`ArmSummary`), ``comparisons`` (`ArmComparison`) and ``optimism`` (`ArmOptimism`).
- ``summarize_arm(table, arm) -> ArmSummary``: ``mean`` (`Interval`: estimate, low, high, level)
  from a crossed two-level bootstrap (calibrated to the moment SE and a t quantile),
  ``standard_error``, ``per_seed`` means, ``variance`` (`VarianceComponents`:
  seed, example, residual; method of moments, clamped at 0; None when not estimable).
- ``compare_to_baseline(table, baseline, arms=None) -> list[ArmComparison]``: arm - baseline
  paired on examples and seeds: ``difference`` (`Interval`), ``p_value``, ``p_holm``,
  ``significant``, ``standard_error``, ``df``, ``wins``/``losses``/``ties`` (per example,
  seed-averaged), ``per_example`` differences, ``variance`` of the difference, ``mde`` and
  ``mde_sentence``.
- ``minimum_detectable_effect(components, n_examples, n_seeds, alpha=0.05, power=0.8)`` and
  ``mde_sentence(mde)`` -> "with 22 tasks × 3 seeds you can detect a gain of ≥ 0.09".
- ``optimism_by_arm([SelectionRecord(arm, seed, validation_score, evaluation_score)])`` ->
  ``list[ArmOptimism]`` (winner's curse: validation minus evaluation score, averaged per arm).
- Building blocks: `variance_components`, `effective_df`, `crossed_inference` (calibrated
  interval and p-value of a matrix mean), `crossed_bootstrap_means`, `holm`, `generator`.

The methods and their caveats are documented in `liftdspy.stats.hierarchical` (bootstrap and
variance components), `comparison` (pairing, p-value, Holm) and `power` (MDE formula).
"""

from liftdspy.stats.arms import ArmSummary, SeedMean, summarize_arm
from liftdspy.stats.bootstrap import (
    ConfidenceInterval,
    PairedComparison,
    bootstrap_ci,
    paired_bootstrap,
)
from liftdspy.stats.comparison import (
    DEFAULT_BASELINE,
    ArmComparison,
    ExampleDifference,
    compare_to_baseline,
    paired_difference,
)
from liftdspy.stats.errors import ScoreTableError, StatsInputError
from liftdspy.stats.hierarchical import (
    Interval,
    MeanInference,
    VarianceComponents,
    crossed_bootstrap_means,
    crossed_inference,
    effective_df,
    generator,
    variance_components,
)
from liftdspy.stats.multiple import holm
from liftdspy.stats.optimism import ArmOptimism, RunOptimism, SelectionRecord, optimism_by_arm
from liftdspy.stats.power import MinimumDetectableEffect, mde_sentence, minimum_detectable_effect
from liftdspy.stats.scores import ScoreRecord, ScoreTable
from liftdspy.stats.study import StudyStatistics, analyze_study

__all__ = [
    "DEFAULT_BASELINE",
    "ArmComparison",
    "ArmOptimism",
    "ArmSummary",
    "ConfidenceInterval",
    "ExampleDifference",
    "Interval",
    "MeanInference",
    "MinimumDetectableEffect",
    "PairedComparison",
    "RunOptimism",
    "ScoreRecord",
    "ScoreTable",
    "ScoreTableError",
    "SeedMean",
    "SelectionRecord",
    "StatsInputError",
    "StudyStatistics",
    "VarianceComponents",
    "analyze_study",
    "bootstrap_ci",
    "compare_to_baseline",
    "crossed_bootstrap_means",
    "crossed_inference",
    "effective_df",
    "generator",
    "holm",
    "mde_sentence",
    "minimum_detectable_effect",
    "optimism_by_arm",
    "paired_bootstrap",
    "paired_difference",
    "summarize_arm",
    "variance_components",
]
