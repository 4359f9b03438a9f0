"""The IR metric: each component on good, partial and bad IRs, type normalisation, typed holes,
invalid predictions, the GEPA feedback form and use from `dspy.Evaluate`."""

from __future__ import annotations

import json

import dspy
import pytest

from liftdspy.ir import IntermediateRepresentation
from liftdspy.metrics import (
    GoldDataError,
    IRMetric,
    IRMetricWeights,
    normalise_type_hint,
    score_ir,
    text_similarity,
    type_hint_similarity,
)


def ir(**overrides) -> IntermediateRepresentation:
    data = {
        "intent": {"summary": "Return the k largest numbers of a list, largest first."},
        "signature": {
            "name": "top_k",
            "parameters": [
                {"name": "numbers", "type_hint": "list[int]"},
                {"name": "k", "type_hint": "int"},
            ],
            "returns": {"type_hint": "list[int]"},
        },
        "effects": [],
        "assertions": [
            {"predicate": "len(result) == min(k, len(numbers))"},
            {"predicate": "result == sorted(result, reverse=True)"},
        ],
        "holes": [],
    }
    data.update(overrides)
    return IntermediateRepresentation.model_validate(data)


def signature(name: str, params: list[tuple[str, str]], returns: str = "list[int]") -> dict:
    return {
        "name": name,
        "parameters": [{"name": n, "type_hint": t} for n, t in params],
        "returns": {"type_hint": returns},
    }


GOLD = ir()
GOOD = ir(
    signature=signature("top_k", [("numbers", "List[int]"), ("k", "int")], "typing.List[int]")
)
PARTIAL = ir(
    signature=signature("topK", [("k", "int"), ("numbers", "list[str]")], "list"),
    assertions=[{"predicate": "len(result) == min(k, len(numbers))"}],
)
BAD = ir(
    signature=signature("largest", [("xs", "dict"), ("n", "str"), ("flag", "bool")], "str"),
    assertions=[{"predicate": "isinstance(flag, bool)"}],
    effects=[{"description": "prints the numbers to stdout"}],
    holes=[
        {
            "identifier": "tie_order",
            "type_hint": "str",
            "description": "how ties are ordered",
            "kind": "intent",
        }
    ],
)


def components(pred) -> dict[str, float]:
    return score_ir(GOLD, pred).components


# ---- exact component values -----------------------------------------------------------------


def test_identical_ir_scores_one_on_every_component():
    result = score_ir(GOLD, GOLD)
    assert result.total == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in result.components.values())
    assert "matches the gold IR on every component" in result.feedback


def test_equivalent_spellings_score_one():
    assert score_ir(GOLD, GOOD).total == pytest.approx(1.0)


def test_name_component_exact_values():
    def name_of(name: str) -> float:
        return components(ir(signature=signature(name, [("numbers", "list[int]"), ("k", "int")])))[
            "name"
        ]

    assert name_of("top_k") == 1.0
    assert name_of("TopK") == 0.5  # equal ignoring case and underscores
    # words {top, k} vs {top, item}: Jaccard 1/3, scaled by 0.25
    assert name_of("top_items") == pytest.approx(0.25 / 3)
    assert name_of("largest") == 0.0


def test_param_names_are_order_aware():
    assert components(PARTIAL)["param_names"] == pytest.approx(0.5)  # same set, swapped
    three = ir(signature=signature("top_k", [("numbers", "x"), ("k", "x"), ("extra", "x")]))
    # set F1 = 2*2/(2+3) = 0.8; two of three positions agree
    assert components(three)["param_names"] == pytest.approx(0.5 * 0.8 + 0.5 * 2 / 3)
    assert components(BAD)["param_names"] == 0.0


def test_param_types_match_by_name_then_position():
    # PARTIAL: numbers list[int] vs list[str] -> 0.5 (same outer type); k int == int -> 1.0
    assert components(PARTIAL)["param_types"] == pytest.approx((0.5 + 1.0) / 2)
    # BAD: by position, numbers list[int] vs dict -> 0; k int vs str -> 0; 3 predicted params
    assert components(BAD)["param_types"] == 0.0
    renamed = ir(signature=signature("top_k", [("nums", "list[int]"), ("count", "int")]))
    assert components(renamed)["param_types"] == 1.0


