"""Derive a gold IR from a benchmark problem: its reference solution, tests and text.

- signature: the function the tests call, its parameter names from the `def`, each type from the
  reference's annotation when it has one, otherwise from the values observed while the tests ran
  (`observe.py`);
- assertions: the tests' `assert` predicates, as many as the IR allows, spread over the tests;
- intent: the benchmark's description, cut to the IR's length bound at a sentence boundary.
"""

from __future__ import annotations

import ast
import logging
import re
from collections import Counter

from pydantic import BaseModel, Field

from liftdspy import pyast
from liftdspy.datasets.importers.observe import Observations
from liftdspy.datasets.row import LabelledTask, Split
from liftdspy.errors import LiftdspyError
from liftdspy.ir.models import (
    MAX_ASSERTIONS,
    MAX_LONG_TEXT,
    MAX_PARAMETERS,
    MAX_SHORT_TEXT,
    MAX_TYPE_HINT,
    Assertion,
    Intent,
    IntermediateRepresentation,
    Metadata,
    Parameter,
    Returns,
    Signature,
)

logger = logging.getLogger(__name__)


class DerivationError(LiftdspyError, ValueError):
    """The problem cannot be turned into a valid labelled task (the message says why)."""


class SourceProblem(BaseModel):
    """A benchmark problem in a common form, before its IR is derived."""

    source: str = Field(description="The benchmark: 'mbpp', 'humaneval'.")
    source_id: str = Field(description="The benchmark's own id, e.g. 'mbpp/12', 'HumanEval/0'.")
    task_id: str = Field(description="The id of the labelled task to write.")
    prompt: str
    summary: str = Field(description="The text the intent is derived from.")
    reference: str
    entry_point: str | None = Field(default=None, description="None: the function the tests call.")
    tests: list[str]
    test_setup: str = ""
    split: Split
    tags: list[str] = Field(default_factory=list)


def top_level_functions(source: str) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    try:
        tree = pyast.parse(source)
    except SyntaxError as exc:
        raise DerivationError(f"reference does not parse: line {exc.lineno}: {exc.msg}") from exc
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _called_names(test: str) -> list[str]:
    try:
        tree = pyast.parse(test)
    except SyntaxError as exc:
        raise DerivationError(
            f"test does not parse: line {exc.lineno}: {exc.msg}: {test[:80]!r}"
        ) from exc
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    return [c.func.id for c in calls]  # type: ignore[attr-defined]


def find_entry_point(reference: str, tests: list[str]) -> str:
    """The top-level function of `reference` that the most tests call (the first one on a tie)."""
    defined = top_level_functions(reference)
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for test in tests:
        for name in dict.fromkeys(_called_names(test)):
            if name in defined:
                counts[name] += 1
                first_seen.setdefault(name, len(first_seen))
    if not counts:
        raise DerivationError(
            "the tests call no top-level function of the reference"
            f" (it defines: {', '.join(defined) or 'none'})"
        )
    return max(counts, key=lambda name: (counts[name], -first_seen[name]))


# Bare generic annotations (`xs: list`) that the observed type may refine (`list[int]`).
_BARE_GENERICS = {"list", "dict", "set", "frozenset", "tuple", "List", "Dict", "Set", "Tuple"}


def _hint(annotation: ast.expr | None, observed: str) -> str:
    """The reference's annotation, unless missing or a bare generic the observation refines."""
    if annotation is None:
        return observed
    written = ast.unparse(annotation)
    if written in _BARE_GENERICS and observed.startswith(f"{written.lower()}["):
        return observed
    return written if len(written) <= MAX_TYPE_HINT else observed


def derive_signature(reference: str, entry_point: str, observations: Observations) -> Signature:
    functions = top_level_functions(reference)
    if entry_point not in functions:
        raise DerivationError(f"reference defines no top-level function {entry_point!r}")
    fn = functions[entry_point]
    args = fn.args
    parameters = [
        Parameter(name=a.arg, type_hint=_hint(a.annotation, observations.param(a.arg).to_hint()))
        for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)
    ]
    for packed in (args.vararg, args.kwarg):
        if packed is not None:
            observed = observations.param(packed.arg).elements().to_hint()
            parameters.append(
                Parameter(name=packed.arg, type_hint=_hint(packed.annotation, observed))
            )
    if len(parameters) > MAX_PARAMETERS:
        raise DerivationError(
            f"{entry_point} has {len(parameters)} parameters; the IR allows {MAX_PARAMETERS}"
        )
    returns = _hint(fn.returns, observations.returns.to_hint())
    return Signature(name=entry_point, parameters=parameters, returns=Returns(type_hint=returns))


def assert_predicate(test: str) -> str | None:
    """The predicate of a test that is one `assert` statement (message dropped), else None."""
    try:
        tree = pyast.parse(test)
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        return None
    return ast.unparse(tree.body[0].test)


def derive_assertions(tests: list[str], limit: int = MAX_ASSERTIONS) -> list[Assertion]:
    """Up to `limit` predicates that fit the IR's length bound, evenly spread over the tests."""
    predicates = list(
        dict.fromkeys(
            p for p in map(assert_predicate, tests) if p is not None and len(p) <= MAX_SHORT_TEXT
        )
    )
    if len(predicates) > limit:
        step = (len(predicates) - 1) / (limit - 1) if limit > 1 else 0
        predicates = [predicates[round(i * step)] for i in range(limit)]
    return [Assertion(predicate=p) for p in predicates]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def fit_text(text: str, limit: int = MAX_LONG_TEXT) -> str:
    """`text` on one line, cut to `limit` characters: at the last sentence end that fits, else at
    a word boundary with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = flat[:limit]
    ends = [m.start() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] > limit // 3:
        return head[: ends[-1]]
    cut = head[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def build_task(
    problem: SourceProblem, entry_point: str, observations: Observations
) -> LabelledTask:
    """The labelled task for a problem whose reference passed its tests while observed."""
    summary = fit_text(problem.summary) or f"Implement {entry_point}."
    ir = IntermediateRepresentation(
        intent=Intent(summary=summary),
        signature=derive_signature(problem.reference, entry_point, observations),
        assertions=derive_assertions(problem.tests),
        metadata=Metadata(origin=problem.source, source_id=problem.source_id),
    )
    return LabelledTask(
        id=problem.task_id,
        prompt=problem.prompt,
        ir=ir,
        tests=problem.tests,
        test_setup=problem.test_setup,
        reference=problem.reference,
        tags=problem.tags,
        split=problem.split,
    )
