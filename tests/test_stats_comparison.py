"""Arms against the baseline: planted effects are found, null arms stay within 5% after Holm."""

from __future__ import annotations

import numpy as np
import pytest
from stats_synthetic import synthetic_scores, table_of

from liftdspy.stats import ScoreTable, ScoreTableError, analyze_study, compare_to_baseline, holm


def test_holm_adjusts_step_down_and_keeps_the_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([]) == []


def test_a_planted_gain_of_a_tenth_is_found():
    # 80 tasks × 5 seeds: the design's MDE is below 0.1, so the gain must be found in most studies
    rng = np.random.default_rng(42)
    design = {"n_seeds": 5, "n_examples": 80, "sd_seed": 0.02}
    studies, found, null_rejected, mdes = 100, 0, 0, []
    for i in range(studies):
        matrices = synthetic_scores(
            rng, {"random-demos": 0.0, "planted": 0.1, "null": 0.0}, **design
        )
        by_arm = {c.arm: c for c in compare_to_baseline(table_of(matrices), resamples=1000, seed=i)}
        planted, null = by_arm["planted"], by_arm["null"]
        mdes.append(planted.mde.mde)
        found += planted.significant
        null_rejected += null.significant
        if planted.significant:  # a found gain has an interval clear of 0 and a small p
            assert planted.difference.low > 0
            assert planted.p_value < 0.05
            assert planted.wins > planted.losses
    assert np.median(mdes) < 0.1
    assert found / studies >= 0.75
    assert null_rejected / studies <= 0.1


def test_null_arms_keep_the_family_wise_error_rate_near_five_percent():
    rng = np.random.default_rng(9)
    studies, arms = 400, ("a", "b", "c")
    any_rejected = 0
    p_values = []
    for i in range(studies):
        table = table_of(synthetic_scores(rng, {"random-demos": 0.0, **dict.fromkeys(arms, 0.0)}))
        comparisons = compare_to_baseline(table, resamples=1000, seed=i)
        any_rejected += any(c.significant for c in comparisons)
        p_values += [c.p_value for c in comparisons]
    # Holm bounds the family-wise rate by 5%; 0.05 + 3 binomial sd (0.011 at 400 studies).
    assert any_rejected / studies <= 0.083
    # each unadjusted test is calibrated: about 5% of the 1200 null p-values fall below 0.05
    single = np.mean(np.array(p_values) < 0.05)
    assert 0.03 <= single <= 0.07


def test_interval_and_p_value_agree_on_excluding_zero():
    rng = np.random.default_rng(1)
    for effect in (0.0, 0.03, 0.06, 0.1):
        matrices = synthetic_scores(rng, {"random-demos": 0.0, "arm": effect})
        comparison = compare_to_baseline(table_of(matrices), seed=3)[0]
        excludes = comparison.difference.low > 0 or comparison.difference.high < 0
        if abs(comparison.p_value - 0.05) > 0.01:  # away from the Monte-Carlo boundary
            assert excludes == (comparison.p_value < 0.05)


def _table(rows):
    return ScoreTable.from_records(
        {"arm": arm, "seed": seed, "example": f"t{j}", "score": score}
        for arm, seed, scores in rows
        for j, score in enumerate(scores)
    )


def test_all_ties_give_no_difference_and_p_one():
    scores = [1.0, 0.0, 1.0, 0.5]
    table = _table(
        [("random-demos", s, scores) for s in (0, 1)] + [("a", s, scores) for s in (0, 1)]
    )
    comparison = compare_to_baseline(table)[0]
    assert (comparison.wins, comparison.losses, comparison.ties) == (0, 0, 4)
    assert comparison.difference.low == comparison.difference.high == 0.0
    assert comparison.p_value == comparison.p_holm == 1.0
    assert comparison.mde.mde is None
    assert "no variance" in comparison.mde_sentence


