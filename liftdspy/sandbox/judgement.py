"""Judgements decided in the parent: expression trees over plain data, and their evaluation.

`split.py` turns each `assert` of a test into a `Judgement`: a tree whose leaves are constants
the parent evaluated itself (`Const`) or values the sandbox reported as plain data (`Hole`), and
whose inner nodes are operators the parent applies itself (comparisons, `and`/`or`/`not`,
arithmetic, `any`/`all`/`isinstance`/`math.isclose` and other pure builtins, comprehensions whose
element makes a judgement). No object of the sandbox's making is ever in the tree: every hole is
rebuilt from plain data (`plain.py`), so every `__eq__`, `__bool__`, `__hash__`, `__len__` that
runs here is the standard library's.
"""

from __future__ import annotations

import ast
import builtins
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from liftdspy.errors import LiftdspyError

_MAX_SIZE = 1_000_000  # longest sequence the parent builds while evaluating a judgement
_MAX_INT_BITS = 65_536
_REPR_LIMIT = 300

BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
    ast.Invert: operator.invert,
}
COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
# Pure functions the parent applies to plain data: builtins by name, `math.<name>` by attribute.
BUILTIN_CALLS: dict[str, Callable[..., Any]] = {
    name: getattr(builtins, name)
    for name in ["abs", "all", "any", "bool", "bytes", "dict", "float", "frozenset", "int",
                 "isinstance", "len", "list", "max", "min", "range", "round", "set", "sorted",
                 "str", "sum", "tuple", "complex"]
}  # fmt: skip
MATH_CALLS: dict[str, Callable[..., Any]] = {
    name: getattr(math, name)
    for name in ["isclose", "fabs", "floor", "ceil", "isnan", "isinf", "isfinite", "sqrt",
                 "trunc"]
}  # fmt: skip
# Calls whose result is itself a judgement (a truth value the test asks for): always applied in
# the parent, never sent to the sandbox whole.
JUDGING_CALLS = frozenset({"any", "all", "bool", "isinstance", "isclose", "isnan", "isinf",
                           "isfinite"})  # fmt: skip
TYPE_NAMES = frozenset({"int", "float", "str", "bool", "list", "dict", "tuple", "set",
                        "frozenset", "bytes", "complex", "range"})  # fmt: skip


class EvaluationError(LiftdspyError):
    """A value the parent was asked to compute is out of its bounds."""


class SandboxRaised(LiftdspyError):
    """A hole whose expression raised (or was not plain data) in the sandbox was needed."""

    def __init__(self, observed: Observed) -> None:
        super().__init__(observed.message)
        self.observed = observed


# --- the tree ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Const:
    value: Any


@dataclass(frozen=True)
class Hole:
    """The plain value of `expressions[index]` of the judgement (or of a comprehension row)."""

    index: int


@dataclass(frozen=True)
class Apply:
    name: str
    function: Callable[..., Any]
    args: tuple[Node, ...]
    keywords: tuple[tuple[str, Node], ...] = ()


@dataclass(frozen=True)
class BinOp:
    op: type[ast.operator]
    left: Node
    right: Node


@dataclass(frozen=True)
class Unary:
    op: type[ast.unaryop]
    operand: Node


@dataclass(frozen=True)
class Compare:
    left: Node
    ops: tuple[type[ast.cmpop], ...]
    comparators: tuple[Node, ...]


@dataclass(frozen=True)
class BoolOp:
    is_and: bool
    values: tuple[Node, ...]


@dataclass(frozen=True)
class IfExp:
    test: Node
    body: Node
    orelse: Node


@dataclass(frozen=True)
class Comprehension:
    """A comprehension whose element makes a judgement: the sandbox returns one row of element
    holes per iteration (`expressions[index]` is a list of rows), the parent builds each element."""

    index: int
    element: Node
    width: int
    kind: type = list


Node = Const | Hole | Apply | BinOp | Unary | Compare | BoolOp | IfExp | Comprehension


@dataclass(frozen=True)
class Observed:
    """What the sandbox reported for one expression: a decoded value or why there is none."""

    value: Any = None
    error_type: str | None = None  # None: `value` is valid
    message: str | None = None


