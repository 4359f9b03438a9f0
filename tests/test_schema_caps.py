"""The local engine's decoding budget: `cap_schema` bounds every string and array of a schema."""

from __future__ import annotations

import json

from liftdspy.ir import ir_json_schema
from liftdspy.lm.grammar import cap_schema


def _nodes(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def test_caps_every_free_string_and_array_and_keeps_enums():
    capped = cap_schema(ir_json_schema(), max_string_chars=50, max_array_items=2)
    strings = [n for n in _nodes(capped) if n.get("type") == "string"]
    arrays = [n for n in _nodes(capped) if n.get("type") == "array"]
    assert strings and arrays
    for node in strings:
        if "enum" in node or "const" in node:
            assert "maxLength" not in node or node["maxLength"] <= 50
        elif "pattern" in node:  # bounded by its pattern; vLLM refuses maxLength next to one
            assert "maxLength" not in node
        else:
            assert node["maxLength"] <= 50
    assert all(node["maxItems"] <= 2 for node in arrays)
    assert capped["$defs"]["HoleKind"]["enum"][0] == "intent"


def test_unbounded_strings_get_a_bound_and_tighter_existing_bounds_stay():
    schema = {
        "type": "object",
        "properties": {
            "reasoning": {"type": "string"},
            "code": {"type": "string", "maxLength": 10, "minLength": 5},
            "items": {"type": "array", "items": {"type": "string"}, "minItems": 3},
        },
    }
    capped = cap_schema(schema, max_string_chars=100, max_array_items=2)
    props = capped["properties"]
    assert props["reasoning"]["maxLength"] == 100
    assert props["code"]["maxLength"] == 10 and props["code"]["minLength"] == 5
    assert props["items"]["maxItems"] == 2 and props["items"]["minItems"] == 2
    assert props["items"]["items"]["maxLength"] == 100


def test_key_order_is_kept_and_none_disables_a_cap():
    schema = ir_json_schema()
    capped = cap_schema(schema, max_string_chars=None, max_array_items=None)
    assert capped == schema
    assert list(json.loads(json.dumps(capped))["properties"]) == list(schema["properties"])
