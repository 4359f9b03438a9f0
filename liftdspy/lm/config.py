"""`LMConfig` (what model, where, how to sample, how to record) and `build_lm`, the one LM factory.

    lm = build_lm(LMConfig(kind="local", model="smollm2-135m", model_path=Path("...gguf")))
    dspy.configure(lm=lm)
    recorder_of(lm).stats()

`build_lm` returns `dspy.LM(f"{kind}/{model}", engine=RecordingEngine(engine), cache=False, ...)`.
The engine module for the kind is imported only when that kind is built, so the `local` extra
(llama.cpp) is not needed to build an `openai` LM, and vice versa. `LMConfig.endpoint()` is the one
place an endpoint is resolved (`kind: modal` without `base_url`: `$LIFTDSPY_MODAL_URL`, else the
deployment's URL). `liftdspy.lm.shortcuts` (`local_lm`, `openai_lm`, `modal_lm`) builds an
`LMConfig` from keyword arguments and calls `build_lm`.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import dspy
from pydantic import BaseModel, ConfigDict, Field, model_validator

from liftdspy.lm.recorder import (
    AsyncRecordingEngine,
    IdentifiedEngine,
    RecorderMode,
    RecordingEngine,
    RolloutScope,
    effective_mode,
)
from liftdspy.lm.recordings import import_committed
from liftdspy.lm.store import default_store_path
from liftdspy.serving.server_identity import ServerIdentity
from liftdspy.versioning import Version
from liftdspy.yaml_words import OffWhenFalse

logger = logging.getLogger(__name__)

# kind -> (module, class). Imported lazily by `build_engine`.
ENGINE_CLASSES: dict[str, tuple[str, str]] = {
    "local": ("liftdspy.lm.local.engine", "LocalEngine"),
    "openai": ("liftdspy.lm.openai_engine", "OpenAIEngine"),
    "modal": ("liftdspy.lm.openai_engine", "OpenAIEngine"),
}

# A Modal container loading a 7B model can take minutes before its first answer.
MODAL_FIRST_CALL_TIMEOUT = 900.0


class RecorderConfig(BaseModel):
    """How calls are recorded. `LIFTDSPY_RECORDER` overrides `mode` (the test suite sets `offline`).

    A committed `cache/recordings/<name>.jsonl` is imported into the store on first use."""

    model_config = ConfigDict(extra="forbid")

    # `mode: off` is the YAML boolean False: read as "off" (liftdspy.yaml_words).
    mode: Annotated[RecorderMode, OffWhenFalse] = RecorderMode.REPLAY
    path: Path | None = Field(
        None, description="diskcache directory; default cache/diskcache/<name>"
    )
    name: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

    def store_path(self) -> Path:
        return self.path if self.path is not None else default_store_path(self.name)

    def effective_mode(self) -> RecorderMode:
        return effective_mode(self.mode)


class LMConfig(BaseModel):
    """One language model: which engine, which model, sampling defaults and the recorder."""

    model_config = ConfigDict(extra="forbid")

    version: Version = "1"
    kind: Literal["local", "openai", "modal"]
    model: str = Field(min_length=1)
    model_path: Path | None = None
    base_url: str | None = None
    api_key_env: str | None = Field(
        None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="NAME of the environment variable holding the API key (never the key itself)",
    )
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, gt=0)
    n_threads: int | None = Field(None, gt=0)
    lanes: int | None = Field(
        None,
        gt=0,
        description="local: batch schedulers sharing the model, each with n_threads // lanes "
        "compute threads (default one per thread); changes no answer decoded alone",
    )
    n_ctx: int | None = Field(None, gt=0)
    seed: int | None = None
    max_string_chars: int | None = Field(
        None, gt=0, description="cap on every JSON-schema string while decoding (local, openai)"
    )
    max_array_items: int | None = Field(
        None, gt=0, description="cap on every JSON-schema array while decoding (local, openai)"
    )
    timeout: float = Field(120.0, gt=0)
    server: ServerIdentity | None = Field(
        None,
        description="openai/modal: what the server is (e.g. vLLM version, weights); part of the "
        "recording key and checked against the live server (`liftdspy serve vllm` prints it)",
    )
    recorder: RecorderConfig = Field(default_factory=RecorderConfig)

    @model_validator(mode="after")
    def _check_kind(self) -> LMConfig:
        if self.kind == "openai" and not self.base_url:
            raise ValueError("kind 'openai' needs base_url (the OpenAI-compatible endpoint)")
        if self.base_url and "@" in self.base_url.split("//", 1)[-1].split("/", 1)[0]:
            raise ValueError("base_url must not carry credentials; put the key in api_key_env")
        return self

    def engine_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of the engine class for this kind (unset values left out)."""
        if self.kind == "local":
            values: dict[str, Any] = {
                "model": self.model,
                "model_path": str(self.model_path) if self.model_path else None,
                "n_threads": self.n_threads,
                "lanes": self.lanes,
                "n_ctx": self.n_ctx,
                "seed": self.seed,
                "max_string_chars": self.max_string_chars,
                "max_array_items": self.max_array_items,
            }
        else:
            values = {
                "base_url": self.endpoint(),
                "model": self.model,
                "api_key_env": self.api_key_env,
                "timeout": self.timeout,
                "server": self.server.model_dump(mode="json") if self.server else None,
                "max_string_chars": self.max_string_chars,
                "max_array_items": self.max_array_items,
            }
            if self.kind == "modal":
                values["first_call_timeout"] = MODAL_FIRST_CALL_TIMEOUT
        return {name: value for name, value in values.items() if value is not None}

    def endpoint(self) -> str | None:
        """The base URL the engine calls (None for `local`). See `resolve_base_url`."""
        return None if self.kind == "local" else resolve_base_url(self.kind, self.base_url)


