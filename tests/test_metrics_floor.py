"""The metric's floor: the best constant answer, computed without an LM on the scored examples.

Known answers: the content-free IR scores 0.227 on the core test split with the IR metric (the
figure measured by hand in issue 18), a constant `return None` passes exactly the tests that
expect None (real sandbox), and the modal shape / medoid are what hand-made train golds imply.
"""

from __future__ import annotations

import copy
from pathlib import Path

import dspy
import pytest
from fixtures_ir import ADD_IR, IDENTITY_IR

from liftdspy.datasets import load_tasks
from liftdspy.experiments.evaluation import (
    EvaluationReport,
    ExampleResult,
    constant_report,
    normalised_interval,
    with_floor,
)
from liftdspy.experiments.examples import to_examples
from liftdspy.ir import IntermediateRepresentation
from liftdspy.metrics import CodeMetric, EndToEndMetric, IRMetric
from liftdspy.metrics.floor import (
    ENTRY_POINT,
    constant_prediction,
    ir_candidates,
    metric_floor,
    normalised,
    zero_value,
)
from liftdspy.stats import bootstrap_ci

ROOT = Path(__file__).resolve().parents[1]


def _core(split: str, program: str = "nl_to_ir") -> list[dspy.Example]:
    tasks = [t for t in load_tasks([ROOT / "datasets" / "core"]) if t.split == split]
    return to_examples(tasks, program)


def _example(task_id: str, ir: dict, tests: list[str] | None = None) -> dspy.Example:
    return dspy.Example(
        id=task_id,
        prompt="p",
        ir=IntermediateRepresentation.model_validate(ir),
        tests=tests or ["assert True"],
        test_setup="",
    ).with_inputs("prompt")


def _renamed(ir: dict, name: str) -> dict:
    out = copy.deepcopy(ir)
    out["signature"]["name"] = name
    return out


def test_the_ir_floor_on_the_core_test_split_is_the_best_of_the_constant_answers():
    train, test = _core("train"), _core("test")
    floor = metric_floor(IRMetric(), train, test)
    means = {c.name: c.mean for c in floor.candidates}
    assert set(means) == {"content-free", "modal-shape", "medoid-gold"}
    # issue 18 measured the content-free IR (name f, no parameters, empty lists) at 0.227
    assert means["content-free"] == pytest.approx(0.227, abs=5e-4)
    assert floor.floor == max(means.values()) and means[floor.winner] == floor.floor
    assert floor.example_ids == [str(e.id) for e in test]
    # every per-example score is the metric's score of the constant answer on that example
    best = floor.best()
    metric = IRMetric()
    for example, score in zip(test, best.scores, strict=True):
        prediction = constant_prediction(best.answer, example, "ir")
        assert metric(example, prediction) == pytest.approx(score)
    assert floor.floor > 0.2  # a 0-1 IR score is far from 0 with no reading of the prompt


def test_constant_answers_come_from_the_train_golds_only():
    train = _core("train")
    first, second = _core("test")[:5], _core("test")[5:12]
    answers_a = {c.name: c.answer for c in metric_floor(IRMetric(), train, first).candidates}
    answers_b = {c.name: c.answer for c in metric_floor(IRMetric(), train, second).candidates}
    assert answers_a == answers_b


def test_modal_shape_and_medoid_of_hand_made_train_golds():
    add = IntermediateRepresentation.model_validate(ADD_IR)
    ident = IntermediateRepresentation.model_validate(IDENTITY_IR)
    other = IntermediateRepresentation.model_validate(_renamed(ADD_IR, "plus"))
    candidates = ir_candidates([ident, add, other, add])
    shape = candidates["modal-shape"]["signature"]
    assert [(p["name"], p["type_hint"]) for p in shape["parameters"]] == [
        ("arg0", "int"),
        ("arg1", "int"),
    ]
    assert shape["name"] == "f" and shape["returns"]["type_hint"] == "int"
    assert (
        candidates["modal-shape"]["assertions"] == [] and candidates["modal-shape"]["effects"] == []
    )
    # the gold that appears twice is the one closest to all train golds
    assert candidates["medoid-gold"]["signature"]["name"] == "add"
    content_free = candidates["content-free"]
    assert content_free["signature"] == {
        "name": "f",
        "parameters": [],
        "returns": {"type_hint": "None", "description": ""},
    }
    assert ir_candidates([]) == {"content-free": content_free}


def test_zero_values_of_return_types():
    assert [zero_value(h) for h in ("int", "List[int]", "str", "bool", "Optional[int]", "Foo")] == [
        "0",
        "[]",
        "''",
        "False",
        "None",
        "None",
    ]


