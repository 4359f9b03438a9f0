"""Split `assert <expr>` tests so that the trusted parent decides the verdict.

For a test that is a single `assert` statement, the condition is taken apart with `ast`:
`and` / `or` / `not`, comparisons and bare truth tests stay in the parent; each operand is
either evaluated in the parent (literals, containers and a few pure builtins over them, see
`_SAFE_CALLS`) or, when it uses the generated code, sent to the sandbox as an expression whose
value comes back as plain data (`plain.py`). The sandbox never sees the expected values, so the
code cannot forge them, and no object of the code's own making is ever compared.

A test is left whole ("in-sandbox" verdict) when it is not a single assert; when a sandbox
operand uses no name besides builtins and the setup's names (its value would be an expectation
computed where the code can tamper with it); when a value from the sandbox is only tested for
truth (`assert f(x)`: its expectation, "truthy", is no secret); when `is` compares anything but
None/True/False; or when its message is not a constant.
"""

from __future__ import annotations

import ast
import builtins
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from liftdspy.sandbox.models import TestOutcome

_MAX_SIZE = 1_000_000  # longest sequence the parent builds while evaluating an expectation
_REPR_LIMIT = 300
_MESSAGE_LIMIT = 2000

_SAFE_CALLS: dict[str, Callable[..., Any]] = {
    name: getattr(builtins, name)
    for name in [
        "abs",
        "bool",
        "bytes",
        "dict",
        "float",
        "frozenset",
        "int",
        "len",
        "list",
        "max",
        "min",
        "range",
        "round",
        "set",
        "sorted",
        "str",
        "sum",
        "tuple",
    ]
}
_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
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
_SINGLETONS = (None, True, False)


class _NotTrusted(Exception):
    """This expression cannot be evaluated in the parent."""


class _Unsplittable(Exception):
    """This test must run whole inside the sandbox."""


# --- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Const:
    """An operand evaluated in the parent."""

    value: Any


@dataclass(frozen=True)
class FromSandbox:
    """An operand whose value the sandbox returns: `expressions[index]`."""

    index: int


Operand = Const | FromSandbox


@dataclass(frozen=True)
class Truth:
    operand: Operand


@dataclass(frozen=True)
class Compare:
    left: Operand
    ops: tuple[type[ast.cmpop], ...]
    comparators: tuple[Operand, ...]


@dataclass(frozen=True)
class Not:
    condition: Condition


@dataclass(frozen=True)
class BoolOp:
    is_and: bool
    conditions: tuple[Condition, ...]


Condition = Truth | Compare | Not | BoolOp


@dataclass(frozen=True)
class SplitTest:
    """A test decided in the parent: the sandbox evaluates `expressions` and nothing else."""

    source: str
    expressions: list[str]
    condition: Condition
    message: str | None = None  # the assert's constant message, if any
    line: str = field(default="")


def split_test(source: str, setup_names: set[str]) -> SplitTest | None:
    """The parent-decided form of `source`, or None if it must run whole in the sandbox.

    `setup_names` are the names the test setup binds: an operand that uses only those (and
    builtins) is an expectation, not an observation of the code, and cannot be split off.
    """
    try:
        module = ast.parse(source)
    except SyntaxError:
        return None
    if len(module.body) != 1 or not isinstance(module.body[0], ast.Assert):
        return None
    node = module.body[0]
    builder = _Builder(setup_names)
    try:
        condition = builder.condition(node.test)
        message = None
        if node.msg is not None:
            message = str(_trusted_value(node.msg))
    except (_Unsplittable, _NotTrusted):
        return None
    if not builder.expressions:
        return None  # nothing calls the code: running it in the sandbox costs nothing extra
    return SplitTest(
        source=source,
        expressions=builder.expressions,
        condition=condition,
        message=message,
        line=" ".join(source.split()),
    )


class _Builder:
    def __init__(self, setup_names: set[str]) -> None:
        self.trusted_names = setup_names | set(dir(builtins))
        self.expressions: list[str] = []

    def condition(self, node: ast.expr) -> Condition:
        if isinstance(node, ast.BoolOp):
            return BoolOp(
                isinstance(node.op, ast.And), tuple(self.condition(v) for v in node.values)
            )
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return Not(self.condition(node.operand))
        if isinstance(node, ast.Compare):
            left = self.operand(node.left)
            comparators = tuple(self.operand(c) for c in node.comparators)
            operands = (left, *comparators)
            for position, op in enumerate(node.ops):
                if isinstance(op, ast.Is | ast.IsNot):
                    pair = operands[position : position + 2]
                    if not any(isinstance(o, Const) and _is_singleton(o.value) for o in pair):
                        raise _Unsplittable("`is` between values that are not None/True/False")
            return Compare(left, tuple(type(op) for op in node.ops), comparators)
        operand = self.operand(node)
        if isinstance(operand, FromSandbox):
            # The expected value of a bare truth test is "truthy": the code could forge it.
            raise _Unsplittable("a truth test of a value from the sandbox")
        return Truth(operand)

    def operand(self, node: ast.expr) -> Operand:
        try:
            return Const(_trusted_value(node))
        except _NotTrusted:
            pass
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        if not names - self.trusted_names:
            raise _Unsplittable("an operand the parent cannot evaluate that uses no code name")
        self.expressions.append(ast.unparse(node))
        return FromSandbox(len(self.expressions) - 1)


