"""Percentile bootstrap over per-example scores.

With the small evaluation sets typical of research runs (20-100 examples), a point score alone
hides how much a rerun could move; every reported score carries a 95% interval, and two programs
evaluated on the same examples are compared with a paired bootstrap of the score difference.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel

from liftdspy.versioning import Version

DEFAULT_RESAMPLES = 2000


class ConfidenceInterval(BaseModel):
    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95


class PairedComparison(BaseModel):
    """B minus A on the same examples. The interval and the p-value come from one set of
    `resamples` bootstrap resamples drawn with `seed` (stored so a rerun reproduces them)."""

    n: int
    mean_a: float
    mean_b: float
    difference: ConfidenceInterval
    p_value: float  # two-sided: how often the resampled difference falls on the other side of 0
    wins: int  # examples where B scored higher
    losses: int
    ties: int
    seed: int = 0
    resamples: int = DEFAULT_RESAMPLES
    version: Version = "1"  # reports/comparison.json of older runs have none: version "1"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    position = q * (len(sorted_values) - 1)
    lower = int(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    weight = position - lower
    return sorted_values[lower] * (1 - weight) + sorted_values[upper] * weight


def _resampled_means(values: Sequence[float], resamples: int, seed: int) -> list[float]:
    """The means of `resamples` bootstrap resamples of `values`, sorted (one `random.Random`)."""
    rng = random.Random(seed)
    n = len(values)
    return sorted(_mean(rng.choices(values, k=n)) for _ in range(resamples))


def _interval(means: list[float], mean: float, n: int, level: float) -> ConfidenceInterval:
    alpha = (1 - level) / 2
    return ConfidenceInterval(
        mean=mean,
        low=_percentile(means, alpha),
        high=_percentile(means, 1 - alpha),
        n=n,
        level=level,
    )


def bootstrap_ci(
    scores: Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of the mean of `scores`."""
    n = len(scores)
    mean = _mean(scores)
    if n < 2:
        return ConfidenceInterval(mean=mean, low=mean, high=mean, n=n, level=level)
    return _interval(_resampled_means(scores, resamples, seed), mean, n, level)


def paired_bootstrap(
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    *,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> PairedComparison:
    """Paired bootstrap of mean(B - A) over the same examples (same order in both lists)."""
    if len(scores_a) != len(scores_b):
        raise ValueError(
            f"paired comparison needs the same examples: {len(scores_a)} vs {len(scores_b)} scores"
        )
    diffs = [b - a for a, b in zip(scores_a, scores_b, strict=True)]
    n = len(diffs)
    observed = _mean(diffs)
    if n < 2:
        interval = ConfidenceInterval(mean=observed, low=observed, high=observed, n=n, level=level)
        p_value = 1.0
    else:
        # One resample set for both the interval and the test.
        means = _resampled_means(diffs, resamples, seed)
        interval = _interval(means, observed, n, level)
        if all(d == 0 for d in diffs):
            p_value = 1.0
        else:
            # Shift to the null of zero mean difference and count resamples at least as extreme.
            extreme = sum(1 for m in means if abs(m - observed) >= abs(observed))
            p_value = (extreme + 1) / (resamples + 1)
    return PairedComparison(
        n=n,
        mean_a=_mean(scores_a),
        mean_b=_mean(scores_b),
        difference=interval,
        p_value=p_value,
        wins=sum(1 for d in diffs if d > 0),
        losses=sum(1 for d in diffs if d < 0),
        ties=sum(1 for d in diffs if d == 0),
        seed=seed,
        resamples=resamples,
    )
