"""Labelled tasks as `dspy.Example`s for each program."""

from __future__ import annotations

import dspy

from liftdspy.datasets import LabelledTask
from liftdspy.ir import render_stub

# The inputs each program's forward() takes from an example.
PROGRAM_INPUTS: dict[str, tuple[str, ...]] = {
    "nl_to_ir": ("prompt",),
    "ir_to_code": ("ir",),
    "pipeline": ("prompt",),
}


# With a repair loop, the pipeline also takes the tests: its repair predictor sees their failures.
REPAIR_INPUTS = ("tests", "test_setup")


def to_example(task: LabelledTask, program: str, *, with_tests: bool = False) -> dspy.Example:
    """An example carrying every field any predictor's demos may need: the prompt, the gold IR,
    its rendered stub (IR -> code input), the reference code (IR -> code output) and the tests.
    `with_tests` makes the tests inputs too (the pipeline's repair loop runs them)."""
    try:
        inputs = PROGRAM_INPUTS[program]
    except KeyError:
        raise ValueError(f"unknown program {program!r}") from None
    if with_tests:
        inputs = (*inputs, *REPAIR_INPUTS)
    return dspy.Example(
        id=task.id,
        prompt=task.prompt,
        ir=task.ir,
        function_stub=render_stub(task.ir),
        code=task.reference or "",
        tests=list(task.tests),
        test_setup=task.test_setup,
    ).with_inputs(*inputs)


def to_examples(
    tasks: list[LabelledTask], program: str, *, with_tests: bool = False
) -> list[dspy.Example]:
    return [to_example(task, program, with_tests=with_tests) for task in tasks]
