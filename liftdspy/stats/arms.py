"""Per-arm summary: mean over seeds and examples, crossed-bootstrap interval, variance split."""

from __future__ import annotations

from pydantic import BaseModel

from liftdspy.stats.hierarchical import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    Interval,
    VarianceComponents,
    crossed_inference,
    generator,
    variance_components,
)
from liftdspy.stats.scores import ScoreTable, Seed
from liftdspy.versioning import Version


class SeedMean(BaseModel):
    seed: Seed
    mean: float  # the arm's mean score over all examples under this seed


class ArmSummary(BaseModel):
    version: Version = "1"
    arm: str
    n_seeds: int
    n_examples: int
    mean: Interval  # grand mean with its calibrated crossed two-level bootstrap interval
    standard_error: float  # from the variance components
    per_seed: list[SeedMean]
    variance: VarianceComponents


def summarize_arm(
    table: ScoreTable,
    arm: str,
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> ArmSummary:
    """Mean score of `arm` with its interval and variance components (deterministic in `seed`)."""
    y = table.matrix(arm)
    inference = crossed_inference(
        y, resamples=resamples, rng=generator(seed, "arm", arm), level=level
    )
    return ArmSummary(
        arm=arm,
        n_seeds=y.shape[0],
        n_examples=y.shape[1],
        mean=inference.interval,
        standard_error=inference.standard_error,
        per_seed=[
            SeedMean(seed=s, mean=float(m))
            for s, m in zip(table.seeds(arm), y.mean(axis=1), strict=True)
        ],
        variance=variance_components(y),
    )
