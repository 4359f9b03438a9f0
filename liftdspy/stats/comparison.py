"""Each arm against the baseline arm, paired on examples and seeds, Holm-corrected.

**Pairing.** The difference matrix is ``D[s, e] = arm[s, e] - baseline[s, e]``. When both arms
have several seeds, row s of one is paired with the row of the same seed label in the other, on
the seeds both have: an arm whose study is still running (seeds 0 and 1 finished, 2 not) is
compared on seeds 0 and 1, and `seeds` / `n_seeds` say so; arms with no seed in common cannot be
paired (`ScoreTableError`). A seed-independent arm (one seed, e.g. ``zero-shot``) is paired with
every seed of the other arm: its single row is repeated. Examples are always paired (the table
guarantees one example set). Means and wins/losses are over the paired rows.

**Interval and p-value from one resample set.** D is bootstrapped with the calibrated crossed
two-level bootstrap of `liftdspy.stats.hierarchical` (seeds and examples resampled
independently; rescaled to the moment standard error; expanded-percentile interval at the t
quantile with Satterthwaite degrees of freedom); interval and two-sided p-value come from the
same replicates, so p < 1 - level exactly when the interval excludes 0. A bootstrap over E
examples cannot support more than an exact sign-flip test over those E examples could: p is
floored at ``2 / 2**E`` (1 for a single example). A bootstrap p-value was chosen over a
sign-flip permutation because flipping signs per example ignores the seed-to-seed variance of
the difference.

**Family.** The p-values of all arms against the baseline are Holm-adjusted together
(`liftdspy.stats.multiple.holm`); `significant` uses the adjusted value.

**Wins/losses/ties** are per example on the difference averaged over seeds (a tie is an exact
zero, up to 1e-12).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from liftdspy.stats.errors import ScoreTableError
from liftdspy.stats.hierarchical import (
    DEFAULT_LEVEL,
    DEFAULT_RESAMPLES,
    Interval,
    VarianceComponents,
    crossed_inference,
    generator,
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
from liftdspy.stats.scores import ScoreTable, Seed
from liftdspy.versioning import Version

DEFAULT_BASELINE = "random-demos"
TIE_TOLERANCE = 1e-12


class ExampleDifference(BaseModel):
    example: str
    arm_mean: float  # over the paired seeds
    baseline_mean: float
    difference: float


class ArmComparison(BaseModel):
    version: Version = "1"
    arm: str
    baseline: str
    n_seeds: int  # rows of the paired difference matrix
    n_examples: int
    seeds: list[Seed]  # the paired seed labels (the multi-seed side when one arm is seed-free)
    arm_mean: float  # over the paired seeds (those both arms have)
    baseline_mean: float
    difference: Interval  # mean of arm - baseline with its bootstrap interval
    standard_error: float  # of the mean difference, from its variance components
    df: float | None  # Satterthwaite degrees of freedom of that standard error
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


def _paired_rows(
    table: ScoreTable, arm: str, baseline: str
) -> tuple[np.ndarray, np.ndarray, list[Seed]]:
    """The arm's and the baseline's (seeds × examples) rows that pair, and their seed labels."""
    a, b = table.matrix(arm), table.matrix(baseline)
    seeds_a, seeds_b = table.seeds(arm), table.seeds(baseline)
    if len(seeds_a) == 1 or len(seeds_b) == 1:
        seeds = seeds_b if len(seeds_a) == 1 else seeds_a
        rows = len(seeds)
        return np.broadcast_to(a, (rows, a.shape[1])), np.broadcast_to(b, (rows, b.shape[1])), seeds
    shared = [s for s in seeds_a if s in seeds_b]
    if not shared:
        raise ScoreTableError(
            f"arm {arm!r} and baseline {baseline!r} cannot be paired on seeds: {arm!r} has "
            f"seeds {seeds_a!r}, {baseline!r} has {seeds_b!r}, none in common"
        )
    rows_a = [seeds_a.index(s) for s in shared]
    rows_b = [seeds_b.index(s) for s in shared]
    return a[rows_a], b[rows_b], shared


def paired_difference(table: ScoreTable, arm: str, baseline: str) -> tuple[np.ndarray, list[Seed]]:
    """D = arm - baseline as a (seeds × examples) array, and the seed labels of its rows."""
    a, b, seeds = _paired_rows(table, arm, baseline)
    return a - b, seeds


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
        paired_arm, paired_base, seeds = _paired_rows(table, arm, baseline)
        d = paired_arm - paired_base
        inference = crossed_inference(
            d, resamples=resamples, rng=generator(seed, "vs", baseline, arm), level=level
        )
        per_example_d = d.mean(axis=0)
        arm_by_example = paired_arm.mean(axis=0)
        base_by_example = paired_base.mean(axis=0)
        components = variance_components(d)
        mde = minimum_detectable_effect(components, alpha=alpha, power=power)
        partial.append(
            dict(
                arm=arm,
                baseline=baseline,
                n_seeds=d.shape[0],
                n_examples=d.shape[1],
                seeds=seeds,
                arm_mean=float(paired_arm.mean()),
                baseline_mean=float(paired_base.mean()),
                difference=inference.interval,
                standard_error=inference.standard_error,
                df=inference.df,
                p_value=max(inference.p_value, min(1.0, 2.0 ** (1 - d.shape[1]))),
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