def test_arity_and_return_type():
    assert components(GOOD)["arity"] == 1.0
    assert components(BAD)["arity"] == pytest.approx(1 - 1 / 3)
    assert components(GOOD)["return_type"] == 1.0
    assert components(PARTIAL)["return_type"] == 0.5  # `list` vs `list[int]`
    assert components(BAD)["return_type"] == 0.0


def test_assertion_coverage():
    assert components(GOOD)["assertions"] == 1.0
    # one of two covered exactly by its only assertion: recall 1/2, precision 1, F1 2/3
    assert components(PARTIAL)["assertions"] == pytest.approx(2 / 3)
    assert components(BAD)["assertions"] < 0.25


def test_effects_coverage_and_spurious_effects():
    gold = ir(effects=[{"description": "sorts the input list in place"}])
    same = ir(effects=[{"description": "Sorts the input list in place."}])
    none = ir(effects=[])
    assert score_ir(gold, same).components["effects"] == 1.0
    assert score_ir(gold, none).components["effects"] == 0.0
    assert "Missing effect: sorts the input list in place" in score_ir(gold, none).feedback
    assert components(BAD)["effects"] == 0.5  # the gold function is pure; one is listed
    assert "the function has none" in score_ir(GOLD, BAD).feedback


def test_one_predicted_item_covers_at_most_one_gold_item():
    gold = ir(effects=[{"description": "writes a log line"}, {"description": "writes a file"}])
    pred = ir(effects=[{"description": "writes a log line"}])
    assert score_ir(gold, pred).components["effects"] == pytest.approx(2 / 3)  # R 1/2, P 1


def test_filler_items_cost_precision():
    gold = ir(assertions=[{"predicate": "result >= 0"}])
    exact = ir(assertions=[{"predicate": "result >= 0"}])
    padded = ir(
        assertions=[
            {"predicate": "result >= 0"},
            {"predicate": "the function works"},
            {"predicate": "the output is correct"},
            {"predicate": "no bugs happen"},
        ]
    )
    assert score_ir(gold, exact).components["assertions"] == 1.0
    assert score_ir(gold, padded).components["assertions"] == pytest.approx(0.4)  # P 1/4, R 1


def test_good_beats_partial_beats_bad_on_every_component_and_total():
    good, partial, bad = (score_ir(GOLD, x) for x in (GOOD, PARTIAL, BAD))
    assert good.total > partial.total > bad.total
    for name in ("name", "param_names", "param_types", "return_type", "assertions"):
        assert good.components[name] > partial.components[name] > bad.components[name], name
    for name in ("arity", "effects", "holes"):
        assert good.components[name] >= partial.components[name] > bad.components[name], name


# ---- type hints and text similarity --------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("List[int]", "list[int]"),
        ("typing.Dict[str, int]", "dict[str, int]"),
        ("Optional[int]", "int | None"),
        ("Union[None, int]", "int | None"),
        ("Union[str, int]", "int | str"),
        ("Optional[List[str]]", "None | list[str]"),
        ("List[Any]", "list"),
        ("'int'", "int"),
        ("Tuple[int, ...]", "tuple[int, ...]"),
        ("NoneType", "None"),
        ("Text", "str"),
    ],
)
def test_equivalent_type_hints_normalise_equal(a: str, b: str):
    assert normalise_type_hint(a) == normalise_type_hint(b)
    assert type_hint_similarity(a, b) == 1.0


@pytest.mark.parametrize(
    ("gold", "predicted", "expected"),
    [
        ("list[int]", "List[str]", 0.5),
        ("dict[str, int]", "dict", 0.5),
        ("int", "str", 0.0),
        ("int | None", "int", 0.0),
        ("not a [type", "not a [type", 1.0),
    ],
)
def test_type_hint_similarity_partial_values(gold: str, predicted: str, expected: float):
    assert type_hint_similarity(gold, predicted) == expected