def test_normalised_score_is_zero_at_the_floor_and_one_at_a_perfect_score():
    assert normalised(0.25, 0.25) == 0.0
    assert normalised(1.0, 0.25) == 1.0
    assert normalised(0.5, 0.25) == pytest.approx(1 / 3)
    assert normalised(0.1, 0.25) == pytest.approx(-0.2)  # below the constant answer
    assert normalised(0.9, 1.0) is None and normalised(None, 0.2) is None


def test_a_report_gets_the_floor_of_exactly_the_examples_it_scored():
    train, test = _core("train"), _core("test")
    scored = test[3:9]
    results = [ExampleResult(id=str(e.id), score=0.5) for e in scored]
    report = EvaluationReport(
        label="x", n=6, score=bootstrap_ci([0.5] * 6), components={}, results=results, seconds=0
    )
    report = with_floor(report, IRMetric(), train, test)
    assert report.floor.example_ids == [str(e.id) for e in scored]
    assert report.floor.floor == pytest.approx(metric_floor(IRMetric(), train, scored).floor)
    norm = report.score_normalised
    assert norm.mean == pytest.approx((0.5 - report.floor.floor) / (1 - report.floor.floor))
    assert report.model_validate_json(report.model_dump_json()).floor == report.floor
    # a floor is restricted to a subset by recomputing every candidate's mean on it
    whole = metric_floor(IRMetric(), train, test)
    sub = whole.restricted([str(e.id) for e in scored])
    assert sub.floor == pytest.approx(report.floor.floor) and sub.winner == report.floor.winner


def test_a_normalised_interval_maps_the_raw_one():
    ci = bootstrap_ci([0.2, 0.4, 0.6, 0.5, 0.3], seed=1)
    floor = metric_floor(IRMetric(), _core("train"), _core("test")[:5])
    norm = normalised_interval(ci, floor)
    f = floor.floor
    assert (norm.low, norm.mean, norm.high) == pytest.approx(
        ((ci.low - f) / (1 - f), (ci.mean - f) / (1 - f), (ci.high - f) / (1 - f))
    )
    assert norm.standard_error == pytest.approx(ci.standard_error / (1 - f))


def test_the_code_floor_runs_the_constant_program_in_the_sandbox():
    """`return None` passes exactly the tests that expect None (real sandbox), and the entry
    point is each example's own (the IR -> code program is given it in its stub)."""
    train = [_example("t1", ADD_IR)]  # modal return type int: the second candidate returns 0
    examples = [
        _example("e1", ADD_IR, ["assert add(1, 2) is None", "assert add(1, 2) == 3"]),
        _example("e2", _renamed(ADD_IR, "plus"), ["assert plus(0, 0) == 0"]),
    ]
    floor = metric_floor(CodeMetric(), train, examples)
    by_name = {c.name: c for c in floor.candidates}
    assert set(by_name) == {"return None", "return 0"}
    assert by_name["return None"].answer == {
        "code": f"def {ENTRY_POINT}(*args, **kwargs):\n    return None\n"
    }
    # parses 0.1 + defines 0.1 + 0.8 x tests passed
    assert by_name["return None"].scores == pytest.approx([0.6, 0.2])
    assert by_name["return 0"].scores == pytest.approx([0.2, 1.0])
    assert floor.winner == "return 0" and floor.floor == pytest.approx(0.6)


def test_the_end_to_end_floor_pairs_an_ir_with_code_of_its_own_name():
    train = [_example("t1", ADD_IR)]
    examples = [_example("e1", ADD_IR, ["assert add(1, 2) is None"])]
    floor = metric_floor(EndToEndMetric(), train, examples)
    by_name = {c.name: c for c in floor.candidates}
    # the medoid of one train gold is that gold: name `add`, so its `return None` passes
    medoid = by_name["medoid-gold + return None"]
    assert medoid.answer["code"].startswith("def add(")
    assert medoid.scores == pytest.approx([0.3 * 1.0 + 0.7 * 1.0])
    assert floor.winner == "medoid-gold + return None"
    # `f` is not the entry point: parses, defines nothing the tests call
    assert by_name["content-free + return None"].answer["code"].startswith("def f(")


def test_the_constant_report_scores_the_winning_answer_on_every_example():
    train, test = _core("train"), _core("test")[:6]
    floor = metric_floor(IRMetric(), train, test)
    report = constant_report(floor, IRMetric(), test, label="optimized")
    assert report.scores() == pytest.approx(floor.best().scores)
    assert report.score.mean == pytest.approx(floor.floor)
    assert report.floor == floor and report.score_normalised.mean == pytest.approx(0.0)
    assert all(r.ir == floor.best().answer["ir"] for r in report.results)
