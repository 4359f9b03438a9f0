"""Plain data: the only values that leave the sandbox, and their decoding in the parent.

The harness encodes a value only if every part of it has exactly one of the types None, bool,
int, float, str, bytes, list, tuple, dict, set or frozenset (subclasses are refused, so no
user-defined `__eq__`, `__hash__` or `__iter__` can run in the parent). The JSON form:

* None, bools, ints, floats (also NaN and infinities) and strings are JSON scalars;
* `{"bytes": "<hex>"}`, `{"list": [...]}`, `{"tuple": [...]}`, `{"set": [...]}`,
  `{"frozenset": [...]}` and `{"dict": [[key, value], ...]}` for the rest.

`decode` rebuilds the Python value and refuses anything else, too deep or too large.
"""

from __future__ import annotations

from typing import Any

from liftdspy.errors import LiftdspyError

MAX_DEPTH = 64
MAX_NODES = 200_000


class NotPlainData(LiftdspyError, ValueError):
    """A value record that is not the plain-data JSON form (or exceeds its bounds)."""


def decode(data: Any) -> Any:
    """The Python value of a plain-data JSON form; raises `NotPlainData` for anything else."""
    budget = [MAX_NODES]
    return _decode(data, 0, budget)


def _decode(data: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise NotPlainData(f"more than {MAX_NODES} parts")
    if depth > MAX_DEPTH:
        raise NotPlainData(f"nested deeper than {MAX_DEPTH}")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is not dict or len(data) != 1:
        raise NotPlainData(f"unexpected JSON value of type {type(data).__name__}")
    ((tag, body),) = data.items()
    if tag == "bytes":
        if type(body) is not str:
            raise NotPlainData("bytes must be a hex string")
        try:
            return bytes.fromhex(body)
        except ValueError as exc:
            raise NotPlainData("bytes must be a hex string") from exc
    if type(body) is not list:
        raise NotPlainData(f"{tag!r} must hold a JSON list")
    if tag == "dict":
        result = {}
        for pair in body:
            if type(pair) is not list or len(pair) != 2:
                raise NotPlainData("dict items must be [key, value] pairs")
            key = _decode(pair[0], depth + 1, budget)
            result[_hashable(key)] = _decode(pair[1], depth + 1, budget)
        return result
    items = [_decode(item, depth + 1, budget) for item in body]
    if tag == "list":
        return items
    if tag == "tuple":
        return tuple(items)
    if tag == "set":
        return {_hashable(item) for item in items}
    if tag == "frozenset":
        return frozenset(_hashable(item) for item in items)
    raise NotPlainData(f"unknown tag {tag!r}")


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError as exc:
        raise NotPlainData(f"unhashable {type(value).__name__} as a set item or dict key") from exc
    return value