def test_wins_losses_ties_are_per_example_averaged_over_seeds():
    table = _table(
        [
            ("random-demos", 0, [0.0, 1.0, 0.5]),
            ("random-demos", 1, [0.0, 1.0, 0.5]),
            ("a", 0, [1.0, 0.0, 1.0]),
            ("a", 1, [0.0, 0.0, 0.0]),  # task 2: +0.5 then -0.5 averages to a tie
        ]
    )
    comparison = compare_to_baseline(table)[0]
    assert (comparison.wins, comparison.losses, comparison.ties) == (1, 1, 1)
    assert [d.difference for d in comparison.per_example] == pytest.approx([0.5, -1.0, 0.0])


def test_a_seed_independent_arm_is_paired_with_every_baseline_seed():
    table = _table(
        [
            ("zero-shot", None, [0.5, 0.5]),
            ("random-demos", 0, [0.0, 1.0]),
            ("random-demos", 1, [1.0, 1.0]),
        ]
    )
    comparison = compare_to_baseline(table)[0]
    assert comparison.arm == "zero-shot"
    assert comparison.seeds == [0, 1]
    assert comparison.difference.estimate == pytest.approx(0.5 - 0.75)
    # two examples cannot support p below an exact sign-flip test's 2 / 2**2
    assert comparison.p_value >= 0.5


def test_arms_on_partly_shared_seeds_pair_on_those_and_a_missing_baseline_is_refused():
    table = _table(
        [("random-demos", s, [0.0, 1.0]) for s in (0, 1)] + [("a", s, [1.0, 1.0]) for s in (1, 2)]
    )
    (comparison,) = compare_to_baseline(table)
    assert comparison.seeds == [1] and comparison.difference.estimate == pytest.approx(0.5)
    with pytest.raises(ScoreTableError, match=r"baseline arm 'zero-shot' is not in the scores"):
        compare_to_baseline(table, baseline="zero-shot")


def test_study_statistics_serialize_to_json_and_back():
    rng = np.random.default_rng(0)
    matrices = synthetic_scores(rng, {"random-demos": 0.0, "mipro": 0.05}, seed_free=())
    study = analyze_study(
        table_of(matrices),
        selections=[{"arm": "mipro", "seed": 0, "validation_score": 0.8, "evaluation_score": 0.6}],
    )
    again = type(study).model_validate_json(study.model_dump_json())
    assert again == study
    assert study.version == "1" and study.baseline == "random-demos"
    assert [a.arm for a in study.arms] == ["random-demos", "mipro"]
    assert study.comparisons[0].mde_sentence.startswith("with 22 tasks × 3 seeds you can detect")


def test_an_arm_with_fewer_finished_seeds_is_paired_on_the_seeds_both_have():
    # a study still running: the optimizer arm finished seeds 0 and 1 of the baseline's 0, 1, 2
    rng = np.random.default_rng(3)
    baseline = rng.random((3, 6))
    arm = baseline[:2] + 0.2
    rows = [
        {"arm": name, "seed": seed, "example": f"e{e}", "score": float(m[s, e])}
        for name, m, seeds in (("random-demos", baseline, [0, 1, 2]), ("mipro", arm, [0, 1]))
        for s, seed in enumerate(seeds)
        for e in range(6)
    ]
    (comparison,) = compare_to_baseline(ScoreTable.from_records(rows), resamples=500)
    assert comparison.seeds == [0, 1] and comparison.n_seeds == 2
    assert comparison.difference.estimate == pytest.approx(0.2)
    assert comparison.baseline_mean == pytest.approx(baseline[:2].mean())
    assert comparison.wins == 6


def test_arms_without_a_seed_in_common_cannot_be_paired():
    rows = [
        {"arm": name, "seed": seed, "example": f"e{e}", "score": 0.5}
        for name, seeds in (("random-demos", [0, 1]), ("mipro", [2, 3]))
        for seed in seeds
        for e in range(3)
    ]
    with pytest.raises(ScoreTableError, match="none in common"):
        compare_to_baseline(ScoreTable.from_records(rows), resamples=100)
