"""Shared gold IRs for tests (plain JSON-ready dicts, as an LM would answer them)."""

from __future__ import annotations

# `add(a, b)`: the small complete IR the program and grammar tests use.
ADD_IR = {
    "intent": {"summary": "Add two integers.", "rationale": ""},
    "signature": {
        "name": "add",
        "parameters": [
            {"name": "a", "type_hint": "int", "description": ""},
            {"name": "b", "type_hint": "int", "description": ""},
        ],
        "returns": {"type_hint": "int", "description": "The sum."},
    },
    "effects": [],
    "assertions": [{"predicate": "add(1, 2) == 3", "rationale": ""}],
    "holes": [],
    "metadata": {"language": "python", "origin": "core", "source_id": ""},
    "version": "1",
}

# `identity(value)`: the one answer of the runner tests' scripted engine.
IDENTITY_IR = {
    "intent": {"summary": "Return the input unchanged.", "rationale": ""},
    "signature": {
        "name": "identity",
        "parameters": [{"name": "value", "type_hint": "str", "description": ""}],
        "returns": {"type_hint": "str", "description": ""},
    },
    "effects": [],
    "assertions": [{"predicate": "result == value", "rationale": ""}],
    "holes": [],
}


def lm_ir(ir: dict) -> dict:
    """`ir` as the model writes it: its content, without the bookkeeping the program fills
    (`metadata`, `version`). A full-IR output validates it too (both have defaults)."""
    return {key: value for key, value in ir.items() if key not in ("metadata", "version")}
