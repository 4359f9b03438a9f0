"""Minimum detectable effect of a paired arm-vs-baseline comparison.

For a paired difference matrix D (seeds × examples, arm minus baseline) with variance
components (var_seed, var_example, var_residual) (see `liftdspy.stats.hierarchical`), the
standard error of the mean difference for a design of S seeds and E examples is::

    SE(S, E) = sqrt(var_seed / S + var_example / E + var_residual / (S * E))

and a two-sided test at level alpha detects a true gain delta with probability `power` when::

    delta >= MDE = (t_{df, 1 - alpha/2} + t_{df, power}) * SE(S, E)

with df the Satterthwaite degrees of freedom of SE for that design
(`liftdspy.stats.hierarchical.effective_df`), the same t the comparison's interval uses (the
normal limit, 2.80 * SE at alpha = 0.05 and 80% power, when df is None or large). The MDE is
per comparison: the Holm correction across k arms makes the first test run at alpha / k, which
a caller can pass as `alpha`. With one seed the seed term cannot be estimated and is left out
(the sentence says so).
"""

from __future__ import annotations

import math
from statistics import NormalDist

from pydantic import BaseModel

from liftdspy.stats.errors import StatsInputError
from liftdspy.stats.hierarchical import (
    VarianceComponents,
    effective_df,
    t_quantile,
)
from liftdspy.versioning import Version

DEFAULT_ALPHA = 0.05
DEFAULT_POWER = 0.80


class MinimumDetectableEffect(BaseModel):
    version: Version = "1"
    n_examples: int
    n_seeds: int
    alpha: float
    power: float
    standard_error: float
    df: float | None  # Satterthwaite degrees of freedom of the standard error
    mde: float | None  # None when the differences show no variance at all
    seed_variance_measured: bool  # False with one seed: the seed term is left out


def minimum_detectable_effect(
    components: VarianceComponents,
    n_examples: int | None = None,
    n_seeds: int | None = None,
    *,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
) -> MinimumDetectableEffect:
    """MDE for `n_examples` × `n_seeds` (default: the observed design) from `components`."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise StatsInputError(f"alpha and power must lie in (0, 1), got {alpha!r} and {power!r}")
    e = n_examples or components.n_examples
    s = n_seeds or components.n_seeds
    if e < 1 or s < 1:
        raise StatsInputError(f"need at least one example and one seed, got {e} × {s}")
    se = math.sqrt(components.variance_of_mean(n_seeds=s, n_examples=e))
    df = effective_df(components, n_seeds=s, n_examples=e)
    if df is None:
        z = NormalDist()
        multiplier = z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)
    else:
        multiplier = t_quantile(1 - alpha / 2, df) + t_quantile(power, df)
    return MinimumDetectableEffect(
        n_examples=e,
        n_seeds=s,
        alpha=alpha,
        power=power,
        standard_error=se,
        df=df,
        mde=multiplier * se if se > 0 else None,
        seed_variance_measured=components.seed is not None,
    )


def mde_sentence(mde: MinimumDetectableEffect, unit: str = "tasks") -> str:
    """E.g. "with 22 tasks × 3 seeds you can detect a gain of ≥ 0.09"."""
    seeds = f"{mde.n_seeds} seed" + ("s" if mde.n_seeds != 1 else "")
    design = f"with {mde.n_examples} {unit} × {seeds}"
    if mde.mde is None:
        return f"{design} the paired differences show no variance, so no detectable gain is known"
    sentence = f"{design} you can detect a gain of ≥ {mde.mde:.2f}"
    if (mde.alpha, mde.power) != (DEFAULT_ALPHA, DEFAULT_POWER):
        sentence += f" (power {mde.power:.0%}, α = {mde.alpha:g})"
    if not mde.seed_variance_measured:
        sentence += " (seed-to-seed spread not measured with one seed)"
    return sentence
