"""The study score table: complete seeds × examples matrices or a precise error."""

from __future__ import annotations

import numpy as np
import pytest

from liftdspy.errors import LiftdspyError
from liftdspy.stats import ScoreTable, ScoreTableError


def _rows(arm="a", seeds=(0, 1), examples=("x", "y")):
    return [
        {"arm": arm, "seed": s, "example": e, "score": float(i)}
        for i, (s, e) in enumerate((s, e) for s in seeds for e in examples)
    ]


def test_matrix_rows_are_sorted_seeds_and_columns_sorted_examples():
    rows = _rows(seeds=(2, 0), examples=("y", "x"))  # given out of order
    table = ScoreTable.from_records(rows)
    assert table.seeds("a") == [0, 2]
    assert table.examples == ["x", "y"]
    by_cell = {(r["seed"], r["example"]): r["score"] for r in rows}
    expected = [[by_cell[(s, e)] for e in ("x", "y")] for s in (0, 2)]
    np.testing.assert_array_equal(table.matrix("a"), expected)


def test_duplicate_cell_names_arm_seed_and_example():
    rows = [*_rows(), {"arm": "a", "seed": 1, "example": "y", "score": 0.5}]
    with pytest.raises(ScoreTableError, match=r"duplicate cell: arm 'a', seed 1, example 'y'"):
        ScoreTable.from_records(rows)


def test_missing_cell_names_arm_seed_and_example():
    rows = [r for r in _rows() if (r["seed"], r["example"]) != (1, "x")]
    with pytest.raises(ScoreTableError, match=r"missing cell: arm 'a', seed 1 .* example 'x'"):
        ScoreTable.from_records(rows)


def test_arms_on_different_examples_are_refused_with_the_difference():
    rows = _rows("a", examples=("x", "y")) + _rows("b", examples=("x", "z"))
    with pytest.raises(
        ScoreTableError, match=r"arm 'b' .* arm 'a': it lacks example 'y' and adds example 'z'"
    ):
        ScoreTable.from_records(rows)


def test_non_finite_score_and_unknown_arm_and_empty_table_are_refused():
    rows = _rows()
    rows[0]["score"] = float("nan")
    with pytest.raises(ScoreTableError, match=r"arm 'a', seed 0, example 'x': score nan"):
        ScoreTable.from_records(rows)
    table = ScoreTable.from_records(_rows())
    with pytest.raises(ScoreTableError, match=r"unknown arm 'b'; the table has 'a'"):
        table.matrix("b")
    with pytest.raises(ScoreTableError, match="no scores"):
        ScoreTable.from_records([])


def test_a_bad_record_is_named_by_its_index_and_errors_share_the_root():
    with pytest.raises(ScoreTableError, match=r"score record 1 .*: score: Field required"):
        ScoreTable.from_records([_rows()[0], {"arm": "a", "seed": 0, "example": "q"}])
    assert issubclass(ScoreTableError, LiftdspyError)
    assert issubclass(ScoreTableError, ValueError)


def test_seed_independent_arm_and_json_round_trip():
    rows = _rows("zero-shot", seeds=(None,)) + _rows("random-demos", seeds=(0, 1, 2))
    table = ScoreTable.from_records(rows)
    assert table.arms == ["zero-shot", "random-demos"]
    assert table.matrix("zero-shot").shape == (1, 2)
    assert table.matrix("random-demos").shape == (3, 2)
    again = ScoreTable.model_validate_json(table.model_dump_json())
    np.testing.assert_array_equal(again.matrix("random-demos"), table.matrix("random-demos"))
