"""Winner's curse: the selected candidate's validation score against its evaluation score."""

from __future__ import annotations

import pytest

from liftdspy.stats import StatsInputError, optimism_by_arm


def test_optimism_is_validation_minus_evaluation_averaged_per_arm():
    result = optimism_by_arm(
        [
            {"arm": "mipro", "seed": 0, "validation_score": 0.8, "evaluation_score": 0.6},
            {"arm": "copro", "seed": 0, "validation_score": 0.5, "evaluation_score": 0.55},
            {"arm": "mipro", "seed": 1, "validation_score": 0.9, "evaluation_score": 0.6},
        ]
    )
    assert [a.arm for a in result] == ["mipro", "copro"]
    mipro, copro = result
    assert mipro.n_runs == 2
    assert mipro.mean_optimism == pytest.approx(0.25)
    assert mipro.sd_optimism == pytest.approx(0.0707107, rel=1e-5)
    assert (mipro.mean_validation, mipro.mean_evaluation) == pytest.approx((0.85, 0.6))
    assert [r.optimism for r in mipro.runs] == pytest.approx([0.2, 0.3])
    assert copro.mean_optimism == pytest.approx(-0.05)
    assert copro.sd_optimism is None


def test_duplicate_run_and_non_finite_score_are_refused():
    run = {"arm": "mipro", "seed": 0, "validation_score": 0.8, "evaluation_score": 0.6}
    with pytest.raises(StatsInputError, match=r"arm 'mipro', seed 0: two optimizer runs"):
        optimism_by_arm([run, run])
    with pytest.raises(StatsInputError, match=r"evaluation_score nan is not a finite number"):
        optimism_by_arm([{**run, "evaluation_score": float("nan")}])
