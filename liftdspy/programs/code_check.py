"""Extract and check the source of one function from an LM's answer, with `ast` only."""

from __future__ import annotations

import ast
import re

from pydantic import BaseModel

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


class CodeCheck(BaseModel):
    """What `ast` says about a piece of generated code."""

    code: str
    parses: bool
    defines_function: bool
    problems: list[str]


def strip_fences(text: str) -> str:
    """The code inside the first Markdown code fence, or the text itself when there is none."""
    match = _FENCE.search(text)
    return (match.group(1) if match else text).strip("\n")


def check_function_source(text: str, expected_name: str) -> CodeCheck:
    """Parse `text` (fences stripped) and check that it defines `expected_name` at top level."""
    code = strip_fences(text)
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        problem = f"does not parse: line {exc.lineno}: {exc.msg}"
        return CodeCheck(code=code, parses=False, defines_function=False, problems=[problem])
    names = [
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    if expected_name in names:
        return CodeCheck(code=code, parses=True, defines_function=True, problems=[])
    found = ", ".join(names) if names else "no function"
    problem = f"expected a function named {expected_name!r}, found {found}"
    return CodeCheck(code=code, parses=True, defines_function=False, problems=[problem])
