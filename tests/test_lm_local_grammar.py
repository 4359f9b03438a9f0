"""XGrammar compilation and token masking, on a byte vocabulary (no model needed).

A vocabulary of the 256 single bytes plus one stop token lets a test feed any text through the
same `GrammarCompiler` and `TokenMask` the local engine uses, byte by byte.
"""

from __future__ import annotations

import json

import pytest
from fixtures_ir import ADD_IR
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

from liftdspy.lm.grammar import GrammarCompiler, TokenMask  # noqa: E402

pytestmark = pytest.mark.local

STOP = 256
BYTE_VOCAB = [bytes([i]) for i in range(256)] + [b""]

SAMPLE_IR = ADD_IR


@pytest.fixture(scope="module")
def compiler() -> GrammarCompiler:
    return GrammarCompiler(BYTE_VOCAB, [STOP], max_whitespace=14)


def accepts(compiler: GrammarCompiler, spec: GrammarSpec, text: str) -> bool:
    """True when the grammar takes `text` byte by byte and then allows stopping."""
    mask = TokenMask(compiler.compile(spec), len(BYTE_VOCAB))
    return all(mask.accept(byte) for byte in text.encode()) and mask.accept(STOP)


def test_ir_json_schema_compiles_with_xgrammar(compiler: GrammarCompiler) -> None:
    compiled = compiler.compile(schema_spec(ir_json_schema()))
    assert compiled.memory_size_bytes > 0
    assert compiler.compile(schema_spec(ir_json_schema())) is compiled  # cached


def test_ir_grammar_accepts_valid_ir_indented_and_compact(compiler: GrammarCompiler) -> None:
    IntermediateRepresentation.model_validate(SAMPLE_IR)
    spec = schema_spec(ir_json_schema())
    assert accepts(compiler, spec, json.dumps(SAMPLE_IR, indent=2))
    assert accepts(compiler, spec, json.dumps(SAMPLE_IR, separators=(",", ":")))


def test_ir_grammar_bounds_whitespace(compiler: GrammarCompiler) -> None:
    spec = schema_spec(ir_json_schema())
    text = json.dumps(SAMPLE_IR)
    assert not accepts(compiler, spec, text.replace('"intent"', " " * 20 + '"intent"', 1))
    assert accepts(compiler, spec, text.replace('"intent"', " " * 14 + '"intent"', 1))


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
    assert allowed == {'"', " ", "\n", "\r", "\t"}
    assert mask.mask_calls == 2 and mask.mask_seconds > 0


def test_pydantic_class_response_format_becomes_its_schema(compiler: GrammarCompiler) -> None:
    class Answer(BaseModel):
        # No max_length: XGrammar 0.2.8 compiles a bounded string without JSON escapes, so a
        # multi-line code string (which needs "\n") must stay unbounded (max_tokens bounds it).
        code: str
        language: str = Field(max_length=10)

    spec = grammar_spec_from_config(Answer)
    assert spec is not None and spec.kind == "json_schema"
    assert accepts(compiler, spec, '{"code": "def f():\\n    return 1", "language": "python"}')
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
