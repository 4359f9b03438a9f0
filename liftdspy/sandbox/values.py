"""The parent's own values: expressions of a test it evaluates itself, never in the sandbox.

`trusted_value` evaluates literals, containers, arithmetic, comparisons, comprehensions and the
pure builtins, `math` functions and stdlib constructors (`date(2024, 1, 8)`, `Decimal('0.3')`,
`Counter('aab')`) over them, and the names of `Names.constants`; anything that would need the
code, or a name the parent does not know, raises `NotTrusted`. `constants_by_statement` finds
the setup's and the test's constants (see `names.py`) and when each may be used.
"""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Callable
from typing import Any

from liftdspy.errors import LiftdspyError
from liftdspy.sandbox.judgement import (
    BUILTIN_CALLS,
    COMPARE,
    MATH_CALLS,
    TYPE_NAMES,
    UNARY,
    EvaluationError,
    guarded_binop,
    sized,
)
from liftdspy.sandbox.names import STDLIB, Names, binding_counts, exposed

BINOP_TYPES = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_MAX_ITERATIONS = 1_000_000  # of a comprehension the parent runs


class NotTrusted(LiftdspyError):
    """This expression cannot be evaluated in the parent."""


def call_name(node: ast.expr, names: Names) -> tuple[str, Callable[..., Any]] | None:
    """(name, function) when `node` is a call of a pure function the parent may apply itself."""
    if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args):
        return None
    if any(k.arg is None for k in node.keywords):
        return None
    func = node.func
    if isinstance(func, ast.Name) and func.id in BUILTIN_CALLS and names.builtin(func.id):
        return func.id, BUILTIN_CALLS[func.id]
    path = names.stdlib(node.func)
    if path and path.startswith("math.") and path[5:] in MATH_CALLS:
        return path[5:], MATH_CALLS[path[5:]]
    if path in STDLIB and callable(STDLIB[path]):
        return path, STDLIB[path]
    return None


def trusted_value(node: ast.expr, names: Names, env: dict[str, Any] | None = None) -> Any:
    """Evaluate a test-authored expression that uses no name of the code, or raise."""
    env = env if env is not None else names.constants
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        if node.id in TYPE_NAMES and names.builtin(node.id):
            return BUILTIN_CALLS[node.id]
    if isinstance(node, ast.Name | ast.Attribute):
        path = names.stdlib(node)
        if path in STDLIB and not (path.startswith("math.") and path[5:] in MATH_CALLS):
            return STDLIB[path]
        raise NotTrusted(ast.unparse(node))
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        if any(isinstance(e, ast.Starred) for e in node.elts):
            raise NotTrusted("starred")
        items = [trusted_value(e, names, env) for e in node.elts]
        kind = {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)]
        return _apply(lambda: sized(kind(items)))
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise NotTrusted("** in a dict")
        pairs = [
            (trusted_value(k, names, env), trusted_value(v, names, env))  # type: ignore[arg-type]
            for k, v in zip(node.keys, node.values, strict=True)
        ]
        return _apply(lambda: dict(pairs))
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        operand = trusted_value(node.operand, names, env)
        return _apply(lambda: UNARY[type(node.op)](operand))
    if isinstance(node, ast.BinOp) and type(node.op) in BINOP_TYPES:
        left, right = trusted_value(node.left, names, env), trusted_value(node.right, names, env)
        return _apply(lambda: guarded_binop(type(node.op), left, right))  # type: ignore[arg-type]
    if isinstance(node, ast.Compare):
        values = [trusted_value(v, names, env) for v in [node.left, *node.comparators]]
        pairs = zip(node.ops, values, values[1:], strict=False)
        return _apply(lambda: all(COMPARE[type(op)](a, b) for op, a, b in pairs))
    if isinstance(node, ast.BoolOp):
        result: Any = None
        for part in node.values:
            result = trusted_value(part, names, env)
            if bool(result) is not isinstance(node.op, ast.And):
                return result
        return result
    if isinstance(node, ast.IfExp):
        test = trusted_value(node.test, names, env)
        return trusted_value(node.body if test else node.orelse, names, env)
    if isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
        return _comprehension(node, names, env)
    call = call_name(node, names)
    if call is not None:
        assert isinstance(node, ast.Call)
        name, function = call
        args = [trusted_value(a, names, env) for a in node.args]
        kwargs = {str(k.arg): trusted_value(k.value, names, env) for k in node.keywords}
        if name == "range" and _apply(lambda: len(range(*args))) > _MAX_ITERATIONS:
            raise EvaluationError("a range too large to evaluate here")
        return _apply(lambda: sized(function(*args, **kwargs)))
    raise NotTrusted(type(node).__name__)


