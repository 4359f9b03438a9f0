"""Decide one test in the parent from what the sandbox reported for it.

The sandbox reports, in order, the plain-data values of the expressions of each judgement the
test's program reached, and how the program ended. The parent evaluates every judgement itself
(`judgement.Evaluator`); the first one that does not hold decides the test. A judgement at the
test's top level that was never reported, although the program ran through, means the report
is not the program's: an error, never a pass.
"""

from __future__ import annotations

from liftdspy.sandbox.judgement import EvaluationError, Evaluator, Observed, SandboxRaised
from liftdspy.sandbox.models import TestOutcome
from liftdspy.sandbox.plain import NotPlainData, decode
from liftdspy.sandbox.records import Checks, ValueItem
from liftdspy.sandbox.split import TestPlan

_MESSAGE_LIMIT = 2000

Decision = tuple[TestOutcome, str | None, str | None]


def observed(items: list[ValueItem]) -> list[Observed]:
    """Decode the values of one check: a value that is not plain data is an error of its own."""
    out = []
    for item in items:
        if item.error_type is not None:
            out.append(Observed(None, item.error_type, item.message))
            continue
        try:
            out.append(Observed(decode(item.value)))
        except NotPlainData as exc:
            out.append(Observed(None, "NotPlainData", f"not plain data: {exc}"))
    return out


def decide(plan: TestPlan, record: Checks) -> Decision:
    """(outcome, error type, message) of a test from its `checks` record."""
    reached: dict[int, int] = {}
    for check in record.checks:
        occurrence = reached.get(check.id, 0)
        reached[check.id] = occurrence + 1
        decision = _judge(plan, check.id, occurrence, observed(check.items))
        if decision is not None:
            return decision
    ended = record.ended
    if ended.kind == "timeout":
        return TestOutcome.timeout, "Timeout", ended.message
    if ended.kind == "raised":
        outcome = TestOutcome.failed if ended.error_type == "AssertionError" else TestOutcome.error
        return outcome, ended.error_type, ended.message
    for i, judgement in enumerate(plan.judgements):
        if judgement.top_level and i not in reached:
            return (
                TestOutcome.error,
                "SandboxCrash",
                f"the sandbox never reported `{judgement.line}`",
            )
        iterations = judgement.per_iteration
        if iterations is not None and reached.get(i, 0) != len(iterations):
            return (
                TestOutcome.error,
                "SandboxCrash",
                f"the sandbox reported `{judgement.line}` {reached.get(i, 0)} times in a loop "
                f"of {len(iterations)}",
            )
    return TestOutcome.passed, None, None


def _judge(plan: TestPlan, index: int, occurrence: int, values: list[Observed]) -> Decision | None:
    """None when judgement `index` holds on `values`, else the test's decision."""
    judgement = plan.judgements[index]
    condition = judgement.condition
    if judgement.per_iteration is not None:
        if occurrence >= len(judgement.per_iteration):
            return TestOutcome.error, "SandboxCrash", "more checks reported than loop iterations"
        condition = judgement.per_iteration[occurrence]
    evaluator = Evaluator(values)
    try:
        holds = bool(evaluator.value(condition))
    except SandboxRaised as raised:
        item = raised.observed
        if item.error_type == "NotPlainData":
            return TestOutcome.failed, "NotPlainData", item.message
        return TestOutcome.error, item.error_type, item.message
    except EvaluationError as exc:
        return TestOutcome.error, "EvaluationError", str(exc)
    except Exception as exc:  # a comparison of plain data raised, e.g. [1] < 1
        return TestOutcome.error, type(exc).__name__, str(exc)[:_MESSAGE_LIMIT]
    if holds:
        return None
    if judgement.message is not None:
        return TestOutcome.failed, "AssertionError", judgement.message[:_MESSAGE_LIMIT]
    detail = f" ({', '.join(evaluator.shown)})" if evaluator.shown else ""
    return TestOutcome.failed, "AssertionError", (judgement.line + detail)[:_MESSAGE_LIMIT]