def test_text_similarity_is_token_f1():
    assert text_similarity("Sorts the list.", "sorts list") == 1.0
    # camelCase splits: {raise, value, error} vs {raise, type, error}: F1 = 2/3
    assert text_similarity("raises ValueError", "raises TypeError") == pytest.approx(2 / 3)
    assert text_similarity("result >= 0", "result >= 0") == 1.0
    assert text_similarity("alpha", "omega") == 0.0


# ---- typed holes ----------------------------------------------------------------------------


def hole(identifier: str, description: str, kind: str = "intent") -> dict:
    return {"identifier": identifier, "type_hint": "str", "description": description, "kind": kind}


AMBIGUOUS = ir(
    holes=[
        hole("tie_order", "how equal numbers are ordered"),
        hole("k_too_large", "what happens when k exceeds the list length", "assertion"),
    ]
)


def test_hole_precision_recall_on_an_ambiguous_prompt():
    pred = ir(
        holes=[
            hole("order_of_ties", "how equal numbers are ordered"),  # matches tie_order
            hole("negative_k", "behaviour for negative k", "assertion"),  # no match
            hole("empty_input", "what an empty list returns", "implementation"),  # no match
        ]
    )
    result = score_ir(AMBIGUOUS, pred)
    assert result.details["hole_precision"] == pytest.approx(1 / 3)
    assert result.details["hole_recall"] == pytest.approx(1 / 2)
    assert result.components["holes"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert "Missed ambiguity (typed hole) [assertion] k_too_large" in result.feedback
    assert "Typed hole not in the gold IR: [implementation] empty_input" in result.feedback


def test_holes_good_partial_bad_on_an_ambiguous_prompt():
    good = score_ir(AMBIGUOUS, AMBIGUOUS).components["holes"]
    partial = score_ir(AMBIGUOUS, ir(holes=[hole("tie_order", "ordering of ties")])).components[
        "holes"
    ]
    bad = score_ir(AMBIGUOUS, GOLD).components["holes"]
    assert (good, partial, bad) == (1.0, pytest.approx(2 / 3), 0.0)


def test_hole_of_the_wrong_kind_only_matches_on_identical_text():
    wrong_kind = ir(
        holes=[
            hole("tie_order", "how equal numbers are ordered", "signature"),
            hole("k_big", "k larger than list", "intent"),
        ]
    )
    result = score_ir(AMBIGUOUS, wrong_kind)
    assert result.details["hole_recall"] == pytest.approx(0.5)


def test_unneeded_holes_on_an_unambiguous_prompt_are_penalised_mildly():
    one = score_ir(GOLD, ir(holes=[hole("tie_order", "ties")])).components["holes"]
    three = score_ir(GOLD, ir(holes=[hole(f"h{i}", "something") for i in range(3)]))
    assert one == 0.75
    assert three.components["holes"] == 0.5
    assert "The prompt is unambiguous" in three.feedback


# ---- invalid predictions and input forms ----------------------------------------------------


@pytest.mark.parametrize(
    "prediction",
    [
        "{not json",
        '{"intent": {"summary": "x"}}',
        {
            "intent": {"summary": "x"},
            "signature": {"name": "1bad", "returns": {"type_hint": "int"}},
        },
        42,
        None,
    ],
)
def test_schema_invalid_predictions_score_zero_without_raising(prediction):
    result = IRMetric().breakdown(dspy.Example(ir=GOLD), dspy.Prediction(ir=prediction))
    assert result.components["schema_valid"] == 0.0
    assert result.total == 0.0
    assert "invalid" in result.feedback


def test_dict_json_and_fenced_json_predictions_are_accepted():
    as_dict = GOOD.model_dump()
    as_json = GOOD.to_json()
    fenced = f"```json\n{json.dumps(as_dict, indent=2)}\n```"
    metric = IRMetric()
    for value in (as_dict, as_json, fenced):
        assert metric(dspy.Example(ir=GOLD.model_dump()), dspy.Prediction(ir=value)) == 1.0


def test_missing_prediction_field_is_invalid_and_missing_gold_raises():
    metric = IRMetric()
    result = metric.breakdown(dspy.Example(ir=GOLD), dspy.Prediction(code="x"))
    assert result.total == 0.0
    assert "no field 'ir'" in result.feedback
    assert metric(dspy.Example(ir=GOLD), None) == 0.0  # e.g. a failed program run
    with pytest.raises(GoldDataError, match="example 'task-7' has no gold IR field 'ir'"):
        metric(dspy.Example(id="task-7", prompt="p"), dspy.Prediction(ir=GOLD))


def test_field_names_and_weights_are_configurable():
    weights = IRMetricWeights(
        schema_valid=0, name=1, param_names=0, param_types=0, arity=0, return_type=0,
        effects=0, assertions=0, holes=0,
    )  # fmt: skip
    metric = IRMetric(weights, gold_field="gold_ir", prediction_field="predicted_ir")
    example = dspy.Example(gold_ir=GOLD)
    assert metric(example, dspy.Prediction(predicted_ir=PARTIAL)) == 0.5  # name only: TopK
    with pytest.raises(ValueError, match="must not all be zero"):
        IRMetricWeights(**dict.fromkeys(IRMetricWeights.model_fields, 0.0))


def test_bootstrap_threshold_applies_only_when_tracing():
    metric = IRMetric(bootstrap_threshold=0.9)
    example, pred = dspy.Example(ir=GOLD), dspy.Prediction(ir=PARTIAL)
    total = metric(example, pred)
    assert 0.0 < total < 0.9
    assert metric(example, pred, trace=[]) == 0.0
    assert metric(example, dspy.Prediction(ir=GOOD), trace=[]) == 1.0


# ---- GEPA and dspy.Evaluate -----------------------------------------------------------------


def test_gepa_feedback_form_says_what_was_wrong():
    metric = IRMetric()
    out = metric.feedback(dspy.Example(ir=GOLD), dspy.Prediction(ir=PARTIAL), None, "nl_to_ir", [])
    assert isinstance(out, dspy.Prediction)
    assert out.score == pytest.approx(metric(dspy.Example(ir=GOLD), dspy.Prediction(ir=PARTIAL)))
    assert "Function name: expected 'top_k', got 'topK'" in out.feedback
    assert "Parameter 'numbers' should be typed 'list[int]', got 'list[str]'" in out.feedback
    assert "Return type: expected 'list[int]', got 'list'" in out.feedback
    assert "Missing assertion: result == sorted(result, reverse=True)" in out.feedback


def test_gepa_accepts_the_feedback_metric_signature():
    lm = dspy.utils.DummyLM([{"ir": "{}"}])
    gepa = dspy.GEPA(metric=IRMetric().feedback, max_metric_calls=1, reflection_lm=lm)
    assert gepa.metric_fn is not None


class CannedIRProgram(dspy.Module):
    """Returns a fixed predicted IR per prompt: this test is about the metric, not a model."""

    def __init__(self, answers: dict[str, object]):
        super().__init__()
        self.answers = answers

    def forward(self, prompt: str) -> dspy.Prediction:
        return dspy.Prediction(ir=self.answers[prompt])


def test_metric_runs_under_dspy_evaluate():
    devset = [
        dspy.Example(prompt="good", ir=GOLD).with_inputs("prompt"),
        dspy.Example(prompt="bad", ir=GOLD.model_dump()).with_inputs("prompt"),
    ]
    program = CannedIRProgram({"good": GOOD.to_json(), "bad": "not an IR"})
    evaluate = dspy.Evaluate(devset=devset, metric=IRMetric(), num_threads=1)
    result = evaluate(program)
    scores = [score for _, _, score in result.results]
    assert scores == [1.0, 0.0]
    assert result.score == pytest.approx(50.0)