@dataclass(frozen=True)
class Judgement:
    """One `assert` of a test: the sandbox evaluates `expressions`, the parent `condition`."""

    condition: Node
    expressions: tuple[str, ...]
    line: str
    message: str | None = None  # the assert's constant message, if any
    top_level: bool = False  # runs exactly once unless an earlier statement raised
    # In a loop over values the parent knows: the condition of each iteration, in order (the
    # loop's variables are constants in each); the sandbox must report exactly that many.
    per_iteration: tuple[Node, ...] | None = None


# --- evaluation ----------------------------------------------------------------------------


def sized(value: Any) -> Any:
    """`value`, unless it is too large for the parent to hold (raises `EvaluationError`)."""
    if isinstance(value, str | bytes | list | tuple | set | frozenset | dict | range):
        if len(value) > _MAX_SIZE:
            raise EvaluationError("a value too large to evaluate here")
    elif type(value) is int and value.bit_length() > _MAX_INT_BITS:
        raise EvaluationError("an int too large to evaluate here")
    return value


def guarded_binop(op: type[ast.operator], left: Any, right: Any) -> Any:
    """`left <op> right` with the bounds that keep a test from exhausting the parent."""
    if op is ast.Pow and not (
        isinstance(right, int | float) and abs(right) <= 64 and isinstance(left, int | float)
    ):
        raise EvaluationError("a power too large to evaluate here")
    if op is ast.Mult:
        counts = [v for v in (left, right) if isinstance(v, int) and not isinstance(v, bool)]
        sequence = not isinstance(left, int | float) or not isinstance(right, int | float)
        if sequence and any(abs(c) > _MAX_SIZE for c in counts):
            raise EvaluationError("a repetition too large to evaluate here")
    return sized(BINOPS[op](left, right))


class Evaluator:
    """Evaluates one judgement's tree over the observed values, lazily (short-circuit as Python)."""

    def __init__(self, observed: list[Observed] | tuple) -> None:
        self.observed = observed
        self.shown: list[str] = []

    def value(self, node: Node) -> Any:
        if isinstance(node, Const):
            return node.value
        if isinstance(node, Hole):
            item = self.observed[node.index]
            if isinstance(item, Observed):
                if item.error_type is not None:
                    raise SandboxRaised(item)
                return item.value
            return item  # a row value of a comprehension
        if isinstance(node, Apply):
            args = [self.value(a) for a in node.args]
            kwargs = {k: self.value(v) for k, v in node.keywords}
            if node.name == "range" and len(range(*args)) > _MAX_SIZE:
                raise EvaluationError("a range too large to evaluate here")
            return sized(node.function(*args, **kwargs))
        if isinstance(node, BinOp):
            return guarded_binop(node.op, self.value(node.left), self.value(node.right))
        if isinstance(node, Unary):
            return UNARY[node.op](self.value(node.operand))
        if isinstance(node, BoolOp):
            result: Any = None
            for part in node.values:
                result = self.value(part)
                if bool(result) is not node.is_and:
                    return result
            return result
        if isinstance(node, IfExp):
            return self.value(node.body if self.value(node.test) else node.orelse)
        if isinstance(node, Comprehension):
            return self._comprehension(node)
        return self._compare(node)

    def _compare(self, node: Compare) -> bool:
        left = self.value(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.value(comparator)
            if not COMPARE[op](left, right):
                if len(node.ops) == 1 and self is not None:
                    self.shown = [f"left: {short_repr(left)}", f"right: {short_repr(right)}"]
                return False
            left = right
        return True

    def _comprehension(self, node: Comprehension) -> Any:
        rows = self.value(Hole(node.index))
        if not isinstance(rows, list):
            raise EvaluationError("a comprehension's rows must be a list")
        elements = []
        for row in rows:
            if not isinstance(row, tuple) or len(row) != node.width:
                raise EvaluationError("a comprehension row of the wrong shape")
            elements.append(Evaluator(row).value(node.element))
        return node.kind(elements)


def short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # e.g. an int with more digits than str() allows
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."
