"""A DSPy engine for any OpenAI-compatible chat server (vLLM on Modal, llama.cpp, ...).

`OpenAIEngine` implements DSPy 3.4's custom-engine contract (`dspy.clients.engines.base.Engine`):
`complete(dspy.lm15.Request) -> dspy.lm15.Response`, `stream`, `close`, and `dump_state` /
`load_state` so a program saved with `program.save()` records where its LM lives.

What it guarantees:

- Structured outputs. It declares `supports_response_schema = True` and lists
  `"response_format"` in `supported_params`, which is what `dspy.JSONAdapter` checks before it
  attaches a JSON schema. The schema goes out in the OpenAI-standard form
  `response_format={"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`, which
  vLLM (any version) and llama.cpp accept. vLLM >= 0.12 also takes its own
  `extra_body={"structured_outputs": {"json": schema}}` (the older `guided_json` was removed and is
  silently ignored); we deliberately use the OpenAI form. llama-cpp-python's server
  (`python -m llama_cpp.server`, 0.3.x) rejects that form (HTTP 500 carrying a validation error)
  and honours only `{"type": "json_object", "schema": ...}`: pass
  `response_format_style="json_object_schema"` for it.
- Retries. 408, 409, 429, 5xx, timeouts and connection errors are retried with exponential
  backoff and full jitter, honouring `Retry-After` (`liftdspy.chat.retry`, as the runtime does).
  The engine owns retries, so `build_lm` builds the `dspy.LM` with `num_retries=0` (DSPy would
  otherwise retry the retried call again).
- Credentials. The API key is read from the environment variable named by `api_key_env` at call
  time. It is never stored on the engine, in `dump_state()`, in `repr()`, or in log records; errors
  name the endpoint and the variable, never the key.
- Cold starts. Until the first call succeeds, requests use `first_call_timeout` (a Modal container
  loading a 7B model can take minutes); afterwards `timeout`.
- Usage. Token counts reported by the server become `Response.usage`, which DSPy records in
  `lm.history` and in `dspy.track_usage()`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from dspy import lm15

from liftdspy.chat import (
    ResponseFormatStyle,
    RetryPolicy,
    check_style,
    openai_response_format,
    response_format_in_style,
    retry_after_seconds,
    retryable_status,
)
from liftdspy.chat.json_layout import without_layout
from liftdspy.redaction import redact_url

if TYPE_CHECKING:
    from collections.abc import Iterator

    import openai

logger = logging.getLogger(__name__)

PROVIDER = "openai-compatible"
DEFAULT_API_KEY_ENV = "LIFTDSPY_API_KEY"


def _text_of(parts: Any) -> str:
    if isinstance(parts, str):
        return parts
    return "".join(getattr(part, "text", "") or "" for part in parts)


def _response_format_to_chat(
    format_config: dict[str, Any], style: ResponseFormatStyle = "json_schema"
) -> dict[str, Any]:
    """Canonical lm15 response_format -> the Chat Completions form the server honours
    (`liftdspy.chat.response_format_in_style`, as the runtime sends it)."""
    if format_config.get("type") == "json_object":
        return {"type": "json_object"}
    if format_config.get("type") != "json_schema":
        raise lm15.UnsupportedFeatureError(
            f"response_format type {format_config.get('type')!r} is not supported",
            feature="config.response_format",
        )
    openai_form = openai_response_format(
        format_config["schema"],
        name=format_config.get("name"),
        strict=format_config.get("strict", True),
    )
    return response_format_in_style(openai_form, style)


def chat_body(
    request: lm15.Request,
    response_format_style: ResponseFormatStyle = "json_schema",
    *,
    max_string_chars: int | None = None,
    max_array_items: int | None = None,
) -> dict[str, Any]:
    """Serialize a canonical request to Chat Completions keyword arguments (without `model`).

    Text conversations only: tool calls, images and reasoning dials are refused with
    `UnsupportedFeatureError` rather than silently dropped.
    """
    if request.tools:
        raise lm15.UnsupportedFeatureError("OpenAIEngine sends no tools", feature="tools")
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": _text_of(request.system)})
    for index, message in enumerate(request.messages):
        text = message.text
        if text is None or message.role == "tool":
            raise lm15.UnsupportedFeatureError(
                f"message {index} ({message.role}) has non-text parts; "
                "OpenAIEngine sends text only",
                feature=f"messages[{index}]",
            )
        role = "system" if message.role == "developer" else message.role
        messages.append({"role": role, "content": text})

    config = request.config
    for name in ("tool_choice", "reasoning", "cache", "probabilities"):
        if getattr(config, name, None) is not None:
            raise lm15.UnsupportedFeatureError(
                f"config.{name} is not supported by OpenAIEngine", feature=f"config.{name}"
            )
    body: dict[str, Any] = {"messages": messages}
    for name in (
        "max_tokens",
        "temperature",
        "top_p",
        "seed",
        "frequency_penalty",
        "presence_penalty",
    ):
        value = getattr(config, name)
        if value is not None:
            body[name] = value
    if config.stop:
        body["stop"] = list(config.stop)
    if config.logprobs is not None:
        body["logprobs"] = True
        if config.logprobs > 0:
            body["top_logprobs"] = config.logprobs
    if config.response_format:
        format_config = dict(config.response_format)
        if (max_string_chars or max_array_items) and "schema" in format_config:
            from liftdspy.lm.grammar import cap_schema

            format_config["schema"] = cap_schema(
                format_config["schema"],
                max_string_chars=max_string_chars,
                max_array_items=max_array_items,
            )
        body["response_format"] = _response_format_to_chat(format_config, response_format_style)
    # The JSON layout hint is for liftdspy's own grammar (LocalEngine); a server decides its
    # own whitespace, and OpenAI refuses `metadata` without `store`, so it is not sent.
    extra: dict[str, Any] = without_layout(config.extensions)
    if config.top_k is not None:
        extra["top_k"] = config.top_k  # vLLM and llama.cpp take top_k as an extra field
    if extra:
        body["extra_body"] = extra
    return body


class OpenAIEngine:
    """Calls one model on one OpenAI-compatible server. See the module docstring."""

    supports_response_schema = True
    supports_function_calling = False
    supports_reasoning = False
    supported_params = frozenset(
        {
            "temperature",
            "max_tokens",
            "top_p",
            "stop",
            "seed",
            "frequency_penalty",
            "presence_penalty",
            "logprobs",
            "top_logprobs",
            "response_format",
        }
    )

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = DEFAULT_API_KEY_ENV,
        timeout: float = 60.0,
        first_call_timeout: float = 600.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        connect_timeout: float = 10.0,
        response_format_style: ResponseFormatStyle = "json_schema",
        server: dict[str, Any] | None = None,
        max_string_chars: int | None = None,
        max_array_items: int | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"base_url must be an http(s) URL with a host, got {redact_url(base_url)!r}"
            )
        if parts.username or parts.password or parts.query:
            raise ValueError(
                f"base_url {redact_url(base_url)!r} carries credentials or a query string; "
                "put the API key in an environment variable and pass its name as api_key_env"
            )
        if not model:
            raise ValueError("model must be the server's model name (vLLM: --served-model-name)")
        if timeout <= 0 or first_call_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.response_format_style: ResponseFormatStyle = check_style(response_format_style)
        # Decoding budget for structured outputs (as LocalEngine): caps every schema string and
        # array so a small model's answer ends as valid JSON inside max_tokens.
        self.max_string_chars = max_string_chars
        self.max_array_items = max_array_items
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = float(timeout)
        self.first_call_timeout = float(first_call_timeout)
        self.connect_timeout = float(connect_timeout)
        self.retry = RetryPolicy(
            max_retries=max_retries, base_delay=backoff_base, max_delay=backoff_max
        )
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()
        self._warm = False
        # What the server is (vLLM version, weights): part of the identity, so of every
        # recording key; checked against the live server before the first call.
        self.server = None
        if server is not None:
            from liftdspy.serving.server_identity import ServerIdentity

            self.server = ServerIdentity.model_validate(server)
        self._server_checked = False

    # ---- identity and persistence -------------------------------------------------------

    def identity(self) -> dict[str, str]:
        """What this engine talks to, safe to log and to key caches on."""
        identity = {"kind": "openai", "model": self.model, "base_url": redact_url(self.base_url)}
        if self.response_format_style != "json_schema":  # it changes what the server generates
            identity["response_format_style"] = self.response_format_style
        if self.max_string_chars or self.max_array_items:  # they change the schema sent
            identity["schema_caps"] = f"str{self.max_string_chars}-items{self.max_array_items}"
        if self.server is not None:
            identity.update(self.server.identity_fields())
        return identity

    def __repr__(self) -> str:
        return (
            f"OpenAIEngine(base_url={redact_url(self.base_url)!r}, model={self.model!r}, "
            f"api_key_env={self.api_key_env!r})"
        )

    def dump_state(self) -> dict[str, Any]:
        """JSON-serializable constructor arguments. Holds the key's variable name, never the key."""
        return {
            "base_url": redact_url(self.base_url),
            "model": self.model,
            "api_key_env": self.api_key_env,
            "timeout": self.timeout,
            "first_call_timeout": self.first_call_timeout,
            "connect_timeout": self.connect_timeout,
            "max_retries": self.retry.max_retries,
            "backoff_base": self.retry.base_delay,
            "backoff_max": self.retry.max_delay,
            "response_format_style": self.response_format_style,
            "server": self.server.model_dump(mode="json") if self.server is not None else None,
            "max_string_chars": self.max_string_chars,
            "max_array_items": self.max_array_items,
        }

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> OpenAIEngine:
        return cls(**state)

    # ---- the engine contract -------------------------------------------------------------

    def complete(self, request: lm15.Request) -> lm15.Response:
        from dspy.clients.engines.base import validate_request

        validate_request(request)
        body = chat_body(
            request,
            self.response_format_style,
            max_string_chars=self.max_string_chars,
            max_array_items=self.max_array_items,
        )
        client = self._authorized_client()
        if self.server is not None and not self._server_checked:
            self._check_server()
        started = time.monotonic()
        attempt = 0
        while True:
            timeout = self.timeout if self._warm else self.first_call_timeout
            try:
                completion = client.with_options(
                    timeout=self._timeout(timeout)
                ).chat.completions.create(model=self.model, **body)
                break
            except Exception as exc:
                error = self._translate(exc)
                if not self._retryable(error) or attempt >= self.retry.max_retries:
                    raise error from None
                wait = self.retry.delay(attempt, error.retry_after)
                logger.warning(
                    "%s at %s (attempt %d of %d); retrying in %.1fs",
                    type(error).__name__,
                    redact_url(self.base_url),
                    attempt + 1,
                    self.retry.max_retries + 1,
                    wait,
                )
                time.sleep(wait)
                attempt += 1
        self._warm = True
        logger.debug(
            "chat completion from %s in %.2fs",
            redact_url(self.base_url),
            time.monotonic() - started,
        )
        payload = (
            completion.model_dump(exclude_none=True)
            if hasattr(completion, "model_dump")
            else completion
        )
        return lm15.response_from_openai_chat(payload, model=self.model)

    def stream(self, request: lm15.Request) -> Iterator[Any]:
        """One complete call replayed as stream events (no incremental tokens)."""
        return lm15.response_to_events(self.complete(request))

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # ---- internals ------------------------------------------------------------------------

    def _check_server(self) -> None:
        from liftdspy.serving.server_identity import ServerIdentityError, check_server

        assert self.server is not None
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        try:
            check_server(
                self.server, self.base_url, self.model, key, timeout=self.first_call_timeout
            )
        except ServerIdentityError as exc:
            if exc.status in (401, 403):
                raise lm15.AuthError(
                    f"{redact_url(self.base_url)} (model {self.model!r}) refused the credentials "
                    f"(HTTP {exc.status}); check the key in ${self.api_key_env}",
                    provider=PROVIDER,
                    status=exc.status,
                ) from None
            raise lm15.ProviderError(str(exc), provider=PROVIDER) from None
        self._server_checked = True

    def _timeout(self, total: float) -> Any:
        import httpx

        return httpx.Timeout(total, connect=min(self.connect_timeout, total))

    def _api_key(self) -> str:
        if self.api_key_env is None:
            return "no-key"  # the SDK insists on a value; the server ignores it
        key = os.environ.get(self.api_key_env)
        if not key:
            raise lm15.NotConfiguredError(
                f"no API key for {redact_url(self.base_url)}: set the environment variable "
                f"{self.api_key_env} (or pass api_key_env=None for a server without auth)",
                provider=PROVIDER,
                env_keys=(self.api_key_env,),
            )
        return key

    def _authorized_client(self) -> openai.OpenAI:
        key = self._api_key()
        with self._lock:
            if self._client is None:
                try:
                    import openai
                except ImportError as exc:  # pragma: no cover - depends on the environment
                    raise ImportError(
                        "OpenAIEngine needs the openai package: pip install 'liftdspy[modal]'"
                    ) from exc
                self._client = openai.OpenAI(
                    base_url=self.base_url, api_key="unset", max_retries=0, timeout=self.timeout
                )
            client = self._client
        return client.with_options(api_key=key)

    @staticmethod
    def _retryable(error: lm15.LM15Error) -> bool:
        """Time-outs, connection errors and the statuses `liftdspy.chat.retryable_status` names."""
        if isinstance(error, lm15.TimeoutError | lm15.TransportError):
            return True
        status = getattr(error, "status", None)
        return isinstance(status, int) and retryable_status(status)

    def _translate(self, exc: Exception) -> lm15.LM15Error:
        """Map an openai SDK exception to the lm15 error DSPy understands; messages name the
        endpoint and never include request headers."""
        import openai

        where = f"{redact_url(self.base_url)} (model {self.model!r})"
        if isinstance(exc, lm15.LM15Error):
            return exc
        if isinstance(exc, openai.APITimeoutError):
            return lm15.TimeoutError(f"request to {where} timed out", provider=PROVIDER)
        if isinstance(exc, openai.APIConnectionError):
            return lm15.TransportError(
                f"cannot reach {where}: {type(exc.__cause__ or exc).__name__}; "
                "is the server running and the URL right?",
                provider=PROVIDER,
            )
        if not isinstance(exc, openai.APIStatusError):
            return lm15.ProviderError(
                f"unexpected failure calling {where}: {type(exc).__name__}", provider=PROVIDER
            )
        status = exc.status_code
        detail = _short_detail(exc)
        fields = {"provider": PROVIDER, "status": status, "request_id": exc.request_id}
        if status in (401, 403):
            hint = (
                f"check the key in ${self.api_key_env}"
                if self.api_key_env
                else "the server requires a key; pass api_key_env"
            )
            return lm15.AuthError(
                f"{where} refused the credentials (HTTP {status}); {hint}", **fields
            )
        if status == 429:
            return lm15.RateLimitError(
                f"{where} is rate limiting (HTTP 429){detail}",
                retry_after=retry_after_seconds(exc.response.headers),
                **fields,
            )
        if status in (408, 504):
            return lm15.TimeoutError(f"{where} timed out (HTTP {status}){detail}", **fields)
        if status >= 500:
            return lm15.ServerError(
                f"{where} failed (HTTP {status}){detail}",
                retry_after=retry_after_seconds(exc.response.headers),
                **fields,
            )
        if status == 404:
            return lm15.UnsupportedModelError(
                f"{where} answered 404: wrong base_url (it should end in /v1) or the server does "
                f"not serve this model{detail}",
                **fields,
            )
        if "context" in detail.lower() and (
            "length" in detail.lower() or "window" in detail.lower()
        ):
            return lm15.ContextLengthError(f"{where} rejected the prompt{detail}", **fields)
        return lm15.InvalidRequestError(
            f"{where} rejected the request (HTTP {status}){detail}", **fields
        )


def _short_detail(exc: Any) -> str:
    """The server's own error message, shortened; never the request (which holds no key anyway)."""
    body = getattr(exc, "body", None)
    message = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        message = message or body.get("detail")
    if not message:
        return ""
    text = str(message).replace("\n", " ")
    return f": {text[:300]}"
