"""Each arm against the baseline arm, paired on examples and seeds, Holm-corrected.

**Pairing.** The difference matrix is ``D[s, e] = arm[s, e] - baseline[s, e]``. When both arms
have several seeds they must have the same seed labels (row s of one is paired with row s of the
other). A seed-independent arm (one seed, e.g. ``zero-shot``) is paired with every seed of the
other arm: its single row is repeated. Examples are always paired (the table guarantees one
example set).

**Interval and p-value from one resample set.** D is bootstrapped with the crossed two-level
bootstrap of `liftdspy.stats.hierarchical` (seeds and examples resampled independently). The
interval is the percentile interval of the replicates; the two-sided p-value is
``min(1, 2 * (k + 1) / (B + 1))`` with k the number of the B replicates on the far side of 0 from
the observed difference (replicates exactly at 0 count half), so p < 1 - level essentially
exactly when the interval excludes 0. A bootstrap over E examples cannot support more than an
exact sign-flip test over those E examples could: p is floored at ``2 / 2**E`` (1 for a single
example). A bootstrap p-value was chosen over a sign-flip permutation because flipping signs per
example ignores the seed-to-seed variance of the difference.

**Family.** The p-values of all arms against the baseline are Holm-adjusted together
(`liftdspy.stats.multiple.holm`); `significant` uses the adjusted value.

**Wins/losses/ties** are per example on the difference averaged over seeds (a tie is an exact
zero, up to 1e-12).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from liftdspy.stats.hierarchical import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    STATS_VERSION,
    Interval,
    VarianceComponents,
    crossed_bootstrap_means,
    generator,
    percentile_interval,
    variance_components,
)
from liftdspy.stats.multiple import holm
from liftdspy.stats.power import (
    DEFAULT_ALPHA,
    DEFAULT_POWER,
    MinimumDetectableEffect,
    mde_sentence,
    minimum_detectable_effect,
)
from liftdspy.stats.scores import ScoreTable, ScoreTableError, Seed

DEFAULT_BASELINE = "random-demos"
TIE_TOLERANCE = 1e-12


class ExampleDifference(BaseModel):
    example: str
    arm_mean: float  # over the paired seeds
    baseline_mean: float
    difference: float


class ArmComparison(BaseModel):
    version: str = STATS_VERSION
    arm: str
    baseline: str
    n_seeds: int  # rows of the paired difference matrix
    n_examples: int
    seeds: list[Seed]  # the paired seed labels (the multi-seed side when one arm is seed-free)
    arm_mean: float
    baseline_mean: float
    difference: Interval  # mean of arm - baseline with its bootstrap interval
    p_value: float  # two-sided, unadjusted
    p_holm: float  # Holm-adjusted across all arms compared with this baseline
    significant: bool  # p_holm < alpha
    alpha: float
    wins: int  # examples where the arm's seed-averaged score beats the baseline's
    losses: int
    ties: int
    per_example: list[ExampleDifference]
    variance: VarianceComponents  # of the paired difference matrix
    mde: MinimumDetectableEffect
    mde_sentence: str


def paired_difference(table: ScoreTable, arm: str, baseline: str) -> tuple[np.ndarray, list[Seed]]:
    """D = arm - baseline as a (seeds × examples) array, and the seed labels of its rows."""
    a, b = table.matrix(arm), table.matrix(baseline)
    seeds_a, seeds_b = table.seeds(arm), table.seeds(baseline)
    if len(seeds_a) == 1 or len(seeds_b) == 1:
        seeds = seeds_b if len(seeds_a) == 1 else seeds_a
        return a - b, seeds  # broadcasting repeats the single row
    if seeds_a != seeds_b:
        only_a = [s for s in seeds_a if s not in seeds_b]
        only_b = [s for s in seeds_b if s not in seeds_a]
        raise ScoreTableError(
            f"arm {arm!r} and baseline {baseline!r} cannot be paired on seeds: only {arm!r} has "
            f"seed {only_a!r}, only {baseline!r} has seed {only_b!r}"
        )
    return a - b, seeds_a


def bootstrap_p_value(observed: float, replicates: np.ndarray, n_examples: int) -> float:
    """Two-sided p-value of "mean difference = 0" from bootstrap replicates (see module doc)."""
    if observed == 0:
        return 1.0
    at_zero = 0.5 * float(np.sum(replicates == 0))
    if observed > 0:
        far_side = float(np.sum(replicates < 0)) + at_zero
    else:
        far_side = float(np.sum(replicates > 0)) + at_zero
    p = min(1.0, 2.0 * (far_side + 1.0) / (replicates.size + 1.0))
    return max(p, min(1.0, 2.0 ** (1 - n_examples)))


def compare_to_baseline(
    table: ScoreTable,
    baseline: str = DEFAULT_BASELINE,
    arms: list[str] | None = None,
    *,
    level: float = DEFAULT_LEVEL,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    power: float = DEFAULT_POWER,
    unit: str = "tasks",
) -> list[ArmComparison]:
    """Compare every arm (default: all but the baseline) with `baseline`; Holm across them."""
    if baseline not in table.arms:
        raise ScoreTableError(
            f"baseline arm {baseline!r} is not in the scores; arms: {', '.join(table.arms)}"
        )
    arms = [a for a in (arms if arms is not None else table.arms) if a != baseline]
    examples = table.examples
    partial: list[dict] = []
    for arm in arms:
        d, seeds = paired_difference(table, arm, baseline)
        observed = float(d.mean())
        replicates = crossed_bootstrap_means(d, resamples, generator(seed, "vs", baseline, arm))
        per_example_d = d.mean(axis=0)
        arm_by_example = table.matrix(arm).mean(axis=0)
        base_by_example = table.matrix(baseline).mean(axis=0)
        components = variance_components(d)
        mde = minimum_detectable_effect(components, alpha=alpha, power=power)
        partial.append(
            dict(
                arm=arm,
                baseline=baseline,
                n_seeds=d.shape[0],
                n_examples=d.shape[1],
                seeds=seeds,
                arm_mean=float(table.matrix(arm).mean()),
                baseline_mean=float(table.matrix(baseline).mean()),
                difference=percentile_interval(observed, replicates, level),
                p_value=bootstrap_p_value(observed, replicates, d.shape[1]),
                alpha=alpha,
                wins=int(np.sum(per_example_d > TIE_TOLERANCE)),
                losses=int(np.sum(per_example_d < -TIE_TOLERANCE)),
                ties=int(np.sum(np.abs(per_example_d) <= TIE_TOLERANCE)),
                per_example=[
                    ExampleDifference(
                        example=ex,
                        arm_mean=float(am),
                        baseline_mean=float(bm),
                        difference=float(dd),
                    )
                    for ex, am, bm, dd in zip(
                        examples, arm_by_example, base_by_example, per_example_d, strict=True
                    )
                ],
                variance=components,
                mde=mde,
                mde_sentence=mde_sentence(mde, unit),
            )
        )
    adjusted = holm([c["p_value"] for c in partial])
    return [
        ArmComparison(**c, p_holm=p, significant=p < alpha)
        for c, p in zip(partial, adjusted, strict=True)
    ]