def resolve_base_url(
    kind: str, base_url: str | None, *, workspace: str | None = None
) -> str | None:
    """The one endpoint resolution: `base_url` when given; for `modal` without one
    `$LIFTDSPY_MODAL_URL`, else the URL built from the Modal deployment settings (`workspace`, else
    `$LIFTDSPY_MODAL_WORKSPACE`; a `ModalEndpointError` says what to set when neither is known)."""
    if base_url or kind != "modal":
        return base_url
    from liftdspy.serving.modal_endpoint import modal_base_url

    return modal_base_url(workspace=workspace)


def build_engine(config: LMConfig, **engine_options: Any) -> IdentifiedEngine:
    """Import the engine module for `config.kind` and construct it. `engine_options` are
    constructor arguments of the engine class that `LMConfig` does not carry (e.g. `max_retries`
    of `OpenAIEngine`); they win over the config's."""
    module_name, class_name = ENGINE_CLASSES[config.kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = (
            " (install the `local` extra: pip install -e '.[local]')"
            if config.kind == "local"
            else ""
        )
        raise ImportError(f"LM kind {config.kind!r} needs {module_name}{hint}: {exc}") from exc
    engine_class = getattr(module, class_name)
    return engine_class(**{**config.engine_kwargs(), **engine_options})


def build_lm(config: LMConfig, *, engine: IdentifiedEngine | None = None) -> dspy.LM:
    """A `dspy.LM` whose every call goes through a `RecordingEngine`.

    `engine` replaces the engine built from `config` (tests use a `ScriptedEngine`). DSPy's own
    cache is off (`cache=False`): its key ignores the engine's endpoint, so it could answer for the
    wrong server, and it would hide calls from the recorder. The `RolloutScope` callback tells the
    recorder the rollout id of each call, which DSPy does not pass to engines.
    """
    inner = engine if engine is not None else build_engine(config)
    mode = config.recorder.effective_mode()
    key_env = config.api_key_env or getattr(inner, "api_key_env", None)
    secrets = [os.environ.get(key_env)] if key_env else []
    recorder = RecordingEngine(inner, config.recorder.store_path(), mode, secrets=secrets)
    if mode is not RecorderMode.OFF:
        import_committed(recorder.store, config.recorder.name)
    logger.info(
        "LM %s/%s recorded in %s (mode %s)",
        config.kind,
        config.model,
        recorder.store.path,
        mode.value,
    )
    return dspy.LM(
        f"{config.kind}/{config.model}",
        engine=recorder,
        async_engine=AsyncRecordingEngine(recorder),
        cache=False,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
        callbacks=[RolloutScope()],
        # Remote engines retry with backoff themselves; DSPy's retries would stack on top.
        num_retries=0 if config.kind in {"openai", "modal"} else 3,
    )


def recorder_of(lm: dspy.LM) -> RecordingEngine:
    """The `RecordingEngine` behind an LM built by `build_lm` (for `stats()`)."""
    engine = getattr(lm, "engine", None)
    if not isinstance(engine, RecordingEngine):
        raise TypeError(f"LM {getattr(lm, 'model', lm)!r} is not recorded (engine is {engine!r})")
    return engine
