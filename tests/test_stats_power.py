"""Minimum detectable effect: the formula, the sentence, and agreement with simulated power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from stats_synthetic import synthetic_scores, table_of

from liftdspy.stats import (
    StatsInputError,
    VarianceComponents,
    compare_to_baseline,
    mde_sentence,
    minimum_detectable_effect,
)


def _components(n_seeds=3, n_examples=22, seed=0.0018, example=0.045, residual=0.02):
    return VarianceComponents(
        n_seeds=n_seeds, n_examples=n_examples, seed=seed, example=example, residual=residual
    )


def test_mde_is_t_multiplier_times_the_standard_error():
    mde = minimum_detectable_effect(_components())
    se = math.sqrt(0.0018 / 3 + 0.045 / 22 + 0.02 / 66)
    assert mde.standard_error == pytest.approx(se)
    # the multiplier lies between the normal limit 2.80 and t with a few df
    assert 2.80 * se < mde.mde < 3.2 * se
    # Many more examples and seeds: df grows and the multiplier approaches 2.80
    big = minimum_detectable_effect(_components(), n_examples=5000, n_seeds=200)
    assert big.mde / big.standard_error == pytest.approx(2.8016, abs=0.01)


def test_mde_shrinks_with_more_examples_and_seeds():
    c = _components()
    base = minimum_detectable_effect(c).mde
    assert minimum_detectable_effect(c, n_examples=88).mde < base
    assert minimum_detectable_effect(c, n_seeds=10).mde < base


def test_the_sentence_reads_as_in_the_issue():
    mde = minimum_detectable_effect(_components())
    assert mde_sentence(mde) == f"with 22 tasks × 3 seeds you can detect a gain of ≥ {mde.mde:.2f}"
    one_seed = minimum_detectable_effect(_components(n_seeds=1, seed=None, residual=None))
    assert mde_sentence(one_seed).endswith("(seed-to-seed spread not measured with one seed)")
    strict = minimum_detectable_effect(_components(), alpha=0.01, power=0.9)
    assert strict.mde > mde.mde
    assert mde_sentence(strict).endswith("(power 90%, α = 0.01)")
    with pytest.raises(StatsInputError, match="alpha and power"):
        minimum_detectable_effect(_components(), alpha=5)


def test_a_gain_equal_to_the_mde_is_detected_80_percent_of_the_time():
    # The issue's design: 22 tasks × 3 seeds, task-level differences dominating.
    sd_seed, sd_arm_example, sd_noise = 0.03, 0.15, 0.1
    # the paired difference of two arms has twice each arm's variance
    truth = _components(
        seed=2 * sd_seed**2, example=2 * sd_arm_example**2, residual=2 * sd_noise**2
    )
    mde = minimum_detectable_effect(truth).mde
    rng = np.random.default_rng(80)
    studies, detected = 300, 0
    for i in range(studies):
        matrices = synthetic_scores(
            rng,
            {"random-demos": 0.0, "arm": mde},
            sd_seed=sd_seed,
            sd_arm_example=sd_arm_example,
            sd_noise=sd_noise,
        )
        detected += compare_to_baseline(table_of(matrices), resamples=1000, seed=i)[0].significant
    # binomial sd at 300 studies is 0.023
    assert detected / studies == pytest.approx(0.80, abs=0.08)
