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
from dataclasses import dataclass
from typing import Any

from liftdspy import pyast
from liftdspy.sandbox.judgement import (
    JUDGING_CALLS,
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
)
from liftdspy.sandbox.names import Names, loaded, parse, stored, test_names
from liftdspy.sandbox.values import (
    BINOP_TYPES,
    NotTrusted,
    call_name,
    constants_by_statement,
    hide_constants,
    is_trusted,
    names_read,
    trusted_value,
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
REASON_WALRUS = "an assignment expression (`:=`) inside an assert"


@dataclass(frozen=True)
class TestPlan:
    """How one test runs: the sandbox runs `program`; the parent decides `judgements`."""

    __test__ = False

    source: str
    program: str
    judgements: tuple[Judgement, ...] = ()
    exception: str | None = None  # why part of its judgement is the sandbox's (verdict in-sandbox)


# --- judgements ------------------------------------------------------------------------------


def _judging(node: ast.AST, names: Names) -> bool:
    """Whether `node` is itself a comparison or truth test."""
    if isinstance(node, ast.Compare | ast.BoolOp | ast.IfExp):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return True
    call = call_name(node, names) if isinstance(node, ast.expr) else None
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
        return is_trusted(node, self.names)

    def node(self, node: ast.expr) -> Node:
        try:
            return Const(trusted_value(node, self.names))
        except (NotTrusted, EvaluationError):
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
            and type(node.op) in BINOP_TYPES
            and (self._parent_child(node.left) or self._parent_child(node.right))
        ):
            return BinOp(type(node.op), self.node(node.left), self.node(node.right))
        call = call_name(node, names)
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
        if isinstance(node, ast.BinOp) and type(node.op) in BINOP_TYPES:
            return self._parent_child(node.left) or self._parent_child(node.right)
        if isinstance(node, ast.UnaryOp):
            return self._parent_child(node.operand)
        if call_name(node, self.names) is not None:
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
        return bool(loaded(node) & self.names.tainted)

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
        self.loop: tuple[ast.expr, list] | None = None  # target, values of a paired loop
        self.loop_body: set[int] = set()  # its asserts that run once per iteration
        self.keep: frozenset[str] = frozenset()  # names other tests read
        self.module_body: list[ast.stmt] = []

    def visit_For(self, node: ast.For) -> ast.stmt:
        """A top-level loop over values the parent knows: its body's asserts are judged once per
        iteration with the loop's variables as constants; the count is the parent's."""
        values = self._loop_values(node)
        if values is None:
            self.generic_visit(node)
            return node
        self.loop = (node.target, values)
        self.loop_body = {id(s) for s in node.body if isinstance(s, ast.Assert)}
        try:
            node.body = [self.visit(stmt) for stmt in node.body]
        finally:
            self.loop = None
        elsewhere = [s for s in self.module_body if s is not node]  # the test's other statements
        after = set().union(*(names_read(s) for s in elsewhere), self.keep)
        return _hide_loop_targets(node, values, frozenset(after))

    def _loop_values(self, node: ast.For) -> list | None:
        if id(node) not in self.top_level or node.orelse or not _names_only(node.target):
            return None
        if any(isinstance(n, ast.Break | ast.Continue) for s in node.body for n in ast.walk(s)):
            return None
        targets = stored(node.target)
        body_binds = set().union(*(stored(s) for s in node.body), set())
        if targets & (body_binds | self.names.tainted) or targets & set(self.names.constants):
            return None
        try:
            values = list(trusted_value(node.iter, self.names))
        except (NotTrusted, EvaluationError, TypeError):
            return None
        if len(values) > _MAX_LOOP or not all(_immutable(v) for v in values):
            return None
        return values

    def visit_Assert(self, node: ast.Assert) -> ast.stmt:
        direct = self.loop is not None and id(node) in self.loop_body
        per_iteration = self._per_iteration(node) if direct else None
        builder = _Builder(self.names)
        if per_iteration is not None:
            conditions, expressions = per_iteration
            builder.expressions = list(expressions)
            condition: Node = conditions[0] if conditions else Const(True)
        elif any(isinstance(n, ast.NamedExpr) for n in ast.walk(node.test)):
            # `assert (n := f(x)) > 0` binds n for the statements after it: one hole, inside
            builder.exception = REASON_WALRUS
            condition = builder.hole(node.test)
        else:
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
            except (NotTrusted, EvaluationError):
                message = None  # never evaluated: the line and the operands say what failed
        text = ast.get_source_segment(self.source, node) or ast.unparse(node)
        self.judgements.append(
            Judgement(
                condition=condition,
                expressions=tuple(ast.unparse(e) for e in holes),
                line=" ".join(text.split()),
                message=message,
                top_level=id(node) in self.top_level,
                per_iteration=tuple(per_iteration[0]) if per_iteration is not None else None,
            )
        )
        walrus = builder.exception == REASON_WALRUS
        probe = ast.Call(
            func=ast.Name(id=CHECK, ctx=ast.Load()),
            args=[
                ast.Constant(len(self.judgements) - 1),
                *(_evaluated(e) if walrus else _thunk(e) for e in holes),
            ],
            keywords=[],
        )
        return ast.copy_location(ast.Expr(value=probe), node)

    def _per_iteration(self, node: ast.Assert) -> tuple[list[Node], list[ast.expr]] | None:
        """Each iteration's condition of an assert directly in a paired loop's body, when every
        iteration sends the sandbox the same expressions (else None: judged as usual)."""
        assert self.loop is not None
        target, values = self.loop
        base = self.names.constants
        conditions: list[Node] = []
        expressions: list[ast.expr] | None = None
        try:
            for value in values:
                self.names.constants = {**base, **_bind_loop(target, value)}
                builder = _Builder(self.names)
                conditions.append(builder.node(node.test))
                if builder.exception is not None:
                    return None
                if expressions is None:
                    expressions = builder.expressions
                elif [ast.dump(e) for e in builder.expressions] != [
                    ast.dump(e) for e in expressions
                ]:
                    return None
        finally:
            self.names.constants = base
        return conditions, expressions or []


