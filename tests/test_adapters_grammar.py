"""The compact adapter's demos and the grammar the engine compiles for its requests agree byte for
byte: a demo the adapter rendered into a real request is exactly a text the request's grammar
accepts (and the indented layout is not), on a byte vocabulary and through the real SmolLM2
tokenizer with XGrammar, as the embedded engine decodes.
"""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pytest
from fixtures_engines import FunctionEngine
from fixtures_ir import ADD_IR, lm_ir

from liftdspy.ir import IntermediateRepresentation
from liftdspy.lm import LMConfig, RecorderConfig, build_lm
from liftdspy.lm.grammar import GrammarSpec, cap_schema, grammar_spec_from_config
from liftdspy.programs import build_program

xgrammar = pytest.importorskip("xgrammar", reason="xgrammar is in the `local` extra")

from liftdspy.lm.grammar import GrammarCompiler, TokenMask  # noqa: E402

# The request comes from a scripted LM with recorder mode "off"; the grammar is the real one.
pytestmark = [pytest.mark.local, pytest.mark.scripted_lm]

BYTE_VOCAB = [bytes([i]) for i in range(256)] + [b""]
STOP = 256


def adapter_request(tmp_path: Path, adapter: str):
    """The request an NL -> IR program with one labelled demo sends with `adapter`, and the
    demo text it holds (the scripted LM answers ADD_IR's content)."""
    seen = []

    def reply(request, number):
        seen.append(request)
        return json.dumps({"ir": lm_ir(ADD_IR)})

    engine = FunctionEngine(reply, model="scripted-grammar", structured=True)
    config = LMConfig(
        kind="local", model="scripted-grammar", recorder=RecorderConfig(mode="off", path=tmp_path)
    )
    program = build_program("nl_to_ir", adapter=adapter)  # type: ignore[arg-type]
    gold = IntermediateRepresentation.model_validate(ADD_IR)
    program.translate.demos = [dspy.Example(prompt="add", ir=gold).with_inputs("prompt")]
    with dspy.context(lm=build_lm(config, engine=engine)):
        program(prompt="add two integers")
    (request,) = seen
    demo = next(message.text for message in request.messages if message.role == "assistant")
    return request, demo


def engine_spec(request) -> GrammarSpec:
    """The grammar the embedded engine compiles for `request` (its default decoding caps)."""
    spec = grammar_spec_from_config(request.config.response_format, request.config.extensions)
    assert spec is not None
    capped = cap_schema(json.loads(spec.source), max_string_chars=100, max_array_items=3)
    return spec.model_copy(update={"source": json.dumps(capped)})


def accepts(compiler: GrammarCompiler, spec: GrammarSpec, text: str) -> bool:
    mask = TokenMask(compiler.compile(spec), len(BYTE_VOCAB))
    return all(mask.accept(byte) for byte in text.encode()) and mask.accept(STOP)


@pytest.fixture(scope="module")
def compiler() -> GrammarCompiler:
    return GrammarCompiler(BYTE_VOCAB, [STOP])


def test_the_compact_grammar_accepts_exactly_the_compact_demo(compiler, tmp_path) -> None:
    request, demo = adapter_request(tmp_path, "compact")
    spec = engine_spec(request)
    assert spec.layout == "compact"
    assert "\n" not in demo
    assert accepts(compiler, spec, demo)
    value = json.loads(demo)
    assert not accepts(compiler, spec, json.dumps(value, indent=2))
    assert demo == json.dumps(value, separators=(",", ":"))
    assert not accepts(compiler, spec, json.dumps(value, separators=(", ", ": ")))
    assert not accepts(compiler, spec, demo.replace(",", ", ", 1))


def test_the_json_adapter_keeps_the_indented_grammar(compiler, tmp_path) -> None:
    request, demo = adapter_request(tmp_path, "json")
    spec = engine_spec(request)
    assert spec.layout == "indent2"
    assert accepts(compiler, spec, demo)
    assert not accepts(compiler, spec, json.dumps(json.loads(demo), separators=(", ", ": ")))
    # The same schema in the two layouts: two cache entries, two grammars.
    compact = spec.model_copy(update={"layout": "compact"})
    assert compiler.compile(compact) is not compiler.compile(spec)
    assert compiler.compile(compact) is compiler.compile(compact)


def test_the_real_tokenizer_walks_the_compact_demo_through_the_engines_grammar(tmp_path) -> None:
    """Token by token through SmolLM2's vocabulary, as LocalEngine decodes: every token of the
    demo is allowed and the grammar may stop right after it."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is in the `local` extra")
    from liftdspy.lm.local_engine import LocalEngine
    from liftdspy.lm.models import ModelNotFoundError

    try:
        model = LocalEngine(n_threads=1, n_ctx=512).loaded()
    except ModelNotFoundError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"SmolLM2 GGUF not installed: {exc}")
    request, demo = adapter_request(tmp_path, "compact")
    compiled = model.grammar_compiler().compile(engine_spec(request))
    mask = TokenMask(compiled, model.n_vocab)
    tokens = model.tokenize_text(demo.encode("utf-8"))
    for token in tokens:
        assert mask.accept(token), model.pieces()[token]
    assert mask.is_completed()
    indented_tokens = model.tokenize_text(json.dumps(json.loads(demo), indent=2).encode("utf-8"))
    assert len(tokens) < 0.8 * len(indented_tokens)  # no newlines and indentation to write
    indented = TokenMask(compiled, model.n_vocab)
    assert not all(indented.accept(token) for token in indented_tokens)
