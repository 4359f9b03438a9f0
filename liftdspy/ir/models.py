"""The intermediate representation (IR) between a natural-language prompt and Python code.

Every string and list is bounded and every object forbids extra keys: the JSON schema of these
models drives grammar-constrained decoding, and a grammar without bounds lets a small model run on
until its token limit.
"""

from __future__ import annotations

import keyword
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from liftdspy.versioning import Version

# Bounded in the pattern itself (1 to 64 characters): grammar engines (XGrammar) ignore maxLength
# next to a pattern, and vLLM refuses a schema with both (HTTP 400 "features not supported by
# xgrammar"), so identifiers carry the pattern only.
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

# Bounds shared by the models and the JSON schema. Generous for humans, tight for a small LM.
MAX_NAME = 64
MAX_TYPE_HINT = 120
MAX_SHORT_TEXT = 200
MAX_LONG_TEXT = 400
MAX_PARAMETERS = 8
MAX_EFFECTS = 6
MAX_ASSERTIONS = 8
MAX_HOLES = 6
MAX_CONSTRAINTS = 4


def _not_keyword(name: str) -> str:
    if keyword.iskeyword(name):
        raise ValueError(f"{name!r} is a Python keyword, not a usable identifier")
    return name


Identifier = Annotated[
    str,
    StringConstraints(pattern=IDENTIFIER_PATTERN),
    AfterValidator(_not_keyword),
]
TypeHint = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TYPE_HINT)]
ShortText = Annotated[str, StringConstraints(max_length=MAX_SHORT_TEXT)]
LongText = Annotated[str, StringConstraints(max_length=MAX_LONG_TEXT)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Intent(_Strict):
    """What the function is for, and why."""

    summary: LongText = Field(description="One or two sentences: what the function does.")
    rationale: LongText = Field(
        default="", description="Why it behaves this way: choices, edge cases, interpretation."
    )


class Parameter(_Strict):
    name: Identifier
    type_hint: TypeHint = Field(description="A Python type hint, e.g. 'list[int]'.")
    description: ShortText = ""


class Returns(_Strict):
    type_hint: TypeHint = Field(description="A Python type hint; 'None' for no value.")
    description: ShortText = ""


class Signature(_Strict):
    name: Identifier = Field(description="The function's name, a Python identifier.")
    parameters: list[Parameter] = Field(default_factory=list, max_length=MAX_PARAMETERS)
    returns: Returns

    @field_validator("parameters")
    @classmethod
    def _unique_parameter_names(cls, parameters: list[Parameter]) -> list[Parameter]:
        names = [p.name for p in parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate parameter names: {', '.join(duplicates)}")
        return parameters


class Effect(_Strict):
    """An observable effect beyond the return value (mutation, I/O, raising)."""

    description: ShortText


class Assertion(_Strict):
    """A property the implementation must satisfy, as a Python-like predicate."""

    predicate: ShortText
    rationale: ShortText = ""


class HoleKind(StrEnum):
    intent = "intent"
    signature = "signature"
    effect = "effect"
    assertion = "assertion"
    implementation = "implementation"


class TypedHole(_Strict):
    """Something the prompt leaves open that a careful engineer would ask about."""

    identifier: Identifier
    type_hint: TypeHint = Field(description="The type of the value that would fill the hole.")
    description: ShortText
    kind: HoleKind
    constraints: list[Annotated[str, StringConstraints(max_length=120)]] = Field(
        default_factory=list, max_length=MAX_CONSTRAINTS
    )


class Metadata(_Strict):
    language: Literal["python"] = "python"
    origin: Annotated[str, StringConstraints(max_length=MAX_NAME)] = Field(
        default="", description="Where this IR came from: 'core', 'mbpp', 'humaneval', 'model'."
    )
    source_id: Annotated[str, StringConstraints(max_length=MAX_NAME)] = ""


class IntermediateRepresentation(_Strict):
    """The IR of one Python function: intent, signature, effects, assertions and typed holes."""

    intent: Intent
    signature: Signature
    effects: list[Effect] = Field(default_factory=list, max_length=MAX_EFFECTS)
    assertions: list[Assertion] = Field(default_factory=list, max_length=MAX_ASSERTIONS)
    holes: list[TypedHole] = Field(default_factory=list, max_length=MAX_HOLES)
    metadata: Metadata = Field(default_factory=Metadata)
    version: Version = "1"

    def to_json(self, *, indent: int | None = None) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> IntermediateRepresentation:
        return cls.model_validate_json(text)
