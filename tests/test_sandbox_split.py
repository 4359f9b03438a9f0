"""The trusted side of the sandbox, without processes: rewriting, plain data, the channel."""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import importlib.util
import json
import math
import typing
from pathlib import Path

import pytest

from liftdspy.sandbox import SandboxJob, SandboxLimits, TestOutcome, Verdict
from liftdspy.sandbox.backend import HARNESS_PATH, RawRun
from liftdspy.sandbox.decide import decide
from liftdspy.sandbox.plain import MAX_DEPTH, NotPlainData, decode
from liftdspy.sandbox.records import Check, Checks, Ended, ValueItem
from liftdspy.sandbox.runner import _build_result, plan_tests
from liftdspy.sandbox.split import REASON_CONTROL, REASON_IDENTITY, TestPlan, plan_test

CODE = "def f(*a):\n    pass\ndef g(*a):\n    pass\ndef ids():\n    pass\n"


def _harness():
    spec = importlib.util.spec_from_file_location("liftdspy_harness_under_test", HARNESS_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions only: main() runs under __main__
    return module


HARNESS = _harness()


def encode(value: object) -> object:
    """What the harness sends for `value` (JSON-round-tripped like the real channel)."""
    return json.loads(json.dumps(HARNESS._encode(value, 0, [HARNESS._MAX_NODES])))


def judge(plan: TestPlan, *checks: list, ended: str = "ok"):
    """The parent's decision when the sandbox reports `checks`: lists of raw items per check."""
    record = Checks(
        event="checks",
        index=0,
        checks=[Check(id=k, items=[ValueItem(**item) for item in items]) for k, items in checks],
        ended=Ended(kind=ended),  # type: ignore[arg-type]
        duration_s=0.0,
    )
    return decide(plan, record)


def v(value: object) -> dict:
    return {"value": encode(value)}


def test_the_sandbox_gets_only_the_operands_that_use_the_code() -> None:
    plan = plan_test("assert add(1, 2) == 3 and sorted(ids()) == [1, 2]", code="def add(): pass")
    (judgement,) = plan.judgements
    assert judgement.expressions == ("add(1, 2)", "sorted(ids())")  # no expected value in sight
    assert "3" not in plan.program.split("lambda")[1] and "[1, 2]" not in plan.program


@pytest.mark.parametrize(
    "source",
    [
        "x = f(); assert x == 1",  # two statements
        "assert f(1)",  # a bare truth test: the parent takes the truth of a plain value
        "assert not f(1)",
        "assert f(1) == EXPECTED",  # EXPECTED from the setup: sent out as plain data too
        "assert f(1) == 2, g()",  # a message that is not a constant is never evaluated
        "assert 1 == 1",  # nothing calls the code
        "for i in range(3):\n    assert f(i) == i",
        "def check(x):\n    assert f(x) > 0\ncheck(1)\ncheck(2)",
        "assert not any(f(a) for a in [1, 2])",
        "assert all(f(x) == y for x, y in [(1, 2), (3, 4)])",
        "assert f(1) in g(2)",
        "assert 0 < f(1) <= 3",
        "assert isinstance(f(1), int)",
        "import math\nassert math.isclose(f(1), 0.2)",
        "assert abs(f(1) - 0.5) < 1e-9",
        "try:\n    f(1)\nexcept ValueError as exc:\n    assert '2' in str(exc)\n"
        "else:\n    raise AssertionError('no error')",
    ],
)
def test_every_shape_becomes_parent_judgements(source: str) -> None:
    plan = plan_test(source, code=CODE, setup="EXPECTED = 2")
    assert plan.exception is None, plan.exception
    assert "assert" not in plan.program.replace("AssertionError", "")
    assert plan.judgements


def test_expected_values_stay_in_the_parent_whatever_the_shape() -> None:
    plan = plan_test("import math\nr = f(1)\nassert math.isclose(r, 0.123456)\n"
                     "assert abs(g(r) - 9.87654) < 1e-9\nassert not any(f(a) == 4242 for a in r)",
                     code=CODE)  # fmt: skip
    for secret in ("0.123456", "9.87654", "4242"):
        assert secret not in plan.program


def test_identity_and_control_flow_on_code_values_are_counted_exceptions() -> None:
    assert plan_test("assert f(1) is f(1)", code=CODE).exception == REASON_IDENTITY
    guarded = plan_test("r = f(1)\nif r:\n    assert r == 2", code=CODE)
    assert guarded.exception == REASON_CONTROL
    assert "__liftdspy_plain__(r)" in guarded.program  # a lying __bool__ cannot steer it
    filtered = plan_test("assert all(f(x) == 1 for x in [1, 2] if g(x))", code=CODE)
    assert filtered.exception == REASON_CONTROL
    # the test's own values steering its loops is no judgement of the code
    own = plan_test("import random\nrng = random.Random(1)\nfor _ in range(3):\n"
                    "    c = rng.randint(0, 3)\n    if c == 0:\n        c = 1\n"
                    "    assert f(c) == c", code=CODE)  # fmt: skip
    assert own.exception is None


def test_the_expected_side_is_evaluated_in_the_parent() -> None:
    plan = plan_test("assert f() == sorted({3, 1}) + [2 ** 3, -1, len('ab')]", code=CODE)
    assert judge(plan, (0, [v([1, 3, 8, -1, 2])]))[0] is TestOutcome.passed
    outcome, error_type, message = judge(plan, (0, [v([1, 3])]))
    assert (outcome, error_type) == (TestOutcome.failed, "AssertionError")
    assert message is not None and "left: [1, 3]" in message


def test_errors_timeouts_and_non_plain_values_never_pass() -> None:
    plan = plan_test("assert f() == 1", code=CODE)
    error = {"error_type": "ValueError", "message": "bad"}
    assert judge(plan, (0, [error]))[0] is TestOutcome.error
    assert judge(plan, ended="timeout")[0] is TestOutcome.timeout
    assert judge(plan, (0, [{"error_type": "NotPlainData", "message": "obj"}]))[0] is (
        TestOutcome.failed
    )
    assert judge(plan, (0, [{"value": {"object": []}}]))[0] is TestOutcome.failed
    # a top-level judgement the sandbox says nothing about, in a run that "went fine"
    outcome, error_type, _ = judge(plan)
    assert (outcome, error_type) == (TestOutcome.error, "SandboxCrash")


def test_the_first_failing_check_decides_whatever_follows() -> None:
    plan = plan_test("for i in ids():\n    assert f(i) == i", code=CODE)
    assert plan.judgements[0].expressions == ("f(i)", "i")
    assert judge(plan, *((0, [v(i), v(i)]) for i in range(3)))[0] is TestOutcome.passed
    failed = judge(plan, (0, [v(0), v(0)]), (0, [v(5), v(1)]), ended="timeout")
    assert failed[0] is TestOutcome.failed and "left: 5" in (failed[2] or "")
    raised = judge(plan, (0, [v(0), v(0)]), ended="raised")
    assert raised[0] is TestOutcome.error


def test_comprehension_judgements_and_short_circuit_are_the_parents() -> None:
    plan = plan_test("assert all(f(x) == y for x, y in [(1, 2), (3, 4)])", code=CODE)
    rows = [[{"tuple": [2, 2]}, {"tuple": [4, 4]}]]
    assert judge(plan, (0, [{"value": {"list": rows[0]}}]))[0] is TestOutcome.passed
    bad = [{"tuple": [2, 2]}, {"tuple": [5, 4]}]
    assert judge(plan, (0, [{"value": {"list": bad}}]))[0] is TestOutcome.failed
    either = plan_test("assert f() == 0 or g() == 2", code=CODE)
    raised = {"error_type": "ZeroDivisionError", "message": "x"}
    assert judge(either, (0, [v(0), raised]))[0] is TestOutcome.passed
    assert judge(either, (0, [v(1), raised]))[0] is TestOutcome.error


def test_truth_tests_isclose_and_isinstance_run_on_plain_values() -> None:
    truth = plan_test("assert not f(1)", code=CODE)
    assert judge(truth, (0, [v(0)]))[0] is TestOutcome.passed
    assert judge(truth, (0, [v([1])]))[0] is TestOutcome.failed
    close = plan_test("import math\nassert math.isclose(f(1), 0.3)", code=CODE)
    assert judge(close, (0, [v(0.1 + 0.2)]))[0] is TestOutcome.passed
    kind = plan_test("assert isinstance(f(1), int)", code=CODE)
    assert judge(kind, (0, [v(True)]))[0] is TestOutcome.passed  # bool is an int, as in Python
    assert judge(kind, (0, [v("1")]))[0] is TestOutcome.failed


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


Point = collections.namedtuple("Point", ["x", "y"])


class Pair(typing.NamedTuple):
    left: int
    right: str = "r"

    def both(self) -> str:  # a method of its own: still compared as a tuple
        return f"{self.left}{self.right}"


UTC_PLUS_2 = datetime.timezone(datetime.timedelta(hours=2))
STDLIB_VALUES = [
    collections.Counter("abracadabra"),
    collections.OrderedDict([("b", 1), ("a", [2])]),
    collections.defaultdict(list, {"k": [1, 2]}),
    collections.defaultdict(None, {1: 2}),
    collections.deque([1, 2, 3], maxlen=5),
    collections.deque(["x"]),
    Point(1, (2, 3)),
    Pair(4),
    decimal.Decimal("3.140"),
    decimal.Decimal("-0"),
    decimal.Decimal("NaN"),
    fractions.Fraction(-3, 4),
    complex(1.5, -2),
    range(1, 10, 3),
    datetime.date(2024, 2, 29),
    datetime.timedelta(days=-1, seconds=5, microseconds=7),
    datetime.time(23, 59, 1, 5, tzinfo=UTC_PLUS_2),
    datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.UTC),
    datetime.datetime(2024, 1, 1, 12, 30, 0, 1),
    {Point(1, 2): frozenset({decimal.Decimal(1)})},
]


