"""The LM-facing IR: what the model writes (the IR's content) and how the program completes it.

`IRContent` has the fields of `IntermediateRepresentation` minus its bookkeeping (`metadata`,
`version`): the model never needs to spend tokens on them, and the program knows them better.
`complete_ir(content)` builds the full IR from it (the version constant, metadata filled by the
program). The fields are taken from the IR model itself, so the two never drift apart: the
content's JSON schema is the IR's with those two properties (and the `Metadata` definition) left
out, bounded the same way.

DSPy-free: `liftdspy.runtime` completes exported answers with the same function.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model

from liftdspy.ir.models import IntermediateRepresentation, Metadata

# Fields of the IR the program fills itself.
BOOKKEEPING_FIELDS = ("metadata", "version")
# What `complete_ir` writes into `metadata.origin` for an IR the model wrote.
MODEL_ORIGIN = "model"

IROutput = Literal["content", "full"]


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
    """The full IR of `content` (an `IRContent` or its JSON data): the version is the IR's
    current one, `metadata` says the IR came from `origin` (the model, by default) for
    `source_id`."""
    data = content.model_dump(mode="json") if isinstance(content, BaseModel) else dict(content)
    extra = sorted(set(data) & set(BOOKKEEPING_FIELDS))
    if extra:
        raise ValueError(f"IR content carries bookkeeping fields {extra}; pass the content only")
    return IntermediateRepresentation.model_validate(
        {**data, "metadata": Metadata(origin=origin, source_id=source_id).model_dump()}
    )
