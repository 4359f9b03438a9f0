"""A minimal client for an OpenAI-compatible `/chat/completions` endpoint (stdlib only).

The API key is read from the environment variable named by `api_key_env` at call time; it is
never stored, logged or put in an error message.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from liftdspy.chat import RetryPolicy, retry_after_seconds, retryable_status
from liftdspy.chat.json_layout import without_layout
from liftdspy.errors import LiftdspyError
from liftdspy.redaction import redact_url

logger = logging.getLogger(__name__)


class EndpointError(LiftdspyError, RuntimeError):
    """A call that failed; names the endpoint (without credentials) and the reason."""


class TruncatedAnswerError(EndpointError):
    """The answer ended at max_tokens (finish_reason "length"): it is cut off, so it is not
    parsed (a repaired fragment would pass for a complete answer)."""

    def __init__(self, message: str, *, output_tokens: int | None = None) -> None:
        super().__init__(message)
        self.output_tokens = output_tokens


class ChatEndpoint(BaseModel):
    """One model on one OpenAI-compatible server."""

    model_config = ConfigDict(frozen=True)

    base_url: str = Field(description="e.g. http://127.0.0.1:8000/v1")
    model: str = Field(min_length=1)
    api_key_env: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0)

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {redact_url(value)!r}")
        if parts.username or parts.password or parts.query:
            raise ValueError("base_url must not carry credentials; name the key in api_key_env")
        return value.rstrip("/")

    def _headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise EndpointError(
                    f"{redact_url(self.base_url)}: environment variable {self.api_key_env} "
                    "(the API key) is not set"
                )
            headers["authorization"] = f"Bearer {key}"
        return headers

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` (plus `model`) to /chat/completions; the decoded JSON response.
        Retries as the DSPy engine does (`liftdspy.chat.retry`: 408/409/429/5xx, connection
        errors; jittered backoff, a server's Retry-After obeyed)."""
        url = f"{self.base_url}/chat/completions"
        # The JSON layout hint is for liftdspy's own grammar; as OpenAIEngine, never sent.
        data = json.dumps({"model": self.model, **without_layout(body)}).encode("utf-8")
        where = redact_url(url)
        policy = RetryPolicy(max_retries=self.max_retries)
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(url, data=data, headers=self._headers(), method="POST")
            retry_after = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode("utf-8", errors="replace")[:300]
                if not retryable_status(exc.code) or attempt == self.max_retries:
                    raise EndpointError(f"{where}: HTTP {exc.code}: {detail}") from None
                reason = f"HTTP {exc.code}"
                retry_after = retry_after_seconds(exc.headers)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.max_retries:
                    raise EndpointError(f"{where}: unreachable: {exc}") from None
                reason = str(exc)
            delay = policy.delay(attempt, retry_after)
            logger.info("%s: %s; retry %d in %.1fs", where, reason, attempt + 1, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def message_text(self, body: dict[str, Any]) -> str:
        """The first choice's message content for `body`; `TruncatedAnswerError` when the
        answer ended at max_tokens."""
        response = self.complete(body)
        try:
            choice = response["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise EndpointError(
                f"{redact_url(self.base_url)}: response has no choices[0].message.content"
            ) from None
        if not isinstance(content, str) or not content:
            raise EndpointError(f"{redact_url(self.base_url)}: empty answer")
        if choice.get("finish_reason") == "length":
            usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
            tokens = usage.get("completion_tokens", body.get("max_tokens"))
            raise TruncatedAnswerError(
                f"{redact_url(self.base_url)}: answer truncated at {tokens} tokens "
                f"(finish_reason length, max_tokens={body.get('max_tokens')}); a cut-off answer "
                "is not parsed; raise max_tokens",
                output_tokens=tokens,
            )
        return content