@pytest.mark.parametrize("value", STDLIB_VALUES, ids=lambda value: type(value).__name__)
def test_stdlib_values_round_trip_with_their_exact_type(value: object) -> None:
    back = decode(encode(value))
    assert type(back).__name__ == type(value).__name__
    assert repr(back) == repr(value)
    if not (isinstance(value, decimal.Decimal) and value.is_nan()):
        assert back == value
    if isinstance(value, collections.defaultdict):
        assert back.default_factory is value.default_factory
    if isinstance(value, collections.deque):
        assert back.maxlen == value.maxlen
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        assert back._fields == value._fields and type(back) is not type(value)  # the parent's own


def test_rebuilt_values_compare_with_stdlib_semantics() -> None:
    def same(value: object) -> object:
        return decode(encode(value))

    assert same(collections.Counter("aab")) == {"a": 2, "b": 1}  # Counter == dict, as in Python
    od = same(collections.OrderedDict([(1, 1), (2, 2)]))
    assert od != collections.OrderedDict([(2, 2), (1, 1)])  # order-sensitive between OrderedDicts
    assert od == {2: 2, 1: 1}  # but not against a dict
    assert same(collections.deque([1, 2])) != [1, 2]
    assert same(Point(1, 2)) == (1, 2) and same(Pair(1, "a")) < (1, "b")  # tuple semantics
    assert same(decimal.Decimal("1.10")) == decimal.Decimal("1.1")
    assert same(decimal.Decimal("2.50")) == fractions.Fraction(5, 2)
    assert same(fractions.Fraction(1, 3)) != 1 / 3
    assert same(range(0, 6, 2)) == range(0, 5, 2) and same(range(3)) != [0, 1, 2]
    assert same(complex(1, 0)) == 1
    one_pm_utc = datetime.datetime(2024, 1, 1, 13, tzinfo=datetime.UTC)
    assert same(datetime.datetime(2024, 1, 1, 15, tzinfo=UTC_PLUS_2)) == one_pm_utc
    assert same(datetime.date(2024, 1, 1)) != datetime.datetime(2024, 1, 1)
    assert math.isnan(same(float("nan"))) and same(float("-inf")) == float("-inf")