_MAX_LOOP = 10_000


def _names_only(target: ast.expr) -> bool:
    if isinstance(target, ast.Name):
        return True
    return isinstance(target, ast.Tuple | ast.List) and all(_names_only(e) for e in target.elts)


def _immutable(value: Any) -> bool:
    if isinstance(value, tuple) and type(value) is tuple:
        return all(_immutable(v) for v in value)
    return value is None or type(value) in (bool, int, float, str, bytes, complex, frozenset)


def _bind_loop(target: ast.expr, value: Any) -> dict[str, Any]:
    if isinstance(target, ast.Name):
        return {target.id: value}
    assert isinstance(target, ast.Tuple | ast.List)
    items = list(value)
    if len(items) != len(target.elts):
        raise NotTrusted("cannot unpack")
    return {
        k: v for e, i in zip(target.elts, items, strict=True) for k, v in _bind_loop(e, i).items()
    }


def _hide_loop_targets(node: ast.For, values: list, keep: frozenset[str]) -> ast.For:
    """Loop only over the parts of each value the sandbox reads (`for x, y in CASES` where only
    the parent needs `y`: `for x in [...]`), when the values can be written as literals."""
    read = set().union(*(names_read(s) for s in node.body), keep)
    targets = [n for n in ast.walk(node.target) if isinstance(n, ast.Name)]
    if all(t.id in read for t in targets):
        return node
    rows = []
    for value in values:
        bound = _bind_loop(node.target, value)
        kept = tuple(bound[t.id] for t in targets if t.id in read)
        rows.append(kept)
    kept_names = [t.id for t in targets if t.id in read]
    try:
        literal = pyast.parse(repr(rows), mode="eval").body
        if ast.literal_eval(literal) != rows:
            return node
    except (SyntaxError, ValueError):
        return node
    node.iter = literal
    node.target = ast.Tuple(
        elts=[ast.Name(id=n, ctx=ast.Store()) for n in kept_names], ctx=ast.Store()
    )
    return node


def _evaluated(node: ast.expr) -> ast.expr:
    """`(lambda v: lambda: v)(node)`: evaluated in the test's own scope, so `:=` binds there."""
    inner = ast.Lambda(args=_no_arguments(), body=ast.Name(id="v", ctx=ast.Load()))
    outer = ast.Lambda(args=_no_arguments(["v"]), body=inner)
    return ast.Call(func=outer, args=[node], keywords=[])


def _no_arguments(names: list[str] | None = None) -> ast.arguments:
    return ast.arguments(
        posonlyargs=[],
        args=[ast.arg(arg=n) for n in names or []],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )


def _thunk(node: ast.expr) -> ast.expr:
    empty = ast.arguments(
        posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]
    )
    return ast.Lambda(args=empty, body=node)


def plan_test(
    source: str, *, code: str = "", setup: str = "", keep: frozenset[str] = frozenset()
) -> TestPlan:
    """The plan of one test run after `code` and `setup` (see the module docstring); `keep`:
    names other tests read (run in the same namespace), which the sandbox must still bind."""
    try:
        module = pyast.parse(source)
    except SyntaxError:
        return TestPlan(source=source, program=source, exception=REASON_SYNTAX)
    names = test_names(code, setup, module)
    constants, defining = constants_by_statement(parse(setup), module, names)
    top_level = {id(stmt) for stmt in module.body if isinstance(stmt, ast.Assert | ast.For)}
    rewriter = _Rewriter(names, source, top_level)
    rewriter.keep = keep
    rewriter.module_body = list(module.body)
    body: list[ast.stmt] = []
    for stmt, known in zip(module.body, constants, strict=True):
        names.constants = known
        result = rewriter.visit(stmt)
        body.extend(result if isinstance(result, list) else [result] if result else [])
    rewritten = ast.Module(body=body, type_ignores=[])
    if len(body) == len(module.body):  # each statement rewritten in place: indexes still match
        rewritten = hide_constants(rewritten, defining, names, keep)
    rewritten = ast.fix_missing_locations(rewritten)
    exception = rewriter.exception or (REASON_CONTROL if rewriter.guarded else None)
    return TestPlan(
        source=source,
        program=ast.unparse(rewritten),
        judgements=tuple(rewriter.judgements),
        exception=exception,
    )


def sandbox_setup(setup: str, *, code: str = "", programs: list[str]) -> str:
    """The setup the sandbox runs: without the constants the parent evaluated and no test's
    program reads (`EXPECTED = [1, 2]` used only in asserts), so the code cannot read them."""
    tree = parse(setup)
    if tree is None or not tree.body:
        return setup
    empty = ast.Module(body=[], type_ignores=[])
    names = test_names(code, setup, empty)
    _, candidates = constants_by_statement(None, tree, names)
    if not candidates:
        return setup
    read = set().union(*(names_read(t) for p in programs if (t := parse(p)) is not None), set())
    hidden = {i for i in candidates if not (_binds(tree.body[i]) & read)}
    if not hidden:
        return setup
    return ast.unparse(hide_constants(tree, hidden, names))


def _binds(stmt: ast.stmt) -> set[str]:
    return {
        n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
