"""One rendering of a sandbox result (liftdspy.sandbox.report): what the pipeline's repair LM
reads, what the code metric tells GEPA and what the importer reports say the same facts the same
way. They used to differ: the repair LM saw `AssertionError: None` and never heard of a
time-out, the metric showed `None: message` for an error without a type."""

from __future__ import annotations

from liftdspy.datasets.importers.pipeline import describe_failure
from liftdspy.metrics import score_code
from liftdspy.programs.pipeline import describe_failures
from liftdspy.sandbox import SandboxResult, TestOutcome, TestResult
from liftdspy.sandbox.report import error_text, failure_lines, first_failure

TESTS = ["assert f(1) == 1", "assert f(2) == 4", "assert f(3) == 9"]


def _result(**overrides) -> SandboxResult:
    tests = [
        TestResult(index=0, source=TESTS[0], outcome=TestOutcome.passed),
        TestResult(
            index=1, source=TESTS[1], outcome=TestOutcome.failed, error_type="AssertionError"
        ),
        TestResult(index=2, source=TESTS[2], outcome=TestOutcome.timeout, message="3.0 s limit"),
    ]
    return SandboxResult(**{"loaded": True, "tests": tests, "timed_out": True, **overrides})


def test_an_error_is_its_type_and_message_or_whichever_it_has():
    assert [error_text(t) for t in _result().tests] == ["", "AssertionError", "3.0 s limit"]


def test_the_repair_lm_and_gepa_read_the_same_lines():
    result = _result()
    lines = failure_lines(result)
    assert lines == [
        "1/3 tests passed.",
        "The program hit the sandbox time limit.",
        "Failing test `assert f(2) == 4` -> failed (AssertionError)",
        "Failing test `assert f(3) == 9` -> timeout (3.0 s limit)",
    ]
    assert describe_failures(result) == "\n".join(lines)
    feedback = score_code(
        "def f(x):\n    return x", TESTS, entry_point="f", run=lambda *a, **k: result
    )
    assert feedback.feedback.endswith("\n".join(f"- {line}" for line in lines))


def test_a_load_error_is_reported_once():
    result = SandboxResult(loaded=False, load_error="NameError: name 'g' is not defined")
    assert failure_lines(result) == [
        "0/0 tests passed.",
        "The code failed to load: NameError: name 'g' is not defined",
    ]
    assert describe_failure(result) == "reference does not load: NameError: name 'g' is not defined"


def test_the_importer_names_the_first_failing_test():
    assert describe_failure(_result()) == (
        "reference fails 2 of 3 tests; test 1 ('assert f(2) == 4') failed: AssertionError"
    )
    passing = _result(tests=_result().tests[:1], timed_out=False)
    assert first_failure(passing) is None and describe_failure(passing) is None