def test_user_subclasses_and_other_time_zones_are_refused_inside() -> None:
    class MyCounter(collections.Counter):
        pass

    class MyPoint(Point):
        pass

    class Lying(typing.NamedTuple):
        a: int

        def __eq__(self, other: object) -> bool:
            return True

    def own_factory() -> int:
        return 0

    class Zone(datetime.tzinfo):
        def utcoffset(self, dt: object) -> datetime.timedelta:
            return datetime.timedelta(0)

    refused = [
        MyCounter("a"),
        MyPoint(1, 2),
        Lying(1),
        collections.defaultdict(own_factory),
        collections.defaultdict(lambda: 0),
        datetime.datetime(2024, 1, 1, tzinfo=Zone()),
        type("Int", (int,), {})(3),
        type("D", (dict,), {})(),
    ]
    for value in refused:
        with pytest.raises(HARNESS._NotPlain):
            HARNESS._encode(value, 0, [HARNESS._MAX_NODES])


@pytest.mark.parametrize(
    "bad",
    [
        {"defaultdict": ["os.system", []]},  # only a builtin type is a factory
        {"namedtuple": ["P", ["import os"], [1]]},  # field names are identifiers
        {"namedtuple": ["P", ["_x"], [1]]},
        {"namedtuple": ["P", ["x", "x"], [1, 2]]},
        {"namedtuple": ["P", ["x"], [1, 2]]},
        {"Decimal": "1" * 5000},
        {"Decimal": "not a number"},
        {"Fraction": [1, 0]},
        {"complex": [1, "2"]},
        {"date": [2023, 2, 29]},
        {"datetime": [2024, 1, 1, 0, 0, 0, 0, 0, [1, 0, 0, None]]},  # a whole day's offset
        {"range": [0, 10**6000, 1]},
        {"Counter": [[{"list": []}, 1]]},  # unhashable key
        {"deque": [-1, []]},
    ],
)
def test_malformed_tagged_values_are_refused_by_the_parent(bad: object) -> None:
    with pytest.raises(NotPlainData):
        decode(bad)


