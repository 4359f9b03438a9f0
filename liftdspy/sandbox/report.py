"""A sandbox result in words: the one rendering of what failed, for whoever must act on it.

- `failure_lines`: the lines a fixer reads (the pipeline's repair LM, the code metric's
  feedback for GEPA): how many tests passed, a load error, a time-out, each failing test with
  its error (bounded).
- `first_failure`: one line saying why a program did not pass, or None (the importer's
  report of a reference that fails its own tests).
"""

from __future__ import annotations

from liftdspy.sandbox.models import SandboxResult, TestOutcome, TestResult

MAX_LISTED_FAILURES = 8
MAX_MESSAGE_CHARS = 200
MAX_SOURCE_CHARS = 120


def cut(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """`text` on one line, at most `limit` characters (an ellipsis marks a cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_text(test: TestResult) -> str:
    """How a test failed: `ErrorType: message`, or whichever of the two it has, or ""."""
    if test.error_type and test.message:
        return f"{test.error_type}: {test.message}"
    return test.error_type or test.message or ""


def failing_tests(result: SandboxResult) -> list[TestResult]:
    return [test for test in result.tests if test.outcome is not TestOutcome.passed]


def describe_test(test: TestResult) -> str:
    """`` `source` -> outcome (error) `` for one test, each part cut to one short line."""
    error = error_text(test)
    return f"`{cut(test.source, MAX_SOURCE_CHARS)}` -> {test.outcome}" + (
        f" ({cut(error)})" if error else ""
    )


def failure_lines(result: SandboxResult, max_listed: int = MAX_LISTED_FAILURES) -> list[str]:
    """What a fixer needs to know about `result`, one fact per line (see the module docstring)."""
    lines = [f"{result.passed}/{result.total} tests passed."]
    if not result.loaded and result.load_error:
        lines.append(f"The code failed to load: {cut(result.load_error)}")
    if result.timed_out:
        lines.append("The program hit the sandbox time limit.")
    if not result.loaded:
        return lines  # every test reports the same load error
    failures = failing_tests(result)
    lines += [f"Failing test {describe_test(test)}" for test in failures[:max_listed]]
    if len(failures) > max_listed:
        lines.append(f"... and {len(failures) - max_listed} more failing tests.")
    return lines


def first_failure(result: SandboxResult, subject: str = "the code") -> str | None:
    """Why `result` is not a pass, in one line naming `subject`; None when every test passed."""
    if not result.loaded:
        return f"{subject} does not load: {result.load_error}"
    failures = failing_tests(result)
    if not failures and not result.timed_out and result.tests:
        return None
    if not result.tests:
        return "no tests ran"
    if not failures:
        return "the program timed out"
    first = failures[0]
    return (
        f"{subject} fails {len(failures)} of {result.total} tests; "
        f"test {first.index} ({cut(first.source, 80)!r}) {first.outcome.value}: "
        f"{cut(error_text(first) or first.outcome.value, 160)}"
    )
