"""Labelled tasks as `dspy.Example`s for each program."""

from __future__ import annotations

import dspy

from liftdspy.datasets import LabelledTask
from liftdspy.ir import render_stub
from liftdspy.programs.registry import program_spec


def to_example(task: LabelledTask, program: str, *, with_tests: bool = False) -> dspy.Example:
    """An example carrying every field any predictor's demos may need: the prompt, the gold IR,
    its rendered stub (IR -> code input), the reference code (IR -> code output) and the tests.
    `with_tests` makes the tests inputs too (the pipeline's repair loop runs them)."""
    inputs = program_spec(program).input_names(with_tests=with_tests)
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
