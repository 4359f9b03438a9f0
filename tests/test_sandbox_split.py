"""The trusted side of the sandbox, without processes: splitting, plain data, the channel."""

from __future__ import annotations

import json

import pytest

from liftdspy.sandbox import SandboxJob, SandboxLimits, TestOutcome, Verdict
from liftdspy.sandbox.backend import RawRun
from liftdspy.sandbox.plain import MAX_DEPTH, NotPlainData, decode
from liftdspy.sandbox.runner import _build_result, plan_tests
from liftdspy.sandbox.split import Observed, decide, split_test


def test_the_sandbox_gets_only_the_operands_that_use_the_code() -> None:
    split = split_test("assert add(1, 2) == 3 and sorted(ids()) == [1, 2]", set())
    assert split is not None
    assert split.expressions == ["add(1, 2)", "sorted(ids())"]  # no expected value in sight


@pytest.mark.parametrize(
    "source",
    [
        "x = f(); assert x == 1",  # two statements
        "assert f(1)",  # a bare truth test
        "assert not f(1)",
        "assert f(1) is f(1)",  # identity of values that come back as copies
        "assert f(1) == EXPECTED",  # EXPECTED from the setup: computed where the code runs
        "assert f(1) == 2, g()",  # a message that is not a constant
        "assert 1 == 1",  # nothing calls the code
    ],
)
def test_tests_that_cannot_be_split_are_left_whole(source: str) -> None:
    assert split_test(source, {"EXPECTED"}) is None


def test_the_expected_side_is_evaluated_in_the_parent() -> None:
    split = split_test("assert f() == sorted({3, 1}) + [2 ** 3, -1, len('ab')]", set())
    assert split is not None
    assert decide(split, [Observed([1, 3, 8, -1, 2])])[0] is TestOutcome.passed
    outcome, error_type, message = decide(split, [Observed([1, 3])])
    assert (outcome, error_type) == (TestOutcome.failed, "AssertionError")
    assert message is not None and "left: [1, 3]" in message


def test_errors_timeouts_and_non_plain_values_never_pass() -> None:
    split = split_test("assert f() == 1", set())
    assert split is not None
    assert decide(split, [Observed(None, "ValueError", "bad")])[0] is TestOutcome.error
    assert decide(split, [Observed(None, "Timeout", "slow", True)])[0] is TestOutcome.timeout
    assert decide(split, [Observed(None, "NotPlainData", "obj")])[0] is TestOutcome.failed
    assert decide(split, [])[0] is TestOutcome.error  # a missing value


def test_short_circuit_skips_an_operand_that_raised() -> None:
    split = split_test("assert f() == 0 or g() == 2", set())
    assert split is not None
    assert decide(split, [Observed(0), Observed(None, "ZeroDivisionError", "x")])[0] is (
        TestOutcome.passed
    )


def test_plain_data_round_trips_and_anything_else_is_refused() -> None:
    encoded = {"dict": [[{"tuple": [1, "a"]}, {"set": [1.5, None, True]}],
                        ["b", {"bytes": "ff00"}]]}  # fmt: skip
    assert decode(encoded) == {(1, "a"): {1.5, None, True}, "b": b"\xff\x00"}
    for bad in ({"object": []}, {"list": 1, "tuple": []}, {"set": [{"list": []}]}, [1, 2]):
        with pytest.raises(NotPlainData):
            decode(bad)
    deep: object = 1
    for _ in range(MAX_DEPTH + 2):
        deep = {"list": [deep]}
    with pytest.raises(NotPlainData):
        decode(deep)


def _result(lines: list[dict | bytes], tests: list[str]):
    job = SandboxJob(code="", tests=tests)
    data = b"".join(
        (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
    )
    raw = RawRun(data, False, "", "", False, None, 0)
    return _build_result(job, plan_tests(tests, ""), SandboxLimits(), raw, 0.1, "bubblewrap")


def test_records_out_of_order_or_of_the_wrong_kind_are_a_crash_result() -> None:
    tests = ["assert f() == 1", "x = f(); assert x == 1"]
    loaded = {"event": "loaded", "ok": True, "error": None}
    good = [
        loaded,
        {"event": "start", "index": 0},
        {"event": "values", "index": 0, "items": [{"value": 1}], "duration_s": 0.0},
        {"event": "start", "index": 1},
        {"event": "test", "index": 1, "outcome": "passed", "duration_s": 0.0},
        {"event": "done"},
    ]
    result = _result(good, tests)
    assert [t.outcome for t in result.tests] == [TestOutcome.passed] * 2
    assert [t.verdict for t in result.tests] == [Verdict.parent, Verdict.in_sandbox]

    forged_outcome = [
        loaded,
        {"event": "start", "index": 0},
        {"event": "test", "index": 0, "outcome": "passed", "duration_s": 0.0},
        *good[3:],
    ]
    for lines in (forged_outcome, [loaded, b"not json", *good[1:]], good[1:], [*good, loaded]):
        result = _result(lines, tests)
        assert result.passed == 0
        assert {t.error_type for t in result.tests} <= {"SandboxCrash", "NotRun"}


def test_the_code_metric_does_not_turn_missing_isolation_into_a_zero_score() -> None:
    from liftdspy.metrics.code_metric import score_code
    from liftdspy.sandbox import IsolationUnavailable

    def no_isolation(*_args, **_kwargs):
        raise IsolationUnavailable("bwrap not found")

    with pytest.raises(IsolationUnavailable):
        score_code(
            "def f():\n    return 1\n", ["assert f() == 1"], entry_point="f", run=no_isolation
        )
