"""Observe the runtime types of a reference solution's entry function while its tests run.

`instrument(reference, entry_point)` appends a wrapper to the reference: every call the tests make
to the entry function records the shape (see `type_shapes.py`) of each bound argument, taken
before the call in case the function mutates it, and of the return value, and prints each
distinct record once as a marked JSON line on stdout. `read_observations` parses those lines back
from the sandbox's stdout and merges them per parameter.
"""

from __future__ import annotations

import json
import logging

from liftdspy.datasets.importers.type_shapes import UnionShape

logger = logging.getLogger(__name__)

MARKER = "__liftdspy_observed__ "

# Runs inside the sandbox after the reference; `__ENTRY__` is replaced by the function's name.
_WRAPPER = r"""

def __liftdspy_observe(name):
    import functools, inspect, json, sys

    fn = globals()[name]
    if not callable(fn):
        return
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None
    seen = set()
    depth = [0]
    atomic = {bool: "bool", int: "int", float: "float", complex: "complex", str: "str",
              bytes: "bytes", type(None): "None"}

    def shape(value, level=0):
        kind = type(value)
        if kind in atomic:
            return atomic[kind]
        if level >= 4:
            return "Any"
        if isinstance(value, tuple):
            if len(value) <= 8:
                return ["tuple", [shape(v, level + 1) for v in value]]
            return ["vartuple", distinct(value[:64], level)]
        if isinstance(value, dict):
            items = list(value.items())[:64]
            keys, values = [k for k, _ in items], [v for _, v in items]
            return ["dict", distinct(keys, level), distinct(values, level)]
        for name_, base in (("list", list), ("set", set), ("frozenset", frozenset)):
            if isinstance(value, base):
                return [name_, distinct(list(value)[:64], level)]
        if callable(value) and not isinstance(value, type):
            return "Callable"
        return kind.__name__

    def distinct(values, level=0):
        out, keys = [], set()
        for v in values:
            s = shape(v, level + 1)
            key = json.dumps(s, sort_keys=True)
            if key not in keys:
                keys.add(key)
                out.append(s)
            if len(out) >= 8:
                break
        return out

    @functools.wraps(fn)
    def observed(*args, **kwargs):
        if depth[0]:
            return fn(*args, **kwargs)
        params = None
        if signature is not None:
            try:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                params = {k: shape(v) for k, v in bound.arguments.items()}
            except Exception:
                params = None
        depth[0] += 1
        try:
            result = fn(*args, **kwargs)
        finally:
            depth[0] -= 1
        record = json.dumps({"params": params, "returns": shape(result)}, sort_keys=True)
        if record not in seen and len(seen) < 64:
            seen.add(record)
            sys.stdout.write("__MARKER__" + record + "\n")
            sys.stdout.flush()
        return result

    sys.setrecursionlimit(2 * sys.getrecursionlimit() + 100)  # the wrapper doubles each frame
    globals()[name] = observed


__liftdspy_observe(__ENTRY__)
del __liftdspy_observe
"""


def instrument(reference: str, entry_point: str) -> str:
    """The reference followed by the observing wrapper around `entry_point`."""
    wrapper = _WRAPPER.replace("__ENTRY__", repr(entry_point)).replace("__MARKER__", MARKER)
    return reference.rstrip() + "\n" + wrapper


class Observations:
    """The merged shapes of every recorded call: per parameter, and of the return value."""

    def __init__(self) -> None:
        self.params: dict[str, UnionShape] = {}
        self.returns = UnionShape()
        self.calls = 0

    def add_record(self, record: dict) -> None:
        self.calls += 1
        params = record.get("params")
        if isinstance(params, dict):
            for name, shape in params.items():
                self.params.setdefault(name, UnionShape()).add(shape)
        self.returns.add(record.get("returns", "Any"))

    def param(self, name: str) -> UnionShape:
        return self.params.get(name, UnionShape())


def read_observations(stdout: str) -> Observations:
    """Parse the marked lines of a sandbox run's stdout (a truncated last line is ignored)."""
    observations = Observations()
    for line in stdout.splitlines():
        if not line.startswith(MARKER):
            continue
        try:
            record = json.loads(line[len(MARKER) :])
        except json.JSONDecodeError:
            logger.debug("ignoring a truncated observation line")
            continue
        if isinstance(record, dict):
            observations.add_record(record)
    return observations
