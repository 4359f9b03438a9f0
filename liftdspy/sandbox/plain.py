"""Plain data: the only values that leave the sandbox, and their decoding in the parent.

The harness encodes a value only if every part of it has exactly one of the types below
(subclasses are refused, so no user-defined `__eq__`, `__hash__` or `__iter__` can run in the
parent). The JSON form:

* None, bools, ints, floats (also NaN and infinities) and strings are JSON scalars;
* `{"bytes": "<hex>"}`, `{"list": [...]}`, `{"tuple": [...]}`, `{"set": [...]}`,
  `{"frozenset": [...]}` and `{"dict": [[key, value], ...]}`;
* stdlib values, tagged with their exact type: `{"Counter": [[k, v], ...]}`,
  `{"OrderedDict": [[k, v], ...]}`, `{"defaultdict": [factory, [[k, v], ...]]}` (factory:
  null or the name of a builtin type), `{"deque": [maxlen, [...]]}`,
  `{"namedtuple": [type name, [field, ...], [...]]}`, `{"Decimal": "<str>"}`,
  `{"Fraction": [numerator, denominator]}`, `{"complex": [real, imag]}`,
  `{"range": [start, stop, step]}`, `{"date": [y, m, d]}`, `{"timedelta": [days, s, us]}`,
  `{"time": [h, m, s, us, fold, tz]}`, `{"datetime": [y, m, d, h, m, s, us, fold, tz]}` with
  `tz` null or `[offset days, offset seconds, offset microseconds, name]` (a fixed offset).

`decode` rebuilds the Python value from the data alone (stdlib constructors on validated
scalars; never pickle, never code from the sandbox) and refuses anything else, too deep or too
large. The rebuilt values compare with stdlib semantics because they are the stdlib types.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import keyword
from functools import lru_cache
from typing import Any

from liftdspy.errors import LiftdspyError

MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_INT_BITS = 16_384  # about 4900 decimal digits
MAX_DECIMAL_CHARS = 1_000
MAX_FIELDS = 255
FACTORIES: dict[str, type] = {
    t.__name__: t
    for t in (int, float, complex, str, bytes, bool, list, tuple, dict, set, frozenset)
}


class NotPlainData(LiftdspyError, ValueError):
    """A value record that is not the plain-data JSON form (or exceeds its bounds)."""


def decode(data: Any) -> Any:
    """The Python value of a plain-data JSON form; raises `NotPlainData` for anything else."""
    budget = [MAX_NODES]
    return _decode(data, 0, budget)


def _int(value: Any, what: str = "an int") -> int:
    if type(value) is not int:
        raise NotPlainData(f"expected {what}, got {type(value).__name__}")
    if value.bit_length() > MAX_INT_BITS:
        raise NotPlainData(f"an int of more than {MAX_INT_BITS} bits")
    return value


def _list(body: Any, tag: str, length: int | None = None) -> list:
    if type(body) is not list or (length is not None and len(body) != length):
        shape = "a JSON list" if length is None else f"a JSON list of {length} items"
        raise NotPlainData(f"{tag!r} must hold {shape}")
    return body


def _decode(data: Any, depth: int, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise NotPlainData(f"more than {MAX_NODES} parts")
    if depth > MAX_DEPTH:
        raise NotPlainData(f"nested deeper than {MAX_DEPTH}")
    if type(data) is int:
        return _int(data)
    if data is None or type(data) in (bool, float, str):
        return data
    if type(data) is not dict or len(data) != 1:
        raise NotPlainData(f"unexpected JSON value of type {type(data).__name__}")
    ((tag, body),) = data.items()
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise NotPlainData(f"unknown tag {tag!r}")
    try:
        return decoder(body, depth + 1, budget)
    except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
        if isinstance(exc, NotPlainData):
            raise
        raise NotPlainData(f"invalid {tag}: {exc}") from exc


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError as exc:
        raise NotPlainData(f"unhashable {type(value).__name__} as a set item or dict key") from exc
    return value


def _items(body: Any, tag: str, depth: int, budget: list[int]) -> list[tuple[Any, Any]]:
    pairs = []
    for pair in _list(body, tag):
        if type(pair) is not list or len(pair) != 2:
            raise NotPlainData(f"{tag} items must be [key, value] pairs")
        key = _hashable(_decode(pair[0], depth, budget))
        pairs.append((key, _decode(pair[1], depth, budget)))
    return pairs


def _elements(body: Any, tag: str, depth: int, budget: list[int]) -> list:
    return [_decode(item, depth, budget) for item in _list(body, tag)]


def _bytes(body: Any, _depth: int, _budget: list[int]) -> bytes:
    if type(body) is not str:
        raise NotPlainData("bytes must be a hex string")
    return bytes.fromhex(body)


def _defaultdict(body: Any, depth: int, budget: list[int]) -> collections.defaultdict:
    factory_name, items = _list(body, "defaultdict", 2)
    if factory_name is not None and factory_name not in FACTORIES:
        raise NotPlainData(f"a defaultdict's factory must be a builtin type, not {factory_name!r}")
    factory = None if factory_name is None else FACTORIES[factory_name]
    return collections.defaultdict(factory, _items(items, "defaultdict", depth, budget))


def _deque(body: Any, depth: int, budget: list[int]) -> collections.deque:
    maxlen, items = _list(body, "deque", 2)
    if maxlen is not None and _int(maxlen, "maxlen") < 0:
        raise NotPlainData("a deque's maxlen must not be negative")
    return collections.deque(_elements(items, "deque", depth, budget), maxlen)


def _identifier(name: Any, what: str) -> str:
    if type(name) is not str or not name.isidentifier() or keyword.iskeyword(name):
        raise NotPlainData(f"a named tuple's {what} must be an identifier, not {name!r}")
    return name


@lru_cache(maxsize=1024)
def named_tuple_type(name: str, fields: tuple[str, ...]) -> type:
    """The parent's own plain named tuple class (no methods of the sandbox's class)."""
    return collections.namedtuple(name, fields)  # type: ignore[misc]


def _namedtuple(body: Any, depth: int, budget: list[int]) -> tuple:
    name, fields, items = _list(body, "namedtuple", 3)
    fields = _list(fields, "namedtuple fields")
    if len(fields) > MAX_FIELDS or len(set(fields)) != len(fields):
        raise NotPlainData("a named tuple's fields must be distinct (at most 255)")
    field_names = tuple(_identifier(f, "field") for f in fields)
    if any(f.startswith("_") for f in field_names):
        raise NotPlainData("a named tuple's field may not start with '_'")
    values = _elements(items, "namedtuple", depth, budget)
    if len(values) != len(field_names):
        raise NotPlainData("a named tuple needs one value per field")
    return named_tuple_type(_identifier(name, "type name"), field_names)(*values)


def _decimal(body: Any, _depth: int, _budget: list[int]) -> decimal.Decimal:
    if type(body) is not str or len(body) > MAX_DECIMAL_CHARS:
        raise NotPlainData(f"a Decimal must be a string of at most {MAX_DECIMAL_CHARS} characters")
    return decimal.Decimal(body)


def _fraction(body: Any, _depth: int, _budget: list[int]) -> fractions.Fraction:
    numerator, denominator = (_int(v) for v in _list(body, "Fraction", 2))
    if denominator <= 0:
        raise NotPlainData("a Fraction's denominator must be positive")
    return fractions.Fraction(numerator, denominator)


def _complex(body: Any, _depth: int, _budget: list[int]) -> complex:
    real, imag = _list(body, "complex", 2)
    if type(real) is not float or type(imag) is not float:
        raise NotPlainData("a complex must be two floats")
    return complex(real, imag)


def _range(body: Any, _depth: int, _budget: list[int]) -> range:
    return range(*(_int(v) for v in _list(body, "range", 3)))


def _tz(body: Any) -> datetime.timezone | None:
    if body is None:
        return None
    days, seconds, micros, name = _list(body, "timezone", 4)
    offset = datetime.timedelta(_int(days), _int(seconds), _int(micros))
    if name is None:
        return datetime.timezone(offset)
    if type(name) is not str or len(name) > 64:
        raise NotPlainData("a timezone's name must be a short string")
    return datetime.timezone(offset, name)


def _date(body: Any, _depth: int, _budget: list[int]) -> datetime.date:
    return datetime.date(*(_int(v) for v in _list(body, "date", 3)))


def _timedelta(body: Any, _depth: int, _budget: list[int]) -> datetime.timedelta:
    return datetime.timedelta(*(_int(v) for v in _list(body, "timedelta", 3)))


def _time(body: Any, _depth: int, _budget: list[int]) -> datetime.time:
    *parts, fold, tz = _list(body, "time", 6)
    return datetime.time(*(_int(v) for v in parts), tzinfo=_tz(tz), fold=_int(fold))


def _datetime(body: Any, _depth: int, _budget: list[int]) -> datetime.datetime:
    *parts, fold, tz = _list(body, "datetime", 9)
    return datetime.datetime(*(_int(v) for v in parts), tzinfo=_tz(tz), fold=_int(fold))


_DECODERS = {
    "bytes": _bytes,
    "list": lambda b, d, g: _elements(b, "list", d, g),
    "tuple": lambda b, d, g: tuple(_elements(b, "tuple", d, g)),
    "set": lambda b, d, g: {_hashable(v) for v in _elements(b, "set", d, g)},
    "frozenset": lambda b, d, g: frozenset(_hashable(v) for v in _elements(b, "frozenset", d, g)),
    "dict": lambda b, d, g: dict(_items(b, "dict", d, g)),
    "Counter": lambda b, d, g: collections.Counter(dict(_items(b, "Counter", d, g))),
    "OrderedDict": lambda b, d, g: collections.OrderedDict(_items(b, "OrderedDict", d, g)),
    "defaultdict": _defaultdict,
    "deque": _deque,
    "namedtuple": _namedtuple,
    "Decimal": _decimal,
    "Fraction": _fraction,
    "complex": _complex,
    "range": _range,
    "date": _date,
    "timedelta": _timedelta,
    "time": _time,
    "datetime": _datetime,
}
