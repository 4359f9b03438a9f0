"""OpenAIEngine against a REAL OpenAI-compatible server: llama-cpp-python's server on
127.0.0.1 serving the embedded SmolLM2 GGUF (session fixture `llama_server`).

What llama-cpp-python's server (0.3.x) does with structured outputs: it constrains generation for
`response_format={"type": "json_object", "schema": ...}` (its own form) and rejects the OpenAI
`json_schema` form with HTTP 500, so the structured-output test uses
`response_format_style="json_object_schema"`; a second test pins the rejection.
"""

from __future__ import annotations

import json
import logging
import time

import dspy
import jsonschema
import pytest
from dspy.utils.exceptions import LMAuthError, LMServerError, LMTransportError
from fixtures_server import LlamaServer, free_port  # llama_server: tests/conftest.py

from liftdspy.lm.openai_engine import OpenAIEngine

pytestmark = pytest.mark.local

KEY_ENV = "LIFTDSPY_TEST_LLAMA_KEY"


@pytest.fixture
def keyed(llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch) -> LlamaServer:
    monkeypatch.setenv(KEY_ENV, llama_server.api_key)
    return llama_server


def bare_lm(server: LlamaServer, max_tokens: int = 2048, **engine_options: object) -> dspy.LM:
    """The engine under DSPy, unrecorded: these tests are about the server and the engine."""
    engine = OpenAIEngine(server.base_url, server.model, api_key_env=KEY_ENV, **engine_options)
    return dspy.LM(
        server.model,
        engine=engine,
        cache=False,
        num_retries=0,
        temperature=0.0,
        max_tokens=max_tokens,
    )


def test_plain_completion_through_dspy_reports_usage(keyed: LlamaServer) -> None:
    lm = bare_lm(keyed, max_tokens=16)
    with dspy.context(track_usage=True):
        outputs = lm("The capital of France is")
    assert len(outputs) == 1 and isinstance(outputs[0], str) and outputs[0].strip()
    usage = lm.history[-1]["usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= 16


@pytest.mark.slow
def test_json_schema_output_conforms_and_parses(keyed: LlamaServer) -> None:
    lm = bare_lm(keyed, max_tokens=64, response_format_style="json_object_schema")
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        prediction = dspy.Predict(person_signature())(text="Ada is 36 years old.")
    assert isinstance(prediction.name, str)
    assert isinstance(prediction.age, int)
    raw = json.loads(lm.history[-1]["outputs"][0])
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    jsonschema.validate(raw, schema)


def person_signature() -> type[dspy.Signature]:
    class Person(dspy.Signature):
        """Extract the person's name and age."""

        text: str = dspy.InputField()
        name: str = dspy.OutputField()
        age: int = dspy.OutputField()

    return Person


def test_llama_cpp_python_rejects_the_openai_json_schema_form(keyed: LlamaServer) -> None:
    """Pins the server's behaviour that `response_format_style` exists for."""
    engine = OpenAIEngine(keyed.base_url, keyed.model, api_key_env=KEY_ENV, max_retries=0)
    lm = dspy.LM(keyed.model, engine=engine, cache=False, num_retries=0, max_tokens=16)
    with (
        dspy.context(lm=lm, adapter=dspy.JSONAdapter()),
        pytest.raises(LMServerError, match="json_object"),
    ):
        dspy.Predict(person_signature())(text="Ada is 36 years old.")


def test_wrong_key_names_the_endpoint_not_the_key(
    keyed: LlamaServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-key-for-this-test-987654"
    monkeypatch.setenv(KEY_ENV, wrong)
    lm = bare_lm(keyed)
    with pytest.raises(LMAuthError) as caught:
        lm("hello")
    message = str(caught.value)
    assert keyed.base_url in message and KEY_ENV in message
    assert wrong not in message and keyed.api_key not in message
    assert wrong not in caplog.text and keyed.api_key not in caplog.text
    assert keyed.api_key not in json.dumps(lm.dump_state())
    assert keyed.api_key not in repr(lm.engine)


def test_closed_port_fails_fast_naming_the_endpoint(keyed: LlamaServer) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    engine = OpenAIEngine(
        base_url, keyed.model, api_key_env=KEY_ENV, max_retries=1, backoff_base=0.01, timeout=2
    )
    lm = dspy.LM(keyed.model, engine=engine, cache=False, num_retries=0)
    started = time.monotonic()
    with pytest.raises(LMTransportError, match=base_url.replace(".", r"\.")):
        lm("hello")
    assert time.monotonic() - started < 5
