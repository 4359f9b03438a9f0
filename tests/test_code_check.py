"""One owner for "the code of an answer" and "does it define the function": the IR -> code
program's check, the code metric and the DSPy-free runtime agree on every answer shape (they
used to disagree: three fence patterns, and a metric that counted `add = lambda ...` as the
function while the program reported it missing)."""

from __future__ import annotations

import pytest

from liftdspy.code_check import check_function_source, extract_code
from liftdspy.fences import strip_code_fence
from liftdspy.metrics import score_code
from liftdspy.sandbox import SandboxResult

BODY = "def add(a: int, b: int) -> int:\n    return a + b"


def _no_sandbox(code, tests, *, setup="", limits=None):
    return SandboxResult(loaded=True)


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (f"```python\n{BODY}\n```", BODY),
        (f"```Python3\n{BODY}\n```\n", BODY),  # any language tag (was kept whole by the program)
        (f"  ```\n{BODY}\n```  ", BODY),
        (f"```python\nx = '```'\n{BODY}\n```", f"x = '```'\n{BODY}"),  # a fence inside the code
        (f"Here it is:\n```python\n{BODY}\n```", None),  # prose around a fence: not code
        (f"```python\n{BODY}\n```\nThis adds.", None),
        (BODY, BODY),
    ],
)
def test_only_a_whole_answer_fence_is_stripped(answer, code):
    expected = answer if code is None else code
    assert strip_code_fence(answer) == expected
    assert extract_code(answer) == expected.strip("\n")


@pytest.mark.parametrize(
    ("source", "defines"),
    [
        (BODY, True),
        ("async def add(a, b):\n    return a + b", True),
        ("add = lambda a, b: a + b", False),  # the metric used to count this one
        ("class add:\n    pass", False),
        ("add: int = 3", False),
        ("def plus(a, b):\n    return a + b", False),
    ],
)
def test_the_program_and_the_metric_agree_on_defines_function(source, defines):
    check = check_function_source(source, "add")
    assert check.parses and check.defines_function is defines
    score = score_code(source, ["assert add(1, 2) == 3"], entry_point="add", run=_no_sandbox)
    assert score.components["defines_function"] == (1.0 if defines else 0.0)
    assert ("must define a top-level function 'add'" in score.feedback) is not defines


def test_prose_around_a_fence_parses_nowhere():
    answer = f"Sure! Here is the function:\n```python\n{BODY}\n```"
    assert not check_function_source(answer, "add").parses
    score = score_code(answer, ["assert add(1, 2) == 3"], entry_point="add", run=_no_sandbox)
    assert score.components["parses"] == 0.0
