"""OpenAIEngine logic: request serialization, retry/backoff, error messages, secrets.

Network tests here talk to `ScriptedChatServer` (a scripted http.server on 127.0.0.1) or to a
closed port; the real-model tests are in test_openai_engine_local.py.
"""

from __future__ import annotations

import json
import logging
import time

import dspy
import pytest
from dspy import lm15
from dspy.utils.exceptions import LMAuthError, LMNotConfiguredError, LMServerError, LMTransportError
from fixtures_server import CANNED_COMPLETION, ScriptedChatServer, free_port

from liftdspy.chat import RetryPolicy
from liftdspy.chat import retry_after_seconds as _retry_after_seconds
from liftdspy.lm.openai_engine import OpenAIEngine, chat_body
from liftdspy.redaction import redact_url

KEY_ENV = "LIFTDSPY_TEST_OPENAI_KEY"
SECRET = "sk-secret-value-never-shown-5f1c"


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def bare_lm(base_url: str) -> dspy.LM:
    """The engine under DSPy, unrecorded (the recorder is tested in test_lm_shortcuts.py)."""
    engine = OpenAIEngine(base_url, "stub-model", api_key_env=KEY_ENV)
    return dspy.LM(
        "stub-model", engine=engine, cache=False, num_retries=0, temperature=0.0, max_tokens=2048
    )


def fast_engine(base_url: str, **options: object) -> OpenAIEngine:
    settings = {"max_retries": 3, "backoff_base": 0.01, "backoff_max": 0.05, "timeout": 5.0}
    settings.update(options)
    return OpenAIEngine(base_url, "stub-model", api_key_env=KEY_ENV, **settings)


# ---- pure logic ------------------------------------------------------------------------------


def test_redact_url_redacts_userinfo_and_secret_parameters() -> None:
    assert (
        redact_url("https://user:pw@host.example:8443/v1?key=abc&x=1#frag")
        == "https://<redacted>@host.example:8443/v1?key=<redacted>&x=1#frag"
    )
    assert redact_url("http://[::1]:8000/v1") == "http://[::1]:8000/v1"


def test_constructor_refuses_credentials_in_url_without_echoing_them() -> None:
    with pytest.raises(ValueError) as caught:
        OpenAIEngine("https://user:hunter2@host.example/v1", "m")
    assert "hunter2" not in str(caught.value)
    assert "host.example" in str(caught.value)
    with pytest.raises(ValueError, match="http"):
        OpenAIEngine("ftp://host.example/v1", "m")


def test_retry_policy_backoff_is_jittered_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_retries=5, base_delay=1.0, max_delay=8.0, retry_after_cap=60.0)
    delays = [policy.delay(attempt) for attempt in range(10) for _ in range(20)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 50  # jitter, not a fixed schedule
    assert max(policy.delay(0) for _ in range(50)) <= 1.0
    assert policy.delay(0, retry_after=3.0) == 3.0
    assert policy.delay(0, retry_after=20.0) == 20.0
    assert policy.delay(0, retry_after=100.0) == 60.0


def test_retry_after_parsing() -> None:
    assert _retry_after_seconds({"retry-after": "2"}) == 2.0
    assert _retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert _retry_after_seconds({"retry-after": "soon"}) is None
    assert _retry_after_seconds({}) is None
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= _retry_after_seconds({"retry-after": http_date}) <= 31


def test_chat_body_maps_system_messages_config_and_json_schema() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    request = lm15.Request(
        model="ignored",
        system="be brief",
        messages=(
            lm15.Message.user("hi"),
            lm15.Message.assistant("hello"),
            lm15.Message.user("x?"),
        ),
        config=lm15.Config(
            max_tokens=64,
            temperature=0.0,
            stop=("END",),
            seed=3,
            top_k=5,
            response_format={
                "type": "json_schema",
                "name": "Out",
                "schema": schema,
                "strict": True,
            },
        ),
    )
    body = chat_body(request)
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "x?"},
    ]
    assert body["max_tokens"] == 64 and body["temperature"] == 0.0 and body["seed"] == 3
    assert body["stop"] == ["END"]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Out", "schema": schema, "strict": True},
    }
    assert body["extra_body"] == {"top_k": 5}


def test_llama_cpp_style_puts_the_schema_in_a_json_object_format() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    request = lm15.Request(
        model="m",
        messages=(lm15.Message.user("hi"),),
        config=lm15.Config(response_format={"type": "json_schema", "schema": schema}),
    )
    body = chat_body(request, "json_object_schema")
    assert body["response_format"] == {"type": "json_object", "schema": schema}
    engine = OpenAIEngine("http://127.0.0.1:1/v1", "m", response_format_style="json_object_schema")
    assert engine.identity()["response_format_style"] == "json_object_schema"
    with pytest.raises(ValueError, match="json_object_schema"):
        OpenAIEngine("http://127.0.0.1:1/v1", "m", response_format_style="grammar")


def test_chat_body_refuses_tools_instead_of_dropping_them() -> None:
    tool = lm15.FunctionTool(name="f", description="d", parameters={"type": "object"})
    request = lm15.Request(model="m", messages=(lm15.Message.user("hi"),), tools=(tool,))
    with pytest.raises(lm15.UnsupportedFeatureError, match="tools"):
        chat_body(request)


# ---- against the scripted stub server -------------------------------------------------------


