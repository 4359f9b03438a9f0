"""XGrammar compilation and token masking, on a byte vocabulary (no model needed).

A vocabulary of the 256 single bytes plus one stop token lets a test feed any text through the
same `GrammarCompiler` and `TokenMask` the local engine uses, byte by byte.
"""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field

from liftdspy.ir import IntermediateRepresentation, ir_json_schema
from liftdspy.lm.grammar import (
    GrammarError,
    GrammarSpec,
    grammar_spec_from_config,
    python_code_block_ebnf,
    schema_spec,
)

xgrammar = pytest.importorskip("xgrammar", reason="xgrammar is in the `local` extra")
np = pytest.importorskip("numpy")

from liftdspy.lm.grammar import ByteMatcher, GrammarCompiler, TokenMask  # noqa: E402

pytestmark = pytest.mark.local

STOP = 256
BYTE_VOCAB = [bytes([i]) for i in range(256)] + [b""]

SAMPLE_IR = {
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


@pytest.fixture(scope="module")
def compiler() -> GrammarCompiler:
    return GrammarCompiler(BYTE_VOCAB, [STOP])


def accepts(compiler: GrammarCompiler, spec: GrammarSpec, text: str) -> bool:
    """True when the grammar takes `text` byte by byte and then allows stopping."""
    mask = TokenMask(compiler.compile(spec), len(BYTE_VOCAB))
    return all(mask.accept(byte) for byte in text.encode()) and mask.accept(STOP)


def test_ir_json_schema_compiles_with_xgrammar(compiler: GrammarCompiler) -> None:
    compiled = compiler.compile(schema_spec(ir_json_schema()))
    assert compiled.memory_size_bytes > 0
    assert compiler.compile(schema_spec(ir_json_schema())) is compiled  # cached


def dspy_output_spec() -> GrammarSpec:
    """The schema DSPy's JSONAdapter sends for the NL->IR signature (strict: every key)."""
    from liftdspy.dspy_compat import strict_json_schema, structured_outputs_response_format
    from liftdspy.programs.signatures import NLToIRSignature

    model = structured_outputs_response_format(NLToIRSignature)
    return schema_spec(strict_json_schema(model.model_json_schema()))


def dspy_demo_text(ir: dict) -> str:
    """An assistant demo exactly as DSPy's JSONAdapter writes it into the prompt."""
    import dspy

    from liftdspy.programs.signatures import NLToIRSignature

    value = IntermediateRepresentation.model_validate(ir)
    return dspy.JSONAdapter().format_assistant_message_content(NLToIRSignature, {"ir": value})


def test_grammar_accepts_exactly_the_layout_of_dspys_demos(compiler: GrammarCompiler) -> None:
    spec = dspy_output_spec()
    demo = dspy_demo_text(SAMPLE_IR)
    assert demo.startswith('{\n  "ir": {\n    "intent": {')
    assert accepts(compiler, spec, demo)
    answer = {"ir": json.loads(demo)["ir"]}
    assert not accepts(compiler, spec, json.dumps(answer, separators=(",", ":")))
    assert not accepts(compiler, spec, json.dumps(answer, indent=4))
    assert not accepts(compiler, spec, demo.replace('"intent"', ' "intent"', 1))
    assert not accepts(compiler, spec, demo + "\n")


def test_json_whitespace_is_forced_not_sampled(compiler: GrammarCompiler) -> None:
    mask = TokenMask(compiler.compile(dspy_output_spec()), len(BYTE_VOCAB))
    opening = '{\n  "ir": {\n    "intent": {\n      "summary": "'
    assert mask.forced_text() == opening
    assert all(mask.accept(b) for b in (opening + "Add.").encode())
    assert mask.forced_text() == ""  # the summary goes on or ends: a choice
    assert mask.accept(ord('"'))
    assert mask.forced_text() == ',\n      "rationale": "'


def test_ir_grammar_keeps_the_schema_property_order(compiler: GrammarCompiler) -> None:
    spec = schema_spec(ir_json_schema())
    reordered = {"signature": SAMPLE_IR["signature"], **SAMPLE_IR}
    assert next(iter(reordered)) == "signature"
    assert not accepts(compiler, spec, json.dumps(reordered))


def test_ir_grammar_rejects_overlong_strings(compiler: GrammarCompiler) -> None:
    spec = schema_spec(ir_json_schema())
    long_summary = json.loads(json.dumps(SAMPLE_IR))
    long_summary["intent"]["summary"] = "x" * 401
    assert not accepts(compiler, spec, json.dumps(long_summary))


def test_token_mask_blocks_tokens_the_grammar_forbids(compiler: GrammarCompiler) -> None:
    mask = TokenMask(compiler.compile(schema_spec(ir_json_schema())), len(BYTE_VOCAB))
    scores = np.zeros(len(BYTE_VOCAB), dtype=np.float32)
    mask(np.array([], dtype=np.intc), scores)
    allowed = {i for i, s in enumerate(scores) if np.isfinite(s)}
    assert allowed == {ord("{")}
    assert mask.accept(ord("{"))
    scores = np.zeros(len(BYTE_VOCAB), dtype=np.float32)
    mask(np.array([], dtype=np.intc), scores)
    allowed = {chr(i) for i, s in enumerate(scores) if np.isfinite(s)}
    assert allowed == {"\n"}
    assert mask.mask_calls == 2 and mask.mask_seconds > 0


def test_pydantic_class_response_format_becomes_its_schema(compiler: GrammarCompiler) -> None:
    class Answer(BaseModel):
        # No max_length: XGrammar 0.2.8 compiles a bounded string without JSON escapes, so a
        # multi-line code string (which needs "\n") must stay unbounded (max_tokens bounds it).
        code: str
        language: str = Field(max_length=10)

    spec = grammar_spec_from_config(Answer)
    assert spec is not None and spec.kind == "json_schema"
    answer = {"code": "def f():\n    return 1", "language": "python"}
    assert accepts(compiler, spec, json.dumps(answer, indent=2))
    assert not accepts(compiler, spec, '{"answer": "x"}')


def test_ebnf_extension_constrains_a_python_code_block(compiler: GrammarCompiler) -> None:
    spec = grammar_spec_from_config(None, {"xgrammar": {"ebnf": python_code_block_ebnf()}})
    assert spec == GrammarSpec(kind="ebnf", source=python_code_block_ebnf())
    assert accepts(compiler, spec, "```python\ndef f():\n    return 1\n```")
    assert not accepts(compiler, spec, "def f(): return 1")


def test_regex_extension(compiler: GrammarCompiler) -> None:
    spec = grammar_spec_from_config(None, {"xgrammar": {"regex": "[a-z_]{1,8}"}})
    assert accepts(compiler, spec, "add_two")
    assert not accepts(compiler, spec, "Add")


def test_response_format_shapes() -> None:
    schema = {"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "integer"}}}
    canonical = {"type": "json_schema", "name": "X", "strict": True, "schema": schema}
    wire = {"type": "json_schema", "json_schema": {"name": "X", "schema": schema}}
    assert grammar_spec_from_config(canonical) == grammar_spec_from_config(wire)
    assert json.loads(grammar_spec_from_config(canonical).source) == schema
    assert list(json.loads(grammar_spec_from_config(canonical).source)["properties"]) == ["b", "a"]
    assert grammar_spec_from_config({"type": "json_object"}) == GrammarSpec(kind="json_object")
    assert grammar_spec_from_config({"type": "text"}) is None
    assert grammar_spec_from_config(None) is None
    with pytest.raises(GrammarError, match="xgrammar"):
        grammar_spec_from_config(None, {"xgrammar": {"lark": "x"}})
    with pytest.raises(GrammarError, match="without a schema"):
        grammar_spec_from_config({"type": "json_schema"})


def test_bad_grammar_says_what_failed(compiler: GrammarCompiler) -> None:
    with pytest.raises(GrammarError, match="ebnf"):
        compiler.compile(GrammarSpec(kind="ebnf", source="root ::= undefined_rule"))


def closing_after(compiler: GrammarCompiler, spec: GrammarSpec, prefix: str) -> str:
    matcher = ByteMatcher.for_spec(spec, compiler.compile(spec))
    assert matcher.accept_bytes(prefix.encode())
    closing = matcher.closing_text()
    assert closing is not None
    return prefix + closing.decode()


def test_closing_text_from_the_start_is_the_shortest_valid_ir(compiler: GrammarCompiler) -> None:
    text = closing_after(compiler, dspy_output_spec(), "")
    ir = IntermediateRepresentation.model_validate(json.loads(text)["ir"])
    assert ir.intent.summary == "" and ir.signature.parameters == [] and ir.holes == []
    assert accepts(compiler, dspy_output_spec(), text)


def test_closing_text_mid_answer_keeps_what_was_written(compiler: GrammarCompiler) -> None:
    demo = dspy_demo_text(SAMPLE_IR)
    for cut in (demo.index("Add two") + 3, demo.index('"parameters"') + 30, len(demo) // 2):
        text = closing_after(compiler, dspy_output_spec(), demo[:cut])
        IntermediateRepresentation.model_validate(json.loads(text)["ir"])
        assert text.startswith(demo[:cut])
    text = closing_after(compiler, dspy_output_spec(), demo[: demo.index("Add two") + 3])
    assert json.loads(text)["ir"]["intent"]["summary"] == "Add"


def test_closing_text_ends_a_code_block(compiler: GrammarCompiler) -> None:
    spec = GrammarSpec(kind="ebnf", source=python_code_block_ebnf())
    text = closing_after(compiler, spec, "```python\ndef f():\n    return 1")
    assert text == "```python\ndef f():\n    return 1\n```"


def test_closing_text_of_a_rejected_prefix_is_none(compiler: GrammarCompiler) -> None:
    matcher = ByteMatcher(compiler.compile(schema_spec(ir_json_schema())))
    assert matcher.closing_text(b"[") is None
