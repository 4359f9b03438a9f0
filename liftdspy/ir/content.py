"""The LM-facing IR: what the model writes of the IR, and how the program completes it.

- `IRLean` (`ir_output: lean`, the default): the content without its two free-text "why"s
  (`intent.rationale`, `assertions[].rationale`). No metric reads them, a small model fills them
  with filler (about 30 of ~200 output tokens per answer), and the IR holds "" for them when the
  model does not write them.
- `IRContent` (`ir_output: content`): every field of `IntermediateRepresentation` minus its
  bookkeeping (`metadata`, `version`), which the program knows better.

`complete_ir(content)` builds the full IR from either (the version constant, metadata filled by
the program, the left-out rationales ""). The fields are taken from the IR models themselves, so
they never drift apart: each JSON schema is the IR's with those properties (and the `Metadata`
definition) left out, bounded the same way.

DSPy-free: `liftdspy.runtime` completes exported answers with the same function.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, create_model

from liftdspy.ir.models import (
    MAX_ASSERTIONS,
    Assertion,
    Intent,
    IntermediateRepresentation,
    Metadata,
)

# Fields of the IR the program fills itself.
BOOKKEEPING_FIELDS = ("metadata", "version")
# What `complete_ir` writes into `metadata.origin` for an IR the model wrote.
MODEL_ORIGIN = "model"

IROutput = Literal["lean", "content", "full"]
IR_OUTPUTS: tuple[str, ...] = get_args(IROutput)


class _ContentBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


IRContent: type[BaseModel] = create_model(
    "IRContent",
    __base__=_ContentBase,
    __doc__=IntermediateRepresentation.__doc__,
    __module__=__name__,
    **{
        name: (info.annotation, info)
        for name, info in IntermediateRepresentation.model_fields.items()
        if name not in BOOKKEEPING_FIELDS
    },
)


def _without(model: type[BaseModel], omitted: str, name: str, doc: str) -> type[BaseModel]:
    return create_model(
        name,
        __base__=_ContentBase,
        __doc__=doc,
        __module__=__name__,
        **{n: (i.annotation, i) for n, i in model.model_fields.items() if n != omitted},
    )


IntentLean = _without(Intent, "rationale", "IntentLean", "What the function is for.")
AssertionLean = _without(Assertion, "rationale", "AssertionLean", Assertion.__doc__ or "")

# The IR's fields in the IR's order (it is the answer's order), two of them with lean types.
_LEAN_FIELDS: dict[str, Any] = {
    "intent": (IntentLean, Field()),
    "assertions": (list[AssertionLean], Field(default_factory=list, max_length=MAX_ASSERTIONS)),
}
IRLean: type[BaseModel] = create_model(
    "IRLean",
    __base__=_ContentBase,
    __doc__=IntermediateRepresentation.__doc__,
    __module__=__name__,
    **{
        name: _LEAN_FIELDS.get(name, (info.annotation, info))
        for name, info in IntermediateRepresentation.model_fields.items()
        if name not in BOOKKEEPING_FIELDS
    },
)


def content_model(ir_output: IROutput) -> type[BaseModel] | None:
    """The model the LM writes for `ir_output` (None for `full`: the whole IR)."""
    if ir_output not in IR_OUTPUTS:
        expected = ", ".join(repr(o) for o in IR_OUTPUTS)
        raise ValueError(f"unknown ir_output {ir_output!r}: expected one of {expected}")
    return {"lean": IRLean, "content": IRContent, "full": None}[ir_output]


def lean_content(ir: IntermediateRepresentation | BaseModel | dict[str, Any]) -> BaseModel:
    """The lean content of `ir` (a full IR, a content model or their JSON data) as `IRLean`:
    bookkeeping keys and the rationales `IRLean` leaves out are dropped, the rest validated."""
    if isinstance(ir, IRLean):
        return ir
    data = ir_content(ir).model_dump(mode="json")
    data["intent"].pop("rationale", None)
    for assertion in data["assertions"]:
        assertion.pop("rationale", None)
    return IRLean.model_validate(data)


def project_content(value: Any, model: type[BaseModel]) -> BaseModel:
    """`value` as `model` (`IRContent` or `IRLean`): what the model is shown of an IR."""
    return lean_content(value) if model is IRLean else ir_content(value)


def ir_content(ir: IntermediateRepresentation | BaseModel | dict[str, Any]) -> BaseModel:
    """The content of `ir` (a full IR, a content model or their JSON data) as `IRContent`:
    bookkeeping keys are dropped, everything else is validated."""
    if isinstance(ir, IRContent):
        return ir
    data = ir.model_dump(mode="json") if isinstance(ir, BaseModel) else dict(ir)
    for name in BOOKKEEPING_FIELDS:
        data.pop(name, None)
    return IRContent.model_validate(data)


def complete_ir(
    content: BaseModel | dict[str, Any], *, origin: str = MODEL_ORIGIN, source_id: str = ""
) -> IntermediateRepresentation:
    """The full IR of `content` (an `IRContent`, an `IRLean` or their JSON data): the version is
    the IR's current one, `metadata` says the IR came from `origin` (the model, by default) for
    `source_id`; rationales lean content leaves out are ""."""
    data = content.model_dump(mode="json") if isinstance(content, BaseModel) else dict(content)
    extra = sorted(set(data) & set(BOOKKEEPING_FIELDS))
    if extra:
        raise ValueError(f"IR content carries bookkeeping fields {extra}; pass the content only")
    return IntermediateRepresentation.model_validate(
        {**data, "metadata": Metadata(origin=origin, source_id=source_id).model_dump()}
    )
