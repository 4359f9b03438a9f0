"""Normalise Python type hints with `ast` so equivalent spellings compare equal.

`List[int]`, `typing.List[int]` and `list[int]` all become `list[int]`; `Optional[int]`,
`Union[int, None]`, `None | int` and `int | None` all become `int | None` (union members are
de-duplicated and sorted, `None` last); a generic whose arguments are all `Any` (`list[Any]`,
`Dict[Any, Any]`) becomes its bare name; quoted forward references are unquoted; `NoneType` is
`None`; `Text` is `str`. A hint that does not parse is compared as its whitespace-free text.
"""

from __future__ import annotations

import ast
import re

from liftdspy import pyast

# typing aliases of builtins and of collections classes -> their modern spelling.
_ALIASES = {
    "List": "list",
    "Dict": "dict",
    "Set": "set",
    "FrozenSet": "frozenset",
    "Tuple": "tuple",
    "Type": "type",
    "Text": "str",
    "DefaultDict": "defaultdict",
    "OrderedDict": "OrderedDict",
    "Deque": "deque",
    "Counter": "Counter",
    "NoneType": "None",
}


def _name(node: ast.expr) -> str | None:
    """The last component of a (dotted) name: `typing.List` -> `List`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _union_members(node: ast.expr) -> list[ast.expr] | None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return [
            *(_union_members(node.left) or [node.left]),
            *(_union_members(node.right) or [node.right]),
        ]
    if isinstance(node, ast.Subscript) and _name(node.value) in {"Union", "Optional"}:
        inner = node.slice
        members = list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]
        if _name(node.value) == "Optional":
            members.append(ast.Constant(value=None))
        return members
    return None


def _render(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        if node.value is None:
            return "None"
        if isinstance(node.value, str):  # a quoted forward reference
            return normalise_type_hint(node.value)
        if node.value is Ellipsis:
            return "..."
        return repr(node.value)
    members = _union_members(node)
    if members is not None:
        rendered = sorted({_render(m) for m in members}, key=lambda s: (s == "None", s))
        return " | ".join(rendered)
    name = _name(node)
    if name is not None:
        return _ALIASES.get(name, name)
    if isinstance(node, ast.Subscript):
        head = _render(node.value)
        inner = node.slice
        args = [_render(e) for e in (inner.elts if isinstance(inner, ast.Tuple) else [inner])]
        if all(a == "Any" for a in args):
            return head
        return f"{head}[{', '.join(args)}]"
    if isinstance(node, ast.List):  # Callable[[int, str], bool]
        return f"[{', '.join(_render(e) for e in node.elts)}]"
    if isinstance(node, ast.Tuple):
        return ", ".join(_render(e) for e in node.elts)
    return ast.unparse(node)


def normalise_type_hint(hint: str) -> str:
    """The canonical spelling of `hint` (see the module docstring)."""
    text = hint.strip()
    try:
        node = pyast.parse(text, mode="eval").body
    except SyntaxError:
        return re.sub(r"\s+", "", text)
    return _render(node)


def _head(normalised: str) -> str:
    return normalised.split("[", 1)[0].strip()


def type_hint_similarity(gold: str, predicted: str) -> float:
    """1.0 when the normalised hints are equal, 0.5 when only their outer type agrees
    (`list[int]` vs `list[str]`, `dict` vs `dict[str, int]`), else 0.0."""
    g, p = normalise_type_hint(gold), normalise_type_hint(predicted)
    if g == p:
        return 1.0
    if "|" not in g and "|" not in p and _head(g) == _head(p):
        return 0.5
    return 0.0
