"""`FunctionEngine`, the one test-only LM engine: its answer to each call is a function of the
request (like pydantic-ai's `FunctionModel`, for DSPy's engine contract). Logic tests use it
with a scripted answer; they are about what liftdspy does with answers, not model quality (the
real model's recorded answers replay in test_demo_replay.py and test_studies_demo.py).

    engine = FunctionEngine(lambda request, number: ir_answer(IDENTITY_IR), model="scripted-ir")
    lm = build_lm(config, engine=engine); ...; assert engine.calls == 10
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from dspy.lm15 import Message, Request, Response, TextPart, Usage

from liftdspy.lm.store import request_json

# (request, call number from 1) -> the answer text, or a whole Response (e.g. a recorded one)
Answer = Callable[[Request, int], "str | Response"]

STRUCTURED_PARAMS = frozenset({"temperature", "max_tokens", "response_format"})


class FunctionEngine:
    """Answers each call with `answer(request, number)`; counts the calls (thread-safe).

    `structured=True` declares JSON-schema support like the embedded engine, so
    `dspy.JSONAdapter` sends a `response_format`. A text answer becomes a `Response` with
    `finish_reason`, `usage` (input, output tokens) and `provider_data`.
    """

    def __init__(
        self,
        answer: Answer,
        *,
        model: str = "scripted",
        identity: dict[str, str] | None = None,
        finish_reason: str = "stop",
        usage: tuple[int, int] = (1, 1),
        provider_data: dict[str, Any] | None = None,
        structured: bool = False,
    ) -> None:
        self.answer = answer
        self.model = model
        self._identity = identity or {"kind": "scripted", "model": model}
        self.finish_reason = finish_reason
        self.usage = usage
        self.provider_data = provider_data
        if structured:
            self.supports_response_schema = True
            self.supported_params = STRUCTURED_PARAMS
        self.calls = 0
        self._lock = threading.Lock()

    def identity(self) -> dict[str, str]:
        return dict(self._identity)

    def complete(self, request: Request) -> Response:
        with self._lock:
            self.calls += 1
            number = self.calls
        answer = self.answer(request, number)
        if isinstance(answer, Response):
            return answer
        return self.response(answer, number=number)

    def response(self, text: str, *, number: int = 0, finish_reason: str | None = None) -> Response:
        """`text` as this engine's Response (its finish reason, usage and provider data)."""
        tokens_in, tokens_out = self.usage
        return Response(
            id=f"r{number}",
            model=self.model,
            message=Message.assistant([TextPart(text)]),
            finish_reason=finish_reason or self.finish_reason,
            usage=Usage(
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                total_tokens=tokens_in + tokens_out,
            ),
            provider_data=self.provider_data,
        )

    def close(self) -> None:
        pass


def ir_answer(ir: dict) -> str:
    """An NL -> IR answer as the JSON adapters parse it: the IR's content (`lm_ir`), which both
    the content and the full IR output take."""
    from fixtures_ir import lm_ir

    return json.dumps({"ir": lm_ir(ir)})


def asked_field(request: Request, fields: tuple[str, ...] = ("fixed_code", "ir", "code")) -> str:
    """The output field a JSONAdapter request asks for (named in its system message)."""
    system = json.dumps(request_json(request).get("system"))
    return next(field for field in fields if f"`{field}`" in system)


def demos_shown(request: Request) -> int:
    """How many demos (assistant turns) a request carries."""
    return sum(1 for message in request.messages if message.role == "assistant")
