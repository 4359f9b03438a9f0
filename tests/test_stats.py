"""Bootstrap intervals and the paired bootstrap test."""

from __future__ import annotations

import pytest

from liftdspy.stats import bootstrap_ci, paired_bootstrap


def test_interval_contains_the_mean_and_narrows_with_more_data():
    small = bootstrap_ci([0.0, 1.0] * 5, seed=1)
    large = bootstrap_ci([0.0, 1.0] * 200, seed=1)
    for ci in (small, large):
        assert ci.low <= ci.mean <= ci.high
        assert ci.mean == pytest.approx(0.5)
    assert (large.high - large.low) < (small.high - small.low) / 3


def test_constant_scores_have_a_zero_width_interval():
    ci = bootstrap_ci([0.7] * 12)
    assert (ci.low, ci.mean, ci.high) == pytest.approx((0.7, 0.7, 0.7))


def test_interval_is_reproducible_for_a_seed():
    scores = [0.1, 0.9, 0.4, 0.6, 0.3]
    assert bootstrap_ci(scores, seed=3) == bootstrap_ci(scores, seed=3)


def test_paired_bootstrap_detects_a_consistent_gain_and_counts_wins():
    a = [0.2, 0.3, 0.1, 0.4] * 5
    b = [0.5, 0.6, 0.2, 0.4] * 5
    result = paired_bootstrap(a, b)
    assert (result.wins, result.losses, result.ties) == (15, 0, 5)
    assert result.difference.mean == pytest.approx(0.175)
    assert result.difference.low > 0
    assert result.p_value < 0.01


def test_paired_bootstrap_does_not_call_noise_a_gain():
    a = [0.2, 0.3, 0.1, 0.4, 0.5, 0.6] * 3
    b = [0.3, 0.2, 0.2, 0.3, 0.6, 0.5] * 3
    result = paired_bootstrap(a, b)
    assert result.difference.low < 0 < result.difference.high
    assert result.p_value > 0.2


def test_paired_bootstrap_refuses_unpaired_lists():
    with pytest.raises(ValueError, match="same examples: 2 vs 3"):
        paired_bootstrap([0.0, 1.0], [0.0, 1.0, 1.0])


def test_paired_interval_and_p_value_come_from_one_resample_set(monkeypatch):
    import random

    import liftdspy.stats.bootstrap as bootstrap

    seeds: list[int] = []

    class CountingRandom(random.Random):
        def __init__(self, seed=None):
            seeds.append(seed)
            super().__init__(seed)

    monkeypatch.setattr(bootstrap.random, "Random", CountingRandom)
    result = bootstrap.paired_bootstrap([0.1, 0.4, 0.2, 0.5], [0.3, 0.6, 0.2, 0.9], seed=11)
    assert seeds == [11]  # one draw of resamples for both
    assert result.seed == 11 and result.resamples == bootstrap.DEFAULT_RESAMPLES
