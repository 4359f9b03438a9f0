"""Merge the runtime shapes of observed values and render them as Python type hints.

The sandbox describes each value it sees as a small JSON *shape* (see `observe.py`):

- an atom is a type name: `"int"`, `"str"`, `"None"`, `"Node"`, `"Callable"`;
- `["list", [shape, ...]]`, `["set", [...]]`, `["frozenset", [...]]`: the distinct shapes of the
  (sampled) elements, empty for an empty container;
- `["tuple", [shape, ...]]`: one shape per position; `["vartuple", [...]]`: the distinct element
  shapes of a long tuple;
- `["dict", [key shapes], [value shapes]]`.

`UnionShape` merges any number of such shapes (from every call the tests make) and renders the
result: `int`, `list[int]`, `dict[str, int]`, `tuple[int, str]`, `tuple[int, ...]`, `int | float`,
and `Any` where the values disagree too much to say more (`list[Any]` for a heterogeneous or
always-empty list).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from liftdspy.ir.models import MAX_TYPE_HINT

# The order of atoms in a union, so hints are stable (`int | float`, `str | None`).
_ATOM_ORDER = ("bool", "int", "float", "complex", "str", "bytes")
_SEQUENCES = ("list", "set", "frozenset")
# A tuple longer than this (or seen with several lengths) is written `tuple[T, ...]`.
_MAX_FIXED_TUPLE = 6
# A tuple of at least this many items, all of one type, is a collection: `tuple[int, ...]`.
_MIN_HOMOGENEOUS_TUPLE = 3
_VARIABLE_LENGTH = -1  # the `tuples` key of long tuples, whose element shapes are pooled
_MAX_TOP_LEVEL_ALTERNATIVES = 3
_MAX_DEPTH = 3


def _atom_key(name: str) -> tuple[int, str]:
    if name == "None":
        return (len(_ATOM_ORDER) + 1, name)
    if name in _ATOM_ORDER:
        return (_ATOM_ORDER.index(name), name)
    return (len(_ATOM_ORDER), name)


@dataclass
class UnionShape:
    """The union of every shape merged into it so far (empty: nothing observed)."""

    atoms: set[str] = field(default_factory=set)
    sequences: dict[str, UnionShape] = field(default_factory=dict)
    tuples: dict[int, list[UnionShape]] = field(default_factory=dict)  # by length
    dict_keys: UnionShape | None = None
    dict_values: UnionShape | None = None

    @classmethod
    def of(cls, *shapes: Any) -> UnionShape:
        union = cls()
        for shape in shapes:
            union.add(shape)
        return union

    @property
    def is_empty(self) -> bool:
        return not (self.atoms or self.sequences or self.tuples or self.dict_keys is not None)

    def add(self, shape: Any) -> None:
        """Merge one JSON shape; anything malformed counts as `Any`."""
        if isinstance(shape, str):
            self.atoms.add(shape)
            return
        if not isinstance(shape, list) or not shape:
            self.atoms.add("Any")
            return
        kind, *rest = shape
        if kind in _SEQUENCES and len(rest) == 1 and isinstance(rest[0], list):
            self.sequences.setdefault(kind, UnionShape()).merge(UnionShape.of(*rest[0]))
        elif kind == "tuple" and len(rest) == 1 and isinstance(rest[0], list):
            self._merge_tuple(len(rest[0]), [UnionShape.of(item) for item in rest[0]])
        elif kind == "vartuple" and len(rest) == 1 and isinstance(rest[0], list):
            self._merge_tuple(_VARIABLE_LENGTH, [UnionShape.of(*rest[0])])
        elif kind == "dict" and len(rest) == 2 and all(isinstance(r, list) for r in rest):
            self._merge_dict(UnionShape.of(*rest[0]), UnionShape.of(*rest[1]))
        else:
            self.atoms.add("Any")

    def merge(self, other: UnionShape) -> None:
        self.atoms |= other.atoms
        for kind, elements in other.sequences.items():
            self.sequences.setdefault(kind, UnionShape()).merge(elements)
        for length, items in other.tuples.items():
            self._merge_tuple(length, items)
        if other.dict_keys is not None and other.dict_values is not None:
            self._merge_dict(other.dict_keys, other.dict_values)

    def _merge_tuple(self, length: int, items: list[UnionShape]) -> None:
        known = self.tuples.setdefault(length, [UnionShape() for _ in items])
        for mine, theirs in zip(known, items, strict=True):
            mine.merge(theirs)

    def _merge_dict(self, keys: UnionShape, values: UnionShape) -> None:
        if self.dict_keys is None or self.dict_values is None:
            self.dict_keys, self.dict_values = UnionShape(), UnionShape()
        self.dict_keys.merge(keys)
        self.dict_values.merge(values)

    def elements(self) -> UnionShape:
        """The union of the elements of every container in this shape (for `*args`/`**kwargs`)."""
        out = UnionShape()
        for elements in self.sequences.values():
            out.merge(elements)
        for items in self.tuples.values():
            for item in items:
                out.merge(item)
        if self.dict_values is not None:
            out.merge(self.dict_values)
        return out

    # -- rendering -------------------------------------------------------------------------

    def to_hint(self) -> str:
        """The most precise hint of at most `MAX_TYPE_HINT` characters."""
        for depth in range(_MAX_DEPTH, -1, -1):  # shorten by cutting nesting down to `Any`
            hint = self._render(depth, top_level=True)
            if len(hint) <= MAX_TYPE_HINT:
                return hint
        return "Any"

    def _render(self, depth: int, *, top_level: bool) -> str:
        if "Any" in self.atoms or self.is_empty or depth < 0:
            return "Any"
        alternatives = [*sorted(self.atoms - {"None"}, key=_atom_key)]
        for kind in _SEQUENCES:
            if kind in self.sequences:
                alternatives.append(self._container(kind, [self.sequences[kind]], depth))
        if self.tuples:
            alternatives.append(self._tuple(depth))
        if self.dict_keys is not None and self.dict_values is not None:
            alternatives.append(self._container("dict", [self.dict_keys, self.dict_values], depth))
        if "None" in self.atoms:
            alternatives.append("None")  # last, as in `list[int] | None`
        if len(alternatives) == 1:
            return alternatives[0]
        if top_level:
            return (
                " | ".join(alternatives)
                if len(alternatives) <= _MAX_TOP_LEVEL_ALTERNATIVES
                else "Any"
            )
        # Inside a container only a numeric widening or an optional value is worth spelling out.
        if set(alternatives) in ({"int", "float"}, {"bool", "int"}) or (
            len(alternatives) == 2 and "None" in alternatives
        ):
            return " | ".join(alternatives)
        return "Any"

    def _container(self, kind: str, parts: list[UnionShape], depth: int) -> str:
        inner = ", ".join(part._render(depth - 1, top_level=False) for part in parts)
        return f"{kind}[{inner}]"

    def _tuple(self, depth: int) -> str:
        if len(self.tuples) == 1:
            ((length, items),) = self.tuples.items()
            if length == 0:
                return "tuple[()]"
            rendered = [i._render(depth - 1, top_level=False) for i in items]
            homogeneous = len(set(rendered)) == 1 and length >= _MIN_HOMOGENEOUS_TUPLE
            if 0 < length <= _MAX_FIXED_TUPLE and not homogeneous:
                return "tuple[" + ", ".join(rendered) + "]"
        merged = UnionShape()
        for items in self.tuples.values():
            for item in items:
                merged.merge(item)
        return f"tuple[{merged._render(depth - 1, top_level=False)}, ...]"
