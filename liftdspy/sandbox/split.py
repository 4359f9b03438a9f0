"""Rewrite each test with `ast` so that the trusted parent makes every judgement.

Whatever its shape (one `assert`, several statements, names bound in the setup, loops,
comprehensions, `assert` inside helper functions the test defines), a test becomes a
`TestPlan`: the `program` the sandbox runs and one `Judgement` per `assert`. In the program
each `assert` is replaced by a probe, `__liftdspy_check__(k, lambda: e0, lambda: e1, ...)`,
that only sends the values of the sub-expressions `e0, e1, ...` the parent cannot evaluate (the
*holes*: calls of the code, names of the test and the setup) out as plain data; the parent
evaluates the rest of the condition itself (`judgement.py`): comparisons, `and`/`or`/`not`,
truth tests, arithmetic with the expected values, `any`/`all`/`isinstance`/`math.isclose`, and
comprehensions whose element is a comparison. Constants of the test that the parent can evaluate
(the expected values) never enter the sandbox's copy of a judgement.

Statements that make no judgement run inside: assignments, calls, loops and branches on the
test's own values. Where the test's control flow, or a comparison outside an `assert`, looks at
a value of the code (`if f(x): ...`, `ok = f(x) == 3`), each such value is checked to be plain
data inside the sandbox (`__liftdspy_plain__`) so no `__bool__`/`__eq__` of the code's making
steers it, but the decision is the sandbox's: that test is a counted exception
(`TestPlan.exception`, verdict `in-sandbox`), as is identity (`is`) between values other than
None/True/False, which copies cannot preserve.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field
from typing import Any

from liftdspy.sandbox.judgement import (
    BUILTIN_CALLS,
    JUDGING_CALLS,
    MATH_CALLS,
    TYPE_NAMES,
    UNARY,
    Apply,
    BinOp,
    BoolOp,
    Compare,
    Comprehension,
    Const,
    EvaluationError,
    Hole,
    IfExp,
    Judgement,
    Node,
    Unary,
    guarded_binop,
    sized,
)

CHECK = "__liftdspy_check__"
PLAIN = "__liftdspy_plain__"
_SINGLETONS = (None, True, False)
_BUILTIN_NAMES = frozenset(dir(builtins))
REASON_IDENTITY = "identity (`is`) between values other than None/True/False"
REASON_CONTROL = (
    "control flow or a comparison outside an assert looks at a value of the code "
    "(checked as plain data, decided in the sandbox)"
)
REASON_SYNTAX = "the test does not parse"


class _NotTrusted(Exception):
    """This expression cannot be evaluated in the parent."""


@dataclass(frozen=True)
class TestPlan:
    """How one test runs: the sandbox runs `program`; the parent decides `judgements`."""

    __test__ = False

    source: str
    program: str
    judgements: tuple[Judgement, ...] = ()
    exception: str | None = None  # why part of its judgement is the sandbox's (verdict in-sandbox)


@dataclass
class Names:
    """What the parent knows about the names a test can see."""

    rebound: set[str] = field(default_factory=set)  # bound by the code, setup or test
    tainted: set[str] = field(default_factory=set)  # may hold a value of the code's making
    real_math: bool = True  # `math` is the math module (the setup and test only import it)

    def builtin(self, name: str) -> bool:
        return name in _BUILTIN_NAMES and name not in self.rebound

    def math(self, node: ast.expr) -> str | None:
        """`name` when `node` is `math.<name>` of the real math module's pure functions."""
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "math"
            and node.attr in MATH_CALLS
            and self.real_math
        ):
            return node.attr
        return None


# --- names -----------------------------------------------------------------------------------


def _stored(node: ast.AST) -> set[str]:
    return {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }


