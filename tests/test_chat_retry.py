"""One retry policy and one response_format conversion for both clients of a chat server: the
DSPy engine (`OpenAIEngine`) and the DSPy-free runtime (`ChatEndpoint`). They used to differ: the
engine gave up on HTTP 409 and the runtime on 501, and the runtime ignored Retry-After.

Against `ScriptedChatServer` (a scripted http.server on 127.0.0.1; logic, not a model)."""

from __future__ import annotations

import pytest
from dspy import lm15
from fixtures_server import ScriptedChatServer

from liftdspy.chat import openai_response_format, response_format_in_style, retryable_status
from liftdspy.lm.openai_engine import OpenAIEngine, chat_body
from liftdspy.runtime import ChatEndpoint, EndpointError

SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}


def _engine_call(base_url: str, max_retries: int) -> str:
    engine = OpenAIEngine(
        base_url, "m", api_key_env=None, max_retries=max_retries, backoff_base=0.01
    )
    request = lm15.Request(model="m", messages=(lm15.Message.user("hi"),))
    return engine.complete(request).text or ""


def _runtime_call(base_url: str, max_retries: int) -> str:
    endpoint = ChatEndpoint(base_url=base_url, model="m", max_retries=max_retries)
    return endpoint.message_text({"messages": [{"role": "user", "content": "hi"}]})


CLIENTS = [pytest.param(_engine_call, id="engine"), pytest.param(_runtime_call, id="runtime")]


def test_the_retried_statuses():
    assert all(retryable_status(s) for s in (408, 409, 429, 500, 501, 502, 503, 504, 599))
    assert not any(retryable_status(s) for s in (400, 401, 403, 404, 422))


@pytest.mark.parametrize("call", CLIENTS)
def test_both_clients_retry_the_same_statuses_and_obey_retry_after(call):
    script = [(409, {}), (501, {"Retry-After": "0.3"})]
    with ScriptedChatServer(script=script) as server:
        assert call(server.base_url, 2) == "stub answer"
    assert len(server.request_times) == 3
    assert server.request_times[2] - server.request_times[1] >= 0.28


@pytest.mark.parametrize("call", CLIENTS)
def test_both_clients_give_up_at_once_on_a_bad_request(call):
    with (
        ScriptedChatServer(script=[(400, {})]) as server,
        pytest.raises((lm15.LM15Error, EndpointError), match="400"),
    ):
        call(server.base_url, 3)
    assert len(server.request_times) == 1


@pytest.mark.parametrize("style", ["json_schema", "json_object_schema"])
def test_the_engine_sends_what_the_runtime_sends(style):
    request = lm15.Request(
        model="m",
        messages=(lm15.Message.user("hi"),),
        config=lm15.Config(
            response_format={"type": "json_schema", "name": "Out", "schema": SCHEMA}
        ),
    )
    exported = openai_response_format(SCHEMA, name="Out")  # what a prompt pack holds
    assert chat_body(request, style)["response_format"] == response_format_in_style(exported, style)