def _comprehension(
    node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp,
    names: Names,
    env: dict[str, Any],
) -> Any:
    results: list[Any] = []
    budget = [_MAX_ITERATIONS]

    def run(generators: list[ast.comprehension], scope: dict[str, Any]) -> None:
        if not generators:
            if isinstance(node, ast.DictComp):
                key = trusted_value(node.key, names, scope)
                results.append((key, trusted_value(node.value, names, scope)))
            else:
                results.append(trusted_value(node.elt, names, scope))
            return
        first, rest = generators[0], generators[1:]
        if first.is_async or not all(isinstance(t, ast.Name) for t in _targets(first.target)):
            raise NotTrusted("a comprehension target the parent cannot bind")
        for item in _apply(lambda: list(trusted_value(first.iter, names, scope))):
            budget[0] -= 1
            if budget[0] < 0:
                raise EvaluationError("a comprehension too long to evaluate here")
            inner = {**scope, **_bind(first.target, item)}
            if all(trusted_value(c, names, inner) for c in first.ifs):
                run(rest, inner)

    run(node.generators, dict(env))
    if isinstance(node, ast.SetComp):
        return _apply(lambda: set(results))
    if isinstance(node, ast.DictComp):
        return _apply(lambda: dict(results))
    return results


def _targets(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, ast.Tuple | ast.List):
        return [t for e in target.elts for t in _targets(e)]
    return [target]


def _bind(target: ast.expr, value: Any) -> dict[str, Any]:
    if isinstance(target, ast.Name):
        return {target.id: value}
    assert isinstance(target, ast.Tuple | ast.List)
    items = _apply(lambda: list(value))
    if len(items) != len(target.elts):
        raise NotTrusted("cannot unpack")
    return {
        k: v for e, item in zip(target.elts, items, strict=True) for k, v in _bind(e, item).items()
    }


def _apply(thunk: Callable[[], Any]) -> Any:
    try:
        return thunk()
    except (NotTrusted, EvaluationError):
        raise
    except Exception as exc:  # e.g. 1 / 0 in a test: let the sandbox report it
        raise NotTrusted(str(exc)) from exc


def is_trusted(node: ast.expr, names: Names) -> bool:
    try:
        trusted_value(node, names)
    except (NotTrusted, EvaluationError):
        return False
    return True


def _constant_target(stmt: ast.stmt) -> tuple[str, ast.expr] | None:
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target = stmt.targets[0]
        if isinstance(target, ast.Name):
            return target.id, stmt.value
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
        return stmt.target.id, stmt.value
    return None


def constants_by_statement(
    setup: ast.Module | None, test: ast.Module, names: Names
) -> tuple[list[dict[str, Any]], set[int]]:
    """For each top-level statement of `test`, the constants its judgements may use: bound once
    (in the setup or the test), at top level, before that statement, to a value the parent can
    evaluate, and not handed to anything that could change it up to and including it; and the
    indexes of the test's statements that bind a constant."""

    def safe(call: ast.Call) -> bool:
        return call_name(call, names) is not None

    trees = [t for t in (setup, test) if t is not None]
    counts = sum((binding_counts(t) for t in trees), binding_counts(ast.Module([], [])))
    first_exposure: dict[str, int] = dict.fromkeys(
        exposed(setup, safe) if setup is not None else set(), -1
    )
    for index, stmt in enumerate(test.body):
        for name in exposed(stmt, safe):
            first_exposure.setdefault(name, index)
    # `y = x`: whatever may change y may change x (they can be one object)
    sources = [
        (found[0], names_read(found[1]))
        for stmt in [*(setup.body if setup is not None else []), *test.body]
        if (found := _constant_target(stmt)) is not None
    ]
    changed = True
    while changed:
        changed = False
        for target, read in sources:
            if target not in first_exposure:
                continue
            for name in read:
                if first_exposure.get(name, len(test.body)) > first_exposure[target]:
                    first_exposure[name] = first_exposure[target]
                    changed = True

    def define(stmt: ast.stmt, known: dict[str, Any], at: int) -> bool:
        found = _constant_target(stmt)
        if found is None or counts[found[0]] != 1 or found[0] in names.tainted:
            return False
        usable = {k: v for k, v in known.items() if first_exposure.get(k, at + 1) > at}
        with contextlib.suppress(NotTrusted, EvaluationError):
            known[found[0]] = trusted_value(found[1], names, usable)
            return True
        return False

    known: dict[str, Any] = {}
    for stmt in setup.body if setup is not None else []:
        define(stmt, known, -1)
    for name in [k for k in known if first_exposure.get(k, 0) < 0]:
        known.pop(name)
    out: list[dict[str, Any]] = []
    defining: set[int] = set()
    for index, stmt in enumerate(test.body):
        out.append({k: v for k, v in known.items() if first_exposure.get(k, index + 1) > index})
        if define(stmt, known, index):
            defining.add(index)
    return out, defining


def hide_constants(
    module: ast.Module, candidates: set[int], names: Names, keep: frozenset[str] = frozenset()
) -> ast.Module:
    """`module` without those of its top-level statements (by index in `candidates`) that bind
    a constant no other statement (nor anything in `keep`: other tests) reads: the parent has
    its value, the sandbox need not."""
    hidden = set()
    for index in candidates:
        found = _constant_target(module.body[index])
        others = [s for i, s in enumerate(module.body) if i != index]
        if found and found[0] not in keep and not any(found[0] in names_read(s) for s in others):
            hidden.add(index)
    body = [s for i, s in enumerate(module.body) if i not in hidden]
    return ast.Module(body=body, type_ignores=[])


def names_read(tree: ast.AST) -> set[str]:
    """Every name `tree` reads, also as the base of a `del` or an augmented assignment."""
    return {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Store)
    }
