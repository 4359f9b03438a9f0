"""`ScriptedEngine`, the test-only `FunctionEngine` of the recorder's pure-logic tests, and
shared helpers.

It answers in DSPy's ChatAdapter format and numbers its answers, so a test can tell a live call
(new number) from a replayed one (old number).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import dspy
from dspy.lm15 import Config, Message, Request, Response, Usage
from fixtures_engines import FunctionEngine

from liftdspy.lm import LMConfig, RecorderConfig, build_lm
from liftdspy.lm.store import last_message_text, request_json


class ScriptedEngine(FunctionEngine):
    """A numbered, deterministic answer per call; optional sleep and API key."""

    def __init__(
        self,
        model: str = "scripted-1",
        endpoint: str = "http://scripted.invalid/v1",
        *,
        delay_s: float = 0.0,
        api_key_env: str | None = None,
        echo_key: bool = False,
    ) -> None:
        identity = {"kind": "scripted", "model": model, "endpoint": endpoint}
        super().__init__(self._answer, model=model, identity=identity)
        self.endpoint = endpoint
        self.delay_s = delay_s
        self.api_key_env = api_key_env
        self.echo_key = echo_key

    def _answer(self, request: Request, number: int) -> Response:
        if self.api_key_env:
            key = os.environ[self.api_key_env]  # read at call time, as a real engine does
            assert key
        if self.delay_s:
            time.sleep(self.delay_s)
        question = last_message_text(request_json(request))[:40]
        secret = f" {os.environ[self.api_key_env]}" if self.echo_key and self.api_key_env else ""
        text = (
            f"[[ ## answer ## ]]\nanswer #{number} from {self.model} to {len(question)} chars"
            f" t={request.config.temperature}{secret}\n\n[[ ## completed ## ]]"
        )
        usage = Usage(input_tokens=10 + number, output_tokens=5, total_tokens=15 + number)
        return replace(self.response(text, number=number), usage=usage)


def scripted_lm(
    store_path: Path,
    mode: str = "replay",
    engine: ScriptedEngine | None = None,
    **config: object,
) -> tuple[dspy.LM, ScriptedEngine]:
    engine = engine or ScriptedEngine()
    lm_config = LMConfig(
        kind="local",
        model=engine.model,
        recorder=RecorderConfig(mode=mode, path=store_path),
        **config,
    )
    return build_lm(lm_config, engine=engine), engine


def make_request(text: str = "hello", model: str = "local/scripted-1", **config: object) -> Request:
    return Request(model=model, messages=(Message.user(text),), config=Config(**config))