def _result(lines: list[dict | bytes], tests: list[str]):
    job = SandboxJob(code=CODE, tests=tests)
    data = b"".join(
        (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
    )
    raw = RawRun(data, False, "", "", False, None, 0)
    return _build_result(job, plan_tests(tests, "", CODE), SandboxLimits(), raw, 0.1, "bubblewrap")


def _checks(index: int, checks: list, kind: str = "ok") -> dict:
    return {"event": "checks", "index": index, "checks": checks, "ended": {"kind": kind},
            "duration_s": 0.0}  # fmt: skip


def test_records_out_of_order_or_of_the_wrong_kind_are_a_crash_result() -> None:
    tests = ["assert f() == 1", "x = f(); assert x == 1", "assert f() is f()"]
    loaded = {"event": "loaded", "ok": True, "error": None}
    good = [
        loaded,
        {"event": "start", "index": 0},
        _checks(0, [{"id": 0, "items": [{"value": 1}]}]),
        {"event": "start", "index": 1},
        _checks(1, [{"id": 0, "items": [{"value": 1}]}]),
        {"event": "start", "index": 2},
        _checks(2, [{"id": 0, "items": [{"value": True}]}]),
        {"event": "done"},
    ]
    result = _result(good, tests)
    assert [t.outcome for t in result.tests] == [TestOutcome.passed] * 3
    assert [t.verdict for t in result.tests] == [Verdict.parent] * 2 + [Verdict.in_sandbox]
    assert result.in_sandbox_verdicts == 1
    assert json.loads(result.model_dump_json())["in_sandbox_verdicts"] == 1

    forged_outcome = [
        loaded,
        {"event": "start", "index": 0},
        {"event": "test", "index": 0, "outcome": "passed", "duration_s": 0.0},  # old kind
        *good[3:],
    ]
    unknown_judgement = [*good[:2], _checks(0, [{"id": 7, "items": [{"value": 1}]}]), *good[3:]]
    wrong_count = [*good[:2], _checks(0, [{"id": 0, "items": []}]), *good[3:]]
    for lines in (
        forged_outcome,
        unknown_judgement,
        wrong_count,
        [loaded, b"not json", *good[1:]],
        good[1:],
        [*good, loaded],
    ):
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


def test_the_core_dataset_has_no_in_sandbox_verdict() -> None:
    from liftdspy.datasets.loader import read_tasks

    tasks = read_tasks([Path(__file__).resolve().parents[1] / "datasets" / "core"]).tasks
    plans = [p for t in tasks for p in plan_tests(t.tests, t.test_setup, t.reference or "")]
    assert len(plans) >= 466
    assert [p.source for p in plans if p.exception] == []


def test_a_loop_over_known_values_is_judged_per_iteration_and_counted_here() -> None:
    plan = plan_test("for x, y in [(1, 2), (3, 4)]:\n    assert f(x) == y", code=CODE)
    assert "2" not in plan.program and "4" not in plan.program  # the sandbox loops over x only
    (judgement,) = plan.judgements
    assert judgement.expressions == ("f(x)",)
    assert judge(plan, (0, [v(2)]), (0, [v(4)]))[0] is TestOutcome.passed
    assert judge(plan, (0, [v(4)]), (0, [v(2)]))[0] is TestOutcome.failed  # per iteration
    for short in ([(0, [v(2)])], []):  # an iteration the sandbox left out is no pass
        outcome, error_type, _ = judge(plan, *short)
        assert (outcome, error_type) == (TestOutcome.error, "SandboxCrash")
    assert judge(plan, (0, [v(2)]), (0, [v(4)]), (0, [v(4)]))[1] == "SandboxCrash"
