"""The prompt pack: an exported program's prompts in a versioned JSON format (no DSPy needed).

One `PredictorPrompt` per DSPy predictor holds the chat messages exactly as the program's DSPy
adapter renders them (the pack's `adapter`: `compact`, `baml`, `json` or `chat`), with every input
replaced by a `{{name}}` placeholder, the `response_format` (JSON schema) and request `metadata`
(the compact layout's `json_layout`) DSPy sends, and the sampling parameters. Filling the
placeholders with the real inputs gives byte for byte the messages DSPy would send.
`liftdspy.export` writes packs; `liftdspy.runtime` reads and runs them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from liftdspy.errors import LiftdspyError
from liftdspy.versioning import Version

PACK_FILE = "prompt_pack.json"
PLACEHOLDER = "{{{{{name}}}}}"
_PLACEHOLDER_PATTERN = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}")


def placeholder(name: str) -> str:
    """The placeholder for input `name` in message templates: `{{name}}`."""
    return PLACEHOLDER.format(name=name)


PackAdapter = Literal["compact", "baml", "json", "chat"]
# Packs written before the adapter was a choice name DSPy's class.
_ADAPTER_CLASS_NAMES = {
    "JSONAdapter": "json",
    "BAMLAdapter": "baml",
    "ChatAdapter": "chat",
    "CompactAdapter": "compact",
}


def _adapter_name(value: Any) -> Any:
    return _ADAPTER_CLASS_NAMES.get(value, value) if isinstance(value, str) else value


class PackError(LiftdspyError, ValueError):
    """A prompt pack that cannot be read or used; the message names the file or predictor."""


class FieldSpec(BaseModel):
    """One input or output field of a predictor's signature."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    type: str = Field(
        description="The annotation's name, e.g. 'str' or 'IntermediateRepresentation'"
    )
    description: str = ""


class MessageTemplate(BaseModel):
    """One chat message; `content` may hold `{{input}}` placeholders."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class SamplingParams(BaseModel):
    """Sampling parameters sent with every call (unset ones are not sent)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = None
    max_tokens: int | None = None

    def body(self) -> dict[str, Any]:
        return {key: value for key, value in self.model_dump().items() if value is not None}


class ModelTarget(BaseModel):
    """Where the program's LM lived at export time. Never a key: only the variable's NAME."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None


class PredictorPrompt(BaseModel):
    """Everything needed to call one predictor without DSPy."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The predictor's name in the program, e.g. 'nl_to_ir.translate'")
    instructions: str
    inputs: list[FieldSpec]
    outputs: list[FieldSpec]
    demos: list[dict[str, Any]] = Field(default_factory=list)
    messages: list[MessageTemplate] = Field(min_length=1)
    response_format: dict[str, Any] | None = Field(
        None, description="The Chat Completions response_format, as DSPy sends it"
    )
    metadata: dict[str, Any] | None = Field(
        None,
        description="The request metadata DSPy sends (the compact adapter's "
        '{"json_layout": "compact"}): in the request body, kept off the wire by ChatEndpoint',
    )
    sampling: SamplingParams = Field(default_factory=SamplingParams)

    def file_stem(self) -> str:
        """A file-name-safe form of the predictor name."""
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.name)

    def placeholders(self) -> set[str]:
        return {
            match.group(1)
            for message in self.messages
            for match in _PLACEHOLDER_PATTERN.finditer(message.content)
        }

    def render(self, inputs: dict[str, str]) -> list[dict[str, str]]:
        """The chat messages with each `{{name}}` of a declared input replaced, in one pass (an
        input's value that itself contains `{{...}}` is left as it is)."""
        declared = {field.name for field in self.inputs}
        missing = sorted(declared - inputs.keys())
        unknown = sorted(inputs.keys() - declared)
        if missing or unknown:
            raise PackError(
                f"predictor {self.name!r}: missing inputs {missing}, unknown inputs {unknown}; "
                f"expected {sorted(declared)}"
            )

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            return inputs[name] if name in declared else match.group(0)

        return [
            {"role": message.role, "content": _PLACEHOLDER_PATTERN.sub(fill, message.content)}
            for message in self.messages
        ]


class PromptPack(BaseModel):
    """An exported program's prompts. `format_version` changes when the layout does."""

    model_config = ConfigDict(extra="forbid")

    format_version: Version = "1"
    program: str | None = Field(None, description="'nl_to_ir', 'ir_to_code' or 'pipeline'")
    predictor_kind: str | None = Field(None, description="'predict' or 'cot'")
    adapter: Annotated[PackAdapter, BeforeValidator(_adapter_name)] = Field(
        "json", description="The DSPy adapter the prompts are rendered with"
    )
    model: ModelTarget | None = None
    predictors: list[PredictorPrompt] = Field(min_length=1)

    def predictor(self, name: str) -> PredictorPrompt:
        for prompt in self.predictors:
            if prompt.name == name:
                return prompt
        known = ", ".join(prompt.name for prompt in self.predictors)
        raise PackError(f"no predictor {name!r} in the pack; it has: {known}")


def load_pack(path: Path) -> PromptPack:
    """Read a pack from `path` (the JSON file or the export directory holding it)."""
    file = path / PACK_FILE if path.is_dir() else path
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PackError(f"{file}: cannot read the prompt pack: {exc.strerror or exc}") from exc
    try:
        return PromptPack.model_validate_json(text)
    except ValidationError as exc:
        raise PackError(f"{file}: not a valid prompt pack (format 1): {exc}") from exc