def test_plain_call_through_dspy_sends_key_and_reports_usage(api_key: str) -> None:
    with ScriptedChatServer(script=[]) as server:
        lm = bare_lm(server.base_url)
        with dspy.context(track_usage=True):
            outputs = lm("hello")
        assert outputs == ["stub answer"]
        assert server.authorizations == [f"Bearer {api_key}"]
        assert server.bodies[0]["model"] == "stub-model"
        usage = lm.history[-1]["usage"]
        assert usage["prompt_tokens"] == CANNED_COMPLETION["usage"]["prompt_tokens"]
        assert usage["completion_tokens"] == CANNED_COMPLETION["usage"]["completion_tokens"]


def test_stub_503_twice_then_200_is_retried_with_backoff(api_key: str) -> None:
    script = [(503, {}), (503, {"Retry-After": "0.3"})]
    with ScriptedChatServer(script=script) as server:
        engine = fast_engine(server.base_url)
        lm = dspy.LM("stub-model", engine=engine, cache=False, num_retries=0)
        assert lm("hello") == ["stub answer"]
        assert len(server.request_times) == 3
        # the second retry waited for the server's Retry-After
        assert server.request_times[2] - server.request_times[1] >= 0.28


def test_stub_429_exhausts_retries_then_raises_rate_limit(api_key: str) -> None:
    with ScriptedChatServer(script=[(429, {})] * 3) as server:
        engine = fast_engine(server.base_url, max_retries=2)
        request = lm15.Request(model="m", messages=(lm15.Message.user("hi"),))
        with pytest.raises(lm15.RateLimitError) as caught:
            engine.complete(request)
        assert len(server.request_times) == 3
        assert redact_url(server.base_url) in str(caught.value)


def test_stub_500_without_retries_is_a_server_error_in_dspy_terms(api_key: str) -> None:
    with ScriptedChatServer(script=[(500, {})]) as server:
        lm = dspy.LM("stub-model", engine=fast_engine(server.base_url, max_retries=0), cache=False)
        lm.num_retries = 0
        with pytest.raises(LMServerError, match="HTTP 500"):
            lm("hello")


def test_auth_failure_names_endpoint_and_variable_not_key(api_key: str) -> None:
    with ScriptedChatServer(script=[(401, {})]) as server:
        lm = bare_lm(server.base_url)
        with pytest.raises(LMAuthError) as caught:
            lm("hello")
        message = str(caught.value)
        assert server.base_url in message and KEY_ENV in message
        assert api_key not in message
        assert len(server.request_times) == 1  # auth failures are not retried


def test_missing_key_is_reported_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with ScriptedChatServer(script=[]) as server:
        lm = bare_lm(server.base_url)
        with pytest.raises(LMNotConfiguredError, match=KEY_ENV):
            lm("hello")
        assert server.request_times == []


def test_unreachable_host_fails_fast_naming_the_endpoint(api_key: str) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    lm = dspy.LM("stub-model", engine=fast_engine(base_url, max_retries=1), cache=False)
    lm.num_retries = 0
    started = time.monotonic()
    with pytest.raises(LMTransportError) as caught:
        lm("hello")
    assert time.monotonic() - started < 5
    assert base_url in str(caught.value)


def test_json_adapter_sends_schema_and_parses_the_answer(api_key: str) -> None:
    class Add(dspy.Signature):
        """Add two numbers."""

        a: int = dspy.InputField()
        b: int = dspy.InputField()
        total: int = dspy.OutputField()

    with ScriptedChatServer(script=[], reply=json.dumps({"total": 5})) as server:
        lm = bare_lm(server.base_url)
        with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
            prediction = dspy.Predict(Add)(a=2, b=3)
        assert prediction.total == 5
        response_format = server.bodies[0]["response_format"]
        assert response_format["type"] == "json_schema"
        assert response_format["json_schema"]["strict"] is True
        assert "total" in response_format["json_schema"]["schema"]["properties"]


def test_key_never_in_state_repr_or_logs(api_key: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpcore", "liftdspy", "dspy"):
        caplog.set_level(logging.DEBUG, logger=name)
    with ScriptedChatServer(script=[(503, {})]) as server:
        lm = bare_lm(server.base_url)
        lm("hello")
        engine = lm.engine
        state = lm.dump_state()
        assert engine.identity() == {
            "kind": "openai",
            "model": "stub-model",
            "base_url": server.base_url,
        }
    with ScriptedChatServer(script=[(401, {})]) as server:
        failing = bare_lm(server.base_url)
        with pytest.raises(LMAuthError):
            failing("hello")
    assert "retrying" in caplog.text  # the retry was logged...
    assert api_key not in caplog.text  # ...and nothing logged the key
    assert api_key not in repr(engine)
    assert api_key not in json.dumps(state)
    assert state["engine"]["state"]["api_key_env"] == KEY_ENV


def test_saved_lm_reloads_with_the_same_endpoint(api_key: str) -> None:
    with ScriptedChatServer(script=[]) as server:
        lm = bare_lm(server.base_url)
        state = json.loads(json.dumps(lm.dump_state()))
        loaded = dspy.LM.load_state(state, allow_custom_lm_class=True)
        assert isinstance(loaded.engine, OpenAIEngine)
        assert loaded.engine.identity() == lm.engine.identity()
        assert loaded("hello") == ["stub answer"]
