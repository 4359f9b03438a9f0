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


def lm_ir(ir: dict, output: str = "lean") -> dict:
    """`ir` as the model writes it: without the bookkeeping the program fills (`metadata`,
    `version`) and, for the default `lean` output, without the two rationales. The content and
    full-IR outputs validate a lean answer too (the left-out fields have defaults)."""
    content = {key: value for key, value in ir.items() if key not in ("metadata", "version")}
    if output == "content":
        return content
    assert output == "lean", output
    return {
        **content,
        "intent": {k: v for k, v in content["intent"].items() if k != "rationale"},
        "assertions": [
            {k: v for k, v in a.items() if k != "rationale"} for a in content.get("assertions", [])
        ],
    }
