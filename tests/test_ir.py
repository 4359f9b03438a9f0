"""The IR models: validation, JSON round trip, bounded schema, stub rendering and parsing."""

from __future__ import annotations

import ast

import jsonschema
import pytest
from pydantic import ValidationError

from liftdspy.ir import (
    IntermediateRepresentation,
    SignatureNotFoundError,
    UnboundedSchemaError,
    check_bounded,
    ir_json_schema,
    parse_signature,
    render_stub,
)


def make_ir(**overrides) -> IntermediateRepresentation:
    data = {
        "intent": {
            "summary": "Return the words of a sentence in reverse order.",
            "rationale": "Words are separated by whitespace; runs of spaces collapse.",
        },
        "signature": {
            "name": "reverse_words",
            "parameters": [
                {"name": "text", "type_hint": "str", "description": "the sentence"},
                {"name": "sep", "type_hint": "str | None", "description": "separator"},
            ],
            "returns": {"type_hint": "str", "description": "the words, reversed"},
        },
        "effects": [],
        "assertions": [{"predicate": "len(result) <= len(text)", "rationale": "no new words"}],
        "holes": [
            {
                "identifier": "punctuation",
                "type_hint": "bool",
                "description": "Does punctuation stay attached to its word?",
                "kind": "intent",
                "constraints": ["default True"],
            }
        ],
        "metadata": {"origin": "core"},
    }
    data.update(overrides)
    return IntermediateRepresentation.model_validate(data)


def test_json_round_trip_is_lossless():
    ir = make_ir()
    again = IntermediateRepresentation.from_json(ir.to_json())
    assert again == ir
    assert again.version == "1"


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("signature", "name"), "2fast", "pattern"),
        (("signature", "name"), "class", "keyword"),
        (("intent", "summary"), "x" * 401, "at most 400"),
    ],
)
def test_invalid_fields_are_rejected_with_their_location(path, value, problem):
    data = make_ir().model_dump()
    data[path[0]][path[1]] = value
    with pytest.raises(ValidationError) as info:
        IntermediateRepresentation.model_validate(data)
    text = str(info.value)
    assert ".".join(path) in text
    assert problem in text


def test_unknown_keys_and_duplicate_parameters_are_rejected():
    data = make_ir().model_dump()
    data["surprise"] = 1
    with pytest.raises(ValidationError, match="surprise"):
        IntermediateRepresentation.model_validate(data)
    data = make_ir().model_dump()
    data["signature"]["parameters"].append(dict(data["signature"]["parameters"][0]))
    with pytest.raises(ValidationError, match="duplicate parameter names: text"):
        IntermediateRepresentation.model_validate(data)


def test_schema_is_bounded_everywhere():
    schema = ir_json_schema()
    check_bounded(schema)  # raises on any unbounded node
    text = str(schema)
    assert "maxItems" in text and "maxLength" in text


def test_check_bounded_names_the_unbounded_node():
    with pytest.raises(UnboundedSchemaError, match=r"#/properties/tags: array without maxItems"):
        check_bounded(
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {"tags": {"type": "array", "items": {"type": "integer"}}},
            }
        )
    with pytest.raises(UnboundedSchemaError, match="additionalProperties"):
        check_bounded({"type": "object", "properties": {}})


def test_schema_validates_good_ir_and_rejects_bad_with_a_json_schema_validator():
    schema = ir_json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(make_ir().model_dump(mode="json"))
    bad = make_ir().model_dump(mode="json")
    bad["effects"] = [{"description": "x"}] * 7
    with pytest.raises(jsonschema.ValidationError, match="too long"):
        validator.validate(bad)
    bad = make_ir().model_dump(mode="json")
    bad["signature"]["extra"] = "no"
    with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
        validator.validate(bad)


def test_schema_keeps_field_order_for_decoding():
    props = list(ir_json_schema()["properties"])
    assert props[:5] == ["intent", "signature", "effects", "assertions", "holes"]


def test_stub_renders_a_parseable_function_with_its_docstring():
    ir = make_ir()
    stub = render_stub(ir)
    tree = ast.parse(stub)
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef) and fn.name == "reverse_words"
    doc = ast.get_docstring(fn)
    assert "Return the words of a sentence in reverse order." in doc
    assert "len(result) <= len(text)" in doc
    assert "?punctuation: bool [intent]" in doc
    assert parse_signature(stub) == ir.signature.model_copy(
        update={
            "parameters": [
                p.model_copy(update={"description": ""}) for p in ir.signature.parameters
            ],
            "returns": ir.signature.returns.model_copy(update={"description": ""}),
        }
    )


def test_stub_escapes_triple_quotes_in_text():
    ir = make_ir(intent={"summary": 'Handles """quoted""" text.', "rationale": ""})
    stub = render_stub(ir, body="return text")
    namespace: dict = {}
    exec(compile(stub, "<stub>", "exec"), namespace)  # our own rendered text, not generated code
    assert namespace["reverse_words"]("a b", None) == "a b"
    assert '"""quoted"""' in namespace["reverse_words"].__doc__


def test_parse_signature_reads_names_types_and_defaults_missing_hints_to_any():
    source = (
        "import os\n\ndef helper(): pass\n\n"
        "def f(a, b: list[int], *rest, k: 'str' = 'x', **kw) -> dict:\n    pass\n"
    )
    sig = parse_signature(source, "f")
    assert [(p.name, p.type_hint) for p in sig.parameters] == [
        ("a", "Any"),
        ("b", "list[int]"),
        ("k", "'str'"),
        ("rest", "Any"),
        ("kw", "Any"),
    ]
    assert sig.returns.type_hint == "dict"
    assert parse_signature(source).name == "helper"


def test_parse_signature_errors_name_the_problem():
    with pytest.raises(SignatureNotFoundError, match="line 1"):
        parse_signature("def (:")
    with pytest.raises(SignatureNotFoundError, match="no function 'g'"):
        parse_signature("def f(): pass", "g")
