"""Crossed two-level bootstrap and variance components on synthetic data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from stats_synthetic import synthetic_scores, table_of

from liftdspy.stats import (
    ScoreTable,
    StatsInputError,
    analyze_study,
    crossed_inference,
    effective_df,
    generator,
    summarize_arm,
    variance_components,
)


def _planted(rng, n_seeds, n_examples, sd_seed, sd_example, sd_residual):
    return (
        rng.normal(0, sd_seed, (n_seeds, 1))
        + rng.normal(0, sd_example, (1, n_examples))
        + rng.normal(0, sd_residual, (n_seeds, n_examples))
    )


def test_variance_components_recover_the_planted_variances():
    rng = np.random.default_rng(11)
    fits = [variance_components(_planted(rng, 10, 40, 0.1, 0.3, 0.2)) for _ in range(200)]
    estimates = np.array([(c.seed, c.example, c.residual) for c in fits])
    seed, example, residual = estimates.mean(axis=0)
    assert seed == pytest.approx(0.01, rel=0.15)
    assert example == pytest.approx(0.09, rel=0.15)
    assert residual == pytest.approx(0.04, rel=0.05)


def test_a_negative_moment_estimate_is_clamped_and_reported():
    # Rows that differ less than the noise predicts: MS_seed < MS_residual.
    y = np.array([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0]])
    components = variance_components(y)
    assert components.seed == 0.0
    assert "seed" in components.clamped
    assert components.residual == pytest.approx(2 / 3)  # 8 residuals of ±0.5 over 3 df


def test_one_seed_leaves_seed_and_residual_unestimated():
    y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0]])
    components = variance_components(y)
    assert components.seed is None and components.residual is None
    assert components.example == pytest.approx(np.var(y[0], ddof=1))
    assert effective_df(components) == pytest.approx(4)
    one_cell = variance_components(np.array([[0.3]]))
    assert (one_cell.seed, one_cell.example, one_cell.residual) == (None, None, None)


def test_zero_variance_gives_a_point_interval_and_p_one():
    inference = crossed_inference(np.full((3, 10), 0.7), rng=generator(0))
    assert inference.interval.low == inference.interval.high == pytest.approx(0.7)
    assert inference.p_value == pytest.approx(2 / 2001)  # 0.7 is far from 0: the smallest p
    assert inference.standard_error == 0.0
    summary = summarize_arm(
        ScoreTable.from_records([{"arm": "a", "seed": None, "example": "x", "score": 1.0}]),
        "a",
    )
    assert summary.mean.low == summary.mean.high == 1.0


def test_examples_are_crossed_with_seeds_not_nested():
    # Task difficulty only: every seed sees the same scores. Repeating the row 5 times adds no
    # information, so the interval must not shrink (a nested bootstrap would shrink it ~sqrt(5)).
    rng = np.random.default_rng(3)
    row = rng.normal(0.5, 0.3, (1, 30))
    one = crossed_inference(row, rng=generator(1), resamples=20000).interval
    five = crossed_inference(np.repeat(row, 5, axis=0), rng=generator(1), resamples=20000).interval
    width_one, width_five = one.high - one.low, five.high - five.low
    assert width_five == pytest.approx(width_one, rel=0.03)
    # and it matches the t interval of 30 independent tasks (t_29 = 2.045); the uncalibrated
    # percentile interval is ~6% narrower (normal quantile, bootstrap variance (n-1)/n)
    expected = 2 * 2.045 * row.std(ddof=1) / math.sqrt(30)
    assert width_five == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize(
    "design",
    [
        {"n_seeds": 3, "n_examples": 22},  # tasks dominate (the usual case)
        {"n_seeds": 5, "n_examples": 22, "sd_seed": 0.1, "sd_noise": 0.2},  # large seed spread
    ],
)
def test_interval_covers_the_true_mean_95_percent_of_the_time(design):
    rng = np.random.default_rng(2026)
    studies = 400
    covered = 0
    for i in range(studies):
        table = table_of(synthetic_scores(rng, {"arm": 0.0}, **design))
        interval = summarize_arm(table, "arm", resamples=1000, seed=i).mean
        covered += interval.low <= 0.5 <= interval.high
    # binomial sd at 400 studies is 0.011: the band is about ±2.7 sd around 0.95
    assert 0.92 <= covered / studies <= 0.98


def test_results_are_deterministic_and_independent_of_arm_order():
    rng = np.random.default_rng(5)
    matrices = synthetic_scores(rng, {"random-demos": 0.0, "a": 0.05, "b": 0.0})
    first = analyze_study(table_of(matrices), seed=4)
    again = analyze_study(table_of(matrices), seed=4)
    assert first == again
    reordered = analyze_study(table_of(dict(reversed(list(matrices.items())))), seed=4)
    by_arm = {c.arm: c.difference for c in reordered.comparisons}
    assert {c.arm: c.difference for c in first.comparisons} == by_arm
    other_seed = analyze_study(table_of(matrices), seed=5)
    assert other_seed.comparisons[0].difference != first.comparisons[0].difference


def test_bad_level_and_shape_are_refused():
    with pytest.raises(StatsInputError, match="level must lie in"):
        crossed_inference(np.zeros((2, 2)), rng=generator(0), level=95)
    with pytest.raises(StatsInputError, match="non-empty seeds × examples matrix"):
        variance_components(np.zeros(3))
