"""Render a DSPy program's predictors into a `PromptPack` with the program's own adapter.

The messages come from `adapter.format(signature, demos, inputs)` (the adapter the program runs
with: `compact`, `baml`, `json` or `chat`, `liftdspy.programs.adapters`) called with a unique
sentinel per input, which is then replaced by the `{{name}}` placeholder; demos are the ones the
program shows the LM (`lm_facing_demos`: an IR-content output shows content only). The response
format and request metadata (the compact layout's `json_layout`) are what the adapter attaches for
a schema-capable LM, the response format shaped strict as DSPy 3.4 sends it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import dspy

from liftdspy.chat import openai_response_format
from liftdspy.dspy_compat import adapter_lm_kwargs, strict_json_schema
from liftdspy.errors import LiftdspyError
from liftdspy.lm.config import LMConfig
from liftdspy.programs.adapters import LEGACY_ADAPTER, AdapterName, build_adapter
from liftdspy.programs.lm_facing import lm_facing_demos
from liftdspy.runtime.pack import (
    FieldSpec,
    MessageTemplate,
    ModelTarget,
    PredictorPrompt,
    PromptPack,
    SamplingParams,
    placeholder,
)

logger = logging.getLogger(__name__)


class ExportError(LiftdspyError, ValueError):
    """A program that cannot be exported as a prompt pack; says which predictor and why."""


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation)


def _fields(fields: dict[str, Any]) -> list[FieldSpec]:
    return [
        FieldSpec(
            name=name,
            type=_type_name(info.annotation),
            description=(info.json_schema_extra or {}).get("desc", "") or "",
        )
        for name, info in fields.items()
    ]


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _demo_data(demo: Any) -> dict[str, Any]:
    return demo.toDict() if hasattr(demo, "toDict") else dict(demo)


def request_options(
    signature: type[dspy.Signature], adapter: AdapterName = LEGACY_ADAPTER
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The Chat Completions `response_format` and the request `metadata` that `adapter` sends
    for `signature` to an LM that supports JSON schemas (such as `OpenAIEngine`); None for what
    it does not send (ChatAdapter sends neither)."""
    kwargs = adapter_lm_kwargs(build_adapter(adapter), signature)
    model = kwargs.get("response_format")
    response_format = None
    if isinstance(model, type):
        response_format = openai_response_format(
            strict_json_schema(model.model_json_schema()), name=model.__name__, strict=True
        )
    elif model is not None:  # {"type": "json_object"}: a signature without a fixed schema
        response_format = dict(model)
    return response_format, kwargs.get("metadata")


def response_format_for(
    signature: type[dspy.Signature], adapter: AdapterName = LEGACY_ADAPTER
) -> dict[str, Any] | None:
    """The Chat Completions `response_format` `adapter` sends for `signature` to an LM that
    supports JSON schemas (such as `OpenAIEngine`)."""
    return request_options(signature, adapter)[0]


def render_messages(
    name: str,
    signature: type[dspy.Signature],
    demos: list[Any],
    adapter: AdapterName = LEGACY_ADAPTER,
) -> list[MessageTemplate]:
    """The adapter's messages for `signature` and `demos` (as the program shows them to the LM),
    with `{{input}}` placeholders."""
    token = uuid.uuid4().hex
    sentinels = {field: f"\u27e6liftdspy-{token}-{field}\u27e7" for field in signature.input_fields}
    messages = build_adapter(adapter).format(
        signature, lm_facing_demos(signature, demos), dict(sentinels)
    )
    templates = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            raise ExportError(f"predictor {name!r}: a {message['role']} message is not plain text")
        for field in sentinels:
            if placeholder(field) in content:
                raise ExportError(
                    f"predictor {name!r}: the prompt already contains the text "
                    f"{placeholder(field)!r} (in instructions or demos), which the runtime would "
                    "fill in; rename it before exporting"
                )
        for field, sentinel in sentinels.items():
            content = content.replace(sentinel, placeholder(field))
        templates.append(MessageTemplate(role=message["role"], content=content))
    last = templates[-1].content if templates else ""
    for field in sentinels:
        if placeholder(field) not in last:
            raise ExportError(f"predictor {name!r}: input {field!r} is not in the last message")
    return templates


def predictor_prompt(
    name: str,
    predictor: dspy.Predict,
    sampling: SamplingParams,
    adapter: AdapterName = LEGACY_ADAPTER,
) -> PredictorPrompt:
    signature = predictor.signature
    for field, info in signature.input_fields.items():
        if info.annotation is not str:
            logger.info(
                "predictor %s: input %s is %s; the runtime sends it as JSON text",
                name,
                field,
                _type_name(info.annotation),
            )
    response_format, metadata = request_options(signature, adapter)
    return PredictorPrompt(
        name=name,
        instructions=signature.instructions,
        inputs=_fields(signature.input_fields),
        outputs=_fields(signature.output_fields),
        demos=[_jsonable(_demo_data(demo)) for demo in predictor.demos],
        messages=render_messages(name, signature, predictor.demos, adapter),
        response_format=response_format,
        metadata=metadata,
        sampling=sampling,
    )


def model_target(config: LMConfig) -> ModelTarget:
    """The LM's address without secrets: the key stays in the environment, named only."""
    return ModelTarget(
        kind=config.kind,
        model=config.model,
        base_url=config.base_url,
        api_key_env=config.api_key_env,
    )


def program_adapter(program: dspy.Module, adapter: AdapterName | None = None) -> AdapterName:
    """The adapter `program`'s predictors run with: its own (`adapter` attribute of liftdspy's
    programs), else `adapter` (how the caller built it), else `json` (DSPy's JSONAdapter, what
    exports assumed before programs named one)."""
    return getattr(program, "adapter", None) or adapter or LEGACY_ADAPTER


def build_prompt_pack(
    program: dspy.Module,
    *,
    lm_config: LMConfig | None = None,
    program_name: str | None = None,
    predictor_kind: str | None = None,
    adapter: AdapterName | None = None,
) -> PromptPack:
    """One `PredictorPrompt` per named predictor of `program`, in `named_predictors()` order,
    rendered with the program's adapter (`program_adapter`)."""
    adapter = program_adapter(program, adapter)
    sampling = SamplingParams(
        temperature=lm_config.temperature if lm_config else None,
        max_tokens=lm_config.max_tokens if lm_config else None,
    )
    prompts = [
        predictor_prompt(name, predictor, sampling, adapter)
        for name, predictor in program.named_predictors()
    ]
    if not prompts:
        raise ExportError(f"{type(program).__name__} has no predictors to export")
    return PromptPack(
        program=program_name,
        predictor_kind=predictor_kind,
        adapter=adapter,
        model=model_target(lm_config) if lm_config else None,
        predictors=prompts,
    )