def _is_singleton(value: Any) -> bool:
    return any(value is s for s in _SINGLETONS)


def _sized(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | set | frozenset | dict | range):
        if len(value) > _MAX_SIZE:
            raise _NotTrusted("too large")
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4096:
        raise _NotTrusted("too large")
    return value


def _trusted_value(node: ast.expr) -> Any:
    """Evaluate a test-authored expression without names of the code, or raise `_NotTrusted`."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        if any(isinstance(e, ast.Starred) for e in node.elts):
            raise _NotTrusted("starred")
        items = [_trusted_value(e) for e in node.elts]
        kind = {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)]
        try:
            return _sized(kind(items))
        except TypeError as exc:
            raise _NotTrusted(str(exc)) from exc
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise _NotTrusted("** in a dict")
        try:
            return {
                _trusted_value(k): _trusted_value(v)  # type: ignore[arg-type]
                for k, v in zip(node.keys, node.values, strict=True)
            }
        except TypeError as exc:
            raise _NotTrusted(str(exc)) from exc
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _apply(_UNARY[type(node.op)], _trusted_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _trusted_value(node.left), _trusted_value(node.right)
        if isinstance(node.op, ast.Pow) and not (
            isinstance(right, int | float) and abs(right) <= 64 and isinstance(left, int | float)
        ):
            raise _NotTrusted("large power")
        if isinstance(node.op, ast.Mult):
            counts = [v for v in (left, right) if isinstance(v, int) and not isinstance(v, bool)]
            sequence = not isinstance(left, int | float) or not isinstance(right, int | float)
            if sequence and any(abs(c) > _MAX_SIZE for c in counts):
                raise _NotTrusted("too large")
        return _sized(_apply(_BINOPS[type(node.op)], left, right))
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _SAFE_CALLS
        and not node.keywords
        and not any(isinstance(a, ast.Starred) for a in node.args)
    ):
        args = [_trusted_value(a) for a in node.args]
        if node.func.id == "range" and len(range(*args)) > _MAX_SIZE:
            raise _NotTrusted("too large")
        return _sized(_apply(_SAFE_CALLS[node.func.id], *args))
    raise _NotTrusted(type(node).__name__)


def _apply(function: Callable[..., Any], *args: Any) -> Any:
    try:
        return function(*args)
    except Exception as exc:  # e.g. 1 / 0 in a test: let the sandbox report it
        raise _NotTrusted(str(exc)) from exc


# --- deciding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """What the sandbox reported for one expression: a decoded value or why there is none."""

    value: Any = None
    error_type: str | None = None  # None: `value` is valid
    message: str | None = None
    timed_out: bool = False


class _SandboxRaised(Exception):
    def __init__(self, observed: Observed) -> None:
        super().__init__(observed.message)
        self.observed = observed


def decide(test: SplitTest, observed: list[Observed]) -> tuple[TestOutcome, str | None, str | None]:
    """(outcome, error type, message) of a split test from the sandbox's observations."""
    if len(observed) != len(test.expressions):
        return TestOutcome.error, "SandboxCrash", "the sandbox reported no value for this test"
    shown: list[str] = []
    try:
        ok = _holds(test.condition, observed, shown)
    except _SandboxRaised as raised:
        item = raised.observed
        if item.timed_out:
            return TestOutcome.timeout, "Timeout", item.message
        if item.error_type == "NotPlainData":
            return TestOutcome.failed, "NotPlainData", item.message
        return TestOutcome.error, item.error_type, item.message
    except Exception as exc:  # a comparison of plain data raised, e.g. [1] < 1
        return TestOutcome.error, type(exc).__name__, str(exc)[:_MESSAGE_LIMIT]
    if ok:
        return TestOutcome.passed, None, None
    if test.message is not None:
        return TestOutcome.failed, "AssertionError", test.message[:_MESSAGE_LIMIT]
    detail = f" ({', '.join(shown)})" if shown else ""
    return TestOutcome.failed, "AssertionError", (test.line + detail)[:_MESSAGE_LIMIT]


def _value(operand: Operand, observed: list[Observed]) -> Any:
    if isinstance(operand, Const):
        return operand.value
    item = observed[operand.index]
    if item.error_type is not None:
        raise _SandboxRaised(item)
    return item.value


def _holds(condition: Condition, observed: list[Observed], shown: list[str]) -> bool:
    if isinstance(condition, Truth):
        return bool(_value(condition.operand, observed))
    if isinstance(condition, Not):
        return not _holds(condition.condition, observed, shown)
    if isinstance(condition, BoolOp):
        for part in condition.conditions:
            if _holds(part, observed, shown) is not condition.is_and:
                return not condition.is_and
        return condition.is_and
    left = _value(condition.left, observed)
    for op, comparator in zip(condition.ops, condition.comparators, strict=True):
        right = _value(comparator, observed)
        if not _COMPARE[op](left, right):
            if len(condition.ops) == 1:
                shown += [f"left: {_short_repr(left)}", f"right: {_short_repr(right)}"]
            return False
        left = right
    return True


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."
