"""Extract and check the source of one function from an LM's answer, with `ast` only.

The one owner of "does this answer define the function": the IR -> code program, the pipeline's
repair loop, the code metric and the DSPy-free runtime all use it. A function is a top-level
`def` or `async def` of that name (what the stub asks for); a name bound by an assignment or a
class is not the function.
"""

from __future__ import annotations

import ast

from pydantic import BaseModel

from liftdspy import pyast
from liftdspy.fences import strip_code_fence


class CodeCheck(BaseModel):
    """What `ast` says about a piece of generated code."""

    code: str
    parses: bool
    defines_function: bool
    problems: list[str]


def extract_code(text: str) -> str:
    """The code of an answer: inside a whole-answer fence (else the text), blank lines trimmed."""
    return strip_code_fence(text).strip("\n")


def function_names(tree: ast.Module) -> list[str]:
    """The names of the top-level `def` and `async def` statements of `tree`, in order."""
    return [
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]


def check_function_source(text: str, expected_name: str) -> CodeCheck:
    """Parse `text` (see `extract_code`) and check that it defines `expected_name` at top level."""
    code = extract_code(text)
    try:
        tree = pyast.parse(code)
    except SyntaxError as exc:
        problem = f"does not parse: line {exc.lineno}: {exc.msg}"
        return CodeCheck(code=code, parses=False, defines_function=False, problems=[problem])
    names = function_names(tree)
    if expected_name in names:
        return CodeCheck(code=code, parses=True, defines_function=True, problems=[])
    found = ", ".join(names) if names else "no function"
    problem = f"expected a function named {expected_name!r}, found {found}"
    return CodeCheck(code=code, parses=True, defines_function=False, problems=[problem])
