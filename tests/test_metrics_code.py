"""The code metric and the end-to-end metric, with real sandbox runs."""

from __future__ import annotations

import dspy
import pytest

from liftdspy.ir import IntermediateRepresentation
from liftdspy.metrics import (
    CodeMetric,
    CodeMetricWeights,
    EndToEndMetric,
    EndToEndWeights,
    GoldDataError,
    score_code,
)

GOLD_IR = IntermediateRepresentation.model_validate(
    {
        "intent": {"summary": "Count the vowels (a, e, i, o, u) in a string, ignoring case."},
        "signature": {
            "name": "count_vowels",
            "parameters": [{"name": "text", "type_hint": "str"}],
            "returns": {"type_hint": "int"},
        },
        "assertions": [{"predicate": "0 <= result <= len(text)"}],
    }
)
TESTS = [
    "assert count_vowels('') == 0",
    "assert count_vowels('hello') == 2",
    "assert count_vowels('AEIOU') == 5",
    "assert count_vowels(WORD) == 3",
]
SETUP = "WORD = 'banana'"

CORRECT = """
def count_vowels(text: str) -> int:
    return sum(1 for ch in text.lower() if ch in "aeiou")
"""
PARTIAL = """
def count_vowels(text: str) -> int:
    return sum(1 for ch in text if ch in "aeiou")  # forgets upper case
"""
SYNTAX_ERROR = """
def count_vowels(text: str) -> int
    return 0
"""
WRONG_NAME = """
def vowel_count(text: str) -> int:
    return sum(1 for ch in text.lower() if ch in "aeiou")
"""


def example() -> dspy.Example:
    return dspy.Example(
        id="vowels-1", prompt="count vowels", ir=GOLD_IR, tests=TESTS, test_setup=SETUP
    ).with_inputs("prompt")


def test_correct_solution_scores_one():
    result = CodeMetric().breakdown(example(), dspy.Prediction(code=CORRECT))
    assert result.components == {"parses": 1.0, "defines_function": 1.0, "tests_passed": 1.0}
    assert result.total == pytest.approx(1.0)
    assert "4/4 tests passed" in result.feedback


def test_partially_correct_solution_lists_its_failing_test():
    result = CodeMetric().breakdown(example(), dspy.Prediction(code=PARTIAL))
    assert result.components["tests_passed"] == pytest.approx(3 / 4)
    assert result.total == pytest.approx(0.1 + 0.1 + 0.8 * 3 / 4)
    assert "3/4 tests passed" in result.feedback
    assert "Failing test `assert count_vowels('AEIOU') == 5` -> failed" in result.feedback
    assert "AssertionError" in result.feedback


def test_syntax_error_scores_zero_without_running():
    result = CodeMetric().breakdown(example(), dspy.Prediction(code=SYNTAX_ERROR))
    assert result.total == 0.0
    assert result.components["parses"] == 0.0
    assert "does not parse: line 2" in result.feedback


def test_wrong_name_defines_nothing_callable_and_fails_tests():
    result = CodeMetric().breakdown(example(), dspy.Prediction(code=WRONG_NAME))
    assert result.components == {"parses": 1.0, "defines_function": 0.0, "tests_passed": 0.0}
    assert result.total == pytest.approx(0.1)
    assert "must define a top-level function 'count_vowels'; it defines vowel_count" in (
        result.feedback
    )
    assert "NameError" in result.feedback


def test_ordering_correct_partial_wrong_name_syntax_error():
    metric = CodeMetric()
    scores = [
        metric(example(), dspy.Prediction(code=code))
        for code in (CORRECT, PARTIAL, WRONG_NAME, SYNTAX_ERROR)
    ]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == 4


def test_fenced_code_missing_code_and_top_level_crash():
    metric = CodeMetric()
    fenced = f"```python\n{CORRECT.strip()}\n```"
    assert metric(example(), dspy.Prediction(code=fenced)) == pytest.approx(1.0)
    assert metric(example(), dspy.Prediction(ir=GOLD_IR)) == 0.0
    crash = CORRECT + "\nraise RuntimeError('boom at import')\n"
    result = metric.breakdown(example(), dspy.Prediction(code=crash))
    assert result.components["tests_passed"] == 0.0
    assert "failed to load" in result.feedback and "boom at import" in result.feedback


def test_many_failures_are_truncated_in_feedback():
    tests = [f"assert count_vowels('a' * {i}) == -1" for i in range(12)]
    result = score_code(CORRECT, tests, entry_point="count_vowels")
    assert result.components["tests_passed"] == 0.0
    assert result.feedback.count("Failing test") == 8
    assert "and 4 more failing tests" in result.feedback