def _loaded(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def bound_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(every name `tree` binds anywhere, the ones among them bound only by imports)."""
    imported: set[str] = set()
    other: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            other.add(node.name)
        elif isinstance(node, ast.arg):
            other.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            other.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            other.add(node.id)
    return imported | other, imported - other


def top_level_names(tree: ast.Module) -> set[str]:
    """Names a piece of code binds at its top level (what a test run after it can see)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        else:
            names |= _stored(node)
    return names


def _bindings(tree: ast.AST) -> list[tuple[set[str], set[str]]]:
    """(names bound, names their value comes from) for every binding in `tree`."""
    out: list[tuple[set[str], set[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            out.append((set().union(*map(_stored, node.targets)), _loaded(node.value)))
        elif isinstance(node, ast.AugAssign | ast.AnnAssign) and node.value is not None:
            out.append((_stored(node.target), _loaded(node.value) | _loaded(node.target)))
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            out.append((_stored(node.target), _loaded(node.iter)))
        elif isinstance(node, ast.NamedExpr):
            out.append(({node.target.id}, _loaded(node.value)))
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            out.append((_stored(node.optional_vars), _loaded(node.context_expr)))
        elif isinstance(node, ast.Try | ast.TryStar):
            names = {h.name for h in node.handlers if h.name}
            out.append((names, set().union(*(_loaded(s) for s in node.body), set())))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            out.append(({a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}, {"*"}))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            # a bare call (`sort_in_place(data)`) may change what it is given
            call = node.value
            args = {a.id for a in call.args if isinstance(a, ast.Name)}
            out.append((args, _loaded(call) - args))
    return out


def _taint(tree: ast.AST, dirty: set[str]) -> set[str]:
    bindings = _bindings(tree)
    tainted = set(dirty) | {"*"}
    changed = True
    while changed:
        changed = False
        for targets, sources in bindings:
            if sources & tainted and not targets <= tainted:
                tainted |= targets
                changed = True
    return tainted


def test_names(code: str, setup: str, test: ast.Module) -> Names:
    """The names a test sees, after the code and the setup ran, and which may hold code values."""
    code_tree, setup_tree = _parse(code), _parse(setup)
    code_bound = top_level_names(code_tree) if code_tree else set()
    setup_bound = top_level_names(setup_tree) if setup_tree else set()
    test_bound, _ = bound_names(test)
    setup_tainted = _taint(setup_tree, code_bound) if setup_tree else set(code_bound)
    unresolved = _loaded(test) - code_bound - setup_bound - test_bound - _BUILTIN_NAMES
    dirty = (code_bound - setup_bound) | (setup_tainted & setup_bound) | unresolved
    math_bound = set()
    for tree in (setup_tree, test):
        if tree is not None:
            bound, imported = bound_names(tree)
            math_bound |= bound - imported
    return Names(
        rebound=code_bound | setup_bound | test_bound,
        tainted=_taint(test, dirty),
        real_math="math" not in math_bound,
    )


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


# --- the parent's own values -----------------------------------------------------------------


def trusted_value(node: ast.expr, names: Names) -> Any:
    """Evaluate a test-authored expression that uses no name of the code, or raise."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in TYPE_NAMES and names.builtin(node.id):
        return BUILTIN_CALLS[node.id]
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        if any(isinstance(e, ast.Starred) for e in node.elts):
            raise _NotTrusted("starred")
        items = [trusted_value(e, names) for e in node.elts]
        kind = {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)]
        return _apply(lambda: sized(kind(items)))
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise _NotTrusted("** in a dict")
        pairs = [
            (trusted_value(k, names), trusted_value(v, names))  # type: ignore[arg-type]
            for k, v in zip(node.keys, node.values, strict=True)
        ]
        return _apply(lambda: dict(pairs))
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        operand = trusted_value(node.operand, names)
        return _apply(lambda: UNARY[type(node.op)](operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOP_TYPES:
        left, right = trusted_value(node.left, names), trusted_value(node.right, names)
        return _apply(lambda: guarded_binop(type(node.op), left, right))
    call = _call_name(node, names)
    if call is not None:
        assert isinstance(node, ast.Call)
        name, function = call
        args = [trusted_value(a, names) for a in node.args]
        kwargs = {k.arg: trusted_value(k.value, names) for k in node.keywords if k.arg}
        if name == "range":
            _apply(lambda: len(range(*args)) <= 1_000_000 or _too_large())
        return _apply(lambda: sized(function(*args, **kwargs)))
    raise _NotTrusted(type(node).__name__)


def _too_large() -> bool:
    raise EvaluationError("too large")


def _apply(thunk: Any) -> Any:
    try:
        return thunk()
    except Exception as exc:  # e.g. 1 / 0 in a test: let the sandbox report it
        raise _NotTrusted(str(exc)) from exc


_BINOP_TYPES = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)


def _call_name(node: ast.expr, names: Names) -> tuple[str, Any] | None:
    """(name, function) when `node` is a call of a pure function the parent may apply itself."""
    if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args):
        return None
    if any(k.arg is None for k in node.keywords):
        return None
    if isinstance(node.func, ast.Name) and node.func.id in BUILTIN_CALLS:
        if names.builtin(node.func.id):
            return node.func.id, BUILTIN_CALLS[node.func.id]
        return None
    math_name = names.math(node.func)
    return (math_name, MATH_CALLS[math_name]) if math_name else None


# --- judgements ------------------------------------------------------------------------------


def _judging(node: ast.AST, names: Names) -> bool:
    """Whether `node` is itself a comparison or truth test."""
    if isinstance(node, ast.Compare | ast.BoolOp | ast.IfExp):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return True
    call = _call_name(node, names) if isinstance(node, ast.expr) else None
    return call is not None and call[0] in JUDGING_CALLS


def _contains_judgement(node: ast.AST, names: Names) -> bool:
    return any(_judging(n, names) for n in ast.walk(node))


class _Builder:
    """Builds one judgement's tree; collects the expressions the sandbox evaluates."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.expressions: list[ast.expr] = []
        self.exception: str | None = None

    def hole(self, node: ast.expr) -> Hole:
        if isinstance(node, ast.GeneratorExp):  # a generator is no value: send its items
            node = ast.ListComp(elt=node.elt, generators=node.generators)
        self.expressions.append(node)
        return Hole(len(self.expressions) - 1)

    def trusted(self, node: ast.expr) -> bool:
        try:
            trusted_value(node, self.names)
        except (_NotTrusted, EvaluationError):
            return False
        return True

    def node(self, node: ast.expr) -> Node:
        try:
            return Const(trusted_value(node, self.names))
        except (_NotTrusted, EvaluationError):
            pass
        names = self.names
        if isinstance(node, ast.Compare):
            start = len(self.expressions)
            operands = [self.node(node.left), *(self.node(c) for c in node.comparators)]
            for position, op in enumerate(node.ops):
                if isinstance(op, ast.Is | ast.IsNot):
                    pair = operands[position : position + 2]
                    if not any(isinstance(o, Const) and _is_singleton(o.value) for o in pair):
                        self.exception = REASON_IDENTITY  # copies have no identity: inside
                        del self.expressions[start:]
                        return self.hole(node)
            return Compare(operands[0], tuple(type(op) for op in node.ops), tuple(operands[1:]))
        if isinstance(node, ast.BoolOp):
            return BoolOp(isinstance(node.op, ast.And), tuple(self.node(v) for v in node.values))
        if isinstance(node, ast.IfExp):
            return IfExp(self.node(node.test), self.node(node.body), self.node(node.orelse))
        if isinstance(node, ast.UnaryOp) and (
            isinstance(node.op, ast.Not) or self._parent_child(node.operand)
        ):
            return Unary(type(node.op), self.node(node.operand))
        if (
            isinstance(node, ast.BinOp)
            and type(node.op) in _BINOP_TYPES
            and (self._parent_child(node.left) or self._parent_child(node.right))
        ):
            return BinOp(type(node.op), self.node(node.left), self.node(node.right))
        call = _call_name(node, names)
        if call is not None:
            assert isinstance(node, ast.Call)
            children = [*node.args, *(k.value for k in node.keywords)]
            if call[0] in JUDGING_CALLS or any(self._parent_child(c) for c in children):
                return Apply(
                    call[0],
                    call[1],
                    tuple(self.node(a) for a in node.args),
                    tuple((str(k.arg), self.node(k.value)) for k in node.keywords),
                )
        if isinstance(node, ast.ListComp | ast.GeneratorExp | ast.SetComp) and (
            _contains_judgement(node.elt, names)
        ):
            return self._comprehension(node)
        return self.hole(node)

    def _parent_child(self, node: ast.expr) -> bool:
        """A child the parent must see: an expected value, a judgement, or arithmetic on one."""
        if self.trusted(node) or _contains_judgement(node, self.names):
            return True
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOP_TYPES:
            return self._parent_child(node.left) or self._parent_child(node.right)
        if isinstance(node, ast.UnaryOp):
            return self._parent_child(node.operand)
        if _call_name(node, self.names) is not None:
            assert isinstance(node, ast.Call)
            children = [*node.args, *(k.value for k in node.keywords)]
            return any(self._parent_child(c) for c in children)
        return False

    def _comprehension(self, node: ast.ListComp | ast.GeneratorExp | ast.SetComp) -> Node:
        inner = _Builder(self.names)
        element = inner.node(node.elt)
        self.exception = self.exception or inner.exception
        rows = ast.ListComp(
            elt=ast.Tuple(elts=list(inner.expressions), ctx=ast.Load()),
            generators=node.generators,
        )
        hole = self.hole(rows)
        kind = set if isinstance(node, ast.SetComp) else list
        return Comprehension(hole.index, element, len(inner.expressions), kind)


def _is_singleton(value: Any) -> bool:
    return any(value is s for s in _SINGLETONS)


# --- the sandbox's program -------------------------------------------------------------------


def _plain_call(node: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Name(id=PLAIN, ctx=ast.Load()), args=[node], keywords=[])


class _Guard(ast.NodeTransformer):
    """Wrap values of the code that a comparison or truth test outside an assert looks at."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.guarded = False

    def _tainted(self, node: ast.expr) -> bool:
        return bool(_loaded(node) & self.names.tainted)

    def _wrap(self, node: ast.expr) -> ast.expr:
        if self._tainted(node):
            self.guarded = True
            return _plain_call(node)
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        node.left = self._wrap(node.left)
        node.comparators = [self._wrap(c) for c in node.comparators]
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        self.generic_visit(node)
        node.values = [self._wrap(v) for v in node.values]
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            node.operand = self._wrap(node.operand)
        return node

    def visit_IfExp(self, node: ast.IfExp) -> ast.expr:
        self.generic_visit(node)
        node.test = self._wrap(node.test)
        return node

    def visit_If(self, node: ast.If) -> ast.stmt:
        self.generic_visit(node)
        node.test = self._wrap(node.test)
        return node

    def visit_While(self, node: ast.While) -> ast.stmt:
        self.generic_visit(node)
        node.test = self._wrap(node.test)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.comprehension:
        self.generic_visit(node)
        node.ifs = [self._wrap(c) for c in node.ifs]
        return node


class _Rewriter(_Guard):
    """Replace every `assert` by a probe; guard the rest (see the module docstring)."""

    def __init__(self, names: Names, source: str, top_level: set[int]) -> None:
        super().__init__(names)
        self.source = source
        self.top_level = top_level
        self.judgements: list[Judgement] = []
        self.exception: str | None = None

    def visit_Assert(self, node: ast.Assert) -> ast.stmt:
        builder = _Builder(self.names)
        condition = builder.node(node.test)
        guard = _Guard(self.names)
        holes = [guard.visit(e) if isinstance(e, ast.ListComp) else e for e in builder.expressions]
        self.exception = self.exception or builder.exception
        if guard.guarded:  # a comprehension's filter on a value of the code picks what is judged
            self.exception = self.exception or REASON_CONTROL
        message = None
        if node.msg is not None:
            try:
                message = str(trusted_value(node.msg, self.names))
            except (_NotTrusted, EvaluationError):
                message = None  # never evaluated: the line and the operands say what failed
        text = ast.get_source_segment(self.source, node) or ast.unparse(node)
        self.judgements.append(
            Judgement(
                condition=condition,
                expressions=tuple(ast.unparse(e) for e in holes),
                line=" ".join(text.split()),
                message=message,
                top_level=id(node) in self.top_level,
            )
        )
        probe = ast.Call(
            func=ast.Name(id=CHECK, ctx=ast.Load()),
            args=[
                ast.Constant(len(self.judgements) - 1),
                *(_thunk(e) for e in holes),
            ],
            keywords=[],
        )
        return ast.copy_location(ast.Expr(value=probe), node)


def _thunk(node: ast.expr) -> ast.expr:
    empty = ast.arguments(
        posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]
    )
    return ast.Lambda(args=empty, body=node)


def plan_test(source: str, *, code: str = "", setup: str = "") -> TestPlan:
    """The plan of one test run after `code` and `setup` (see the module docstring)."""
    try:
        module = ast.parse(source)
    except SyntaxError:
        return TestPlan(source=source, program=source, exception=REASON_SYNTAX)
    names = test_names(code, setup, module)
    top_level = {id(stmt) for stmt in module.body if isinstance(stmt, ast.Assert)}
    rewriter = _Rewriter(names, source, top_level)
    rewritten = ast.fix_missing_locations(rewriter.visit(module))
    exception = rewriter.exception or (REASON_CONTROL if rewriter.guarded else None)
    return TestPlan(
        source=source,
        program=ast.unparse(rewritten),
        judgements=tuple(rewriter.judgements),
        exception=exception,
    )
