"""`local_lm`, `openai_lm`, `modal_lm`: an `LMConfig` from keyword arguments, built by `build_lm`.

They are thin wrappers, so their LMs are what a config would give: every call goes through the
recorder (`recorder`, default `RecorderConfig()`: replay from `cache/diskcache/default`), DSPy's
own cache is off (its key ignores the endpoint), and endpoints resolve as in `LMConfig.endpoint()`.
Engine arguments that `LMConfig` does not carry (`max_retries`, `first_call_timeout`,
`response_format_style`, ...) go to the engine's constructor.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from liftdspy.lm.config import LMConfig, RecorderConfig, build_engine, build_lm, resolve_base_url
from liftdspy.lm.local.engine import DEFAULT_MAX_TOKENS
from liftdspy.lm.models import DEFAULT_MODEL
from liftdspy.lm.openai_engine import DEFAULT_API_KEY_ENV

if TYPE_CHECKING:
    import dspy

# Keyword arguments of the shortcuts that are `LMConfig` fields (the rest go to the engine).
_CONFIG_OPTIONS = {
    "local": frozenset({"max_string_chars", "max_array_items"}),
    "remote": frozenset({"timeout", "server", "max_string_chars", "max_array_items"}),
}


def _build(
    kind: str,
    fields: dict[str, Any],
    sampling: tuple[float, int],
    recorder: RecorderConfig | None,
    options: dict[str, Any],
) -> dspy.LM:
    """`build_lm(LMConfig(kind, **fields, ...))`; `options` that are no config field go to the
    engine's constructor."""
    accepted = _CONFIG_OPTIONS["local" if kind == "local" else "remote"]
    extra = {key: options.pop(key) for key in accepted & options.keys()}
    if kind != "local" and fields["api_key_env"] is None:
        options["api_key_env"] = None  # a server without auth (LMConfig's None means the default)
    temperature, max_tokens = sampling
    config = LMConfig.model_validate(
        {
            "kind": kind,
            **fields,
            **extra,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "recorder": recorder or RecorderConfig(),
        }
    )
    engine = build_engine(config, **options) if options else None
    return build_lm(config, engine=engine)


def local_lm(
    model: str = DEFAULT_MODEL,
    *,
    model_path: str | Path | None = None,
    n_threads: int | None = None,
    n_ctx: int | None = None,
    seed: int | None = None,
    temperature: float = 0.0,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    recorder: RecorderConfig | None = None,
    **engine_options: Any,
) -> dspy.LM:
    """The embedded llama.cpp model (greedy decoding by default), recorded."""
    path = Path(model_path) if model_path is not None else None
    fields = {"model": model, "model_path": path, "n_threads": n_threads, "n_ctx": n_ctx}
    fields["seed"] = seed
    return _build("local", fields, (temperature, max_tokens), recorder, engine_options)


def openai_lm(
    base_url: str,
    model: str,
    *,
    api_key_env: str | None = DEFAULT_API_KEY_ENV,
    temperature: float = 0.0,
    max_tokens: int = 2048,
    recorder: RecorderConfig | None = None,
    **options: Any,
) -> dspy.LM:
    """Any OpenAI-compatible server (`kind: openai`), recorded; retries live in the engine.
    `api_key_env=None`: the server takes no key."""
    fields = {"base_url": base_url, "model": model, "api_key_env": api_key_env}
    return _build("openai", fields, (temperature, max_tokens), recorder, options)


def modal_lm(
    *,
    workspace: str | None = None,
    base_url: str | None = None,
    model: str | None = None,
    api_key_env: str = DEFAULT_API_KEY_ENV,
    temperature: float = 0.0,
    max_tokens: int = 2048,
    recorder: RecorderConfig | None = None,
    **options: Any,
) -> dspy.LM:
    """The vLLM server deployed by `liftdspy modal deploy` (`kind: modal`), recorded.

    The endpoint is `base_url` if given, else `$LIFTDSPY_MODAL_URL`, else built from the Modal
    workspace name (`workspace` or `$LIFTDSPY_MODAL_WORKSPACE`) and the app config, as
    `LMConfig(kind="modal")` resolves it. `model` defaults to the deployment's served model.
    """
    if workspace is not None:
        base_url = resolve_base_url("modal", base_url, workspace=workspace)
    if model is None:
        from liftdspy.serving.modal_endpoint import ModalDeployment

        model = ModalDeployment.from_env().served_model_name
    fields = {"base_url": base_url, "model": model, "api_key_env": api_key_env}
    return _build("modal", fields, (temperature, max_tokens), recorder, options)