def test_examples_without_tests_are_a_data_error():
    bad = dspy.Example(id="no-tests", ir=GOLD_IR)
    with pytest.raises(GoldDataError, match="'no-tests' has no test list in field 'tests'"):
        CodeMetric()(bad, dspy.Prediction(code=CORRECT))


def test_code_weights_are_configurable():
    weights = CodeMetricWeights(parses=0, defines_function=0, tests_passed=1)
    assert CodeMetric(weights)(example(), dspy.Prediction(code=WRONG_NAME)) == 0.0


def test_code_gepa_feedback_form():
    out = CodeMetric().feedback(example(), dspy.Prediction(code=PARTIAL), None, "ir_to_code", [])
    assert isinstance(out, dspy.Prediction)
    assert out.score == pytest.approx(0.8)
    assert "count_vowels('AEIOU')" in out.feedback


# ---- end to end -----------------------------------------------------------------------------


def test_end_to_end_combines_ir_and_code():
    metric = EndToEndMetric(weights=EndToEndWeights(ir=0.5, code=0.5))
    good = metric.breakdown(example(), dspy.Prediction(ir=GOLD_IR, code=CORRECT))
    assert good.total == pytest.approx(1.0)
    half = metric.breakdown(example(), dspy.Prediction(ir="garbage", code=CORRECT))
    assert half.components == {"ir": 0.0, "code": pytest.approx(1.0)}
    assert half.total == pytest.approx(0.5)
    assert half.flat()["ir.schema_valid"] == 0.0
    assert half.flat()["code.tests_passed"] == 1.0
    assert "IR:" in half.feedback and "CODE:" in half.feedback


def test_end_to_end_feedback_focuses_on_the_named_predictor():
    metric = EndToEndMetric(predictor_parts={"nl_to_ir": "ir", "ir_to_code": "code"})
    pred = dspy.Prediction(ir="garbage", code=PARTIAL)
    for_ir = metric.feedback(example(), pred, None, "nl_to_ir", [])
    for_code = metric.feedback(example(), pred, None, "ir_to_code", [])
    other = metric.feedback(example(), pred, None, "something_else", [])
    assert for_ir.score == for_code.score == other.score == pytest.approx(metric(example(), pred))
    assert "IR is invalid" in for_ir.feedback and "tests passed" not in for_ir.feedback
    assert "3/4 tests passed" in for_code.feedback and "IR is invalid" not in for_code.feedback
    assert "IR is invalid" in other.feedback and "3/4 tests passed" in other.feedback


class CannedProgram(dspy.Module):
    """Returns fixed IR and code per prompt: this test is about the metric, not a model."""

    def __init__(self, answers: dict[str, dspy.Prediction]):
        super().__init__()
        self.answers = answers

    def forward(self, prompt: str) -> dspy.Prediction:
        return self.answers[prompt]


def test_end_to_end_metric_under_dspy_evaluate():
    devset = [example().copy(prompt=p) for p in ("right", "wrong")]
    program = CannedProgram(
        {
            "right": dspy.Prediction(ir=GOLD_IR.model_dump(), code=CORRECT),
            "wrong": dspy.Prediction(ir=GOLD_IR, code=SYNTAX_ERROR),
        }
    )
    result = dspy.Evaluate(devset=devset, metric=EndToEndMetric(), num_threads=2)(program)
    scores = [score for _, _, score in result.results]
    assert scores == [pytest.approx(1.0), pytest.approx(0.3)]


def test_a_malformed_sandbox_result_is_an_error_result_not_a_crash(monkeypatch):
    import liftdspy.metrics.code_metric as code_metric
    from liftdspy.sandbox import TestOutcome

    def malformed_sandbox(code, tests, *, setup="", limits=None):
        # What the sandbox does with a result line of the wrong shape (an unknown outcome, as
        # hostile code writing to the results channel could produce): the model refuses it.
        TestOutcome({"event": "test", "index": 0, "outcome": "totally-passed"}["outcome"])

    monkeypatch.setattr(code_metric, "run_tests", malformed_sandbox)
    breakdown = CodeMetric().breakdown(example(), dspy.Prediction(code=CORRECT))
    assert breakdown.components["tests_passed"] == 0.0 and breakdown.total < 0.3
    assert breakdown.details["sandbox_error"] == 1.0
    assert "unusable result" in breakdown.feedback
    e2e = EndToEndMetric().breakdown(example(), dspy.Prediction(ir=GOLD_IR, code=CORRECT))
    assert e2e.components["code"] == breakdown.total
