"""What the parent knows about the names a test sees: bound where, by what, holding what.

- `rebound`: bound by the code, the setup or the test (such a name is no builtin any more);
- `tainted`: may hold a value of the code's making (bound from a call of the code, or passed to
  a bare call of the code, which may change it), tracked through the setup and the test;
- `modules`: names the setup or the test bind only by importing a stdlib module or one of its
  classes (`import math`, `from datetime import date`): the parent uses its own copy of those;
- `constants`: names the setup or the test bind once, at top level, to a value the parent can
  evaluate and that is never handed to anything that could change it (`EXPECTED = [1, 2]`):
  the parent uses its own value, not whatever the sandbox holds by the time a check runs.
"""

from __future__ import annotations

import ast
import builtins
import collections
import datetime
import decimal
import fractions
import math
from dataclasses import dataclass, field
from typing import Any

from liftdspy import pyast

BUILTIN_NAMES = frozenset(dir(builtins))
# Stdlib objects the parent may use in place of the sandbox's: pure classes and constants.
STDLIB: dict[str, Any] = {
    "datetime.date": datetime.date,
    "datetime.datetime": datetime.datetime,
    "datetime.time": datetime.time,
    "datetime.timedelta": datetime.timedelta,
    "datetime.timezone": datetime.timezone,
    "datetime.timezone.utc": datetime.UTC,
    "datetime.UTC": datetime.UTC,
    "datetime.date.fromisoformat": datetime.date.fromisoformat,
    "datetime.datetime.fromisoformat": datetime.datetime.fromisoformat,
    "decimal.Decimal": decimal.Decimal,
    "fractions.Fraction": fractions.Fraction,
    "collections.Counter": collections.Counter,
    "collections.OrderedDict": collections.OrderedDict,
    "collections.deque": collections.deque,
    "math.pi": math.pi,
    "math.e": math.e,
    "math.tau": math.tau,
    "math.inf": math.inf,
    "math.nan": math.nan,
}
STDLIB_MODULES = frozenset(path.split(".")[0] for path in STDLIB)


@dataclass
class Names:
    """What the parent knows about the names a test can see (see the module docstring)."""

    rebound: set[str] = field(default_factory=set)
    tainted: set[str] = field(default_factory=set)
    modules: dict[str, str] = field(default_factory=dict)  # name -> dotted stdlib path
    constants: dict[str, Any] = field(default_factory=dict)

    def builtin(self, name: str) -> bool:
        return name in BUILTIN_NAMES and name not in self.rebound

    def stdlib(self, node: ast.expr) -> str | None:
        """The dotted stdlib path `node` names (`math.isclose`, `date` from `datetime`), if any."""
        if isinstance(node, ast.Name):
            return self.modules.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.stdlib(node.value)
            return f"{base}.{node.attr}" if base else None
        return None


def stored(node: ast.AST) -> set[str]:
    return {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }


def loaded(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def parse(source: str) -> ast.Module | None:
    try:
        return pyast.parse(source)
    except SyntaxError:
        return None


def binding_counts(tree: ast.AST) -> collections.Counter[str]:
    """How many places bind each name anywhere in `tree` (imports, defs, targets, parameters)."""
    counts: collections.Counter[str] = collections.Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            counts.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            counts[node.name] += 1
        elif isinstance(node, ast.arg):
            counts[node.arg] += 1
        elif isinstance(node, ast.ExceptHandler) and node.name:
            counts[node.name] += 1
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            counts[node.id] += 1
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            counts[node.target.id] += 1  # also a Store, counted twice: never a constant
    return counts


def top_level_names(tree: ast.Module) -> set[str]:
    """Names a piece of code binds at its top level (what a test run after it can see)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        else:
            names |= stored(node)
    return names


def exposed(tree: ast.AST, safe_call: Any) -> set[str]:
    """Names handed to something that could change their value: an argument of a call that is
    not `safe_call`, the object of a method call, a subscript or attribute that is assigned."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                out |= loaded(node.func.value)
            if not safe_call(node):
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    out |= loaded(arg)
        elif isinstance(node, ast.Subscript | ast.Attribute) and isinstance(
            node.ctx, ast.Store | ast.Del
        ):
            out |= loaded(node.value)
        elif isinstance(node, ast.AugAssign):
            out |= loaded(node.target)
    return out


def _bindings(tree: ast.AST) -> list[tuple[set[str], set[str]]]:
    """(names bound, names their value comes from) for every binding in `tree`."""
    out: list[tuple[set[str], set[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            out.append((set().union(*map(stored, node.targets)), loaded(node.value)))
        elif isinstance(node, ast.AugAssign | ast.AnnAssign) and node.value is not None:
            out.append((stored(node.target), loaded(node.value) | loaded(node.target)))
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            out.append((stored(node.target), loaded(node.iter)))
        elif isinstance(node, ast.NamedExpr):
            out.append(({node.target.id}, loaded(node.value)))
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            out.append((stored(node.optional_vars), loaded(node.context_expr)))
        elif isinstance(node, ast.Try | ast.TryStar):
            names = {h.name for h in node.handlers if h.name}
            out.append((names, set().union(*(loaded(s) for s in node.body), set())))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            out.append(({a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}, {"*"}))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            # a bare call (`sort_in_place(data)`) may change what it is given
            call = node.value
            args = {a.id for a in call.args if isinstance(a, ast.Name)}
            out.append((args, loaded(call) - args))
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


def _stdlib_imports(trees: list[ast.Module], counts: collections.Counter[str]) -> dict[str, str]:
    """Names bound only by one import of a stdlib module or class the parent knows."""
    modules: dict[str, str] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name in STDLIB_MODULES and "." not in a.name:
                        modules[a.asname or a.name] = a.name
            elif isinstance(node, ast.ImportFrom) and node.module in STDLIB_MODULES:
                for a in node.names:
                    if f"{node.module}.{a.name}" in STDLIB:
                        modules[a.asname or a.name] = f"{node.module}.{a.name}"
    bound_once = {name for name, count in counts.items() if count == 1}
    return {name: path for name, path in modules.items() if name in bound_once}


def test_names(code: str, setup: str, test: ast.Module) -> Names:
    """The names a test sees after the code and the setup ran (constants are added by the
    caller, which can evaluate them: `values.add_constants`)."""
    code_tree, setup_tree = parse(code), parse(setup)
    code_bound = top_level_names(code_tree) if code_tree else set()
    setup_bound = top_level_names(setup_tree) if setup_tree else set()
    test_bound = set(binding_counts(test))
    setup_tainted = _taint(setup_tree, code_bound) if setup_tree else set(code_bound)
    unresolved = loaded(test) - code_bound - setup_bound - test_bound - BUILTIN_NAMES
    dirty = (code_bound - setup_bound) | (setup_tainted & setup_bound) | unresolved
    trees = [t for t in (setup_tree, test) if t is not None]
    counts = sum((binding_counts(t) for t in trees), collections.Counter())
    modules = _stdlib_imports(trees, counts)
    for name in STDLIB_MODULES & code_bound - set(counts):
        modules[name] = name  # the code's `import math`: the parent uses its own math
    return Names(
        rebound=code_bound | setup_bound | test_bound,
        tainted=_taint(test, dirty),
        modules=modules,
    )
