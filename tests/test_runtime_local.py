"""Same LM, same inputs: the DSPy program and the DSPy-free runtime give the same outputs.

Runs the real `python -m llama_cpp.server` with the embedded SmolLM2 GGUF at temperature 0
(session fixture from tests/fixtures_server.py; skipped with the reason when the `local` extra
is missing). llama-cpp-python's server only honours `{"type": "json_object", "schema": ...}`,
so both sides use `response_format_style="json_object_schema"`.
"""

from __future__ import annotations

from pathlib import Path

import dspy
import pytest

from liftdspy.code_check import extract_code
from liftdspy.datasets import load_tasks
from liftdspy.export import write_export
from liftdspy.lm.config import LMConfig
from liftdspy.lm.openai_engine import OpenAIEngine
from liftdspy.programs import build_program
from liftdspy.runtime import OutputError, PromptRuntime
from tests.fixtures_server import LlamaServer  # llama_server: tests/conftest.py

pytestmark = [pytest.mark.local, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "LIFTDSPY_TEST_LLAMA_KEY"
STYLE = "json_object_schema"


@pytest.fixture()
def served(llama_server: LlamaServer, monkeypatch) -> LlamaServer:
    monkeypatch.setenv(KEY_ENV, llama_server.api_key)
    return llama_server


def both_sides(server: LlamaServer, program: dspy.Module, out: Path, max_tokens: int):
    config = LMConfig(
        kind="openai",
        model=server.model,
        base_url=server.base_url,
        api_key_env=KEY_ENV,
        temperature=0.0,
        max_tokens=max_tokens,
    )
    write_export(program, out, lm_config=config)
    engine = OpenAIEngine(
        server.base_url, server.model, api_key_env=KEY_ENV, response_format_style=STYLE
    )
    lm = dspy.LM(
        server.model,
        engine=engine,
        cache=False,
        temperature=0.0,
        max_tokens=max_tokens,
        num_retries=0,
    )
    return lm, PromptRuntime.from_dir(out, response_format_style=STYLE)


def test_ir_to_code_same_code_as_dspy(served: LlamaServer, tmp_path: Path) -> None:
    task = load_tasks([ROOT / "datasets/core/text_and_collections.jsonl"])[0]
    program = build_program("ir_to_code", "predict")
    lm, runtime = both_sides(served, program, tmp_path / "out", max_tokens=96)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        expected = program(ir=task.ir)
    assert expected.error is None, expected.error
    from liftdspy.ir import render_stub

    got = runtime.run("implement", function_stub=render_stub(task.ir))
    assert extract_code(got["code"]) == expected.code
    assert expected.code.strip()


def test_repair_with_three_inputs_same_answer_as_dspy(served: LlamaServer, tmp_path) -> None:
    """Three placeholders filled in one message. (NL->IR cannot run here: its system message
    with the IR schema is ~2100 tokens, more than the fixture server's 2048-token context.)"""
    task = load_tasks([ROOT / "datasets/core/text_and_collections.jsonl"])[1]
    from liftdspy.ir import render_stub

    inputs = {
        "function_stub": render_stub(task.ir),
        "code": f"def {task.ir.signature.name}(*args):\n    return None",
        "failures": "assert result is not None  ->  AssertionError",
    }
    program = build_program("pipeline", "predict", repair_rounds=1)
    lm, runtime = both_sides(served, program, tmp_path / "out", max_tokens=96)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        try:
            expected = program.repair(**inputs).fixed_code
        except dspy.utils.exceptions.AdapterParseError:
            expected = None
    if expected is None:  # the answer was cut at max_tokens: the runtime must refuse it too
        with pytest.raises(OutputError):
            runtime.run("repair", **inputs)
        return
    assert runtime.run("repair", **inputs) == {"fixed_code": expected}
